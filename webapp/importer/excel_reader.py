"""Excel side of the readers: XLSX through openpyxl (read-only, streaming), XLS through xlrd."""

import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator

import xlrd
from defusedxml import ElementTree
from openpyxl.cell.text import Text
from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse
from xlrd.xldate import xldate_as_datetime

from webapp.importer.errors import FileRefused
from webapp.importer.library_output import LogFile, quietly
from webapp.importer.safe_cells import unneutralize

DAMAGED = ("This workbook looks damaged and cannot be read. Open it in Excel, save it again as "
           ".xlsx (Excel Workbook), and upload the new file.")
PASSWORD = ("This workbook is password-protected. Remove the password in Excel "
            "(File > Info > Protect Workbook) and upload it again.")
BOMB = ("This file looks damaged or is not a real spreadsheet: it would unpack to far more data "
        "than any customer list holds. Open it in Excel, save it again as .xlsx, and upload the new file.")

# OOXML writes characters XML cannot hold (a carriage return, control characters) and text that looks like an
# escape as _xHHHH_ (_x005F_ is the underscore). Surrogate halves are never written this way; calamine leaves them.
OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")

MAX_UNZIPPED = 1024 ** 3  # no customer list of 2M rows unpacks to more than this
MAX_RATIO = 200  # real sheet XML compresses 5-30x; zip bombs compress ~1000x
RATIO_FLOOR = 1024 ** 2  # tiny members may compress oddly; only big ones can hurt


def zip_members(f) -> dict[str, int]:
    """A zip's members and their declared sizes, refusing damaged zips and zip bombs before anything is unpacked."""
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise FileRefused(DAMAGED) from None
    # zipfile stops at each member's stated size, so the stated sizes bound what can be unpacked.
    if sum(i.file_size for i in infos) > MAX_UNZIPPED:
        raise FileRefused(BOMB)
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise FileRefused(BOMB)
    return {i.filename: i.file_size for i in infos}


def check_members(f) -> None:
    """Unpack every member once, as far as its declared size (checksums checked), refusing XML with a DTD.

    For readers that unpack members themselves (calamine): a member that unpacks past its declared size, or
    declares entities (the XXE and billion-laughs attacks need a DTD), is refused before they see it.
    """
    try:
        with zipfile.ZipFile(f) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    head = member.read(4096)
                    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                        raise FileRefused(DAMAGED)
                    while member.read(1 << 20):
                        pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, zlib.error):
        raise FileRefused(DAMAGED) from None


def workbook_part(f, members: dict[str, int]) -> tuple[str | None, bool]:
    """Where a zip's Excel workbook part is, found as the format says (through _rels/.rels), and whether it
    is saved as Strict Open XML; (None, False) for a zip that is no workbook."""
    if 0 < members.get("_rels/.rels", 0) <= 1024 ** 2:
        try:
            with zipfile.ZipFile(f) as zf:
                root = ElementTree.fromstring(zf.read("_rels/.rels"))
        except Exception:  # damaged XML, a DTD (defusedxml refuses it): judged by the usual path below
            root = None
        for rel in root.iter() if root is not None else ():
            kind, target = rel.get("Type") or "", rel.get("Target") or ""
            if kind.endswith("/officeDocument") and target:
                part = posixpath.normpath(target.lstrip("/"))
                if part in members and part.lower().endswith(".xml"):
                    return part, kind.startswith("http://purl.oclc.org/ooxml/")
    return ("xl/workbook.xml", False) if "xl/workbook.xml" in members else (None, False)


def zip_names(f) -> set[str]:
    """A zip's member names (zip_members' checks included)."""
    return set(zip_members(f))


def finish_row(cells: list) -> bool:
    """Strip our report's quote prefix and NUL characters in place; return False when every cell is blank."""
    blank = True
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if cell.__class__ is str:
            cells[i], filled = finish_cell(cell)
            if not filled:
                continue
        blank = False
    return not blank


def finish_cell(cell) -> tuple[object, bool]:
    """The cell without our report's quote prefix and NUL characters, and whether it holds anything."""
    if cell.__class__ is not str:
        return cell, cell is not None
    if cell[:1] == "'":
        cell = unneutralize(cell)
    if "\x00" in cell:
        # .xls strings may hold NULs (never customer data) and PostgreSQL text cannot store them.
        cell = cell.replace("\x00", "")
    return cell, bool(cell) and not cell.isspace()


# --- XLSX --------------------------------------------------------------------------------


