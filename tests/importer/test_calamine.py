"""Workbooks read through calamine give exactly what openpyxl (xlsx) and xlrd (xls) give.

calamine reads a sheet whole while it fits a memory budget; a larger sheet is streamed by openpyxl. Either
way a workbook must give the same rows and cells, so a sheet's size never changes what is imported.
"""
import datetime as dt
import logging
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.importer import corpus
from webapp.importer import calamine_reader, header_row, readers
from webapp.importer.readers import open_table


def _blank_alike(cell):
    """A whitespace-only text cell is blank to the import (calamine reads some as empty)."""
    return None if isinstance(cell, str) and not cell.strip() else cell


def _read(path, **kwargs):
    try:
        with open_table(path, **kwargs) as table:
            rows = [(line, [_blank_alike(c) for c in cells]) for line, cells in table.rows()]
            return table.kind, table.sheet, table.headers, table.header_line, rows
    except readers.FileRefused as refused:
        return refused.message


@pytest.fixture
def without_calamine(monkeypatch):
    """Read workbooks the old way: openpyxl for every .xlsx, xlrd for every .xls."""

    def read(path, **kwargs):
        with monkeypatch.context() as patched:
            patched.setattr(calamine_reader, "BUDGET", -1)
            patched.setattr(calamine_reader, "open_workbook", _refuse_as_damaged)
            return _read(path, **kwargs)
    return read


def _refuse_as_damaged(*args, **kwargs):
    raise readers.FileRefused(readers.excel_reader.DAMAGED)


def test_the_budget_is_judged_from_the_declared_sizes_of_sheets_and_shared_strings():
    small = {"xl/worksheets/sheet1.xml": 10, "xl/sharedStrings.xml": 10, "xl/styles.xml": 10 ** 12}
    assert calamine_reader.fits(small)
    assert not calamine_reader.fits({"xl/worksheets/sheet1.xml": calamine_reader.BUDGET,
                                     "xl/sharedStrings.xml": 1})


cell = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", " ", "=1+1", "'=1", "a@example.com", "02134", "TRUE"]),
    st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(), st.dates(dt.date(1900, 3, 1), dt.date(2100, 1, 1)),
    st.datetimes(dt.datetime(1900, 3, 1), dt.datetime(2100, 1, 1)).map(lambda d: d.replace(microsecond=0)))
sheet = st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=8)


def _clean(rows):
    # openpyxl cannot write control characters other than tab, line feed and carriage return.
    return [[c if not isinstance(c, str) else "".join(ch for ch in c if ch >= " " or ch in "\t\n\r")
             for c in row] for row in rows]


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")), deadline=None,
          derandomize=not os.environ.get("PROPERTY_RANDOM"), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=sheet, epoch_1904=st.booleans())
def test_xlsx_cells_are_what_openpyxl_reads(tmp_path, without_calamine, rows, epoch_1904):
    if epoch_1904:  # the Mac 1904 date system has no day before 2 January 1904
        rows = [[c for c in row if not isinstance(c, dt.date) or (c.year, c.month, c.day) > (1904, 1, 2)]
                for row in rows]
    path = corpus.xlsx_file(tmp_path / "w.xlsx", {"Customers": [["Email", "Name", "When", "N", "X"], *_clean(rows)]},
                            epoch_1904=epoch_1904)
    assert _read(path) == without_calamine(path)


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")), deadline=None,
          derandomize=not os.environ.get("PROPERTY_RANDOM"), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=sheet, dates_1904=st.booleans())
def test_xls_cells_are_what_xlrd_reads(tmp_path, without_calamine, rows, dates_1904):
    if dates_1904:  # the Mac 1904 date system has no day before 2 January 1904
        rows = [[c for c in row if not isinstance(c, dt.date) or (c.year, c.month, c.day) > (1904, 1, 2)]
                for row in rows]
    rows = [[c for c in row if not isinstance(c, int) or isinstance(c, bool) or abs(c) < 2 ** 31] for row in rows]
    path = corpus.xls_file(tmp_path / "w.xls", {"Customers": [["Email", "Name", "When", "N", "X"], *_clean(rows)]},
                           dates_1904=dates_1904)
    assert _read(path) == without_calamine(path)


