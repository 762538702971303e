"""The problem report: a CSV of the rows with problems, re-importable once fixed."""

import csv
import io
from collections.abc import Iterable
from typing import TextIO

from webapp.importer.fields import normalize_header
from webapp.importer.problems import ERROR, WARNING
from webapp.importer.safe_cells import neutralize

# Headers no persona field auto-matches, so a re-imported report maps only the file's own columns.
PROBLEM_HEADERS = ("Problem Row", "Problem Severity", "Problem Columns", "Problem Values", "Problem Reasons")
SUFFIX = " (report)"
JOIN = " | "


def problem_headers(headers: list[str]) -> list[str]:
    """Our leading headers, suffixed where the file already has one of them (a report of a report)."""
    taken = {normalize_header(h) for h in headers if h is not None}
    chosen = []
    for name in PROBLEM_HEADERS:
        while normalize_header(name) in taken:
            name += SUFFIX
        taken.add(normalize_header(name))
        chosen.append(name)
    return chosen


def _problems(row: dict) -> list[dict]:
    """The row's problems, with its rejection reason added if no problem already says it."""
    problems = list(row.get("problems") or ())
    error = row.get("error")
    if error and not any(p.get("reason") == error for p in problems):
        problems.append({"column": "", "value": "", "reason": error})
    return problems


def report_line(headers: list[str], row: dict) -> list[str] | None:
    """One report line for a row (None when it has no problem), every cell neutralized."""
    problems = _problems(row)
    if not problems:
        return None
    # One line per row, not per problem: re-importing the fixed report applies each row once.
    lead = [
        row.get("line"),
        ERROR if row.get("error") else WARNING,
        JOIN.join(str(p.get("column") or "") for p in problems),
        JOIN.join(str(p.get("value") if p.get("value") is not None else "") for p in problems),
        JOIN.join(str(p.get("reason") or "") for p in problems),
    ]
    cells = list(row.get("cells") or ())
    cells += [""] * (len(headers) - len(cells))  # short (ragged) rows still line up
    return [neutralize(c) for c in lead + cells]


def write_report(headers: list[str], rows: Iterable[dict], out: TextIO) -> int:
    """Write the report CSV to out (opened by the caller, newline=""); return the number of problem rows."""
    writer = csv.writer(out)
    writer.writerow([neutralize(h) for h in problem_headers(headers) + list(headers)])
    written = 0
    for row in rows:
        line = report_line(headers, row)
        if line is not None:
            writer.writerow(line)
            written += 1
    return written


def report_bytes(headers: list[str], rows: Iterable[dict]) -> bytes:
    """The report as UTF-8 with a BOM, so Excel opens accents and emoji right."""
    buffer = io.StringIO(newline="")
    write_report(headers, rows, buffer)
    return buffer.getvalue().encode("utf-8-sig")
