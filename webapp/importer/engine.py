"""Validate (dry run) and apply an import: staged rows, chunked set-based writes, exactly once.

Validation parses the stored file once, stages every parsed row with the import and simulates the
merge to count what would happen. Applying reads staged rows after the checkpoint, a chunk per
transaction: the chunk's personas, audit entries, audience members, problems and the checkpoint
commit together, so a worker killed anywhere resumes without applying a row twice.
"""
import json
import os
import random
import time
import uuid
from collections import Counter
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from functools import partial

from peewee import IntegrityError, OperationalError

from webapp.db import chunk_transaction, db, is_postgres, write_transaction
from webapp.importer import bulk
from webapp.importer.errors import FileRefused
from webapp.importer.memory import release_free_memory
from webapp.importer.merge import CONSENT_CHANNELS, Merger, PersonaIndex, Stamp
from webapp.importer.overlay import Overlay
from webapp.importer.pipeline import parsed_batches
from webapp.importer.personas_io import load_into, refresh_statistics, write_personas
from webapp.importer.readers import open_table
from webapp.importer.storage import opened_file
from webapp.importer.values import ParseContext, RowParser
from webapp.models import (
    Account, Audience, AudienceMember, AuditEntry, Import, ImportProblem, StagedRow, utcnow,
)

CHUNK_ROWS = 5000
STALE_AFTER = timedelta(seconds=60)
# A unique-key race or a deadlock with a concurrent import is retried on fresh data.
CONFLICT_RETRIES = 8
# PostgreSQL: deadlock_detected, serialization_failure.
RETRYABLE_PGCODES = {"40P01", "40001"}


def stale_after() -> timedelta:
    """How long a silent heartbeat means the run died (IMPORT_STALE_SECONDS, default 60 s)."""
    return timedelta(seconds=float(os.environ.get("IMPORT_STALE_SECONDS") or STALE_AFTER.total_seconds()))


def default_chunk_rows() -> int:
    """Rows applied per transaction (IMPORT_CHUNK_ROWS, default 5000)."""
    return int(os.environ.get("IMPORT_CHUNK_ROWS") or CHUNK_ROWS)


class LeaseLost(Exception):
    """Another run owns this import now; this one must stop without writing."""


@contextmanager
def import_table(upload: Import, max_rows: int, max_bytes: int, local=None):
    """The import's file (the stored one, or local: the same bytes in hand) opened as a table."""
    with (nullcontext(local) if local is not None else opened_file(upload)) as stream, open_table(
            stream, sheet=upload.sheet, header_line=upload.header_line, max_rows=max_rows, max_bytes=max_bytes) as table:
        yield table


def parse_context(account: Account) -> ParseContext:
    """How this account reads phones and dates."""
    return ParseContext(region=account.phone_region, day_first=account.day_first)


def _locked(import_id: int) -> Import:
    query = Import.select().where(Import.id == import_id)
    return (query.for_update() if is_postgres() else query).get()


def claim(import_id: int, ready: tuple[str, ...], working: str, max_attempts: int | None = None) -> str | None:
    """Take the import's lease when it is ready, or when its holder stopped beating; else None.

    Under the import's row lock, so of two runs started together exactly one gets the lease. A fresh
    start counts attempt 1; each takeover of a dead run counts one more, and past max_attempts the
    import is failed instead. started_at excludes the time the import lay dead, so that
    rows_done / (heartbeat_at - started_at) stays the working rate.
    """
    with write_transaction():
        upload = _locked(import_id)
        now = utcnow()
        dead = upload.heartbeat_at is None or upload.heartbeat_at < now - stale_after()
        if upload.status in ready or (upload.status == working and upload.lease is None):
            # Queued afresh (a validation is queued straight into "validating", with no lease).
            upload.attempt, upload.started_at = 1, now
        elif upload.status == working and dead:
            if max_attempts is not None and upload.attempt >= max_attempts:
                _halt(upload, now)
                return None
            worked = (upload.heartbeat_at - upload.started_at
                      if upload.heartbeat_at and upload.started_at and upload.heartbeat_at > upload.started_at
                      else timedelta(0))
            upload.attempt += 1
            upload.started_at = now - worked
        else:
            return None
        upload.lease, upload.status = uuid.uuid4().hex, working
        # Applying resumes at the checkpoint; a validation starts over.
        upload.rows_done = upload.checkpoint if working == "running" else 0
        upload.heartbeat_at = now
        upload.error_message = None
        upload.save()
        return upload.lease