def test_sheets_hidden_empty_or_several_are_told_apart_alike(tmp_path, without_calamine):
    sheets = {"Lookup": [["Code"], ["A"]], "Customers": [["Email"], ["a@example.com"]], "Empty": []}
    path = corpus.xlsx_file(tmp_path / "s.xlsx", sheets, hidden=("Lookup",))
    assert _read(path) == without_calamine(path)
    several = corpus.xlsx_file(tmp_path / "m.xlsx", {"A": [["Email"], ["a@example.com"]], "B": [["Email"], ["b@x.io"]]})
    assert _read(several) == without_calamine(several) == (
        "This workbook has several sheets with data: A, B. Choose the sheet to import.")
    assert _read(several, sheet="B") == without_calamine(several, sheet="B")


def test_a_sheet_starting_below_and_right_of_a1_keeps_its_row_and_column_numbers(tmp_path, without_calamine):
    path = corpus.xlsx_file(tmp_path / "o.xlsx", {"Customers": [[], [], [None, None, "Email", "Name"],
                                                                [None, None, "a@example.com", "Ann"]]})
    kind, _, headers, header_line, rows = _read(path)
    assert (headers[-2:], header_line, rows[0][0]) == (["Email", "Name"], 3, 4)
    assert _read(path) == without_calamine(path)


def test_excel_escapes_are_decoded_as_excel_shows_them_by_either_reader(tmp_path, without_calamine):
    # Excel writes a Windows line break in a cell as _x000D_ and a literal "_x000D_" as _x005F_x000D_.
    rows = [["Email", "Address", "Note"], ["a@example.com", "1 Main St_x000D_\nApt 2", "_x005F_x000D_ is text"],
            ["b@example.com", "Tab_x0009_here", "lower _x000d_ too"]]
    path = corpus.hand_xlsx(tmp_path / "escapes.xlsx", rows)
    expected = ("xlsx", "Customers", ["Email", "Address", "Note"], 1,
                [(2, ["a@example.com", "1 Main St\r\nApt 2", "_x000D_ is text"]),
                 (3, ["b@example.com", "Tab\there", "lower \r too"])])
    assert _read(path) == without_calamine(path) == expected


def _bad_style_index(tmp_path):
    """A workbook whose named style points at a cell format that is not there (openpyxl prints about it)."""
    path = corpus.xlsx_file(tmp_path / "w.xlsx", {"Customers": [["Email", "Name"], ["a@example.com", "Ann"]]})
    return corpus.rewrite_zip(path, tmp_path / "styles.xlsx", {"xl/styles.xml": lambda xml: re.sub(
        rb"<cellStyleXfs.*?</cellStyleXfs>", b'<cellStyleXfs count="0"/>', xml)})


def test_what_a_library_prints_about_a_file_goes_to_the_debug_log_not_stdout(tmp_path, without_calamine, capsys,
                                                                                caplog):
    path = _bad_style_index(tmp_path)
    caplog.set_level(logging.DEBUG, logger="webapp.importer.libraries")
    assert _read(path)[2:4] == (["Email", "Name"], 1)  # calamine reads it
    assert without_calamine(path) == readers.excel_reader.DAMAGED  # openpyxl cannot, and prints why
    print("our own output")
    assert capsys.readouterr().out == "our own output\n"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("DEBUG", "0 is out of range")]


def test_an_odd_xls_warns_xlrd_into_the_debug_log(tmp_path, capsys, caplog):
    path = corpus.xls_file(tmp_path / "w.xls", {"Customers": [["Email"], ["a@example.com"]]})
    path.write_bytes(path.read_bytes() + b"\0" * 100)  # not a whole number of sectors
    caplog.set_level(logging.DEBUG, logger="webapp.importer.libraries")
    assert _read(path)[2:] == (["Email"], 1, [(2, ["a@example.com"])])
    assert capsys.readouterr().out == ""
    assert any("file size" in r.getMessage() for r in caplog.records)


