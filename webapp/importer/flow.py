"""The steps of one import, shared by the wizard, the CLI and the jobs: upload, map, accept, submit."""
import re
import time
from contextlib import nullcontext
from datetime import timedelta
from itertools import groupby

from webapp.config import Limits
from webapp.db import write_transaction
from webapp.importer import lease, problem_groups, problem_rows, reasserted, remembered, staging, states, storage
from webapp.importer.cascade import delete_audiences
from webapp.importer.engine import import_table
from webapp.importer.errors import FileRefused
from webapp.importer.fields import validate_mapping
from webapp.importer.problems import ERROR
from webapp.importer.readers import ODS_MIMETYPE, OLE2_MAGIC, count_rows, open_table, sheet_bytes
from webapp.importer.report import report_bytes
from webapp.importer.states import APPLIED, BEFORE_SUBMIT, WORKING, Status
from webapp.importer.storage import opened_file, store_file
from webapp.models import Audience, Import, ImportProblem, ProblemRow, UploadChunk, utcnow

__all__ = ["Limits"]  # the upload limits (webapp.config), named here for the callers of start_upload

# A file that took longer than this to store (a slow database, a large file) is read by the background job
# whatever its size: what the request has left of gunicorn's 30 s is not spent reading it.
STORE_BUDGET_SECONDS = 10.0
# Counting in the upload request stops after this long and hands over to the background job (gunicorn's timeout
# is 30 s, and a request past it ends in gunicorn's bare error page).
COUNT_NOW_SECONDS = 5.0
# A background read or count not done after PATIENCE, plus a second per PATIENT_BYTES of file, has stopped (no
# worker ran it): the step stops waiting. openpyxl reads and counts ~230 KB of workbook a second (measured).
PATIENCE = timedelta(minutes=10)
PATIENT_BYTES = 100 * 1024
LATE = ("Reading this file is taking much longer than it should, so the import service may be down. Remove it "
        "and upload it again in a few minutes.")
UNREADABLE = ("We could not read this file. Remove it and upload it again; if that fails too, open it in Excel, save "
              "it again as .xlsx (Excel Workbook) or CSV, and upload the new file.")


MAX_NAME = 255  # no filesystem allows a longer file name
# Control characters (PostgreSQL text cannot hold NUL) and bidi controls (they can disguise an extension).
UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def display_name(file_name: str | None) -> str:
    """A client's name for its file as text to show: no folders, no control characters, at most MAX_NAME long."""
    name = " ".join(UNSHOWABLE.sub(" ", re.split(r"[\\/]", file_name or "")[-1]).split())
    if len(name) > MAX_NAME:
        _, dot, ext = name.rpartition(".")
        keep = dot + ext if dot and len(ext) <= 10 else ""
        name = name[:MAX_NAME - len(keep) - 1] + "…" + keep
    return name or "upload"


def start_upload(account, user, file_name: str, stream, limits: Limits) -> Import:
    """Store an uploaded file as a new import, read its headers, count a small file; FileRefused leaves nothing.

    A large workbook, or a file that was slow to store, is only stored and left for the background job
    (finish_later). The file name is only ever shown: the file itself is stored in the database under the
    import's id.
    """
    started = time.monotonic()
    with write_transaction():
        upload = Import.create(account=account, user=user, file_name=display_name(file_name))
        try:
            store_file(upload, stream, limits.max_bytes)
            if (time.monotonic() - started > STORE_BUDGET_SECONDS
                    or not _cheap_to_describe(upload, _rewound(stream), limits)):
                states.advance(upload, "describe_later")
                return upload
            # Headers from the bytes in hand: reading 100 MB back from the database only to find them is slow.
            describe(upload, limits, local=_rewound(stream))
            # Reading a small file to its end now refuses a late problem (one row too many, a stray quote)
            # at the upload, not after the user has mapped the columns.
            _count(upload, limits, local=_rewound(stream), deadline=time.monotonic() + COUNT_NOW_SECONDS)
        except FileRefused:
            upload.delete_instance(recursive=True)
            raise
    return upload


