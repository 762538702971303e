"""Readers: type detection, encodings, delimiters, strict quoting, sheets, header row, refusals."""

import csv
import datetime as dt
import io
import time
import tracemalloc
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.importer import corpus
from webapp.importer.errors import FileRefused
from webapp.importer.header_row import NO_HEADER
from webapp.importer.readers import count_rows, open_table


def refused(source, **kwargs) -> str:
    """The refusal message open_table (and a full read) gives for a file."""
    with pytest.raises(FileRefused) as exc, open_table(source, **kwargs) as table:
        list(table.rows())
    return exc.value.message


def read(source, **kwargs):
    """(table, list of rows) for a file; the table is closed, its attributes stay."""
    with open_table(source, **kwargs) as table:
        return table, list(table.rows())


# --- CSV encodings -----------------------------------------------------------------------

PEOPLE = "Email,First Name\nana@example.com,Ana\nzoé@example.com,Zoé\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_csv_unicode_encodings(tmp_path, encoding):
    path = corpus.text_file(tmp_path / "people.csv", PEOPLE, encoding)
    table, rows = read(path)
    assert (table.kind, table.headers, table.header_line) == ("csv", ["Email", "First Name"], 1)
    assert rows == [(2, ["ana@example.com", "Ana"]), (3, ["zoé@example.com", "Zoé"])]


def test_utf16_be_with_bom(tmp_path):
    data = b"\xfe\xff" + PEOPLE.encode("utf-16-be")
    table, rows = read(corpus.write(tmp_path / "be.csv", data))
    assert table.headers == ["Email", "First Name"]
    assert rows[1] == (3, ["zoé@example.com", "Zoé"])


def test_excel_unicode_text_is_utf16_le_tab_delimited(tmp_path):
    text = "Email\tName\tCity\r\nana@example.com\tAna\tSão Paulo\r\n"
    path = corpus.write(tmp_path / "unicode.txt", b"\xff\xfe" + text.encode("utf-16-le"))
    table, rows = read(path)
    assert table.headers == ["Email", "Name", "City"]
    assert rows == [(2, ["ana@example.com", "Ana", "São Paulo"])]


def test_windows_1252_accents_and_curly_quote(tmp_path):
    text = "Email,Name,Note\nzoe@example.com,Zoé,It’s “great”\n"
    table, rows = read(corpus.text_file(tmp_path / "w.csv", text, "cp1252"))
    assert rows == [(2, ["zoe@example.com", "Zoé", "It’s “great”"])]


def test_windows_1252_detected_even_when_the_accent_is_far_into_the_file(tmp_path):
    text = "Email,Name\n" + "a@example.com,Ann\n" * 200_000 + "z@example.com,Zoé\n"
    table = open_table(corpus.text_file(tmp_path / "late.csv", text, "cp1252"))
    *_, last = table.rows()
    assert last == (200_002, ["z@example.com", "Zoé"])


CODE_PAGE_FILES = [  # (what a program writes, the text, its code page)
    ('LibreOffice/Excel "CSV (MS-DOS)", French', "h@example.com,Hélène Lefèvre,Montréal", "cp850"),
    ('Excel "CSV (MS-DOS)" on a US system', "m@example.com,Müller Jürgen,Straße 1", "cp437"),
    ('Excel for Mac "CSV (Macintosh)"', "j@example.com,José Muñoz,São Paulo", "mac_roman"),
    ('Mac Roman, a name in curly quotes', "e@example.com,“Élodie” Zoë,Zürich", "mac_roman"),
    ("LibreOffice, Latin-9", "l@example.com,Lætitia Cœur,12 €", "iso8859_15"),
    ("Excel on Windows, Spanish", "m@example.com,María Núñez,Bogotá", "cp1252"),
    ('Excel "CSV (MS-DOS)", Spanish', "m@example.com,María Núñez,Cancún", "cp850"),
    ("Excel on a Polish Windows", "p@example.com,Paweł Żółć,Łódź", "cp1250"),
    ("Excel on a Russian Windows", "i@example.com,Иван Петров,Москва", "cp1251"),
]


