"""Validate (dry run) and apply an import: kept column chunks, set-based writes, exactly once.

Validation (validation.py) parses the stored file once, finds which rows interact, simulates the merge and
keeps the parsed rows as compressed column chunks. Applying reads those chunks after the checkpoint, a
chunk per transaction: its personas, attributes, audit entries, audience members, problems and the
checkpoint commit together, so a worker killed anywhere resumes without applying a row twice.

A chunk's independent rows reuse what the validation found (the persona each matched and its state)
where that persona is unchanged since (its version) and merge column-wise. Its interacting rows, and any
row whose persona changed since, run through the Merger on the personas as they are now, locked.
"""
import json
import logging
import math
import os
import random
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import polars as pl
from peewee import IntegrityError, OperationalError

from webapp import config
from webapp.db import chunk_transaction, is_postgres, write_transaction
from webapp.importer import lookup, merge_columns, row_merge, staging, units, validation, writes
from webapp.importer.lease import LeaseLost, check_lease, claim, fail, stale_after  # noqa: F401 - the job API
from webapp.importer.merge import Stamp
from webapp.importer.parse import Plan
from webapp.importer.personas_io import refresh_statistics, write_personas
from webapp.importer.problem_rows import fill_problem_cells
from webapp.importer.problems import WARNING
from webapp.importer.problems import frame as problem_frame
from webapp.importer.readers import open_table
from webapp.importer.states import move
from webapp.importer.storage import opened_file
from webapp.logs import describe
from webapp.models import AppliedUnit, Audience, AuditEntry, Import, utcnow

# A unique-key race or a deadlock with a concurrent import is retried on fresh data.
CONFLICT_RETRIES = 8
# PostgreSQL: deadlock_detected, serialization_failure; and every integrity violation (class 23), such as
# the unique_violation (23505) a COPY of new personas meets when another import just created one of them.
RETRYABLE_PGCODES = {"40P01", "40001"}
parse_context = validation.parse_context
log = logging.getLogger(__name__)


@contextmanager
def import_table(upload: Import, max_rows: int, max_bytes: int, local=None):
    """The import's file (the stored one, or local: the same bytes in hand) opened as a table."""
    with (nullcontext(local) if local is not None else opened_file(upload)) as stream, open_table(
            stream, sheet=upload.sheet, header_line=upload.header_line, max_rows=max_rows, max_bytes=max_bytes) as table:
        yield table


def validate(import_id: int, lease: str, *, max_rows: int, max_bytes: int) -> dict:
    """Parse and keep every row, simulate the merge, store and return the review counts."""
    return validation.validate(import_id, lease, max_rows=max_rows, max_bytes=max_bytes, table_of=import_table)


def apply(import_id: int, lease: str, chunk_rows: int | None = None, after_chunk=None) -> Import:
    """Apply the kept rows unit by unit, each unit one transaction with its marker, then complete the import.

    A unit is a range of chunk_rows kept rows: its independent rows, or its interacting ones. Interacting
    units apply in file order; independent ones commute with everything, so on PostgreSQL two apply at once.
    A unit that loses a race with a concurrent import (unique key taken, deadlock) is rolled back whole and
    retried on fresh data, all of it through the Merger. after_chunk() runs after each unit commits.
    """
    upload = Import.get_by_id(import_id)
    size = _unit_rows(upload, lease, chunk_rows or staging.unit_rows())
    stamp = _stamp(upload)
    _learn_created(stamp, import_id)
    context = Unit(upload=upload, lease=lease, size=size, stamp=stamp, plan=Plan.of(upload.headers, upload.mapping),
                   audience_id=_audience(upload, lease))
    done = {unit for (unit,) in AppliedUnit.select(AppliedUnit.unit).where(AppliedUnit.upload == import_id).tuples()}
    ranges = range(math.ceil(upload.rows_total / size))
    ordered = [f"together:{r}" for r in ranges if f"together:{r}" not in done]
    free = [f"alone:{r}" for r in ranges if f"alone:{r}" not in done]
    units.run(ordered, free, context.apply, workers=apply_workers(), after_each=after_chunk)
    return _complete(upload, lease)