def _cheap_to_describe(upload: Import, local, limits: Limits) -> bool:
    """Whether reading the file's sheets, header row and samples is quick enough for the upload request."""
    with (nullcontext(local) if local is not None else opened_file(upload)) as stream:
        return sheet_bytes(stream) <= limits.read_now_bytes


def redescribe(upload: Import, limits: Limits, sheet: str | None = None, header_line: int | None = None) -> Import:
    """Read the file again with the user's sheet or header line: now when that is quick, else in the background."""
    with opened_file(upload) as local:
        if not _cheap_to_describe(upload, local, limits):
            with write_transaction():
                _unstage(upload, "describe_later", sheet=sheet, header_line=header_line, file_error=None, headers=[],
                         samples={}, mapping={}, row_count=None)
            return upload
        return describe(upload, limits, sheet=sheet, header_line=header_line, local=local)


def _rewound(stream):
    """The uploaded stream back at its start, or None when it cannot seek (the stored copy is read then)."""
    try:
        stream.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    return stream


def describe(upload: Import, limits: Limits, sheet: str | None = None, header_line: int | None = None,
             local=None, move: str = "describe", count: bool = False) -> Import:
    """(Re)read the file's sheets, header row and samples (count: and its rows), and pre-fill the mapping;
    states.Changed if it changed."""
    upload.sheet, upload.header_line = sheet, header_line  # what import_table reads
    try:
        with import_table(upload, limits.max_rows, limits.max_bytes, local) as table:
            found = {"kind": table.kind, "sheet_names": table.sheet_names, "sheet": table.sheet,
                     "header_line": table.header_line, "headers": table.headers, "samples": table.sample(3),
                     # The background job counts on the table it opened: opening a large workbook is the slow part.
                     "row_count": count_rows(table) if count else None}
    except FileRefused as refused:
        if not (refused.sheets and sheet is None) and not refused.header_kind:
            raise
        # A multi-sheet workbook, or a file without a header row, waits for the user's choice.
        found = {"file_error": refused.message, "sheet_names": refused.sheets or upload.sheet_names or [],
                 "kind": refused.header_kind or workbook_kind(upload), "row_count": None,
                 "sheet": sheet, "header_line": header_line, "headers": [], "samples": {}, "mapping": {},
                 "prefilled": {}}
    else:
        mapping, prefilled = remembered.prefill(upload.account_id, found["headers"], found["samples"], upload.id)
        found.update(file_error=None, mapping=mapping, prefilled=prefilled)
    with write_transaction():
        _unstage(upload, move, **found)
    return upload


# ---------------------------------------------------------------- what the upload request leaves for later

def left_for_later(upload: Import) -> bool:
    """Whether the describe job has work here: a workbook to read, or rows (or each sheet's rows) to count."""
    return upload.status == states.DESCRIBING or _uncounted(upload) or _sheets_uncounted(upload)


def _uncounted(upload: Import) -> bool:
    return not upload.file_error and bool(upload.headers) and upload.row_count is None


def _sheets_uncounted(upload: Import) -> bool:
    return len(upload.sheet_names or []) > 1 and not upload.sheet_rows


def finish_later(upload: Import, start) -> None:
    """Hand what the request left (left_for_later) to the background: start(upload) is the one enqueue point."""
    if left_for_later(upload):
        Import.update(queued_at=utcnow()).where(Import.id == upload.id).execute()
        upload.queued_at = utcnow()
        start(upload)


def waiting(upload: Import) -> str | None:
    """What the Uploaded step waits for: "describing", "counting", "late" (it waited too long), or None."""
    if not left_for_later(upload):
        return None
    patience = PATIENCE + timedelta(seconds=(upload.size or 0) / PATIENT_BYTES)
    if upload.queued_at is not None and upload.queued_at < utcnow() - patience:
        return "late"
    return "describing" if upload.status == states.DESCRIBING else "counting"


def finish_description(import_id: int, limits: Limits) -> None:
    """The describe job: read a workbook the request left, then count its rows and sheets.

    What the file is refused for becomes the Uploaded step's message, in the words an upload's refusal has.
    A move the user made meanwhile (another sheet, Remove) wins: this run's result is dropped (states.Changed).
    """
    upload = Import.get_or_none(Import.id == import_id)
    if upload is None or not left_for_later(upload):
        return
    try:
        try:
            if upload.status == states.DESCRIBING:
                describe(upload, limits, sheet=upload.sheet, header_line=upload.header_line, move="described",
                         count=True)
            _count(upload, limits)
        except FileRefused as refused:
            _refused_later(upload, refused.message)
        except Exception:
            _refused_later(upload, UNREADABLE)
            raise
    except states.Changed:
        return


