"""The steps of one import, shared by the wizard, the CLI and the jobs: upload, map, accept, submit."""
import re
from itertools import groupby

from webapp.config import Limits
from webapp.db import write_transaction
from webapp.importer import lease, problem_rows, reasserted, staging, states, storage
from webapp.importer.cascade import delete_audiences
from webapp.importer.engine import import_table
from webapp.importer.errors import FileRefused
from webapp.importer.fields import auto_match, normalize_header, validate_mapping
from webapp.importer.problems import ERROR
from webapp.importer.readers import ODS_MIMETYPE, OLE2_MAGIC, count_rows
from webapp.importer.report import report_bytes
from webapp.importer.storage import store_file
from webapp.importer.states import APPLIED, BEFORE_SUBMIT, WORKING, Status
from webapp.models import Audience, Import, ImportProblem, ProblemRow, RememberedMapping, UploadChunk, utcnow

__all__ = ["Limits"]  # the upload limits (webapp.config), named here for the callers of start_upload


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

    The file name is only ever shown: the file itself is stored in the database under the import's id.
    """
    with write_transaction():
        upload = Import.create(account=account, user=user, file_name=display_name(file_name))
        try:
            store_file(upload, stream, limits.max_bytes)
            # Headers from the bytes in hand: reading 100 MB back from the database only to find them is slow.
            describe(upload, limits, local=_rewound(stream))
            # Reading a small file to its end now refuses a late problem (one row too many, a stray quote)
            # at the upload, not after the user has mapped the columns.
            _count_if_cheap(upload, limits, local=_rewound(stream))
        except FileRefused:
            upload.delete_instance(recursive=True)
            raise
    return upload


def _rewound(stream):
    """The uploaded stream back at its start, or None when it cannot seek (the stored copy is read then)."""
    try:
        stream.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    return stream


def describe(upload: Import, limits: Limits, sheet: str | None = None, header_line: int | None = None,
             local=None) -> Import:
    """(Re)read the file's sheets, header row and samples, and pre-fill the mapping; states.Changed if it changed."""
    upload.sheet, upload.header_line = sheet, header_line  # what import_table reads
    try:
        with import_table(upload, limits.max_rows, limits.max_bytes, local) as table:
            found = {"kind": table.kind, "sheet_names": table.sheet_names, "sheet": table.sheet,
                     "header_line": table.header_line, "headers": table.headers, "samples": table.sample(3)}
    except FileRefused as refused:
        if not (refused.sheets and sheet is None) and not refused.header_kind:
            raise
        # A multi-sheet workbook, or a file without a header row, waits for the user's choice.
        found = {"file_error": refused.message, "sheet_names": refused.sheets or upload.sheet_names or [],
                 "kind": refused.header_kind or workbook_kind(upload),
                 "sheet": sheet, "header_line": header_line, "headers": [], "samples": {}, "mapping": {}}
    else:
        found.update(file_error=None, mapping=auto_match(found["headers"], remembered_mappings(upload.account_id),
                                                         found["samples"]))
    with write_transaction():
        _unstage(upload, "describe", row_count=None, **found)
    return upload


def workbook_kind(upload: Import) -> str:
    """"xls", "ods" or "xlsx", from the stored file's signature (only workbooks have sheets)."""
    first = UploadChunk.get((UploadChunk.upload == upload) & (UploadChunk.seq == 0))
    head = bytes(first.data[:100])
    if head.startswith(OLE2_MAGIC):
        return "xls"
    return "ods" if ODS_MIMETYPE in head else "xlsx"  # an .ods zip opens with its mimetype, stored


def remembered_mappings(account_id: int) -> dict:
    """The targets this account confirmed before, by normalized header."""
    query = RememberedMapping.select().where(RememberedMapping.account == account_id)
    return {m.header_key: m.target for m in query}


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
        # A header longer than any real one is not worth remembering (and would not fit the index).
        rows = [{"account": upload.account_id, "header_key": normalize_header(h), "target": t}
                for h, t in mapping.items() if len(normalize_header(h)) <= 200]
        if rows:
            RememberedMapping.insert_many(rows).on_conflict(
                conflict_target=[RememberedMapping.account, RememberedMapping.header_key],
                preserve=[RememberedMapping.target]).execute()
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
    """Count the data rows now when the file is small (and not counted yet); None leaves it to the validation pass."""
    if upload.row_count is not None:
        return upload.row_count
    try:
        return _count_if_cheap(upload, limits)
    except FileRefused:
        return None  # e.g. over the row limit: validation says so with its message


def _count_if_cheap(upload: Import, limits: Limits, local=None) -> int | None:
    """Count and save the data rows of a small file (refusing what a full read refuses); None for a large one."""
    if upload.file_error or not upload.headers or upload.size > CHEAP_COUNT_BYTES.get(upload.kind, 0):
        return None
    with import_table(upload, limits.max_rows, limits.max_bytes, local) as table:
        upload.row_count = count_rows(table)
    # A fact of the file as read at this version: not written if another sheet or header row was chosen since.
    Import.update(row_count=upload.row_count).where(
        (Import.id == upload.id) & (Import.version == upload.version)).execute()
    return upload.row_count


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