def apply_workers() -> int:
    """Units applied at once: two on PostgreSQL (IMPORT_APPLY_WORKERS), one on SQLite, whose writers queue."""
    if not is_postgres():
        return 1
    return config.current().apply_workers or min(2, os.cpu_count() or 1)


def _unit_rows(upload: Import, lease: str, wanted: int) -> int:
    """The apply's unit size: chosen when it first starts, kept by every run that resumes it."""
    if upload.unit_rows:
        return upload.unit_rows
    with write_transaction():
        check_lease(upload.id, lease)
        Import.update(unit_rows=wanted).where(Import.id == upload.id).execute()
    return wanted


def _audience(upload: Import, lease: str) -> int:
    """The import's generated audience, made once before any unit adds to it."""
    if upload.audience_id:
        return upload.audience_id
    now = utcnow()
    with write_transaction():
        check_lease(upload.id, lease)
        name = f"Import: {upload.file_name} {now:%Y-%m-%d %H:%M}"
        audience_id = Audience.create(account=upload.account_id, name=name, source_import=upload.id, created_at=now).id
        Import.update(audience_id=audience_id).where(Import.id == upload.id).execute()
    return audience_id


def _complete(upload: Import, lease: str) -> Import:
    """Every unit applied: the problem rows' cells, the counts summed, the import completed."""
    fill_problem_cells(upload, lambda u: import_table(u, max_rows=2 ** 62, max_bytes=2 ** 62))
    counts = Counter()
    for (unit_counts,) in AppliedUnit.select(AppliedUnit.counts).where(AppliedUnit.upload == upload.id).tuples():
        counts.update(unit_counts if isinstance(unit_counts, dict) else json.loads(unit_counts))
    now = utcnow()
    if not move(upload.id, "complete", held=lease, finished_at=now, lease=None, heartbeat_at=now, counts=dict(counts)):
        raise LeaseLost(f"import {upload.id} is owned by another run")
    return Import.get_by_id(upload.id)


def _retryable(error: Exception) -> bool:
    """A race with another transaction that a retry on fresh data resolves.

    Peewee wraps the driver's errors of the queries it runs (IntegrityError, OperationalError, with the
    driver's in .orig), but the bulk writes (COPY, executemany on a raw cursor) raise the driver's own:
    psycopg2.errors.UniqueViolation, sqlite3.IntegrityError. Both kinds count.
    """
    if isinstance(error, IntegrityError):
        return True
    for candidate in (error, getattr(error, "orig", None)):
        if candidate is None:
            continue
        pgcode = getattr(candidate, "pgcode", None) or ""
        if pgcode in RETRYABLE_PGCODES or pgcode.startswith("23"):
            return True
        names = {cls.__name__ for cls in type(candidate).__mro__}
        if "IntegrityError" in names:  # psycopg2's (UniqueViolation is one), sqlite3's, peewee's
            return True
        # SQLite past its busy timeout.
        if "OperationalError" in names and "locked" in str(candidate):
            return True
    return isinstance(error, OperationalError) and "locked" in str(error)


def _stamp(upload: Import) -> Stamp:
    opted_out = {channel: {kind: set(values) for kind, values in reached.items()}
                 for channel, reached in (upload.review.get("opted_out") or {}).items()}
    opt_in_all = {"sms": bool(upload.options.get("opt_in_sms")), "email": bool(upload.options.get("opt_in_email"))}
    return Stamp(import_id=upload.id, user_id=upload.user_id, at=None, terms_version=upload.terms_version,
                 opt_in_all=opt_in_all, opted_out=opted_out)