def _refused_later(upload: Import, message: str) -> None:
    """Show a refusal the background job met on the Uploaded step (the request's refusal deletes the upload)."""
    # A file nobody read before has no type to show; a refused choice keeps it, with the sheet picker or line form.
    chosen = bool(upload.headers or upload.sheet or upload.header_line or upload.sheet_names)
    with write_transaction():
        _unstage(upload, "described" if upload.status == states.DESCRIBING else "describe", file_error=message,
                 kind=(upload.kind or workbook_kind(upload)) if chosen else "", headers=[], samples={}, mapping={},
                 row_count=None)


def largest_sheet(upload: Import) -> str | None:
    """The sheet the picker preselects: the one chosen, else the one with the most rows (the first of equals)."""
    if upload.sheet or not upload.sheet_names:
        return upload.sheet
    counts = upload.sheet_rows or {}
    return max(upload.sheet_names, key=lambda name: counts.get(name) or 0)


def workbook_kind(upload: Import) -> str:
    """"xls", "ods" or "xlsx", from the stored file's signature (only workbooks have sheets)."""
    first = UploadChunk.get((UploadChunk.upload == upload) & (UploadChunk.seq == 0))
    head = bytes(first.data[:100])
    if head.startswith(OLE2_MAGIC):
        return "xls"
    return "ods" if ODS_MIMETYPE in head else "xlsx"  # an .ods zip opens with its mimetype, stored


def set_mapping(upload: Import, mapping: dict[str, str], validate: bool = False) -> list[str]:
    """Check and save the user's mapping, remembering it for the account; returns the errors (states.Changed).

    validate: queue the dry run in the same transaction (service.confirm_mapping): no one sees a mapped draft.
    """
    errors = validate_mapping(mapping)
    if errors:
        return errors
    with write_transaction():
        _unstage(upload, "map", mapping=mapping)
        if validate:
            queue_validation(upload)
        remembered.remember(upload, mapping)
    return []


def _unstage(upload: Import, move: str, **changes) -> None:
    """Make a move back to draft and forget any earlier validation: the rows must be parsed again."""
    states.advance(upload, move, staged=False, review={}, **changes)
    staging.delete(upload.id)
    ImportProblem.delete().where(ImportProblem.upload == upload).execute()
    ProblemRow.delete().where(ProblemRow.upload == upload).execute()


COUNTED = ("created", "updated", "unchanged", "rejected", "warnings")


def review_counts(upload: Import, opt_in_sms: bool, opt_in_email: bool) -> dict:
    """The dry run's counts for the opt-in-all boxes as ticked (a box can turn unchanged rows into updates)."""
    review = upload.review or {}
    boxes = {(False, False): "none", (True, False): "sms", (False, True): "email", (True, True): "both"}
    chosen = (review.get("boxes") or {}).get(boxes[(bool(opt_in_sms), bool(opt_in_email))]) or review
    return {"rows": review.get("rows", 0), **{name: chosen.get(name, 0) for name in COUNTED}}


def queue_validation(upload: Import) -> None:
    """Put the dry run in the queue's hands (states.Changed if the import changed since it was read)."""
    # Without a lease, a validation still running for an earlier mapping stops at its next chunk.
    states.advance(upload, "validate", queued_at=utcnow(), error_message=None, lease=None, rows_done=0)


def submit(upload: Import, user, ip: str | None, terms_version: str, opt_in_sms: bool, opt_in_email: bool) -> None:
    """Record the terms acceptance (user, time, IP, version) and the opt-in-all choices, and queue the import.

    One move from the validated state the user reviewed: a second click, or a form shown before, does nothing
    (states.Changed).
    """
    if not upload.staged:
        raise FileRefused("Check the file on the Review step before importing.")
    states.advance(upload, "submit", terms_version=terms_version, terms_accepted_at=utcnow(), terms_accepted_by=user,
                   terms_ip=ip, options={"opt_in_sms": bool(opt_in_sms), "opt_in_email": bool(opt_in_email)},
                   queued_at=utcnow(), error_message=None, rows_done=upload.checkpoint)