def _halt(upload: Import, now) -> None:
    upload.status, upload.lease, upload.finished_at = "failed", None, now
    upload.error_message = (f"The import stopped unexpectedly {upload.attempt} times and was halted. "
                            "Rows applied so far stay applied; none was applied twice.")
    upload.save()


def fail(import_id: int, lease: str | None, message: str) -> None:
    """Mark the import failed with a message a marketer can read.

    With a lease: only if that lease still holds. Without: only if no run holds it (lease cleared,
    or its heartbeat stale), so a late failure report never fails a run that took over.
    """
    query = Import.update(status="failed", error_message=message, finished_at=utcnow(), lease=None)
    query = query.where(Import.id == import_id)
    if lease is not None:
        query = query.where(Import.lease == lease)
    else:
        stale = utcnow() - stale_after()
        query = query.where(Import.status.in_(("queued", "validating", "running")) & (
            Import.lease.is_null() | Import.heartbeat_at.is_null() | (Import.heartbeat_at < stale)))
    query.execute()


def _problem_rows(import_id: int, source: str, problems) -> list[tuple]:
    return [(import_id, source, p["row"], p["column"], p["value"], p["reason"], p["severity"]) for p in problems]


def _insert_problems(rows: list[tuple]) -> None:
    bulk.insert_rows(ImportProblem._meta.table_name,
                     ["upload_id", "source", "line", "column_name", "value", "reason", "severity"], rows)


def _columns_by_field(upload: Import) -> dict:
    """The file header each persona field comes from, so problems name the user's own column."""
    return {target: header for header, target in upload.mapping.items()}


# ---------------------------------------------------------------- validation (dry run)

def validate(import_id: int, lease: str, *, max_rows: int, max_bytes: int) -> dict:
    """Parse and stage every row, simulate the merge, store and return the review counts."""
    upload = Import.get_by_id(import_id)
    with import_table(upload, max_rows, max_bytes) as table, Overlay() as overlay:
        parser = RowParser(table.headers, upload.mapping, parse_context(upload.account))
        with write_transaction():
            StagedRow.delete().where(StagedRow.upload == upload).execute()
            ImportProblem.delete().where(ImportProblem.upload == upload).execute()
        simulation = _Simulation(upload, overlay)
        refresh_statistics()
        seq = 0
        for batch in parsed_batches(table.rows(), partial(_parse_and_encode, parser), CHUNK_ROWS):
            parsed = [row for row, _ in batch]
            with chunk_transaction():
                _check_lease(import_id, lease)
                staged = []
                for row, data in batch:
                    seq += 1
                    staged.append((import_id, seq, row["line"], data))
                bulk.insert_rows(StagedRow._meta.table_name, ["upload_id", "seq", "line", "data"], staged)
                _insert_problems(_problem_rows(import_id, "parse", (p for r in parsed for p in r["problems"])))
                _insert_problems(_problem_rows(import_id, "review", simulation.run(parsed)))
                Import.update(rows_done=seq, heartbeat_at=utcnow()).where(Import.id == import_id).execute()
            release_free_memory()
    if seq == 0:
        raise FileRefused("The file has a header row but no customer rows.")
    review = simulation.summary(seq)
    with write_transaction():
        _check_lease(import_id, lease)
        Import.update(review=review, staged=True, rows_total=seq, rows_done=seq, row_count=seq,
                      status="validated", lease=None, finished_at=utcnow()).where(Import.id == import_id).execute()
    return review


def _parse_and_encode(parser: RowParser, batch: list) -> list[tuple[dict, str]]:
    """Each (line, cells) parsed, with its staged form as JSON; the dry run needs no cells, so they stay in the JSON."""
    out = []
    for line, cells in batch:
        row = parser(line, cells)
        data = bulk.to_json(_staged_data(row))
        del row["cells"]
        out.append((row, data))
    return out


def _staged_data(row: dict) -> dict:
    warnings = sum(1 for p in row["problems"] if p["severity"] == "warning")
    return {"line": row["line"], "fields": row["fields"], "attributes": row["attributes"],
            "error": row["error"], "cells": row["cells"], "warnings": warnings}


