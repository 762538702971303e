"""An import's problems grouped by kind, with a count, the plain fix and a few example rows each.

Two statements, whatever the number of problems: one counts the problems of each group (kind, severity,
column), each problem's kind worked out in SQL from its reason (errors.PROBLEMS' patterns); the other
takes the first few rows of every group, each through the (upload, source, line) index and stopping at
the few, with the row's kept cells (problem_row), from which an example shows the row's email or name.
(Numbering every problem by a window instead sorts them all: seconds for a million.)
"""
import json
from dataclasses import dataclass, field

from peewee import SQL, Case, NodeList, fn

from webapp.db import db, is_postgres
from webapp.importer.errors import PROBLEM_BY_CODE, PROBLEMS
from webapp.models import ImportProblem, ProblemRow

EXAMPLES = 3
# Groups shown at most (each kind of problem in each column is one; errors.PROBLEMS lists 18 kinds).
MAX_GROUPS = 40
PROBLEMS_TABLE = f'"{ImportProblem._meta.table_name}"'
ROWS_TABLE = f'"{ProblemRow._meta.table_name}"'
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
    kind = kind_of()
    counted = (ImportProblem.select(kind.alias("kind"), ImportProblem.severity, ImportProblem.column_name,
                                    fn.COUNT(SQL("*")).alias("total"))
               .where((ImportProblem.upload == upload) & ImportProblem.source.in_(sources))
               .group_by(kind, ImportProblem.severity, ImportProblem.column_name)
               .order_by(ImportProblem.severity, SQL("total").desc(), kind, ImportProblem.column_name)
               .limit(MAX_GROUPS))
    day_first = bool(upload.account.day_first)
    found = []
    for kind_code, severity, column, total in counted.tuples():
        known = PROBLEM_BY_CODE.get(kind_code)  # else the reason itself, a kind errors.py does not list
        found.append(Group(code=known.code if known else "other", severity=severity, column=column or "",
                           title=known.title if known else kind_code,
                           fix=known.fix_for(day_first) if known else None, count=int(total)))
    _add_examples(upload, sources, found, examples)
    return found


def _add_examples(upload, sources: tuple[str, ...], found: list[Group], examples: int) -> None:
    """The first rows of every group, in one statement: per group and source, the index read in line order."""
    if not found:
        return
    mark = "%s" if is_postgres() else "?"
    parts, params = [], []
    for number, group in enumerate(found):
        known = PROBLEM_BY_CODE.get(group.code)
        matches = f"reason LIKE {mark}" if known else f"reason = {mark}"
        for source in sources:
            parts.append(f"SELECT * FROM (SELECT {number} AS g, line, id, value, reason FROM {PROBLEMS_TABLE} "
                         f"WHERE upload_id = {mark} AND source = {mark} AND severity = {mark} "
                         f"AND column_name = {mark} AND {matches} ORDER BY line, id LIMIT {int(examples)}) "
                         f"AS s{len(parts)}")
            params += [upload.id, source, group.severity, group.column, known.match if known else group.title]
    query = (f"SELECT e.g, e.line, e.value, e.reason, kept.cells FROM ({' UNION ALL '.join(parts)}) AS e "
             f"LEFT JOIN {ROWS_TABLE} AS kept ON kept.upload_id = {mark} AND kept.line = e.line "
             "ORDER BY e.g, e.line, e.id")
    who_at = _who_columns(upload)
    for number, line, value, reason, cells in db.execute_sql(query, params + [upload.id]).fetchall():
        group = found[number]
        if len(group.examples) < examples:  # each source gave its first few: the group's are the first of all
            group.examples.append(Example(line=line, who=_who(_cells(cells), who_at), value=value or "",
                                          reason=reason))


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