# ---------------------------------------------------------------- for the wizard and the history page

# Files small enough to count while the user waits for the Uploaded step (a few hundred ms at most).
CHEAP_COUNT_BYTES = {"csv": 20 * 1024 * 1024, "xlsx": 1024 * 1024, "xls": 1024 * 1024, "ods": 1024 * 1024}
PROBLEMS_PER_QUERY = 500


def count_rows_if_cheap(upload: Import, limits: Limits) -> int | None:
    """Count the data rows now when the file is small (and not counted yet); None leaves it to the background."""
    if upload.row_count is not None:
        return upload.row_count
    try:
        _count(upload, limits, deadline=time.monotonic() + COUNT_NOW_SECONDS)
    except FileRefused:
        return None  # e.g. over the row limit: validation says so with its message
    return upload.row_count


def _count(upload: Import, limits: Limits, local=None, deadline: float | None = None) -> None:
    """Count and save each sheet's data rows (several sheets) and the chosen sheet's; FileRefused as a full read.

    With a deadline (the upload request): only a small file, and only until the deadline; the rest is left
    for the background job (left_for_later).
    """
    if upload.status == states.DESCRIBING or (deadline is not None
                                              and upload.size > CHEAP_COUNT_BYTES.get(upload.kind, 0)):
        return
    with (nullcontext(local) if local is not None else opened_file(upload)) as stream:
        if _sheets_uncounted(upload):
            counts = _sheet_rows(upload, limits, stream, deadline)
            if counts is None:
                return
            # A fact of the file, whichever sheet is chosen: written whatever moves were made since.
            Import.update(sheet_rows=counts).where(Import.id == upload.id).execute()
            upload.sheet_rows = counts
        if not _uncounted(upload):
            return
        with import_table(upload, limits.max_rows, limits.max_bytes, _rewound(stream)) as table:
            rows = count_rows(table, deadline)
    if rows is None:
        return
    upload.row_count = rows
    # A fact of the file as read at this version: not written if another sheet or header row was chosen since.
    Import.update(row_count=upload.row_count).where(
        (Import.id == upload.id) & (Import.version == upload.version)).execute()


def _sheet_rows(upload: Import, limits: Limits, stream, deadline: float | None) -> dict[str, int | None] | None:
    """The data rows of each sheet with data: None for a sheet refused alone (e.g. no header row); None past the
    deadline."""
    counts = {}
    for name in upload.sheet_names:
        try:
            with open_table(_rewound(stream), sheet=name, max_rows=limits.max_rows,
                            max_bytes=limits.max_bytes) as table:
                counts[name] = count_rows(table, deadline)
        except FileRefused:
            counts[name] = None
            continue
        if counts[name] is None:
            return None
    return counts


def is_submitted(upload: Import) -> bool:
    """True once the user pressed "Import Personas": the wizard is over, only progress and results remain."""
    return upload.terms_accepted_at is not None and upload.status not in BEFORE_SUBMIT


def discard(upload: Import) -> None:
    """Delete an import that was never submitted, with its file, staged rows and problems."""
    if is_submitted(upload) or upload.status in WORKING:
        raise FileRefused("This import has started; it can no longer be removed. Its file can be deleted "
                          "from the import history once it has finished.")
    with write_transaction():
        states.advance(upload, "remove")  # from the state it was read in, holding the row until it is gone
        upload.delete_instance(recursive=True)


def delete_file(upload: Import) -> None:
    """Delete a finished import's stored file, kept rows and generated audience; persona changes stay.

    The cells of problem rows stay: the problem report is how a user fixes and re-imports them.
    """
    running = FileRefused("This import is still running. Delete its file once it has finished.")
    if upload.status in WORKING:
        raise running
    with write_transaction():
        if not states.move(upload.id, "delete_file", file_deleted=True, staged=False, audience_id=None):
            raise running if Import.get_by_id(upload.id).status in WORKING else FileRefused(
                "Only a finished import's file can be deleted; remove an unfinished upload from its Uploaded step.")
        # A revert of an earlier import must still know what this one's rows set again.
        reasserted.keep_digest(upload)
        storage.delete_file(upload)
        staging.delete(upload.id)
        delete_audiences(Audience.select(Audience.id).where(
            (Audience.source_import == upload.id) & (Audience.account == upload.account_id)))


