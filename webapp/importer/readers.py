"""Open an uploaded CSV/XLSX/XLS file as a Table: its header row plus a re-playable row stream."""

import io
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import dropwhile

from xlrd import compdoc

from webapp.importer import calamine_reader, csv_reader, excel_reader
from webapp.importer.errors import FileRefused
from webapp.importer.header_row import (
    EMPTY,
    blank_cell,
    find_header,
    first_record,
    is_blank_row,
    shifted_row,
    used_cells,
)
from webapp.importer.library_output import LogFile, quiet

SAMPLE_SCAN = 1000  # sample() reads at most this many data rows

WEB_PAGE = ("This file is a web page (HTML) saved with a spreadsheet name, not a real spreadsheet. "
            "Open it in Excel, save it as .xlsx (Excel Workbook) or CSV, and upload that file.")
NOT_A_SHEET = csv_reader.NOT_A_SHEET
EXPORT_HINT = "Export the customer list as CSV or Excel and upload that file."
NUMBERS = "This is an Apple Numbers file. Export it as CSV or Excel (File > Export To) and upload that file."
STRICT_TOO_LARGE = (f"This workbook is saved as Strict Open XML, which we read only up to "
                    f"{calamine_reader.BUDGET // 1024 ** 2} MB of unpacked sheets. Open it in Excel, save it as "
                    ".xlsx (Excel Workbook, not Strict), and upload that file.")