# --- OpenDocument (LibreOffice's own format) ---------------------------------------------------------


def test_an_ods_is_read_with_typed_cells_title_rows_and_its_one_sheet_with_data(tmp_path):
    sheets = {"Lookup": [["Code"], ["A"]], "Empty": [],
              "Customers": [["Customer list"], [], ["Email", "Name", "Points", "Joined", "VIP"],
                            ["a@example.com", "Zoé", 12, dt.date(2024, 1, 5), True], [None, None],
                            ["b@example.com", "Bob", 7.5, None, False]]}
    path = corpus.ods_file(tmp_path / "c.ods", sheets, hidden=("Lookup",))
    assert _read(path) == ("ods", "Customers", ["Email", "Name", "Points", "Joined", "VIP"], 3,
                           [(4, ["a@example.com", "Zoé", 12, dt.datetime(2024, 1, 5), True]),
                            (6, ["b@example.com", "Bob", 7.5, None, False])])


def test_an_ods_with_several_sheets_asks_which_and_reads_the_one_chosen(tmp_path):
    path = corpus.ods_file(tmp_path / "m.ods", {"Stores": [["Email"], ["a@example.com"]],
                                                "Online": [["Email"], ["b@example.com"]]})
    assert _read(path) == "This workbook has several sheets with data: Stores, Online. Choose the sheet to import."
    assert _read(path, sheet="online")[1:] == ("Online", ["Email"], 1, [(2, ["b@example.com"])])


def test_an_ods_without_a_header_row_says_so(tmp_path):
    assert _read(corpus.ods_file(tmp_path / "n.ods", {"Sheet1": [[1, 2], [3, 4]]})) == header_row.NO_HEADER


def test_an_ods_over_the_memory_budget_is_refused_with_what_to_save_it_as(tmp_path, monkeypatch):
    path = corpus.ods_file(tmp_path / "big.ods", {"Sheet1": [["Email"], ["a@example.com"]]})
    monkeypatch.setattr(calamine_reader, "BUDGET", 10)
    assert _read(path) == ("This OpenDocument spreadsheet is too large to read directly. Save it from LibreOffice "
                           "as .xlsx (File > Save As, Excel 2007-365) or CSV, and upload that file.")


def test_an_opendocument_text_file_is_named_not_read(tmp_path):
    path = corpus.plain_zip(tmp_path / "letter.ods", {"mimetype": "application/vnd.oasis.opendocument.text",
                                                      "content.xml": "<office:document-content/>"})
    assert _read(path) == ("This is an OpenDocument file (LibreOffice/OpenOffice) but not a spreadsheet. "
                           "Export the customer list as CSV or Excel and upload that file.")


# --- workbooks Excel saves in other ways ----------------------------------------------------------------

ROWS = [["Email", "Name"], ["a@example.com", "Ann"]]
READ = ("xlsx", "Customers", ["Email", "Name"], 1, [(2, ["a@example.com", "Ann"])])


def test_a_strict_open_xml_workbook_is_read(tmp_path):
    assert _read(corpus.hand_xlsx(tmp_path / "strict.xlsx", ROWS, strict=True)) == READ


def test_a_strict_workbook_over_the_memory_budget_says_how_to_save_it(tmp_path, without_calamine):
    path = corpus.hand_xlsx(tmp_path / "strict.xlsx", ROWS, strict=True)
    assert without_calamine(path) == readers.STRICT_TOO_LARGE


@pytest.mark.parametrize("workbook", ["book/Workbook.xml", "xl/workbook2.xml", "Excel/data/main.xml"])
def test_a_workbook_at_an_unusual_path_is_found_through_its_relationships(tmp_path, without_calamine, workbook):
    path = corpus.hand_xlsx(tmp_path / "odd.xlsx", ROWS, workbook=workbook)
    assert _read(path) == without_calamine(path) == READ
