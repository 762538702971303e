"""Exports as CSV and XLSX, streamed by chunks of personas: memory stays flat however many there are."""
import csv
import datetime
import io
from collections.abc import Iterator

from webapp.importer.export import CHUNK, Selection, attribute_names, chunks, file_row, headers
from webapp.importer.safe_cells import neutralize
from webapp.importer.xlsx_stream import xlsx_rows

FORMATS = ("csv", "xlsx")
MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def csv_cell(value) -> str:
    """A value as the CSV holds it: TRUE/FALSE, ISO dates, neutralized text (the readers read all of these back)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return neutralize(value)


def csv_stream(chosen: Selection, size: int = CHUNK) -> Iterator[bytes]:
    """The export as UTF-8 CSV with a BOM (for Excel): the header, then one piece per chunk of personas."""
    attributes = attribute_names(chosen)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(h) for h in headers(attributes)])
    yield buffer.getvalue().encode("utf-8-sig")
    for rows in chunks(chosen, size):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([csv_cell(v) for v in file_row(row, attributes)] for row in rows)
        yield buffer.getvalue().encode("utf-8")


def xlsx_value(value):
    """A value as the XLSX holds it: numbers, booleans and dates typed; text neutralized, so never a formula."""
    # A spreadsheet would run a string starting with "=": a neutralized one never does.
    return neutralize(value) if isinstance(value, str) else value


def xlsx_stream(chosen: Selection, size: int = CHUNK) -> Iterator[bytes]:
    """The export as XLSX, written as it streams: the header, then one piece per chunk of personas."""
    attributes = attribute_names(chosen)
    rows = ([[xlsx_value(v) for v in file_row(row, attributes)] for row in chunk] for chunk in chunks(chosen, size))
    return xlsx_rows([neutralize(h) for h in headers(attributes)], rows)


def export_stream(chosen: Selection, kind: str, size: int = CHUNK) -> Iterator[bytes]:
    """The export in kind ("csv" or "xlsx"), piece by piece."""
    return (csv_stream if kind == "csv" else xlsx_stream)(chosen, size)


def export_filename(stem: str, kind: str, today: datetime.date | None = None) -> str:
    """The download's name: personas-2026-12-04.csv, audience-12-2026-12-04.xlsx."""
    return f"{stem}-{(today or datetime.date.today()).isoformat()}.{kind}"