def resume(upload: Import) -> None:
    """Queue a halted (or failed) submitted import again from its checkpoint; FileRefused when it cannot be."""
    if lease.resume(upload.id):
        return
    upload = Import.get_by_id(upload.id)
    if upload.status != Status.FAILED:
        raise FileRefused("This import has not stopped, so there is nothing to resume."
                          if upload.status in WORKING else "Only a halted or failed import can be resumed.")
    if upload.file_deleted or not upload.staged:
        raise FileRefused("This import's file was deleted, so it cannot be resumed. Upload the file again instead.")
    raise FileRefused("This import cannot be resumed: it never started, or every row was already applied.")


def problem_sources(upload: Import) -> tuple[str, str]:
    """Which problems describe the import: the dry run's until it was applied, then the apply's."""
    applied = upload.status in APPLIED or (upload.status == Status.FAILED and is_submitted(upload))
    return ("parse", "apply") if applied else ("parse", "review")


def problems(upload: Import, limit: int | None = None):
    """The import's problems in file order (the first `limit` of them)."""
    query = (ImportProblem.select()
             .where((ImportProblem.upload == upload) & ImportProblem.source.in_(problem_sources(upload)))
             .order_by(ImportProblem.line, ImportProblem.id))
    return query.limit(limit) if limit else query


def problem_counts(upload: Import) -> dict:
    """{"rows": rows with a problem, "problems": problems}."""
    query = ImportProblem.select().where(
        (ImportProblem.upload == upload) & ImportProblem.source.in_(problem_sources(upload)))
    return {"rows": query.select(ImportProblem.line).distinct().count(), "problems": query.count()}


def problem_groups_of(upload: Import) -> list[problem_groups.Group]:
    """The import's problems grouped by kind and column, with counts, fixes and example rows."""
    return problem_groups.groups(upload, problem_sources(upload))


def _report_rows(upload: Import):
    """One dict per problem row (line, error, problems, original cells) for report.write_report."""
    query = problems(upload).iterator()
    for _, chunk in groupby(enumerate(query), key=lambda item: item[0] // PROBLEMS_PER_QUERY):
        found = [p for _, p in chunk]
        cells = problem_rows.cells_of(upload, sorted({p.line for p in found}))
        for line, group in groupby(found, key=lambda p: p.line):
            group = list(group)
            error = next((p.reason for p in group if p.severity == ERROR), None)
            yield {"line": line, "error": error, "cells": cells.get(line, []),
                   "problems": [{"column": p.column_name, "value": p.value, "reason": p.reason,
                                 "skipped": p.source == "parse"} for p in group]}


def problem_report(upload: Import) -> bytes:
    """The problem report CSV: every problem row with its original cells, neutralized, re-importable."""
    headers = list(upload.headers or [])
    return report_bytes(headers, _only_unapplied_cells(upload, headers, _merge_lines(_report_rows(upload))))


def _only_unapplied_cells(upload: Import, headers: list[str], rows):
    """Blank the cells a warning row already imported, so re-importing the fixed report applies them once.

    A rejected row keeps every cell (nothing of it was imported). A row with warnings was imported
    except its skipped cells: it keeps those and its email/phone (to find the persona again).
    """
    keys = {header for header in headers if upload.mapping.get(header) in ("email", "phone")}
    for row in rows:
        if not row["error"]:
            keep = keys | {p["column"] for p in row["problems"] if p["skipped"]}
            row["cells"] = [cell if header in keep else "" for header, cell in zip(headers, row["cells"])]
        yield row


def _merge_lines(rows):
    """Join a row whose problems straddle two query chunks back into one report line."""
    pending = None
    for row in rows:
        if pending and pending["line"] == row["line"]:
            pending["problems"] += row["problems"]
            pending["error"] = pending["error"] or row["error"]
            continue
        if pending:
            yield pending
        pending = row
    if pending:
        yield pending