class _Simulation:
    """The dry run: the real merge, chunk by chunk, over the database plus what earlier chunks did."""

    def __init__(self, upload: Import, overlay: Overlay):
        self.upload, self.counts, self.overlay = upload, Counter(), overlay
        self.opted_out = {channel: {"ids": set(), "lines": set()} for channel in CONSENT_CHANNELS}
        self.columns = _columns_by_field(upload)
        self.stamp = Stamp(import_id=upload.id, user_id=upload.user_id, at=None, terms_version=None)

    def run(self, parsed: list[dict]) -> list[dict]:
        """Simulate a batch of parsed rows and return the problems the merge finds."""
        index = self._index_for(parsed)
        merger = Merger(index, self.stamp)
        problems, touched = [], {}
        for row in parsed:
            outcome = merger.apply(row)
            self._note_opt_outs(row, outcome)
            self.counts[outcome.action] += 1
            self.counts["warnings"] += sum(1 for p in row["problems"] if p["severity"] == "warning")
            problems.extend(_named(outcome.problems, self.columns))
            if outcome.changes:
                touched[id(outcome.persona)] = outcome.persona
        self.counts["warnings"] += sum(1 for p in problems if p["severity"] == "warning")
        self.overlay.save(touched.values())
        return problems

    def _index_for(self, parsed: list[dict]) -> PersonaIndex:
        """The personas these rows can reach: simulated ones first, then the database's untouched ones."""
        emails = list({r["fields"]["email"] for r in parsed if r["fields"].get("email")})
        phones = list({r["fields"]["phone"] for r in parsed if r["fields"].get("phone")})
        index = PersonaIndex()
        for persona in self.overlay.by_keys(emails, phones):
            (index.add_loaded if persona["id"] is not None else index.add_new)(persona)
        simulated = set(index.by_id)
        load_into(index, self.upload.account_id, emails, phones)
        # A database row the simulation changed earlier may still carry keys it has since given up.
        for persona_id in self.overlay.holding(set(index.by_id) - simulated):
            index.forget(persona_id)
        return index

    def _note_opt_outs(self, row: dict, outcome) -> None:
        """Remember the personas an opt-out row reaches: the opt-in-all boxes must skip them at apply."""
        for channel, reached in self.opted_out.items():
            if row["fields"].get(f"{channel}_opt_out") is True:
                for persona in outcome.reached:
                    if persona["id"] is not None:
                        reached["ids"].add(persona["id"])
                    else:
                        reached["lines"].add(persona["created_by_line"])

    def summary(self, rows: int) -> dict:
        """Counts for the Review step, plus the in-file opt-outs the apply step must respect."""
        counts = {name: self.counts[name] for name in ("created", "updated", "unchanged", "rejected", "warnings")}
        opted_out = {channel: {kind: sorted(values) for kind, values in reached.items()}
                     for channel, reached in self.opted_out.items()}
        return {"rows": rows, **counts, "opted_out": opted_out}


def _named(problems: list[dict], columns: dict) -> list[dict]:
    """Problems with the persona field replaced by the file's own column header."""
    return [{**p, "column": columns.get(p["column"], p["column"])} for p in problems]


def _check_lease(import_id: int, lease: str) -> Import:
    upload = _locked(import_id)
    if upload.lease != lease:
        raise LeaseLost(f"import {import_id} is owned by another run")
    return upload


# ---------------------------------------------------------------- apply

def apply(import_id: int, lease: str, chunk_rows: int | None = None, after_chunk=None) -> Import:
    """Apply staged rows after the checkpoint, one chunk per transaction, then mark the import completed.

    Each chunk commits with its checkpoint and heartbeat. A chunk that loses a race with a concurrent
    import (unique key taken, deadlock) is rolled back whole and retried on fresh data.
    """
    chunk_rows = chunk_rows or default_chunk_rows()
    upload = Import.get_by_id(import_id)
    stamp_base = _stamp(upload)
    columns = _columns_by_field(upload)
    while True:
        refresh_statistics()
        for attempt in range(CONFLICT_RETRIES):
            try:
                with chunk_transaction():
                    more = _apply_chunk(import_id, lease, stamp_base, columns, chunk_rows)
                break
            except Exception as error:  # noqa: BLE001 - re-raised unless a retryable race
                if not _retryable(error) or attempt == CONFLICT_RETRIES - 1:
                    raise
                # Jitter, so two chunks that deadlocked do not collide again in step.
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        release_free_memory()
        if not more:
            return Import.get_by_id(import_id)
        if after_chunk:
            after_chunk()


def _retryable(error: Exception) -> bool:
    """A race with another transaction that a retry on fresh data resolves."""
    if isinstance(error, IntegrityError):
        return True
    for candidate in (error, getattr(error, "orig", None)):
        if getattr(candidate, "pgcode", None) in RETRYABLE_PGCODES:
            return True
        if type(candidate).__name__ == "IntegrityError":
            return True
    # SQLite past its busy timeout.
    return isinstance(error, OperationalError) and "locked" in str(error)


