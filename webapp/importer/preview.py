"""The dry run's preview: for the first personas it would update, what changes (old → new); for the first
it would create, what they would hold. Kept with the review counts, shown at the Review step.

The changes are the dry run's own: the column-wise merge's for rows alone (the same merge, run with its
changes for just the sampled rows, which share nothing with any other row), the Merger's for the others.
They are taken without the opt-in-all boxes; a ticked box also opts the personas in.
"""
import json

import polars as pl

from webapp.importer import merge_columns
from webapp.importer.fields import FIELDS

LIMITS = {"updated": 10, "created": 5}
LABELS = {"attributes": "Custom attributes"}


class Sample:
    """The first rows (in file order) that would update or create a persona, with their changes."""

    def __init__(self):
        self.rows = {action: [] for action in LIMITS}
        # Rows merged column-wise wait here and merge once, at the end: each merge has a fixed cost.
        self.waiting, self.waiting_count = [], {action: 0 for action in LIMITS}

    def wants(self, action: str) -> int:
        """How many more rows of this action the sample takes."""
        return LIMITS[action] - len(self.rows[action]) - self.waiting_count[action]

    def add_merged(self, alone: pl.DataFrame, counted: pl.DataFrame) -> None:
        """Rows merged column-wise (counted: the dry run's actions): keep the first of each action."""
        seqs = []
        for action in LIMITS:
            if self.wants(action) > 0:
                chosen = counted.filter(pl.col("action") == action).head(self.wants(action))["seq"]
                self.waiting_count[action] += len(chosen)
                seqs += chosen.to_list()
        if seqs:
            self.waiting.append(alone.filter(pl.col("seq").is_in(seqs)))

    def merge_waiting(self, mapped, stamp, headers) -> None:
        """Merge the kept column-wise rows (they share nothing with any other row) for their changes."""
        if not self.waiting:
            return
        rows = pl.concat(self.waiting, how="diagonal_relaxed")
        self.waiting, self.waiting_count = [], {action: 0 for action in LIMITS}
        merged = merge_columns.merge(rows, mapped, stamp, headers).rows.join(
            rows.select("seq", "s_email", "s_phone"), on="seq", how="left")
        for row in merged.iter_rows(named=True):
            changes = json.loads(row["changes"])
            self._add(row["action"], row["line"], row["persona_id"], _who(changes, row["s_email"], row["s_phone"]),
                      changes)

    def add_outcomes(self, outcomes) -> None:
        """Rows the Merger ran (one group batch): their outcomes without the boxes."""
        for outcome in outcomes:
            if outcome.action in LIMITS:
                persona = outcome.persona or {}
                self._add(outcome.action, outcome.line, persona.get("id"),
                          _who(outcome.changes, persona.get("email"), persona.get("phone")), outcome.changes)

    def take(self, other: "Sample") -> None:
        """Take in another sample of the same file (rows of the other path)."""
        for action, rows in other.rows.items():
            for row in rows:
                self._add(action, **row)

    def _add(self, action: str, line: int, persona_id, who: str, changes: dict) -> None:
        rows = self.rows[action]
        if len(rows) >= LIMITS[action] and line > rows[-1]["line"]:
            return  # full with earlier rows of the file
        rows.append({"line": line, "persona_id": persona_id, "who": who, "changes": changes})
        rows.sort(key=lambda row: row["line"])
        del rows[LIMITS[action]:]  # the first ones in the file

    def as_review(self) -> dict:
        """The sample as kept in the import's review (JSON)."""
        return {action: [{**row, "changes": _jsonable(row["changes"])} for row in rows]
                for action, rows in self.rows.items()}


def _who(changes: dict, email, phone) -> str:
    """The persona's email (else phone) before the row; for a new one, the row's."""
    for name, known in (("email", email), ("phone", phone)):
        if known:
            return known
        if name in changes and changes[name][1]:
            return changes[name][1]
    return ""


def _jsonable(changes: dict) -> dict:
    return {name: [_plain(old), _plain(new)] for name, (old, new) in changes.items()}


def _plain(value):
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def label(name: str) -> str:
    """A changed field as users know it."""
    return LABELS.get(name) or (FIELDS[name].label if name in FIELDS else name)


def shown(value) -> str:
    """A value as the preview shows it: Yes/No, lists joined, nothing as a dash."""
    if value is None or value == [] or value == "":
        return "—"
    if value is True or value is False:
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def lines(review: dict) -> dict:
    """The kept preview ready to show: per action, rows with their changes labelled (points apart)."""
    kept = (review or {}).get("preview") or {}
    out = {}
    for action in LIMITS:
        rows = []
        for row in kept.get(action) or []:
            changes = dict(row["changes"])
            points = changes.pop("points", None)
            rows.append({"line": row["line"], "persona_id": row["persona_id"], "who": row["who"],
                         "points": [shown(points[0]), shown(points[1])] if points else None,
                         "fields": [{"label": label(name), "old": shown(old), "new": shown(new)}
                                    for name, (old, new) in changes.items()]})
        out[action] = rows
    return out
