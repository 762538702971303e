"""A table's data rows as column batches: Table.rows()'s columnar twin.

CSV files are read by polars piece by piece (csv_frames) and the rules Table.rows() and csv_reader
apply to each record (line numbers, blank rows, the header and rows above it, formula prefixes, cell
length, quoted line breaks, shifted rows, the row limit) are applied column-wise. Where polars cannot
read on, and for workbooks openpyxl or xlrd stream, the rows come from Table.rows() itself and are
turned into columns. A sheet calamine loaded is converted and blank-checked column by column.
"""
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import compress, islice

import polars as pl

from webapp.importer import csv_frames, csv_reader
from webapp.importer.columns import WHITESPACE, WHITESPACE_CLASS
from webapp.importer.errors import FileRefused
from webapp.importer.excel_reader import finish_cell
from webapp.importer.header_row import shifted_row
from webapp.importer.parse import Batch
from webapp.importer.readers import Shifted, Table, too_many_rows
from webapp.importer.safe_cells import PREFIX, TRIGGERS

# Columns read past the widest row the header or the first lines have, to see values that shifted right.
EXTRA_COLUMNS = 4


def table_batches(table: Table, size: int) -> Iterator[Batch]:
    """Batches of up to size data rows, with the same lines and cells as table.rows()."""
    if table._sheet is not None:
        yield from _sheet_batches(table, table._sheet, size)
        return
    if table._csv is None:
        yield from _row_batches(table.rows(), size)
        return
    source = table._csv
    width = max(len(table.headers), table._header_cells, source.width) + EXTRA_COLUMNS
    decode_error = csv_reader.decode_error(source.encoding)
    with csv_frames.utf8_source(source.opener, source.encoding, decode_error) as utf8:
        counted = 0
        for piece in csv_frames.pieces(utf8, source.delimiter, width):
            if piece.frame is None:
                # From here on csv_reader reads the file, with its own messages and rules.
                encoding = source.encoding if source.encoding in csv_frames.UTF8 else "utf-8"  # or a UTF-8 copy
                records = csv_reader.records(lambda: nullcontext(utf8), encoding, source.strip_nul, source.delimiter,
                                             source.width, (piece.offset, piece.before))
                yield from _row_batches(table.rows(records, counted), size)
                return
            rows, shifted = _data_rows(table, piece, counted)
            counted += len(rows)
            for start in range(0, len(rows), size):
                part = rows.slice(start, size)
                lines = part["rec"]
                yield Batch(lines, [part[f"c{i}"] for i in range(len(table.headers))],
                            {line: shifted[line] for line in lines.filter(lines.is_in(list(shifted))).to_list()}
                            if shifted else {})


def _row_batches(rows: Iterator[tuple[int, list]], size: int) -> Iterator[Batch]:
    """(line, cells) rows as batches: a column of text cells as a String Series, any other as a list."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        lines = [line for line, _ in chunk]
        columns = [list(column) for column in zip(*(cells for _, cells in chunk))]
        shifted = {line: (cells.every, cells.reason) for line, cells in chunk if cells.__class__ is Shifted}
        yield Batch(pl.Series(lines, dtype=pl.Int64),
                    [pl.Series(column, dtype=pl.String) if _all_text(column) else column for column in columns],
                    shifted)


def _sheet_batches(table: Table, sheet, size: int) -> Iterator[Batch]:
    """A calamine sheet's data rows as batches, converted and blank-checked column by column."""
    width, limit, counted = len(table.headers), table._max_rows, 0
    for first, padding, rows in sheet.chunks(table.header_line + 1, size):
        raw = list(zip(*rows))
        columns, filled = [], []
        for position in range(width):
            index = position - padding
            cells, holds = _sheet_column(raw[index] if 0 <= index < len(raw) else None, len(rows), sheet.cell)
            columns.append(cells)
            filled.append(holds)
        keep = pl.select(pl.any_horizontal(filled)).to_series()  # a table has at least one header
        lines = pl.int_range(first, first + len(rows), dtype=pl.Int64, eager=True)
        if not keep.all():
            lines = lines.filter(keep)
            columns = [cells.filter(keep) if isinstance(cells, pl.Series) else list(compress(cells, keep))
                       for cells in columns]
        counted += len(lines)
        if counted > limit:
            raise FileRefused(too_many_rows(limit))
        if len(lines):
            yield Batch(lines, columns)