def open_xlsx(source):
    """Load a workbook read-only with cached values (formulas give their last computed result)."""
    try:
        reader = _Reader(source, read_only=True, data_only=True)
        reader.read()
        return reader.wb
    except Exception:  # openpyxl raises anything from KeyError to XML errors on a bad file
        raise FileRefused(DAMAGED) from None


class _Reader(ExcelReader):
    """openpyxl's workbook reader, keeping shared strings as written (xlsx_records decodes their escapes)."""

    def read_strings(self):
        # openpyxl's own drops every "x005F_", which turns a literal "_x000D_" into a line break's escape.
        found = self.package.find(SHARED_STRINGS)
        if found is not None:
            tag = "{%s}si" % SHEET_MAIN_NS
            with self.archive.open(found.PartName[1:]) as src:
                for _, node in iterparse(src):
                    if node.tag == tag:
                        self.shared_strings.append(Text.from_tree(node).content)
                        node.clear()


def xlsx_sheets(wb) -> dict[str, object]:
    """Map every worksheet's title to its worksheet, with stated dimensions ignored."""
    sheets = {}
    for ws in wb.worksheets:
        # Some writers state a wrong <dimension>; trusting it would drop rows or columns.
        ws.reset_dimensions()
        sheets[ws.title] = ws
    return sheets


def xlsx_records(ws) -> Iterator[tuple[int, list]]:
    """Yield (row number, cells) for the non-blank rows of a sheet, streaming."""
    try:
        # min_row/min_col: a wrong <dimension> would otherwise shift the first row and column.
        rows = quietly(ws.iter_rows(min_row=1, min_col=1, values_only=True))
        for number, row in enumerate(rows, 1):
            if row:
                # openpyxl leaves Excel's _x000D_ escapes in the text; calamine decodes them.
                cells = [unescape(c) if c.__class__ is str and "_x" in c else c for c in row]
                if finish_row(cells):
                    yield number, cells
    except FileRefused:
        raise
    except Exception:  # corrupt sheet XML, forbidden XML entities, truncated zip member
        raise FileRefused(DAMAGED) from None


def unescape(text: str) -> str:
    """Text with OOXML's _xHHHH_ escapes decoded, as Excel shows it."""
    return OOXML_ESCAPE.sub(_unescaped, text)


def _unescaped(match: re.Match) -> str:
    code = int(match.group(1), 16)
    return match.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)


def xlsx_hidden(ws) -> bool:
    """True for a sheet hidden in Excel."""
    return ws.sheet_state != "visible"


# --- XLS ---------------------------------------------------------------------------------

_EMPTY = (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK)


def open_xls(data: bytes):
    """Open a BIFF workbook lazily; sheets load when first asked for."""
    try:
        # logfile: xlrd prints warnings about odd files to stdout otherwise.
        return xlrd.open_workbook(file_contents=data, on_demand=True, logfile=LogFile())
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise FileRefused(PASSWORD) from None
        raise FileRefused(DAMAGED) from None
    except Exception:  # xlrd raises struct, index and assertion errors on a truncated file
        raise FileRefused(DAMAGED) from None


def xls_sheets(book) -> dict[str, object]:
    """Map every worksheet's name to its (loaded) sheet."""
    try:
        return {name: book.sheet_by_name(name) for name in book.sheet_names()}
    except Exception:
        raise FileRefused(DAMAGED) from None


def xls_hidden(sheet) -> bool:
    """True for a sheet hidden in Excel."""
    return sheet.visibility != 0


def xls_records(sheet, datemode: int) -> Iterator[tuple[int, list]]:
    """Yield (row number, cells) for the non-blank rows of a sheet, with dates and booleans typed."""
    for rx in range(sheet.nrows):
        types = sheet.row_types(rx)
        cells = sheet.row_values(rx)
        if xlrd.XL_CELL_EMPTY in types or xlrd.XL_CELL_BLANK in types:
            cells = [None if t in _EMPTY else v for t, v in zip(types, cells)]
        if xlrd.XL_CELL_DATE in types or xlrd.XL_CELL_BOOLEAN in types or xlrd.XL_CELL_ERROR in types:
            cells = [_typed(t, v, datemode) for t, v in zip(types, cells)]
        if finish_row(cells):
            yield rx + 1, cells


def _typed(ctype: int, value, datemode: int):
    """Convert one xlrd cell: dates to datetime (1900 or 1904 epoch), booleans, error codes to text."""
    if ctype == xlrd.XL_CELL_DATE:
        try:
            return xldate_as_datetime(value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value  # an out-of-range date stays a number; the value parsers report it
    if ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "#ERROR")
    return value