def _stamp(upload: Import) -> Stamp:
    opted_out = {channel: {kind: set(values) for kind, values in reached.items()}
                 for channel, reached in (upload.review.get("opted_out") or {}).items()}
    opt_in_all = {"sms": bool(upload.options.get("opt_in_sms")), "email": bool(upload.options.get("opt_in_email"))}
    return Stamp(import_id=upload.id, user_id=upload.user_id, at=None, terms_version=upload.terms_version,
                 opt_in_all=opt_in_all, opted_out=opted_out)


def _apply_chunk(import_id: int, lease: str, stamp: Stamp, columns: dict, chunk_rows: int) -> bool:
    upload = _check_lease(import_id, lease)
    # Staged rows are numbered 1..n: a bounded range reads just this chunk (an open-ended
    # "seq > checkpoint ... LIMIT" makes PostgreSQL sort every remaining row, chunk after chunk).
    # Raw SQL: Peewee's row iteration cost more than the query for thousands of rows.
    mark = "%s" if is_postgres() else "?"
    staged = db.execute_sql(
        f'SELECT seq, data FROM "{StagedRow._meta.table_name}" WHERE upload_id = {mark} AND seq > {mark} '
        f"AND seq <= {mark} ORDER BY seq", [import_id, upload.checkpoint, upload.checkpoint + chunk_rows]).fetchall()
    now = utcnow()
    if not staged:
        Import.update(status="completed", finished_at=now, lease=None, heartbeat_at=now).where(
            Import.id == import_id).execute()
        return False
    rows = [json.loads(data) for _, data in staged]
    index = PersonaIndex()
    load_into(index, upload.account_id, {r["fields"].get("email") for r in rows},
              {r["fields"].get("phone") for r in rows}, lock=True)
    if any(reached.get("lines") for reached in stamp.opted_out.values()):
        _mark_created_lines(index, import_id)
    stamp.at = now
    merger = Merger(index, stamp)
    outcomes = [merger.apply(row) for row in rows]
    changed = list({o.persona["id"]: o.persona for o in outcomes if o.changes and o.persona["id"]}.values())
    write_personas(upload.account_id, changed, index.new, now)
    audience_id = upload.audience_id or _create_audience(upload, now)
    _write_audit(upload, outcomes, now)
    touched = {o.persona["id"] for o in outcomes if o.action in ("created", "updated")}
    bulk.insert_rows(AudienceMember._meta.table_name, ["audience_id", "persona_id"],
                     [(audience_id, pid) for pid in sorted(touched)], ignore_conflicts=True)
    problems = [p for o in outcomes for p in _named(o.problems, columns)]
    _insert_problems(_problem_rows(import_id, "apply", problems))
    counts = Counter(upload.counts)
    counts.update(o.action for o in outcomes)
    counts["warnings"] += sum(r["warnings"] for r in rows) + sum(p["severity"] == "warning" for p in problems)
    # Staged rows are numbered 1..n, so the checkpoint is also the count of rows done.
    Import.update(checkpoint=staged[-1][0], rows_done=staged[-1][0], counts=dict(counts), heartbeat_at=now, audience_id=audience_id).where(
        (Import.id == import_id) & (Import.lease == lease)).execute()
    return True


def _mark_created_lines(index: PersonaIndex, import_id: int) -> None:
    """Tell personas this import created in earlier chunks which row created them (opt-out exclusions)."""
    created = AuditEntry.select(AuditEntry.persona_id, AuditEntry.row).where(
        (AuditEntry.import_id == import_id) & (AuditEntry.action == "created")
        & AuditEntry.persona_id.in_(list(index.by_id)))
    for persona_id, line in created.tuples():
        index.by_id[persona_id]["created_by_line"] = line


def _create_audience(upload: Import, now) -> int:
    name = f"Import: {upload.file_name} {now:%Y-%m-%d %H:%M}"
    return Audience.create(account=upload.account_id, name=name, source_import=upload.id, created_at=now).id


def _write_audit(upload: Import, outcomes, now) -> None:
    entries = [(upload.account_id, o.persona["id"], upload.id, o.line, upload.user_id, now, o.action,
                bulk.to_json(o.changes)) for o in outcomes if o.action in ("created", "updated")]
    bulk.insert_rows(AuditEntry._meta.table_name,
                     ["account_id", "persona_id", "import_id", "row", "user_id", "created_at", "action", "changes"],
                     entries)
