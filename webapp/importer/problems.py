"""The one Problem type: what is wrong with a cell or a row, from the parser through the report to the CLI.

A problem on a cell is a warning (the cell is skipped, the rest of the row applied); a problem on a row is an
error (the row is rejected). Row by row (the Merger, the row parser) a problem is a Problem; in bulk
(polars) it is a row of a frame of SCHEMA, whose "line" is a Problem's "row"; stored, an ImportProblem.
"""
from collections.abc import Iterable
from typing import TypedDict

import polars as pl

WARNING, ERROR = "warning", "error"
SCHEMA = {"line": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String, "severity": pl.String}


class Problem(TypedDict):
    """One problem, as the CLI prints it: the file's line, its column ("" for the row), the cell, why, how bad."""

    row: int
    column: str
    value: str
    reason: str
    severity: str  # WARNING or ERROR


def problem(row: int, column: str, value: str, reason: str, severity: str) -> Problem:
    """A Problem from its parts."""
    return {"row": row, "column": column, "value": value, "reason": reason, "severity": severity}


def frame(problems: Iterable[Problem], headers: dict | None = None) -> pl.DataFrame:
    """Problems as a frame of SCHEMA; headers: the file's header for a column named by its field."""
    headers = headers or {}
    return pl.DataFrame([{"line": p["row"], "column": headers.get(p["column"], p["column"]), "value": p["value"],
                          "reason": p["reason"], "severity": p["severity"]} for p in problems], schema=SCHEMA)


def of_record(record) -> Problem:
    """The Problem an ImportProblem row stores."""
    return problem(record.line, record.column_name, record.value, record.reason, record.severity)