@dataclass
class Unit:
    """What every unit of one apply run shares."""

    upload: Import
    lease: str
    size: int
    stamp: Stamp
    plan: Plan
    audience_id: int

    def apply(self, unit: str) -> bool:
        """Apply one unit in its own transaction, retrying a lost race; False when it has no rows."""
        # A table the import grows needs fresh statistics, or PostgreSQL plans its lookups for an empty one.
        refresh_statistics()
        for attempt in range(CONFLICT_RETRIES):
            try:
                with chunk_transaction():
                    return self._apply(unit, recheck=attempt > 0)
            except Exception as error:  # noqa: BLE001 - re-raised unless a retryable race
                if not _retryable(error) or attempt == CONFLICT_RETRIES - 1:
                    raise
                # describe(): the error's kind and constraint, never the database's message (it quotes the row).
                log.info("unit %s of import %s lost a race with another transaction (%s); retrying it on fresh "
                         "data (%d of %d)", unit, self.upload.id, describe(error), attempt + 1, CONFLICT_RETRIES - 1)
                # Jitter, so two units that deadlocked do not collide again in step.
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        return False

    def _apply(self, unit: str, recheck: bool) -> bool:
        upload, plan = self.upload, self.plan
        if Import.select(Import.lease).where(Import.id == upload.id).scalar() != self.lease:
            raise LeaseLost(f"import {upload.id} is owned by another run")
        kind, part = unit.split(":")
        start = int(part) * self.size
        rows = staging.load(upload.id, kind, start, start + self.size)
        if rows is None or rows.is_empty():
            return False
        now = utcnow()
        stamp = replace(self.stamp, at=now)
        alone = rows.clear() if recheck or kind == "together" else rows
        merged = merge_columns.merge(alone, plan.mapped(), stamp, plan.headers())
        # Independent rows whose persona changed since the validation (or went) merge again, row by row. An
        # updated persona's version is checked as it is written (PostgreSQL); the others' are checked first.
        checked = alone
        if is_postgres():
            checked = alone.join(merged.rows.filter(pl.col("action") != "updated").select("seq"), on="seq", how="semi")
        stale = _stale(upload.account_id, checked)
        again = alone.filter(_reaches(stale))
        merged = merged.without(again["seq"])
        index, outcomes = _merge_again(upload, rows if recheck or kind == "together" else again, stamp, plan)
        changed = _changed(outcomes)
        # New personas are numbered in file order, whichever way their rows merged.
        created = _number(merged.personas.filter(pl.col("id").is_null()), index.new)
        _learn_created(self.stamp, upload.id, index.new)
        writes.create_personas(upload.account_id, created, now)
        updated = merged.personas.filter(pl.col("id").is_not_null())
        written = writes.update_personas(updated, merged.changed, now, checked=True)
        write_personas(upload.account_id, changed, index.new, now)
        # PostgreSQL: a persona another import changed since the validation is left alone, and merged again.
        lost = alone.filter(_reaches(set(updated["id"].to_list()) - written))
        if not lost.is_empty():
            merged = merged.without(lost["seq"])
            index, late = _merge_again(upload, lost, stamp, plan)
            write_personas(upload.account_id, _changed(late), index.new, now)
            outcomes += late
        done = merged.rows.join(created.select("seq", new_id="id"), on="seq", how="left").with_columns(
            persona_id=pl.coalesce("persona_id", "new_id")).drop("new_id")

        entries = pl.concat([done.filter(pl.col("action").is_in(["created", "updated"]))
                             .select("persona_id", row="line", action="action", changes="changes"),
                             _entries(outcomes)])
        _write_audit(upload, entries, now)
        writes.audience(self.audience_id, done.filter(pl.col("action") != "rejected")["persona_id"].to_list(),
                        ignore_conflicts=False)
        writes.audience(self.audience_id, [o.persona["id"] for o in outcomes if o.action != "rejected"],
                        ignore_conflicts=True)
        problems = pl.concat([merged.problems, _problems(outcomes, plan)])
        writes.problems(upload.id, "apply", problems)
        counts = Counter(done["action"].to_list())
        counts.update(o.action for o in outcomes)
        counts["warnings"] += int(rows["warnings"].sum()) + int((problems["severity"] == WARNING).sum())
        AppliedUnit.insert(upload=upload.id, unit=unit, rows=len(rows), counts=dict(counts)).execute()
        # The lease is checked as the unit's last write: a run that lost it rolls the whole unit back.
        moved = Import.update(rows_done=Import.rows_done + len(rows), checkpoint=Import.checkpoint + len(rows),
                              heartbeat_at=now).where((Import.id == upload.id) & (Import.lease == self.lease)).execute()
        if not moved:
            raise LeaseLost(f"import {upload.id} is owned by another run")
        return True