@pytest.mark.parametrize("program, line, code_page", CODE_PAGE_FILES, ids=[c[0] for c in CODE_PAGE_FILES])
def test_single_byte_code_pages_are_read_as_written(tmp_path, program, line, code_page):
    text = "Email,Name,City\nana@example.com,Ana,Reno\n" + line + "\n"
    table, rows = read(corpus.text_file(tmp_path / "dos.csv", text, code_page, newline="\r\n"))
    assert rows == [(2, ["ana@example.com", "Ana", "Reno"]), (3, line.split(","))]


def test_a_code_page_is_found_from_an_accent_far_into_the_file(tmp_path):
    text = "Email,Name\n" + "a@example.com,Ann\n" * 200_000 + "j@example.com,José Peña\n"
    table = open_table(corpus.text_file(tmp_path / "late.csv", text, "mac_roman"))
    *_, last = table.rows()
    assert last == (200_002, ["j@example.com", "José Peña"])


@pytest.mark.parametrize("data, readings", [
    (b"Email,Size\na@example.com,\xbd oz\n", '"½" as Windows-1252 (Western) and "œ" as Latin-9'),
    (b"Email,Code\na@example.com,ANA \x8e\n", '"Ž" as Windows-1252 (Western) and "é" as Mac Roman'),
])
def test_a_code_page_that_cannot_be_told_for_sure_is_refused_with_both_readings(tmp_path, data, readings):
    message = refused(corpus.write(tmp_path / "unsure.csv", data))
    assert message == ("The file is not saved as UTF-8, and its text encoding cannot be told for sure: the same "
                       f'bytes read {readings}. Save the file from Excel as "CSV UTF-8 (Comma delimited)" and '
                       "upload it again.")


def test_mixed_utf8_and_windows_1252_is_refused_not_garbled(tmp_path):
    data = "Email,Name\na@example.com,Zoé\n".encode() + "b@example.com,Zoé\n".encode("cp1252")
    message = refused(corpus.write(tmp_path / "mixed.csv", data))
    assert "mixes two text encodings" in message
    assert "line 3 is the first that is not UTF-8" in message


# --- CSV delimiters and quoting ----------------------------------------------------------

@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(tmp_path, delimiter):
    text = delimiter.join(["Email", "Name", "Points"]) + "\n"
    text += delimiter.join(["ana@example.com", '"Ana, Maria; B|C"', "12"]) + "\n"
    table, rows = read(corpus.text_file(tmp_path / "d.csv", text))
    assert table.headers == ["Email", "Name", "Points"]
    assert rows == [(2, ["ana@example.com", "Ana, Maria; B|C", "12"])]


def test_semicolon_file_with_commas_in_quoted_cells(tmp_path):
    text = 'Email;Name;Address\na@example.com;"Ann, Jr";"1 Main St, Apt 2, Springfield"\n' * 1
    text += 'b@example.com;"Bob, Sr";"2 Elm St, Unit 5, Portland"\n'
    table, rows = read(corpus.text_file(tmp_path / "s.csv", text))
    assert table.headers == ["Email", "Name", "Address"]
    assert rows[1] == (3, ["b@example.com", "Bob, Sr", "2 Elm St, Unit 5, Portland"])


def test_quoted_newline_counts_as_one_row_like_excel(tmp_path):
    text = 'Email,Address\na@example.com,"1 Main St\nApt 2"\nb@example.com,2 Elm St\n'
    _, rows = read(corpus.text_file(tmp_path / "q.csv", text))
    assert rows == [(2, ["a@example.com", "1 Main St\nApt 2"]), (3, ["b@example.com", "2 Elm St"])]


def test_crlf_line_endings(tmp_path):
    text = 'Email,Address\na@example.com,"1 Main St\nApt 2"\nb@example.com,x\n'
    _, rows = read(corpus.text_file(tmp_path / "crlf.csv", text, newline="\r\n"))
    assert rows == [(2, ["a@example.com", "1 Main St\r\nApt 2"]), (3, ["b@example.com", "x"])]


