"""Validation, the dry run: parse the file once, find which rows interact, simulate the merge, keep it all.

1. Parse: the file's rows in column batches (batches.py, parse.py), spilled to a local temp file; their
   problems and the cells of their problem rows are stored.
2. Match: every row's email and phone against the account's personas, a batch at a time
   (lookup.match_keys), and which rows interact (independence.groups).
3. Simulate: rows that share nothing with any other merge column-wise (merge_columns), with the state of
   the persona they match; each closed group of the others runs through the Merger. Counts come out for
   every choice of the Review step's opt-in-all boxes.
4. Keep: the parsed rows, with the state each independent row was merged against, as compressed column
   chunks (staging) for the apply to reuse.
"""
import os
import tempfile
import threading
from collections import Counter
from contextlib import ExitStack, contextmanager, nullcontext

import polars as pl

from webapp.db import chunk_transaction, db, write_transaction
from webapp.importer import independence, lookup, merge_columns, preview, row_merge, staging, writes
from webapp.importer.errors import AMBIGUOUS_MATCH, ARCHIVED, FileRefused
from webapp.importer.fields import CHANNELS
from webapp.importer.header_row import HEADER_ONLY
from webapp.importer.lease import check_lease
from webapp.importer.merge import Stamp
from webapp.importer.parse import Plan, parse_batch
from webapp.importer.personas_io import refresh_statistics
from webapp.importer.problem_rows import fill_problem_cells
from webapp.importer.problems import WARNING
from webapp.importer.problems import frame as problem_frame
from webapp.importer.states import move
from webapp.importer.values import ParseContext
from webapp.models import Import, ImportProblem, ProblemRow, utcnow

CHUNK_ROWS = None  # rows parsed per batch; None: two of the apply's units (the chunk_rows setting, IMPORT_CHUNK_ROWS)
# Interacting rows go through the Merger about this many at a time (whole groups): as dicts they weigh a kilobyte each.
GROUP_ROWS = 10_000
COUNTED = ("created", "updated", "unchanged", "rejected", "warnings")
# The opt-in-all boxes as the Review step may tick them: (SMS, Email).
BOXES = {"none": (False, False), "sms": (True, False), "email": (False, True), "both": (True, True)}