def _number(created: pl.DataFrame, merged_new: list[dict]) -> pl.DataFrame:
    """Give the chunk's new personas ids in the order of the rows creating them (column-wise or not)."""
    merger_lines = [persona["created_by_line"] for persona in merged_new]
    lines = pl.concat([created["line"], pl.Series(merger_lines, dtype=pl.Int64)]).sort()
    numbered = dict(zip(lines.to_list(), writes.new_ids(len(lines))))
    for persona, line in zip(merged_new, merger_lines):
        persona["id"] = numbered[line]
    ids = lines.to_frame("line").with_columns(id=pl.Series(list(numbered.values()), dtype=pl.Int64))
    return created.drop("id").join(ids, on="line", how="left", maintain_order="left")


def _changed(outcomes) -> list[dict]:
    """The existing personas the Merger's rows changed, each once (before new ones are numbered)."""
    return list({o.persona["id"]: o.persona for o in outcomes if o.changes and o.persona["id"] is not None}.values())


def _reaches(ids: set[int]) -> pl.Expr:
    """Rows whose target persona (or second, ambiguous one) is one of ids."""
    listed = list(ids)
    return pl.col("target").is_in(listed).fill_null(False) | pl.col("other").is_in(listed).fill_null(False)


def _stale(account_id: int, alone: pl.DataFrame) -> set[int]:
    """Personas independent rows matched whose version changed since the validation read them."""
    checked = pl.concat([alone.select(id="target", version="s_version"), alone.select(id="other", version="o_version")])
    checked = checked.drop_nulls("id").unique("id")
    return lookup.stale(account_id, checked["id"].to_list(), checked["version"].to_list())


def _merge_again(upload: Import, rows: pl.DataFrame, stamp: Stamp, plan: Plan):
    """Rows through the Merger on the personas as they are now, locked: (index, outcomes)."""
    return row_merge.run(upload.account_id, row_merge.as_rows(rows.sort("seq"), plan.mapped()), stamp, lock=True)


def _learn_created(stamp: Stamp, import_id: int, personas=None) -> None:
    """Personas this import created by rows an opt-out row of the file also reaches, by their new ids.

    The validation knew them only by the creating row (they had no id); the boxes must skip them in
    later chunks too. personas: the chunk's new ones; None reads those of earlier runs from the audit log.
    """
    for reached in stamp.opted_out.values():
        lines = reached.get("lines") or set()
        if not lines:
            continue
        if personas is None:
            query = AuditEntry.select(AuditEntry.persona_id).where(
                (AuditEntry.import_id == import_id) & AuditEntry.row.in_(sorted(lines))
                & (AuditEntry.action == "created"))
            found = [persona_id for (persona_id,) in query.tuples()]
        else:
            found = [p["id"] for p in personas if p.get("created_by_line") in lines]
        reached.setdefault("ids", set()).update(found)


def _entries(outcomes) -> pl.DataFrame:
    """The audit entries of the Merger's created and updated rows."""
    from webapp.importer.bulk import to_json

    kept = [o for o in outcomes if o.action in ("created", "updated")]
    return pl.DataFrame({"persona_id": [o.persona["id"] for o in kept], "row": [o.line for o in kept],
                         "action": [o.action for o in kept], "changes": [to_json(o.changes) for o in kept]},
                        schema={"persona_id": pl.Int64, "row": pl.Int64, "action": pl.String, "changes": pl.String})


def _problems(outcomes, plan: Plan) -> pl.DataFrame:
    """The Merger's problems, naming the file's own columns."""
    return problem_frame((p for o in outcomes for p in o.problems), plan.headers())


def _write_audit(upload: Import, entries: pl.DataFrame, now) -> None:
    writes.audit(upload, entries, now)