def test_stray_quote_inside_a_cell_names_the_line(tmp_path):
    text = "Email,Name\n" + "a@example.com,Ann\n" * 12 + 'b@example.com,"Bob" Jr\nc@example.com,Cy\n'
    message = refused(corpus.text_file(tmp_path / "stray.csv", text))
    assert message.startswith('Line 14 has a quote (") in the middle of a cell.')


def test_quote_never_closed_names_the_line(tmp_path):
    text = "Email,Name\n" + "a@example.com,Ann\n" * 12 + 'b@example.com,"Bob\nc@example.com,Cy\n'
    message = refused(corpus.text_file(tmp_path / "open.csv", text))
    assert message.startswith('Line 14 has a quote (") that is never closed')


def test_quote_closed_lines_later_does_not_merge_rows_silently(tmp_path):
    text = ("Email,Name,Phone\na@example.com,\"Ann,555-0100\n"
            "b@example.com,Bob,555-0101\nc@example.com,Cy,555-0102\"\nd@example.com,Di,555-0103\n")
    message = refused(corpus.text_file(tmp_path / "merge.csv", text))
    assert message.startswith('Line 2 has a quote (") that is not closed on that line, '
                              "so the next 2 lines would be read into one cell.")


def test_huge_field_is_refused(tmp_path):
    text = "Email,Notes\na@example.com,ok\nb@example.com," + "x" * 200_000 + "\n"
    message = refused(corpus.text_file(tmp_path / "huge.csv", text))
    assert message.startswith("Line 3 has a cell longer than 128 KB")


def test_nul_bytes_are_dropped(tmp_path):
    data = b"Email,Name\x00\na@example.com,A\x00nn\n"
    table, rows = read(corpus.write(tmp_path / "nul.csv", data))
    assert table.headers == ["Email", "Name"]
    assert rows == [(2, ["a@example.com", "Ann"])]


def test_title_rows_and_blank_lines_above_the_header(tmp_path):
    text = ("Customer export\nGreen Leaf Dispensary,May 2024\n\n"
            "Email,First Name,Last Name,Phone\n"
            "a@example.com,Ann,Lee,(415) 555-0100\n\n,,,\n  , ,,\nb@example.com,Bob,Ray,4155550101\n")
    table, rows = read(corpus.text_file(tmp_path / "title.csv", text))
    assert table.header_line == 4
    assert table.headers == ["Email", "First Name", "Last Name", "Phone"]
    assert rows == [(5, ["a@example.com", "Ann", "Lee", "(415) 555-0100"]),
                    (9, ["b@example.com", "Bob", "Ray", "4155550101"])]


def test_header_line_override(tmp_path):
    text = "Email,Name\nEmail address,Full name\na@example.com,Ann\n"
    table, rows = read(corpus.text_file(tmp_path / "o.csv", text), header_line=2)
    assert (table.header_line, table.headers) == (2, ["Email address", "Full name"])
    assert rows == [(3, ["a@example.com", "Ann"])]


def test_header_line_override_on_a_blank_line(tmp_path):
    path = corpus.text_file(tmp_path / "o.csv", "Email,Name\n\na@example.com,Ann\n")
    assert refused(path, header_line=2) == "Line 2 is empty. Choose the line that holds the column names."


@pytest.mark.parametrize("text", ["a@example.com,4155550100\nb@example.com,4155550101\n",
                                  "1,2,3\n4,5,6\n7,8,9\n", "2024-01-05,12\n2024-02-06,13\n"])
def test_a_file_without_a_header_row_is_refused_saying_so_until_its_line_is_chosen(tmp_path, text):
    path = corpus.text_file(tmp_path / "nohead.csv", text)
    assert refused(path) == NO_HEADER
    assert NO_HEADER.startswith("No row of the file looks like a header row of column names")
    assert NO_HEADER.endswith("or choose the line that holds the column names.")
    table, rows = read(path, header_line=1)
    assert (table.header_line, table.headers[0], rows[0][0]) == (1, text.split(",")[0], 2)


def test_a_numbers_only_sheet_is_refused_as_having_no_header_row(tmp_path):
    path = corpus.xlsx_file(tmp_path / "numbers.xlsx", {"Sheet1": [[1, 2], [3, 4], [5, 6]]})
    assert refused(path) == NO_HEADER


