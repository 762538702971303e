"""An import's problems grouped by kind, with a count, the plain fix and a few example rows each.

One query: each problem's kind (errors.PROBLEMS, by its reason's pattern) is worked out in SQL, the rows
of each group (kind, severity, column) are counted and numbered by a window, and the first few of each
come back with their row's kept cells (problem_row), from which the example shows the row's email or name.
"""
import json
from dataclasses import dataclass, field

from peewee import SQL, Case, NodeList, Window, fn

from webapp.importer.errors import PROBLEM_BY_CODE, PROBLEMS
from webapp.models import ImportProblem, ProblemRow

EXAMPLES = 3
# Whose row an example is, in the order tried: its email, else its name, else its phone.
WHO_FIELDS = ("email", ("first_name", "last_name"), "phone")


@dataclass
class Example:
    """One row of a group: its line, whose row it is, the cell's value and the reason as stored."""

    line: int
    who: str
    value: str
    reason: str


@dataclass
class Group:
    """Problems of one kind in one column: how many rows, what to do, the first rows."""

    code: str
    severity: str
    column: str
    title: str
    fix: str | None
    count: int
    examples: list[Example] = field(default_factory=list)


def kind_of() -> Case:
    """A problem's kind as an SQL expression: the code of the first pattern its reason matches, else the reason."""
    # LIKE spelled out: peewee turns its LIKE operator into GLOB on SQLite.
    return Case(None, [(NodeList((ImportProblem.reason, SQL("LIKE"), problem.match)), problem.code)
                       for problem in PROBLEMS], ImportProblem.reason)


def groups(upload, sources: tuple[str, ...], examples: int = EXAMPLES) -> list[Group]:
    """The problems of these sources grouped: rejections first, then the largest groups."""
    kinds = (ImportProblem
             .select(kind_of().alias("kind"), ImportProblem.id, ImportProblem.severity, ImportProblem.column_name,
                     ImportProblem.line, ImportProblem.value, ImportProblem.reason)
             .where((ImportProblem.upload == upload) & ImportProblem.source.in_(sources))
             .alias("kinds"))
    # One window (one sort) numbers each group's rows and counts them.
    group = Window(partition_by=[kinds.c.kind, kinds.c.severity, kinds.c.column_name],
                   order_by=[kinds.c.line, kinds.c.id], start=Window.preceding(), end=Window.following(),
                   frame_type=Window.ROWS, alias="grouped")
    numbered = (ImportProblem
                .select(kinds.c.kind, kinds.c.severity, kinds.c.column_name, kinds.c.line, kinds.c.value,
                        kinds.c.reason, fn.COUNT(SQL("*")).over(window=group).alias("total"),
                        fn.ROW_NUMBER().over(window=group).alias("place"))
                .from_(kinds).window(group)
                .alias("numbered"))
    kept = ProblemRow.alias("kept")
    query = (ProblemRow.select(numbered.c.kind, numbered.c.severity, numbered.c.column_name, numbered.c.line,
                               numbered.c.value, numbered.c.reason, numbered.c.total, kept.cells)
             .from_(numbered)
             .join(kept, "LEFT OUTER JOIN", on=((kept.upload == upload.id) & (kept.line == numbered.c.line)))
             .where(numbered.c.place <= examples)
             .order_by(numbered.c.severity, numbered.c.total.desc(), numbered.c.kind, numbered.c.column_name,
                       numbered.c.place))
    who_at = _who_columns(upload)
    day_first = bool(upload.account.day_first)
    found: dict[tuple, Group] = {}
    for kind_code, severity, column, line, value, reason, total, cells in query.tuples():
        key = (kind_code, severity, column)
        if key not in found:
            known = PROBLEM_BY_CODE.get(kind_code)  # else the reason itself, a kind errors.py does not list
            found[key] = Group(code=known.code if known else "other", severity=severity, column=column or "",
                               title=known.title if known else kind_code,
                               fix=known.fix_for(day_first) if known else None, count=int(total))
        found[key].examples.append(Example(line=line, who=_who(_cells(cells), who_at), value=value or "",
                                           reason=reason))
    return list(found.values())


def _cells(cells) -> list:
    if cells is None:
        return []
    return json.loads(cells) if isinstance(cells, str) else cells


def _who_columns(upload) -> list[tuple[int, ...]]:
    """For each of WHO_FIELDS, the positions of the file's columns mapped to it (in the kept cells)."""
    headers, mapping = list(upload.headers or []), upload.mapping or {}
    position = {target: index for index, header in enumerate(headers) if (target := mapping.get(header))}
    chosen = []
    for names in WHO_FIELDS:
        names = names if isinstance(names, tuple) else (names,)
        at = tuple(position[name] for name in names if name in position)
        if at:
            chosen.append(at)
    return chosen


def _who(cells: list, who_at: list[tuple[int, ...]]) -> str:
    """The row's email, else its name, else its phone, as written in the file ("" when it has none)."""
    for positions in who_at:
        text = " ".join(str(cells[i]).strip() for i in positions if i < len(cells) and str(cells[i] or "").strip())
        if text:
            return text
    return ""
