"""Workbooks through python-calamine (Rust): a whole sheet at once, read several times faster than openpyxl.

calamine loads a sheet whole, so it reads only sheets that fit a memory budget, judged from the sizes the
zip declares before anything is unpacked (the zip-bomb checks in excel_reader run first). A loaded sheet
holds about 1.5 bytes per declared byte of its XML and shared strings (measured: 48 MB of XML for 100,000
rows of a dozen columns took 73 MB); beyond the budget openpyxl streams the sheet instead. Cells come out
as openpyxl (xlsx) and xlrd (xls) give them: text, numbers, booleans, datetimes, blanks as None.
"""
from collections.abc import Iterator
from datetime import date, datetime
from itertools import islice

from python_calamine import CalamineWorkbook

from webapp.importer.errors import FileRefused
from webapp.importer.excel_reader import DAMAGED, finish_row

# Declared uncompressed bytes of the worksheets and shared strings calamine may load (~190 MB in memory).
BUDGET = 128 * 1024 * 1024
RECORD_CHUNK = 1000  # rows taken from calamine at a time for records()


def fits_ods(members: dict[str, int]) -> bool:
    """Whether an .ods's sheets (all in content.xml, by its declared size) fit the budget."""
    return members.get("content.xml", 0) <= BUDGET


def fits(members: dict[str, int]) -> bool:
    """Whether an .xlsx's sheets (by their declared sizes) fit the budget."""
    # Sheets and shared strings wherever the workbook keeps them (xl/ as a rule; the format allows elsewhere).
    declared = sum(size for name, size in members.items()
                   if "worksheets/" in name or name.endswith("sharedStrings.xml"))
    return declared <= BUDGET


class Sheet:
    """One sheet of a calamine workbook, loaded on first use and kept while its table is open."""

    def __init__(self, workbook: CalamineWorkbook, name: str, visible: bool, kind: str):
        self.workbook, self.name, self.visible = workbook, name, visible
        self.cell = _xls_cell if kind == "xls" else _xlsx_cell
        self._loaded = None

    def _load(self):
        """The loaded sheet (calamine reads it whole, once)."""
        if self._loaded is None:
            self._loaded = self.workbook.get_sheet_by_name(self.name)
        return self._loaded

    def records(self) -> Iterator[tuple[int, list]]:
        """(row number, cells) of the sheet's non-blank rows, as a spreadsheet numbers them."""
        cell = self.cell
        for first, padding, rows in self.chunks(1, RECORD_CHUNK):
            blank = [None] * padding
            for number, row in enumerate(rows, first):
                cells = blank + [cell(value) for value in row]
                if finish_row(cells):
                    yield number, cells

    def chunks(self, first: int, size: int) -> Iterator[tuple[int, int, list[list]]]:
        """(number of the chunk's first row, blank columns left of the cells, rows) from row `first` on.

        Up to size rows each, blank ones included, cells as calamine gives them (self.cell converts them).
        """
        try:
            sheet = self._load()
            if sheet.start is None:
                return  # an empty sheet has no used range
            # iter_rows starts at row 1 but at the used range's first column, which may be right of column A.
            rows = sheet.iter_rows()
            for _ in islice(rows, first - 1):
                pass
            number = first
            while chunk := list(islice(rows, size)):
                yield number, sheet.start[1], chunk
                number += len(chunk)
        except Exception:  # calamine's errors on damaged XML, forbidden entities, truncated members
            raise FileRefused(DAMAGED) from None


def open_workbook(f, kind: str) -> dict[str, Sheet]:
    """The workbook's worksheets by name; kind "xlsx", "ods" (cells typed as openpyxl types them) or "xls" (as xlrd)."""
    try:
        workbook = CalamineWorkbook.from_filelike(f)
        visible = {meta.name: str(meta.visible).endswith("Visible") for meta in workbook.sheets_metadata
                   if str(meta.typ).endswith("WorkSheet")}
        return {name: Sheet(workbook, name, visible[name], kind) for name in workbook.sheet_names if name in visible}
    except Exception:
        raise FileRefused(DAMAGED) from None


def records(sheet: Sheet) -> Iterator[tuple[int, list]]:
    """A sheet's records (the readers' records callable)."""
    return sheet.records()


def hidden(sheet: Sheet) -> bool:
    """True for a sheet hidden in Excel."""
    return not sheet.visible


def _xlsx_cell(value):
    """A cell as openpyxl gives it: blank as None, a whole number as an int, a date as a datetime."""
    if value.__class__ is str:
        return None if value == "" else value
    if value.__class__ is float:
        return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
    if value.__class__ is date:
        return datetime(value.year, value.month, value.day)
    return value


def _xls_cell(value):
    """A cell as xlrd gives it: blank as None, every number a float, a date as a datetime."""
    if value.__class__ is str:
        return None if value == "" else value
    if value.__class__ is int:
        return float(value)
    if value.__class__ is date:
        return datetime(value.year, value.month, value.day)
    return value