def test_a_first_row_with_one_name_among_odd_headers_is_still_taken(tmp_path):
    text = "Email,4155550100\na@example.com,4155550101\n"
    assert open_table(corpus.text_file(tmp_path / "odd.csv", text)).headers == ["Email", "4155550100"]


def test_single_column_file(tmp_path):
    table, rows = read(corpus.text_file(tmp_path / "one.csv", "Email\na@example.com\nb@example.com\n"))
    assert table.headers == ["Email"]
    assert rows == [(2, ["a@example.com"]), (3, ["b@example.com"])]


def test_header_cells_trimmed_blank_ones_named_trailing_ones_dropped(tmp_path):
    text = " Email ,,Phone ,,\na@example.com,x,555,,\nb@example.com,,,,ignored\n"
    table, rows = read(corpus.text_file(tmp_path / "h.csv", text))
    assert table.headers == ["Email", "Column B", "Phone"]
    # Short rows padded with None, long rows cut; a row left blank by the cut is skipped.
    assert rows == [(2, ["a@example.com", "x", "555"]), (3, ["b@example.com", "", ""])]


def test_short_rows_are_padded(tmp_path):
    _, rows = read(corpus.text_file(tmp_path / "p.csv", "Email,Name,Phone\na@example.com\n"))
    assert rows == [(2, ["a@example.com", None, None])]


def test_quote_prefix_from_our_reports_is_stripped_once(tmp_path):
    text = "Email,Note,Other\na@example.com,'=SUM(A1),'+1 415\nb@example.com,''=x,'plain\n"
    text += "c@example.com,'-5,'@home\n"
    _, rows = read(corpus.text_file(tmp_path / "r.csv", text))
    assert rows == [(2, ["a@example.com", "=SUM(A1)", "+1 415"]),
                    (3, ["b@example.com", "''=x", "'plain"]),
                    (4, ["c@example.com", "-5", "@home"])]


def test_rows_can_be_replayed_and_sampled(tmp_path):
    text = "Email,Name,Phone\n" + "".join(f"u{i}@example.com,,55{i}\n" for i in range(5)) + "z@x.com,Zed,\n"
    with open(corpus.text_file(tmp_path / "s.csv", text), "rb") as f:
        table = open_table(f)
        assert list(table.rows()) == list(table.rows())
        assert count_rows(table) == 6
        assert table.sample() == {"Email": ["u0@example.com", "u1@example.com", "u2@example.com"],
                                  "Name": ["Zed"], "Phone": ["550", "551", "552"]}
        assert not f.closed


def test_file_object_source(tmp_path):
    table, rows = read(io.BytesIO(b"Email,Name\na@example.com,Ann\n"))
    assert rows == [(2, ["a@example.com", "Ann"])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delimiter=st.sampled_from([",", ";", "\t", "|"]), newline=st.sampled_from(["\n", "\r\n"]),
       cells=st.lists(st.tuples(st.text(alphabet="ab é\"'’=", max_size=8),
                                st.text(alphabet="xy \"Z\n", max_size=8)), min_size=1, max_size=20))
def test_csv_written_by_the_csv_module_reads_back(tmp_path, delimiter, newline, cells):
    rows = [[f"u{i}@example.com", a, b] for i, (a, b) in enumerate(cells)]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerows([["Email", "Name", "Note"], *rows])
    table, got = read(io.BytesIO(buf.getvalue().encode()))
    expected = [[c[1:] if c[:1] == "'" and c[1:2] == "=" else c for c in row] for row in rows]
    assert table.headers == ["Email", "Name", "Note"]
    assert [cells for _, cells in got] == expected
    assert [line for line, _ in got] == list(range(2, len(rows) + 2))


# --- refusals common to all types -----------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n\n\r\n", b",,,\n , ,\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    assert refused(corpus.write(tmp_path / "e.csv", content)) == "The file is empty: it has no rows to import."


def test_header_only_file(tmp_path):
    path = corpus.text_file(tmp_path / "h.csv", "Email,Name\n\n,\n")
    assert refused(path) == "The file has a header row but no customer rows."


