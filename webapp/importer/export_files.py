"""Exports as CSV and XLSX, streamed by chunks of personas: memory stays flat however many there are."""
import csv
import datetime
import io
import tempfile
from collections.abc import Iterator

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from webapp.importer.export import CHUNK, Selection, attribute_names, chunks, file_row, headers
from webapp.importer.safe_cells import neutralize

BLOCK = 64 * 1024  # bytes handed on at a time from the XLSX temp file
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


def _xlsx_cell(sheet, value):
    """A typed write-only cell: numbers, booleans and dates as such, text that can never run as a formula."""
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=neutralize(value))
        cell.data_type, cell.number_format = "s", "@"  # openpyxl would store "=..." as a formula
        return cell
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, datetime.datetime):
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
    elif isinstance(value, datetime.date):
        cell.number_format = "yyyy-mm-dd"
    return cell


def xlsx_stream(chosen: Selection, size: int = CHUNK) -> Iterator[bytes]:
    """The export as XLSX: openpyxl's write-only mode into a temp file (rows go to disk as written), then its bytes."""
    attributes = attribute_names(chosen)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Personas")
    bold = Font(bold=True)
    header = []
    for text in headers(attributes):
        cell = WriteOnlyCell(sheet, value=neutralize(text))
        cell.font = bold
        header.append(cell)
    sheet.freeze_panes = "A2"
    sheet.append(header)
    for rows in chunks(chosen, size):
        for row in rows:
            sheet.append([_xlsx_cell(sheet, v) if v is not None else None for v in file_row(row, attributes)])
    with tempfile.TemporaryFile(suffix=".xlsx") as stream:
        workbook.save(stream)
        stream.seek(0)
        while block := stream.read(BLOCK):
            yield block


def export_stream(chosen: Selection, kind: str, size: int = CHUNK) -> Iterator[bytes]:
    """The export in kind ("csv" or "xlsx"), piece by piece."""
    return (csv_stream if kind == "csv" else xlsx_stream)(chosen, size)


def export_filename(stem: str, kind: str, today: datetime.date | None = None) -> str:
    """The download's name: personas-2026-12-04.csv, audience-12-2026-12-04.xlsx."""
    return f"{stem}-{(today or datetime.date.today()).isoformat()}.{kind}"