# Leading bytes of formats people upload by mistake.
SIGNATURES = (
    (b"%PDF", f"This is a PDF document, not a spreadsheet. {EXPORT_HINT}"),
    (b"\x89PNG", f"This is an image, not a spreadsheet. {EXPORT_HINT}"),
    (b"\xff\xd8\xff", f"This is an image, not a spreadsheet. {EXPORT_HINT}"),
    (b"GIF8", f"This is an image, not a spreadsheet. {EXPORT_HINT}"),
    (b"II*\x00", f"This is an image, not a spreadsheet. {EXPORT_HINT}"),
    (b"MM\x00*", f"This is an image, not a spreadsheet. {EXPORT_HINT}"),
    (b"\x1f\x8b", "This is a compressed archive, not a spreadsheet. Extract the CSV or Excel file from it and upload that."),
    (b"Rar!", "This is a compressed archive, not a spreadsheet. Extract the CSV or Excel file from it and upload that."),
    (b"7z\xbc\xaf", "This is a compressed archive, not a spreadsheet. Extract the CSV or Excel file from it and upload that."),
    (b"{\\rtf", f"This is a Word (RTF) document, not a spreadsheet. {EXPORT_HINT}"),
)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The BOF record opening a bare BIFF2, BIFF3, BIFF4 or BIFF5 stream (old tools' .xls, not in an OLE2 file).
BIFF_BOF = (b"\x09\x00", b"\x09\x02", b"\x09\x04", b"\x09\x08")


@dataclass
class Table:
    """An opened file: the chosen sheet, its header row, and a row stream that can be replayed."""

    kind: str  # "csv" | "xlsx" | "xls" | "ods"
    sheet_names: list[str]  # non-empty sheets (empty list for csv)
    sheet: str | None
    headers: list[str]
    header_line: int  # 1-based, as a spreadsheet shows it
    _records: Callable[[], Iterator[tuple[int, list]]] = field(default=None, repr=False, compare=False)
    _max_rows: int = field(default=2_000_000, repr=False, compare=False)
    _closer: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _header_cells: int = field(default=0, repr=False, compare=False)  # the header row's cells, blank ones too
    _csv: csv_reader.CsvSource | None = field(default=None, repr=False, compare=False)
    _sheet: calamine_reader.Sheet | None = field(default=None, repr=False, compare=False)  # batches read it by column

    def rows(self, records: Iterator[tuple[int, list]] | None = None, counted: int = 0
             ) -> Iterator[tuple[int, list]]:
        """Stream (line number, cells padded or cut to the headers) for each non-blank data row.

        records, counted: the file's records from some point on and the data rows before it (where the
        column reader handed over).
        """
        width, limit, header_line = len(self.headers), self._max_rows, self.header_line
        # A CSV row wider than its header row has shifted (a separator inside a value); a sheet's cells cannot.
        shifts = self._header_cells if self.kind == "csv" else None
        records = dropwhile(lambda rec: rec[0] <= header_line, records if records is not None else self._records())
        count = counted
        for line, cells in records:
            if len(cells) != width:
                if len(cells) < width:
                    cells = cells + [None] * (width - len(cells))
                elif shifts is not None and len(cells) > shifts and (used := used_cells(cells, shifts)) > shifts:
                    cells = Shifted(cells[:width], cells[:used], shifted_row(line, used, shifts))
                else:
                    cells = cells[:width]
                    if is_blank_row(cells):
                        continue  # its only values sat in columns without a header
            count += 1
            if count > limit:
                raise FileRefused(too_many_rows(limit))
            yield line, cells

    def batches(self, size: int):
        """The data rows as column batches of up to size rows: what rows() yields, column by column."""
        from webapp.importer.batches import table_batches  # it builds on this module

        return table_batches(self, size)

    def sample(self, n: int = 3, scan: int = SAMPLE_SCAN) -> dict[str, list]:
        """First n non-blank values per header, from at most `scan` data rows."""
        found = {h: [] for h in self.headers}
        columns = list(found.values())
        for i, (_, cells) in enumerate(self.rows()):
            if cells.__class__ is Shifted:
                continue  # its values are in the wrong columns
            for values, cell in zip(columns, cells):
                if len(values) < n and not blank_cell(cell):
                    values.append(cell)
            if i + 1 >= scan or all(len(v) >= n for v in columns):
                break
        return found

    def close(self) -> None:
        """Release the workbook (openpyxl read-only keeps its zip open)."""
        if self._closer:
            self._closer()
            self._closer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Shifted(list):
    """A CSV row's cells cut to the header row, from a row with values past it: rejected, with all its cells shown."""

    def __init__(self, cells: list, every: list, reason: str):
        super().__init__(cells)
        self.every, self.reason = every, reason


def too_many_rows(limit: int) -> str:
    """The refusal of a file with more data rows than one import takes."""
    return (f"The file has more than {limit:,} customer rows, the most one import takes. "
            "Split it into smaller files and import them one at a time.")


def count_rows(table: Table, deadline: float | None = None) -> int | None:
    """Count the data rows by streaming them once; None when time.monotonic() passes the deadline first."""
    if deadline is None:
        return sum(1 for _ in table.rows())
    count = 0
    for count, _ in enumerate(table.rows(), 1):
        if count % 1024 == 0 and time.monotonic() > deadline:
            return None
    return count


def sheet_bytes(source) -> int:
    """What reading a workbook's sheets unpacks: its sheets' and shared strings' declared sizes (a zip), the whole
    file (an .xls); 0 for a text file, whose first rows are read without reading the rest."""
    size = _size(source)
    with _open_binary(source) as f:
        head = f.read(8)
        if head.startswith(ZIP_MAGIC):
            members = excel_reader.zip_members(f)  # a damaged zip or a zip bomb is refused here, unread
            return sum(size for name, size in members.items()
                       if "worksheets/" in name or name.endswith("sharedStrings.xml") or name == "content.xml")
    return size if head.startswith(OLE2_MAGIC) or head[:2] in BIFF_BOF else 0


def open_table(source, *, sheet: str | None = None, header_line: int | None = None,
               max_rows: int = 2_000_000, max_bytes: int = 512 * 1024 * 1024) -> Table:
    """Open a path or seekable binary file, detect its type by content, and find its header row."""
    opener = partial(_open_binary, source)
    size = _size(source)
    if size == 0:
        raise FileRefused(EMPTY)
    if size > max_bytes:
        raise FileRefused(
            f"The file is {_mb(size)}; the limit is {_mb(max_bytes)}. "
            "Split it into smaller files and import them one at a time.")
    with opener() as f:
        head = f.read(8192)
    with quiet():  # what the libraries print about the file is logged, not printed
        if head.startswith(ZIP_MAGIC):
            table = _open_xlsx(source, opener, sheet)
        elif head.startswith(OLE2_MAGIC):
            table = _open_xls(opener, sheet)
        elif head[:2] in BIFF_BOF and 4 <= int.from_bytes(head[2:4], "little") <= 20:
            table = _open_old_xls(opener, sheet)
        else:
            table = _open_csv(opener, head)
        table._max_rows = max_rows
        try:
            find_header(table, header_line)
        except BaseException:
            table.close()
            raise
    return table


@contextmanager
def _open_binary(source):
    """Yield a binary file at byte 0; a caller's file object is rewound, not closed."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
    else:
        source.seek(0)
        yield source


def _size(source) -> int:
    """Size in bytes, without reading the file."""
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    return source.seek(0, io.SEEK_END)


def _mb(size: int) -> str:
    """A size the way people say it: 143 MB, 0.4 MB."""
    mb = size / 1024 / 1024
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


# --- type detection ------------------------------------------------------------------


def _open_csv(opener, head: bytes) -> Table:
    """Detect a text file's encoding and delimiter; refuse web pages and binary files."""
    for magic, message in SIGNATURES:
        if head.startswith(magic):
            raise FileRefused(message)
    encoding, strip_nul = csv_reader.detect_encoding(opener, head)
    with opener() as f:
        text = csv_reader.text_stream(f, encoding, strip_nul)
        try:
            sample = text.read(csv_reader.SNIFF_CHARS)
        except UnicodeDecodeError:
            raise FileRefused(NOT_A_SHEET) from None
        finally:
            text.detach()
    _refuse_markup(sample)
    delimiter, width = csv_reader.sniff_delimiter(sample)
    source = csv_reader.CsvSource(opener, encoding, strip_nul, delimiter, width)
    return Table("csv", [], None, [], 0, source.records, _csv=source)


def _refuse_markup(sample: str) -> None:
    """Refuse HTML and XML files that Excel and web exports save under a .xls name."""
    start = sample.lstrip("\ufeff \t\r\n")[:2048].lower()
    if start.startswith(("<!doctype html", "<html", "<table", "<head", "<meta", "mime-version:")):
        raise FileRefused(WEB_PAGE)
    if not start.startswith("<"):
        return
    if "urn:schemas-microsoft-com:office:spreadsheet" in start:
        raise FileRefused(
            "This file is an Excel 2003 XML spreadsheet, a format we cannot read. Open it in "
            "Excel, save it as .xlsx (Excel Workbook), and upload that file.")
    if "<html" in start or "<table" in start:
        raise FileRefused(WEB_PAGE)
    if start.startswith("<?xml"):
        raise FileRefused(f"This file is XML data, not a spreadsheet. {EXPORT_HINT}")


def _open_xlsx(source, opener, sheet: str | None) -> Table:
    """Open a zip that is an Excel workbook; say what other zips are."""
    with opener() as f:
        members = excel_reader.zip_members(f)
    if _is_ods(opener, members):
        return _open_ods(opener, members, sheet)
    with opener() as f:
        part, strict = excel_reader.workbook_part(f, members)
    if part is None:
        raise FileRefused(_zip_kind(set(members)))
    if calamine_reader.fits(members):
        with opener() as f:
            excel_reader.check_members(f)
        try:
            with opener() as f:
                sheets = calamine_reader.open_workbook(f, "xlsx")
            (name, names), chosen = _choose_sheet(sheets, calamine_reader.records, calamine_reader.hidden, sheet)
            return Table("xlsx", names, name, [], 0, chosen.records, _sheet=chosen)
        except FileRefused as refused:
            # calamine looks for a workbook's relationships by the usual name only; openpyxl follows the rels.
            if refused.message != excel_reader.DAMAGED or strict or part.endswith("/workbook.xml"):
                raise
    elif strict:
        raise FileRefused(STRICT_TOO_LARGE)
    # openpyxl reads the zip lazily, so the file stays open with the table. A file object, not
    # the path: openpyxl refuses paths by their extension, and an .xlsx saved as .xls is fine here.
    own = isinstance(source, (str, os.PathLike))
    f = open(source, "rb") if own else source
    f.seek(0)
    closer = partial(_close_workbook, None, f if own else None)
    try:
        wb = excel_reader.open_xlsx(f)
        closer = partial(_close_workbook, wb, f if own else None)
        sheets = excel_reader.xlsx_sheets(wb)
        (name, names), ws = _choose_sheet(sheets, excel_reader.xlsx_records, excel_reader.xlsx_hidden, sheet)
    except BaseException:
        closer()
        raise
    return Table("xlsx", names, name, [], 0, partial(excel_reader.xlsx_records, ws), _closer=closer)


def _is_ods(opener, members: dict[str, int]) -> bool:
    """An OpenDocument spreadsheet: its mimetype member says so."""
    if "content.xml" not in members or not 0 < members.get("mimetype", 0) < 100:
        return False
    with opener() as f, zipfile.ZipFile(f) as zf:
        return zf.read("mimetype").strip() == ODS_MIMETYPE


def _open_ods(opener, members: dict[str, int], sheet: str | None) -> Table:
    """Open a LibreOffice/OpenOffice spreadsheet through calamine, while its sheets fit the memory budget."""
    if not calamine_reader.fits_ods(members):
        raise FileRefused(
            "This OpenDocument spreadsheet is too large to read directly. Save it from LibreOffice as .xlsx "
            "(File > Save As, Excel 2007-365) or CSV, and upload that file.")
    with opener() as f:
        excel_reader.check_members(f)
    with opener() as f:
        sheets = calamine_reader.open_workbook(f, "ods")
    (name, names), chosen = _choose_sheet(sheets, calamine_reader.records, calamine_reader.hidden, sheet)
    return Table("ods", names, name, [], 0, chosen.records, _sheet=chosen)


def _close_workbook(wb, f) -> None:
    """Close an openpyxl workbook and the file we opened for it."""
    if wb is not None:
        wb.close()
    if f is not None:
        f.close()


def _zip_kind(names: set[str]) -> str:
    """Say what a zip that is not an Excel workbook is."""
    if "xl/workbook.bin" in names:
        return ("This is an Excel binary workbook (.xlsb), a format we cannot read. Open it in Excel, "
                "save it as .xlsx (Excel Workbook), and upload that file.")
    if "content.xml" in names and "mimetype" in names:
        return (f"This is an OpenDocument file (LibreOffice/OpenOffice) but not a spreadsheet. {EXPORT_HINT}")
    if any(n.startswith("word/") for n in names):
        return f"This is a Word document, not a spreadsheet. {EXPORT_HINT}"
    if any(n.startswith("ppt/") for n in names):
        return f"This is a PowerPoint presentation, not a spreadsheet. {EXPORT_HINT}"
    # A Numbers package: its own Index/, a folder "X.numbers/" a browser zipped, or a .numbers file zipped.
    if any(n.startswith("Index/") or ".numbers/" in n.lower() or n.lower().endswith(".numbers") for n in names):
        return NUMBERS
    inside = sorted(n.rsplit("/", 1)[-1] for n in names if n.lower().endswith((".csv", ".xlsx", ".xls", ".txt")))
    if inside:
        listed = ", ".join(inside[:3]) + (", …" if len(inside) > 3 else "")
        return f"This is a zip archive holding {listed}. Unzip it and upload the file itself."
    return "This is a zip archive, not a spreadsheet. Unzip it and upload the CSV or Excel file itself."


def _open_xls(opener, sheet: str | None) -> Table:
    """Open an OLE2 file that is an Excel 97-2003 workbook; say what other OLE2 files are."""
    with opener() as f:
        data = f.read()  # xlrd needs the whole file; max_bytes bounds it
    streams = _ole2_streams(data)
    if "EncryptedPackage" in streams:
        raise FileRefused(excel_reader.PASSWORD)
    if not streams & {"Workbook", "Book"}:
        if "WordDocument" in streams:
            raise FileRefused(f"This is a Word document, not a spreadsheet. {EXPORT_HINT}")
        if "PowerPoint Document" in streams:
            raise FileRefused(f"This is a PowerPoint presentation, not a spreadsheet. {EXPORT_HINT}")
        raise FileRefused(NOT_A_SHEET)
    try:
        sheets = calamine_reader.open_workbook(io.BytesIO(data), "xls")
        (name, names), chosen = _choose_sheet(sheets, calamine_reader.records, calamine_reader.hidden, sheet)
        return Table("xls", names, name, [], 0, chosen.records, _sheet=chosen)
    except FileRefused as refused:
        if refused.message != excel_reader.DAMAGED:
            raise  # several sheets, no such sheet, an empty workbook: calamine read it fine
    # What calamine cannot read (BIFF5 files of old tools, password protection), xlrd may.
    return _xlrd_table(data, sheet)


def _open_old_xls(opener, sheet: str | None) -> Table:
    """Open a bare BIFF2-5 stream: the .xls of old point-of-sale and loyalty tools, which only xlrd reads."""
    with opener() as f:
        data = f.read()  # max_bytes bounds it
    return _xlrd_table(data, sheet)


def _xlrd_table(data: bytes, sheet: str | None) -> Table:
    """A workbook's table through xlrd."""
    book = excel_reader.open_xls(data)
    try:
        sheets = excel_reader.xls_sheets(book)
        records = partial(excel_reader.xls_records, datemode=book.datemode)
        (name, names), xs = _choose_sheet(sheets, records, excel_reader.xls_hidden, sheet)
    except BaseException:
        book.release_resources()
        raise
    return Table("xls", names, name, [], 0, partial(records, xs), _closer=book.release_resources)


def _ole2_streams(data: bytes) -> set[str]:
    """Names of the streams in an OLE2 compound file (Excel 97-2003, encrypted Office files)."""
    try:
        doc = compdoc.CompDoc(data, logfile=LogFile())
    except Exception:  # CompDocError, struct errors on a truncated file
        raise FileRefused(excel_reader.DAMAGED) from None
    return {node.name for node in doc.dirlist}


# --- sheets and header ---------------------------------------------------------------


def _choose_sheet(sheets: dict, records, hidden, wanted: str | None):
    """Return ((sheet name, non-empty sheet names), sheet): the one with data, or the one asked for."""
    filled = [name for name, s in sheets.items() if first_record(records(s)) is not None]
    visible = [name for name in filled if not hidden(sheets[name])]
    # A hidden sheet with data (lookup lists) should not force a choice the user cannot see.
    names = visible or filled
    if wanted is not None:
        match = _match_sheet(list(sheets), wanted)
        if match is None:
            raise FileRefused(f'This workbook has no sheet named "{wanted}". '
                              f"Sheets with data: {', '.join(names) or 'none'}.")
        if match not in filled:
            raise FileRefused(f'The sheet "{match}" is empty: it has no rows to import.')
        return (match, names), sheets[match]
    if not names:
        raise FileRefused("The workbook is empty: none of its sheets has rows to import.")
    if len(names) > 1:
        raise FileRefused(f"This workbook has several sheets with data: {', '.join(names)}. "
                          "Choose the sheet to import.", sheets=names)
    return (names[0], names), sheets[names[0]]


def _match_sheet(names: list[str], wanted: str) -> str | None:
    """The sheet named exactly, else the only one named alike ignoring case and spaces."""
    if wanted in names:
        return wanted
    key = " ".join(wanted.split()).casefold()
    alike = [n for n in names if " ".join(n.split()).casefold() == key]
    return alike[0] if len(alike) == 1 else None