def test_duplicate_headers_are_named(tmp_path):
    path = corpus.text_file(tmp_path / "d.csv", "Email,Phone,E-mail,EMAIL ,phone,First Name,firstname\nx,y,z,w,v,u,t\n")
    assert refused(path) == (
        'The header row names the same column more than once: "Email" (columns A, C and D); '
        '"Phone" (columns B and E); "First Name" (columns F and G). '
        "Give each column its own name and upload the file again.")


@pytest.mark.parametrize("other", ["first_name", "FirstName", "first-name", "First  Name"])
def test_headers_are_duplicates_by_the_rule_header_matching_uses(tmp_path, other):
    # Matching and remembered mappings see these as one header, so a second one would be ignored unseen.
    path = corpus.text_file(tmp_path / "d.csv", f"Email,First Name,{other}\nx,y,z\n")
    assert refused(path).startswith('The header row names the same column more than once: "First Name" (columns B and C)')


def test_headers_without_letters_or_digits_are_not_duplicates_of_each_other(tmp_path):
    path = corpus.text_file(tmp_path / "d.csv", "Email,#,%\na@example.com,1,2\n")
    with open_table(path) as table:
        assert table.headers == ["Email", "#", "%"]


def test_over_max_bytes_refused_before_reading(tmp_path):
    path = corpus.text_file(tmp_path / "big.csv", "Email\n" + "a@example.com\n" * 100_000)
    assert refused(path, max_bytes=1024 * 1024) == (
        "The file is 1.3 MB; the limit is 1.0 MB. Split it into smaller files and import them one at a time.")


def test_over_max_rows_refused_while_streaming(tmp_path):
    path = corpus.text_file(tmp_path / "rows.csv", "Email\n" + "a@example.com\n" * 11)
    table = open_table(path, max_rows=10)
    with pytest.raises(FileRefused) as exc:
        count_rows(table)
    assert exc.value.message == ("The file has more than 10 customer rows, the most one import takes. "
                                 "Split it into smaller files and import them one at a time.")
    assert count_rows(open_table(path, max_rows=11)) == 11


# --- not a spreadsheet -----------------------------------------------------------------

def test_html_saved_as_xls_is_refused(tmp_path):
    html = "<html><head><meta charset='utf-8'></head><body><table><tr><td>Email</td></tr></table></body></html>"
    message = refused(corpus.text_file(tmp_path / "export.xls", "\n  " + html))
    assert message.startswith("This file is a web page (HTML) saved with a spreadsheet name")


def test_csv_starting_with_a_bracket_is_still_a_csv(tmp_path):
    _, rows = read(corpus.text_file(tmp_path / "b.csv", "<Email>,Name\na@example.com,Ann\n"))
    assert rows == [(2, ["a@example.com", "Ann"])]


def test_spreadsheetml_2003_is_refused(tmp_path):
    xml = ('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
           '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"></Workbook>')
    assert "Excel 2003 XML spreadsheet" in refused(corpus.text_file(tmp_path / "x.xls", xml))


@pytest.mark.parametrize("data, expected", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "This is a PDF document, not a spreadsheet."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is an image, not a spreadsheet."),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "This is an image, not a spreadsheet."),
    (b"\x1f\x8b\x08\x00" + bytes(100), "This is a compressed archive"),
    (bytes(range(256)) * 8, "This file is not a spreadsheet or a CSV file."),
])
def test_other_formats_are_named(tmp_path, data, expected):
    assert refused(corpus.write(tmp_path / "customers.csv", data)).startswith(expected)


