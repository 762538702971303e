"""The original cells of rows with problems: kept when found, looked up for the problem report.

The validation keeps the cells of rows whose cells could not be read while it has them in hand. A problem
found later (by the merge, or by the apply on personas changed since) is given its row's cells from the
stored file once, at the end of the run that found it.
"""
import json

import polars as pl

from webapp.importer import writes
from webapp.models import ImportProblem, ProblemRow

LINES_PER_QUERY = 500
BATCH_ROWS = 50_000


def missing_lines(upload) -> list[int]:
    """Lines with a problem whose cells are not kept yet."""
    kept = ProblemRow.select(ProblemRow.line).where(ProblemRow.upload == upload)
    query = (ImportProblem.select(ImportProblem.line).distinct()
             .where((ImportProblem.upload == upload) & ImportProblem.line.not_in(kept)))
    return sorted(line for (line,) in query.tuples())


def fill_problem_cells(upload, table_of) -> None:
    """Keep the cells of problem rows that have none yet, read from the stored file.

    table_of(upload): the import's file opened as a table (a context manager).
    """
    lines = missing_lines(upload)
    if not lines or upload.file_deleted:
        return
    wanted, found = pl.Series(lines, dtype=pl.Int64), []
    with table_of(upload) as table:
        for batch in table.batches(BATCH_ROWS):
            positions = batch.lines.is_in(wanted.implode()).arg_true().to_list()
            found += zip(batch.lines.gather(positions).to_list(), batch.texts(positions))
            if len(found) == len(lines):
                break
    writes.problem_cells(upload.id, found)


def cells_of(upload, lines: list[int]) -> dict[int, list[str]]:
    """The kept cells of these lines."""
    found = {}
    for start in range(0, len(lines), LINES_PER_QUERY):
        part = lines[start:start + LINES_PER_QUERY]
        query = ProblemRow.select(ProblemRow.line, ProblemRow.cells).where(
            (ProblemRow.upload == upload) & ProblemRow.line.in_(part))
        for line, cells in query.tuples():
            found[line] = json.loads(cells) if isinstance(cells, str) else cells
    return found