def validate(import_id: int, lease: str, *, max_rows: int, max_bytes: int, table_of) -> dict:
    """Parse and keep every row, simulate the merge, store and return the review counts.

    table_of(upload, max_rows, max_bytes): the import's file opened as a table (a context manager).
    """
    upload = Import.get_by_id(import_id)
    account_id, ctx = upload.account_id, parse_context(upload.account)
    with write_transaction():
        staging.delete(import_id)
        ImportProblem.delete().where(ImportProblem.upload == upload).execute()
        ProblemRow.delete().where(ProblemRow.upload == upload).execute()
    refresh_statistics()
    with table_of(upload, max_rows, max_bytes) as table, tempfile.TemporaryFile() as spill:
        plan = Plan.of(table.headers, upload.mapping)
        simulation = Simulation(upload, plan)
        parts, keys, total, memos = [], [], 0, {}
        matcher = lookup.Matcher(account_id)
        for batch in table.batches(CHUNK_ROWS or 2 * staging.unit_rows()):
            parsed = parse_batch(batch, plan, ctx, memos)
            rows = parsed.rows.with_columns(seq=pl.int_range(total + 1, total + 1 + len(parsed.rows), dtype=pl.Int64))
            total += len(rows)
            parts.append((*_spill(spill, rows), total))
            keys.append(independence.row_keys(rows))
            with chunk_transaction():
                check_lease(import_id, lease)
                matcher.add(rows.select("seq", _key(rows, "email"), _key(rows, "phone")))
                writes.problems(import_id, "parse", parsed.problems)
                writes.problem_cells(import_id, parsed.problem_cells)
                Import.update(rows_done=total, heartbeat_at=utcnow()).where(Import.id == import_id).execute()
        if total == 0:
            raise FileRefused(HEADER_ONLY)
        matched = matcher.matches()
        groups = independence.groups(pl.concat(keys), matched)
        del keys
        # The interacting rows' Merger runs beside the column-wise merge below: one is Python, the
        # other mostly polars and the database, so the two share the machine's cores.
        interacting = Simulation(upload, plan)
        with _beside(lambda: interacting.run_groups(_read_rows(spill, parts, groups), lease)), ExitStack() as stack:
            # Each part joins its own matches and groups: joining all of them built their hash tables per part.
            lasts = pl.Series([last for _, _, last in parts], dtype=pl.Int64)
            matched_of, groups_of = _by_part(matched, lasts), _by_part(groups, lasts)
            states = stack.enter_context(lookup.PartStates(account_id, _wanted(matched, groups, lasts)))
            for number, part in enumerate(parts):
                rows = (_unspill(spill, part).join(matched_of.get(number, matched.clear()), on="seq", how="left")
                        .join(groups_of.get(number, groups.clear()), on="seq", how="left"))
                alone = with_state(rows.filter(pl.col("group").is_null()), states.of(number))
                merged = merge_columns.merge(alone, plan.mapped(), simulation.stamp, plan.headers(), writes=False)
                simulation.count_merged(merged, int(alone["warnings"].sum()))
                simulation.sample.add_merged(alone, merged.rows)
                with chunk_transaction():
                    check_lease(import_id, lease)
                    staging.save(import_id, "alone", alone)
                    # In the same columns (state left empty): a unit retried merges any row the Merger's way.
                    staging.save(import_id, "together", pl.concat(
                        [alone.clear(), rows.filter(pl.col("group").is_not_null())], how="diagonal_relaxed"))
                    writes.problems(import_id, "review", merged.problems)
                    Import.update(heartbeat_at=utcnow()).where(Import.id == import_id).execute()
        simulation.sample.merge_waiting(plan.mapped(), simulation.stamp, plan.headers())
        simulation.add(interacting)
        # Rows the merge found a problem in get their cells now, while the file is open.
        fill_problem_cells(upload, lambda _: nullcontext(table))
    review = simulation.summary(total)
    with write_transaction():
        check_lease(import_id, lease)
        move(import_id, "validated", held=lease, review=review, staged=True, rows_total=total, rows_done=total,
             row_count=total, lease=None, finished_at=utcnow())
    return review


def parse_context(account) -> ParseContext:
    """How this account reads phones and dates."""
    return ParseContext(region=account.phone_region, day_first=account.day_first)