def test_docx_is_named(tmp_path):
    path = corpus.plain_zip(tmp_path / "c.xlsx", {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"})
    assert refused(path).startswith("This is a Word document, not a spreadsheet.")


def test_zip_of_csvs_is_named(tmp_path):
    path = corpus.plain_zip(tmp_path / "c.zip", {"export/customers.csv": "Email\n", "export/orders.csv": "Id\n"})
    assert refused(path) == ("This is a zip archive holding customers.csv, orders.csv. "
                             "Unzip it and upload the file itself.")


NUMBERS_PACKAGE = {"Index/Document.iwa": "iwa", "Metadata/Properties.plist": "plist", "preview.jpg": "jpg"}


@pytest.mark.parametrize("members", [
    NUMBERS_PACKAGE,
    {f"Customers.numbers/{name}": data for name, data in NUMBERS_PACKAGE.items()},  # the folder, zipped by a browser
    {"Customers.numbers": "a Numbers file zipped again"},
], ids=["numbers-file", "numbers-folder-zipped-by-a-browser", "numbers-file-zipped"])
def test_a_numbers_file_is_named_with_how_to_export_it(tmp_path, members):
    assert refused(corpus.plain_zip(tmp_path / "Customers.zip", members)) == (
        "This is an Apple Numbers file. Export it as CSV or Excel (File > Export To) and upload that file.")


def test_word_97_document_is_named(tmp_path):
    path = corpus.ole2_file(tmp_path / "c.xls", {"WordDocument": b"w", "1Table": b"t"})
    assert refused(path).startswith("This is a Word document, not a spreadsheet.")


def test_password_protected_workbook(tmp_path):
    # Excel saves an encrypted .xlsx as an OLE2 file with EncryptionInfo + EncryptedPackage streams.
    path = corpus.ole2_file(tmp_path / "locked.xlsx",
                            {"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x01" * 5000})
    assert refused(path) == ("This workbook is password-protected. Remove the password in Excel "
                             "(File > Info > Protect Workbook) and upload it again.")


# --- XLSX --------------------------------------------------------------------------------

TYPED = [
    ["Email", "Subscribed", "Birthday", "Points", "Balance", "Zip", "Phone"],
    ["ana@example.com", True, dt.datetime(1990, 5, 17), 120, 12.5, "02134", 4155550123],
    ["bob@example.com", False, dt.datetime(1985, 1, 2), 0, 0.25, "90210", 4155550124.0],
]


def test_xlsx_typed_cells(tmp_path):
    table, rows = read(corpus.xlsx_file(tmp_path / "t.xlsx", {"Customers": TYPED}))
    assert (table.kind, table.sheet, table.sheet_names) == ("xlsx", "Customers", ["Customers"])
    assert table.headers == TYPED[0]
    assert rows == [(2, TYPED[1]), (3, TYPED[2])]
    assert type(rows[0][1][3]) is int and type(rows[0][1][6]) is int
    assert rows[1][1][5] == "90210" and rows[0][1][5] == "02134"
    table.close()


def test_xlsx_1904_epoch(tmp_path):
    path = corpus.xlsx_file(tmp_path / "mac.xlsx", {"S": [["Email", "Birthday"], ["a@example.com", dt.datetime(1990, 5, 17)]]},
                            epoch_1904=True)
    with zipfile.ZipFile(path) as zf:
        assert b"date1904" in zf.read("xl/workbook.xml")
        # 1990-05-17 is serial 33010 in the 1900 system and 31548 in the 1904 one.
        assert b"<v>31548</v>" in zf.read("xl/worksheets/sheet1.xml")
    _, rows = read(path)
    assert rows == [(2, ["a@example.com", dt.datetime(1990, 5, 17)])]


def test_xlsx_with_understated_dimension_keeps_all_rows(tmp_path):
    src = corpus.xlsx_file(tmp_path / "src.xlsx", {"S": [["Email", "Name", "Phone"]] + corpus.persona_rows(5)})
    path = corpus.understate_dimension(src, tmp_path / "dim.xlsx")
    with zipfile.ZipFile(path) as zf:
        assert b'<dimension ref="B2:B2"/>' in zf.read("xl/worksheets/sheet1.xml")
    table, rows = read(path)
    assert (table.header_line, table.headers) == (1, ["Email", "Name", "Phone"])
    assert len(rows) == 5
    assert rows[4] == (6, ["user4@example.com", "First4", "(415) 555-0004"])


def test_xlsx_title_rows_and_gaps(tmp_path):
    sheet = [["Loyalty members"], [], ["Email", "Name", "Points"], ["a@example.com", "Ann", 5], [],
             [None, "  ", None], ["b@example.com", "'=1+1", 7]]
    table, rows = read(corpus.xlsx_file(tmp_path / "g.xlsx", {"S": sheet}))
    assert table.header_line == 3
    assert rows == [(4, ["a@example.com", "Ann", 5]), (7, ["b@example.com", "=1+1", 7])]


def test_xlsx_several_sheets_refused_then_chosen(tmp_path):
    path = corpus.xlsx_file(tmp_path / "m.xlsx", {
        "Customers": [["Email"], ["a@example.com"]], "Empty": [],
        "Archive": [["Email"], ["old@example.com"]], "Lists": [["Tier"], ["Gold"]]}, hidden=("Lists",))
    with pytest.raises(FileRefused) as exc:
        open_table(path)
    assert exc.value.message == ("This workbook has several sheets with data: Customers, Archive. "
                                 "Choose the sheet to import.")
    assert exc.value.sheets == ["Customers", "Archive"]  # for the wizard's sheet picker
    table, rows = read(path, sheet="Archive")
    assert (table.sheet, table.sheet_names, rows) == ("Archive", ["Customers", "Archive"], [(2, ["old@example.com"])])
    assert read(path, sheet=" archive")[0].sheet == "Archive"
    assert read(path, sheet="Lists")[1] == [(2, ["Gold"])]  # hidden, but asked for by name
    assert refused(path, sheet="Clients") == 'This workbook has no sheet named "Clients". Sheets with data: Customers, Archive.'
    assert refused(path, sheet="Empty") == 'The sheet "Empty" is empty: it has no rows to import.'


def test_xlsx_one_sheet_with_data_among_empty_ones_is_used(tmp_path):
    path = corpus.xlsx_file(tmp_path / "one.xlsx", {"Sheet1": [], "Data": [["Email"], ["a@example.com"]], "Sheet3": []})
    with open_table(path) as table:
        assert (table.sheet, table.sheet_names) == ("Data", ["Data"])


def test_xlsx_all_sheets_empty(tmp_path):
    path = corpus.xlsx_file(tmp_path / "e.xlsx", {"Sheet1": [], "Sheet2": [[None, "   "]]})
    assert refused(path) == "The workbook is empty: none of its sheets has rows to import."


def test_xlsx_header_only(tmp_path):
    path = corpus.xlsx_file(tmp_path / "h.xlsx", {"S": [["Email", "Name"]]})
    assert refused(path) == "The file has a header row but no customer rows."


def test_xlsx_named_xls_is_read(tmp_path):
    path = corpus.xlsx_file(tmp_path / "really.xls", {"S": [["Email"], ["a@example.com"]]})
    table, rows = read(path)
    assert (table.kind, rows) == ("xlsx", [(2, ["a@example.com"])])


def test_truncated_xlsx_is_refused(tmp_path):
    src = corpus.xlsx_file(tmp_path / "ok.xlsx", {"S": [["Email"], ["a@example.com"]]})
    path = corpus.write(tmp_path / "cut.xlsx", src.read_bytes()[:1500])
    assert refused(path).startswith("This workbook looks damaged and cannot be read.")


def test_xlsx_with_broken_sheet_xml_is_refused(tmp_path):
    src = corpus.xlsx_file(tmp_path / "ok.xlsx", {"S": [["Email"], ["a@example.com"]]})
    path = corpus.rewrite_zip(src, tmp_path / "bad.xlsx", {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row"})
    assert refused(path).startswith("This workbook looks damaged and cannot be read.")


def test_zip_bomb_refused_fast(tmp_path):
    path = corpus.zip_bomb(tmp_path / "bomb.xlsx")
    started = time.monotonic()
    assert refused(path).startswith("This file looks damaged or is not a real spreadsheet")
    assert time.monotonic() - started < 1


def test_zip_stating_a_huge_unpacked_size_refused(tmp_path):
    message = refused(corpus.lying_zip(tmp_path / "lie.xlsx"))
    assert message.startswith("This file looks damaged or is not a real spreadsheet")


def test_xml_entity_bomb_refused(tmp_path):
    src = corpus.xlsx_file(tmp_path / "ok.xlsx", {"S": [["Email", "Name"], ["a@example.com", "Ann"]]})
    path = corpus.entity_bomb(src, tmp_path / "lol.xlsx")
    started = time.monotonic()
    assert refused(path).startswith("This workbook looks damaged and cannot be read.")
    assert time.monotonic() - started < 5


# --- XLS ---------------------------------------------------------------------------------

XLS_ROWS = [
    ["Email", "Subscribed", "Birthday", "Points", "Zip", "Phone"],
    ["ana@example.com", True, dt.datetime(1990, 5, 17), 120, "02134", 4155550123],
    ["bob@example.com", False, dt.datetime(1985, 1, 2), 0.5, "90210", None],
]


@pytest.mark.parametrize("dates_1904", [False, True])
def test_xls_typed_cells(tmp_path, dates_1904):
    path = corpus.xls_file(tmp_path / "t.xls", {"Customers": XLS_ROWS}, dates_1904=dates_1904)
    table, rows = read(path)
    assert (table.kind, table.sheet, table.headers) == ("xls", "Customers", XLS_ROWS[0])
    assert rows == [
        (2, ["ana@example.com", True, dt.datetime(1990, 5, 17), 120.0, "02134", 4155550123.0]),
        (3, ["bob@example.com", False, dt.datetime(1985, 1, 2), 0.5, "90210", None]),
    ]
    assert type(rows[0][1][1]) is bool
    table.close()


def test_xls_several_sheets_and_title_rows(tmp_path):
    path = corpus.xls_file(tmp_path / "m.xls", {
        "Customers": [["Export May 2024"], [], ["Email", "Name"], ["a@example.com", "'+1"]],
        "Archive": [["Email"], ["old@example.com"]], "Blank": []})
    assert refused(path) == ("This workbook has several sheets with data: Customers, Archive. "
                             "Choose the sheet to import.")
    table, rows = read(path, sheet="Customers")
    assert (table.header_line, table.headers, rows) == (3, ["Email", "Name"], [(4, ["a@example.com", "+1"])])


@pytest.mark.parametrize("version", [2, 3, 4])
def test_old_biff_xls_of_legacy_tools_is_read(tmp_path, version):
    rows = [["Loyalty export"], [], ["Email", "Name", "Points"], ["ana@example.com", "Zoé Peña", 120],
            ["bob@example.com", "Bob", 7.5]]
    table, read_rows = read(corpus.biff_file(tmp_path / "pos.xls", version, rows))
    assert (table.kind, table.sheet_names, table.headers, table.header_line) == (
        "xls", ["Sheet 1"], ["Email", "Name", "Points"], 3)
    assert read_rows == [(4, ["ana@example.com", "Zoé Peña", 120.0]), (5, ["bob@example.com", "Bob", 7.5])]


def test_password_protected_xls(tmp_path):
    src = corpus.xls_file(tmp_path / "ok.xls", {"S": XLS_ROWS})
    path = corpus.encrypted_xls(src, tmp_path / "locked.xls")
    assert refused(path) == ("This workbook is password-protected. Remove the password in Excel "
                             "(File > Info > Protect Workbook) and upload it again.")


def test_csv_named_xls_is_read(tmp_path):
    table, rows = read(corpus.text_file(tmp_path / "export.xls", "Email;Name\na@example.com;Ann\n"))
    assert (table.kind, rows) == ("csv", [(2, ["a@example.com", "Ann"])])


def test_truncated_xls_is_refused(tmp_path):
    src = corpus.xls_file(tmp_path / "ok.xls", {"S": XLS_ROWS})
    path = corpus.write(tmp_path / "cut.xls", src.read_bytes()[:2000])
    assert refused(path).startswith("This workbook looks damaged and cannot be read.")


# --- streaming -----------------------------------------------------------------------------

def test_csv_streams_in_constant_memory(tmp_path):
    path = corpus.big_csv(tmp_path / "big.csv", 200_000)
    assert path.stat().st_size > 14_000_000
    tracemalloc.start()
    try:
        table = open_table(path)
        assert count_rows(table) == 200_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak
