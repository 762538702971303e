"""Rows that interact, through the row-at-a-time Merger: from parsed columns to the Merger's rows and back.

The validation runs each closed group of interacting rows through the Merger on its own; the apply runs
a chunk's interacting rows (and any row whose persona changed since the validation) the same way, on
personas loaded and locked from the database.
"""
from datetime import date

import polars as pl

from webapp.importer.merge import Merger, PersonaIndex, Stamp
from webapp.importer.personas_io import load_into


def as_rows(frame: pl.DataFrame, mapped: list[str]) -> list[dict]:
    """Parsed rows as the Merger takes them (RowParser's shape: dates as ISO text, blank fields left out)."""
    rows = []
    for record in frame.iter_rows(named=True):
        fields = {}
        for name in mapped:
            value = record[name]
            if value is not None:
                fields[name] = value.isoformat() if isinstance(value, date) else value
        rows.append({"seq": record["seq"], "line": record["line"], "fields": fields,
                     "attributes": record["attributes"] or [], "error": record["error"],
                     "warnings": record["warnings"]})
    return rows


def run(account_id: int, rows: list[dict], stamp: Stamp, lock: bool = False):
    """Each row through the Merger in file order, over the personas their keys reach; (index, outcomes)."""
    index = PersonaIndex()
    load_into(index, account_id, {r["fields"].get("email") for r in rows}, {r["fields"].get("phone") for r in rows},
              lock=lock)
    merger = Merger(index, stamp)
    return index, [merger.apply(row) for row in rows]


def changed_channels(changes: dict) -> tuple[bool, set[str]]:
    """Whether changes touch anything but consent, and which consent channels they touch."""
    channels = {name.split("_", 1)[0] for name in changes if name.endswith(("_opt_in", "_opt_out"))}
    other = any(not name.endswith(("_opt_in", "_opt_out")) for name in changes)
    return other, channels