def _key(rows: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in rows.columns else pl.lit(None, dtype=pl.String).alias(name)


def _spill(spill, rows: pl.DataFrame) -> tuple[int, int]:
    """Write a frame to the temp file; returns where it lies (offset, length)."""
    data = staging.encode(rows)
    offset = spill.tell()
    spill.write(data)
    spill.flush()  # read back with os.pread, from two threads
    return offset, len(data)


def _unspill(spill, part: tuple[int, int, int]) -> pl.DataFrame:
    """A part's rows back from the temp file (part: offset, length, last seq)."""
    offset, length, _ = part
    return staging.decode(os.pread(spill.fileno(), length, offset))


def _by_part(frame: pl.DataFrame, lasts: pl.Series) -> dict[int, pl.DataFrame]:
    """A frame with a "seq" column split by part: part n holds the seqs after part n-1's last, up to its own."""
    numbered = frame.with_columns(_part=lasts.search_sorted(frame["seq"], side="left"))
    return {key[0]: piece for key, piece in numbered.partition_by("_part", as_dict=True, include_key=False).items()}


def _wanted(matched: pl.DataFrame, groups: pl.DataFrame, lasts: pl.Series) -> pl.DataFrame:
    """(id, part): the personas the independent rows of each part match, whose state their merge needs."""
    alone = matched.join(groups.select("seq"), on="seq", how="anti")
    alone = alone.with_columns(part=lasts.search_sorted(alone["seq"], side="left"))
    return pl.concat([alone.select("part", id="email_id"), alone.select("part", id="phone_id")]).drop_nulls().unique()


def _read_rows(spill, parts: list, groups: pl.DataFrame) -> pl.DataFrame:
    """The spilled rows of these groups."""
    frames = [_unspill(spill, part).join(groups, on="seq", how="inner") for part in parts]
    return pl.concat(frames, how="diagonal_relaxed")


@contextmanager
def _beside(work):
    """Run work in a thread (with its own database connection) while the block runs; re-raise its error."""
    failed = []

    def run():
        try:
            with db.connection_context():
                work()
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
            failed.append(error)

    thread = threading.Thread(target=run, name="validation-groups", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise failed[0]


def _describe(prefix: str) -> pl.Expr:
    """merge.describe as an expression: a persona's id and the key a marketer recognises."""
    key = pl.coalesce(pl.col(f"{prefix}email"), pl.col(f"{prefix}phone"), pl.lit(""))
    return pl.format("customer #{} ({})", pl.col(f"{prefix}id"), key)


def with_state(rows: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """Independent rows with the persona each matches ("target", its state as "s_<column>"), a second one
    for an ambiguous match ("other", "o_version"), and the rejection a match earns ("rejection").

    state: the state of the personas these rows match (lookup.PartStates).
    """
    if "email_id" not in rows.columns:
        rows = rows.with_columns(email_id=pl.lit(None, dtype=pl.Int64), phone_id=pl.lit(None, dtype=pl.Int64))
    email_id, phone_id = pl.col("email_id"), pl.col("phone_id")
    ambiguous = email_id.is_not_null() & phone_id.is_not_null() & (email_id != phone_id)
    rows = rows.with_columns(target=pl.coalesce(email_id, phone_id), other=pl.when(ambiguous).then(phone_id))
    rows = rows.join(state.rename(lambda c: f"s_{c}"), left_on="target", right_on="s_id", how="left",
                     maintain_order="left").with_columns(s_id=pl.col("target"))
    rows = rows.join(state.select(o_id="id", o_email="email", o_phone="phone", o_version="version"),
                     left_on="other", right_on="o_id", how="left", maintain_order="left").with_columns(o_id="other")
    live = pl.col("error").is_null()
    rejection = (pl.when(live & ambiguous).then(pl.format(AMBIGUOUS_MATCH.text, _describe("s_"), _describe("o_")))
                 .when(live & pl.col("s_archived").fill_null(False)).then(pl.format(ARCHIVED.text, _describe("s_"))))
    return rows.with_columns(rejection=rejection).drop("s_id", "o_id", "o_email", "o_phone")


class Simulation:
    """The dry run's counts, for every choice of the boxes, and the personas in-file opt-outs reach."""

    def __init__(self, upload: Import, plan: Plan):
        self.upload, self.plan = upload, plan
        self.counts = {boxes: Counter() for boxes in BOXES}
        self.opted_out = {channel: {"ids": set(), "lines": set()} for channel in CHANNELS}
        self.stamp = Stamp(import_id=upload.id, user_id=upload.user_id, at=None, terms_version=None)
        self.sample = preview.Sample()

    def add(self, other: "Simulation") -> None:
        """Take in the counts, in-file opt-outs and preview sample of another simulation of the same file."""
        self.sample.take(other.sample)
        for boxes in BOXES:
            self.counts[boxes].update(other.counts[boxes])
        for channel in CHANNELS:
            for kind in ("ids", "lines"):
                self.opted_out[channel][kind] |= other.opted_out[channel][kind]

    def count_merged(self, merged: merge_columns.Merged, parse_warnings: int) -> None:
        """Count independent rows: a box makes an unchanged row updated where it would opt the persona in."""
        rows = merged.rows
        warnings = parse_warnings + int((merged.problems["severity"] == WARNING).sum())
        for boxes, ticked in BOXES.items():
            counts = self.counts[boxes]
            boxed = pl.lit(False)
            for channel, on in zip(CHANNELS, ticked):
                if on:
                    boxed = boxed | pl.col(f"box_{channel}")
            action = rows.select(pl.when((pl.col("action") == "unchanged") & boxed).then(pl.lit("updated"))
                                 .otherwise(pl.col("action")).alias("action"))["action"]
            counts.update(dict(action.value_counts().iter_rows()))
            counts["warnings"] += warnings

    def run_groups(self, frame: pl.DataFrame, lease: str) -> None:
        """Each closed group of interacting rows through the Merger: without the boxes, then with both."""
        if frame.is_empty():
            return
        frame = frame.sort("group", "seq")
        mapped, headers = self.plan.mapped(), self.plan.headers()
        for start, end in _group_batches(frame["group"], GROUP_ROWS):
            batch = frame.slice(start, end - start).sort("seq")
            rows = row_merge.as_rows(batch, mapped)
            _, plain = row_merge.run(self.upload.account_id, rows, self.stamp)
            opted_out = self._note_opt_outs(rows, plain)
            self.sample.add_outcomes(plain)
            boxed_stamp = Stamp(import_id=self.upload.id, user_id=self.upload.user_id, at=None, terms_version=None,
                                opt_in_all={channel: True for channel in CHANNELS}, opted_out=opted_out)
            _, boxed = row_merge.run(self.upload.account_id, rows, boxed_stamp)
            self._count_outcomes(rows, plain, boxed)
            problems = [{**p, "column": headers.get(p["column"], p["column"])} for o in plain for p in o.problems]
            with chunk_transaction():
                check_lease(self.upload.id, lease)
                writes.problems(self.upload.id, "review", problem_frame(problems))

    def _note_opt_outs(self, rows: list[dict], outcomes) -> dict:
        """The personas an opt-out row reaches, for the boxes (these groups' own, and kept for the apply)."""
        found = {channel: {"ids": set(), "lines": set()} for channel in CHANNELS}
        for row, outcome in zip(rows, outcomes):
            for channel in CHANNELS:
                if row["fields"].get(f"{channel}_opt_out") is True:
                    for persona in outcome.reached:
                        if persona["id"] is not None:
                            found[channel]["ids"].add(persona["id"])
                        else:
                            found[channel]["lines"].add(persona["created_by_line"])
        for channel in CHANNELS:
            for kind in ("ids", "lines"):
                self.opted_out[channel][kind] |= found[channel][kind]
        return found

    def _count_outcomes(self, rows: list[dict], plain, boxed) -> None:
        for row, without, with_boxes in zip(rows, plain, boxed):
            other, channels_without = row_merge.changed_channels(without.changes)
            _, channels_with = row_merge.changed_channels(with_boxes.changes)
            warnings = row["warnings"] + sum(p["severity"] == WARNING for p in without.problems)
            for boxes, ticked in BOXES.items():
                action = without.action
                if action in ("updated", "unchanged"):
                    touched = {channel for channel, on in zip(CHANNELS, ticked)
                               if channel in (channels_with if on else channels_without)}
                    action = "updated" if other or touched else "unchanged"
                self.counts[boxes][action] += 1
                self.counts[boxes]["warnings"] += warnings

    def summary(self, rows: int) -> dict:
        """Counts for the Review step (without boxes, and per box choice), the in-file opt-outs, the preview."""
        by_boxes = {boxes: {name: self.counts[boxes][name] for name in COUNTED} for boxes in BOXES}
        opted_out = {channel: {kind: sorted(values) for kind, values in reached.items()}
                     for channel, reached in self.opted_out.items()}
        return {"rows": rows, **by_boxes["none"], "boxes": by_boxes, "opted_out": opted_out,
                "preview": self.sample.as_review()}


def _group_batches(groups: pl.Series, size: int) -> list[tuple[int, int]]:
    """(start, end) slices of about size rows that never split a group (rows sorted by group)."""
    starts = (groups != groups.shift(1)).fill_null(True).arg_true().to_list()[1:] + [len(groups)]
    bounds, begin = [], 0
    for at in starts:
        if at - begin >= size or at == len(groups):
            bounds.append((begin, at))
            begin = at
    return bounds


