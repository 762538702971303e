"""Which row of a table is its header row, its column names, and which data rows are blank or shifted."""
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from openpyxl.utils import get_column_letter

from webapp.importer.errors import SHIFTED_CELLS, FileRefused
from webapp.importer.fields import normalize_header

if TYPE_CHECKING:
    from webapp.importer.readers import Table

HEADER_SCAN = 20  # the header is looked for among this many first non-blank rows

EMPTY = "The file is empty: it has no rows to import."
HEADER_ONLY = "The file has a header row but no customer rows."
NO_HEADER = ("No row of the file looks like a header row of column names (Email, Phone, First Name…): its first "
             "rows hold only numbers, emails, phone numbers or dates. Add a row of column names above the "
             "customers and upload the file again, or choose the line that holds the column names.")
DIGIT = re.compile(r"\d")
LETTER = re.compile(r"[^\W\d_]")


def first_record(records: Iterator):
    """First item of a generator, closing it so its file or parser is released."""
    try:
        return next(records, None)
    finally:
        records.close()


def find_header(table: "Table", header_line: int | None) -> None:
    """Set the table's header row (found, or the one asked for) and refuse header-only files."""
    records = table._records()
    try:
        if header_line is None:
            seen = []
            for rec in records:
                seen.append(rec)
                if len(seen) >= HEADER_SCAN:
                    break
            if not seen:
                raise FileRefused(EMPTY)
            found = _pick_header(seen)
            if found is None:
                raise FileRefused(NO_HEADER, header_kind=table.kind)
            line, cells = found
            has_data = seen[-1][0] > line or first_record(records) is not None
        else:
            line, cells = _header_at(records, header_line)
            has_data = first_record(records) is not None
    finally:
        records.close()
    table.header_line, table._header_cells = line, len(cells)
    table.headers = _header_names(cells)
    if not has_data:
        raise FileRefused(HEADER_ONLY)


def used_cells(cells: list, header_cells: int) -> int:
    """How many cells a row uses: up to its last one that is not blank, but never fewer than the header's."""
    used = len(cells)
    while used > header_cells and blank_cell(cells[used - 1]):
        used -= 1
    return used


def shifted_row(line: int, used: int, header_cells: int) -> str:
    """Why a CSV row whose values reach past the header row's columns is rejected."""
    return SHIFTED_CELLS(line, used, header_cells)


def _header_at(records: Iterator, header_line: int) -> tuple[int, list]:
    """The record on the line the user chose as the header row."""
    if header_line < 1:
        raise FileRefused("The header row number must be 1 or more.")
    for line, cells in records:
        if line == header_line:
            return line, cells
        if line > header_line:
            break
    raise FileRefused(f"Line {header_line} is empty. Choose the line that holds the column names.")


def _pick_header(rows: list[tuple[int, list]]) -> tuple[int, list] | None:
    """The first row that looks like column names (wide enough, mostly short text), else the first row if any
    of its cells could be a name; None when nothing could be (only numbers, emails, phones, dates)."""
    filled = [[c for c in cells if not blank_cell(c)] for _, cells in rows]
    widest = max(len(f) for f in filled)
    # Title rows ("Customer export, May 2024") are narrower than the table below them.
    need = max(min(2, widest), -(-widest // 2))
    for (line, cells), values in zip(rows, filled):
        wordy = sum(1 for v in values if _headerish(v))
        if wordy >= need and wordy >= 0.8 * len(values):
            return line, cells
    return rows[0] if any(_headerish(v) for v in filled[0]) else None


def _headerish(value) -> bool:
    """Text with letters that is not an email, a phone number or a date."""
    if value.__class__ is not str or "@" in value:
        return False
    letters = len(LETTER.findall(value))
    return letters > 0 and len(DIGIT.findall(value)) < letters


def _header_names(cells: list) -> list[str]:
    """Trimmed header names; blank ones named by column letter; trailing blank columns dropped."""
    names = [_header_text(c) for c in cells]
    while names and not names[-1]:
        names.pop()
    names = [n or f"Column {get_column_letter(i + 1)}" for i, n in enumerate(names)]
    _refuse_duplicates(names)
    return names


def _header_text(value) -> str:
    """A header cell as text; whitespace runs and line breaks collapse to one space."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a year header read from Excel as 2024.0
    elif isinstance(value, datetime):
        value = value.date() if value == datetime.combine(value.date(), datetime.min.time()) else value
    return " ".join(str(value).split())


def _refuse_duplicates(names: list[str]) -> None:
    """Refuse a header row naming a column twice, by the one rule header matching uses."""
    columns: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        # "First Name", "first_name" and "FirstName" are one header to matching and to remembered mappings.
        key = normalize_header(name)
        if key:
            columns.setdefault(key, []).append(i)
    repeated = [idx for idx in columns.values() if len(idx) > 1]
    if repeated:
        listed = "; ".join(
            f'"{names[idx[0]]}" (columns {", ".join(get_column_letter(i + 1) for i in idx[:-1])} '
            f"and {get_column_letter(idx[-1] + 1)})" for idx in repeated)
        raise FileRefused(f"The header row names the same column more than once: {listed}. "
                          "Give each column its own name and upload the file again.")


def blank_cell(value) -> bool:
    """None, or text that is empty or only spaces."""
    return value is None or (value.__class__ is str and (not value or value.isspace()))


def is_blank_row(cells: list) -> bool:
    """Every cell blank."""
    return all(blank_cell(c) for c in cells)