def _sheet_column(raw: tuple | None, rows: int, cell) -> tuple[pl.Series | list, pl.Series]:
    """One column of sheet cells as records() gives them, and which of them hold something."""
    if raw is None:  # left of the used range, or past it
        return pl.Series([None] * rows, dtype=pl.String), pl.Series([False] * rows)
    if all(value.__class__ is str for value in raw):
        text = pl.Series(raw, dtype=pl.String)
        if not text.str.contains(f"^{PREFIX}|\x00").any():  # else finish_row's cleaning, cell by cell
            frame = pl.DataFrame({"c": text})
            return (frame.select(pl.when(pl.col("c") != "").then(pl.col("c"))).to_series(),
                    frame.select(_filled("c")).to_series())
    cells = [cell(value) for value in raw]
    holds = [True] * len(cells)
    for i, value in enumerate(cells):  # numbers and dates, the most of such columns, are kept as they are
        if value is None:
            holds[i] = False
        elif value.__class__ is str:
            cells[i], holds[i] = finish_cell(value)
    return (pl.Series(cells, dtype=pl.String) if _all_text(cells) else cells), pl.Series(holds, dtype=pl.Boolean)


def _all_text(column: list) -> bool:
    return all(cell is None or cell.__class__ is str for cell in column)


def _filled(column: str) -> pl.Expr:
    """The cell holds something that is not whitespace."""
    return pl.col(column).str.contains(f"[^{WHITESPACE_CLASS}]").fill_null(False)


def _data_rows(table: Table, piece: csv_frames.Piece, counted: int) -> tuple[pl.DataFrame, dict]:
    """The piece's records as table.rows() would yield them (refusing what it refuses), as a frame; and its
    shifted rows: line -> (all their cells, why they are rejected)."""
    frame = piece.frame
    cells = [c for c in frame.columns if c != "rec"]
    _check_records(table, piece, cells)
    if piece.apostrophes:
        # Our own reports put ' before a cell that starts like a formula; the readers take it off again.
        frame = frame.with_columns([
            pl.when(pl.col(c).str.starts_with(PREFIX) & pl.col(c).str.slice(1, 1).is_in(list(TRIGGERS)))
            .then(pl.col(c).str.slice(1)).otherwise(pl.col(c)) for c in cells])
    width = len(table.headers)
    filled = frame.select("rec", *[_filled(c).alias(c) for c in cells])
    frame = frame.with_columns(
        _row=pl.any_horizontal(filled[c] for c in cells) & (pl.col("rec") > table.header_line),
        _kept=pl.any_horizontal(filled[c] for c in cells[:width]),
        _shifted=pl.any_horizontal(filled[c] for c in cells[table._header_cells:]) if cells[table._header_cells:]
        else pl.lit(False))
    shifted = {}
    for row in frame.filter(pl.col("_row") & pl.col("_shifted")).select("rec", *cells).iter_rows():  # a few, if any
        used = max(i for i, c in enumerate(row[1:], 1) if c is not None and c.strip(WHITESPACE) != "")
        every = ["" if c is None else c for c in row[1:used + 1]]
        shifted[row[0]] = (every, shifted_row(row[0], used, table._header_cells))
    # Values only in columns without a header make a row that is blank for the import; a shifted row is rejected.
    frame = frame.filter(pl.col("_row") & (pl.col("_kept") | pl.col("_shifted"))).select("rec", *cells[:width])
    if counted + len(frame) > table._max_rows:
        raise FileRefused(too_many_rows(table._max_rows))
    return frame, shifted


def _check_records(table: Table, piece: csv_frames.Piece, cells: list[str]) -> None:
    """csv_reader's refusals, for the first record in the piece that earns one: a cell over the csv module's
    field limit, or a quoted cell whose line breaks swallowed rows."""
    frame, limit = piece.frame, csv_reader.csv.field_size_limit()
    # A cell has at least as many bytes as characters: the cheap count rules out nearly every row.
    too_long = frame.filter(pl.any_horizontal([pl.col(c).str.len_bytes() > limit for c in cells]))
    if len(too_long):
        too_long = too_long.filter(pl.any_horizontal([pl.col(c).str.len_chars() > limit for c in cells]))
    if piece.quotes:
        # Only a quoted cell holds a line break.
        broken = frame.filter(pl.any_horizontal([pl.col(c).str.contains("\n", literal=True) for c in cells]))
        source = table._csv
        for row in broken.iter_rows(named=True):
            if len(too_long) and too_long["rec"][0] < row["rec"]:
                break
            values = [row[c] or "" for c in cells]
            span = 1 + sum(value.count("\n") for value in values)
            csv_reader.check_multiline(values, row["rec"], span, source.delimiter, source.width)
    if len(too_long):
        raise FileRefused(csv_reader.csv_error_message("field larger than field limit", too_long["rec"][0]))
