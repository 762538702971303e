"""An import's statuses, the moves between them, and the one way to make a move: a compare-and-set UPDATE.

    (describing ->) draft -> validating -> validated -> queued -> running -> completed | failed
    (describing: a large workbook's sheets and header row are read by a background job, not the upload request)
    (draft, validated, failed before submitting: back to draft with another sheet, header row or mapping)
    completed | failed -> reverting -> reverted
    failed -> queued (an owner resumes a submitted import from its checkpoint, while its kept rows are there)

A move happens only while the row is in a status it starts from, and, where the caller says so, still at
the version it read and under the lease it holds. Every move bumps the version, so a form shown before
(another tab, a request whose body came late) or a job that lost its run changes nothing.
"""
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """An import's status. A member equals its string, as stored in the row and compared in templates."""

    DESCRIBING = "describing"  # a large workbook's sheets and header row are read by a background job
    DRAFT = "draft"
    VALIDATING = "validating"
    VALIDATED = "validated"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    REVERTING = "reverting"
    REVERTED = "reverted"


DESCRIBING, DRAFT, VALIDATING, VALIDATED = Status.DESCRIBING, Status.DRAFT, Status.VALIDATING, Status.VALIDATED
QUEUED, RUNNING, COMPLETED, FAILED = Status.QUEUED, Status.RUNNING, Status.COMPLETED, Status.FAILED
REVERTING, REVERTED = Status.REVERTING, Status.REVERTED

# The groups of statuses, every partial view of the life of an import in one place.
BEFORE_SUBMIT = (DESCRIBING, DRAFT, VALIDATING, VALIDATED)
EDITABLE = (DRAFT, VALIDATED, FAILED)  # the Uploaded and Map steps, while the import was never submitted
UPLOADED = (DESCRIBING, *EDITABLE)  # the Uploaded step: the file read, or being read by the background job
REVIEWING = (VALIDATING, VALIDATED, FAILED)  # the Review step: the dry run running, done, or failed
WORKING = (VALIDATING, QUEUED, RUNNING, REVERTING)  # a job is queued or running for the import
APPLYING = (QUEUED, RUNNING)  # submitted, not finished
BEATING = (VALIDATING, RUNNING)  # a run holds the lease and beats (a revert stamps reverted_at instead)
FINISHED = (COMPLETED, FAILED, REVERTED)
SETTLED = (COMPLETED, FAILED)  # an import's work ended and stands (not undone)
REVERTIBLE = SETTLED
APPLIED = (COMPLETED, REVERTED)  # every row was applied (and maybe undone since)
JOB_OF = {VALIDATING: "validate", QUEUED: "import", RUNNING: "import", REVERTING: "revert"}  # the job it waits on


@dataclass(frozen=True)
class Move:
    """A state change: the statuses it starts from, the status it ends in (None: unchanged)."""

    start: tuple[Status, ...]
    to: Status | None
    unsubmitted: bool = False  # only for an import whose terms were never accepted (the wizard's own moves)


MOVES = {
    "describe": Move(EDITABLE, DRAFT, unsubmitted=True),  # the file read again: another sheet or header row
    "describe_later": Move(UPLOADED, DESCRIBING, unsubmitted=True),  # left to the background job
    "described": Move((DESCRIBING,), DRAFT, unsubmitted=True),  # the background job read it
    "map": Move(EDITABLE, DRAFT, unsubmitted=True),
    "validate": Move((DRAFT,), VALIDATING, unsubmitted=True),  # queue the dry run
    "remove": Move(UPLOADED, None, unsubmitted=True),  # the row is deleted in the same transaction
    "submit": Move((VALIDATED,), QUEUED, unsubmitted=True),  # terms accepted, import queued
    "run_validation": Move((VALIDATING,), VALIDATING),  # a worker takes (or takes over) the lease
    "run_apply": Move((QUEUED, RUNNING), RUNNING),
    "validated": Move((VALIDATING,), VALIDATED),
    "complete": Move((RUNNING,), COMPLETED),
    "fail": Move((VALIDATING, QUEUED, RUNNING), FAILED),
    "halt": Move((VALIDATING, RUNNING), FAILED),  # too many runs died without progress
    "resume": Move((FAILED,), QUEUED),  # only where resumable_where(): see resumable()
    "delete_file": Move(FINISHED, None),
    "revert": Move((*REVERTIBLE, REVERTING), REVERTING),  # REVERTING: taking over a revert that died
    "reverted": Move((REVERTING,), REVERTED),
}


def resumable_where():
    """The rows an owner may resume: failed after submitting, with rows left to apply and its kept rows there."""
    from webapp.models import Import  # here: the models take Status from this module

    return (Import.terms_accepted_at.is_null(False) & Import.staged & ~Import.file_deleted
            & (Import.checkpoint < Import.rows_total))


def resumable(upload) -> bool:
    """resumable_where() for an import in hand (what the history page offers)."""
    return (upload.status == FAILED and upload.terms_accepted_at is not None and upload.staged
            and not upload.file_deleted and upload.checkpoint < upload.rows_total)


RUN_MOVES = {VALIDATING: "run_validation", RUNNING: "run_apply"}


def transitions() -> dict[Status, set[Status]]:
    """The statuses each status may move to (MOVES read the other way round; a move that keeps it, to itself)."""
    found = {status: set() for status in Status}
    for rule in MOVES.values():
        for start in rule.start:
            found[start].add(rule.to or start)
    return found
ANY = object()  # held=ANY: whatever lease the row has


class Changed(Exception):
    """The import is no longer in the state it was read in (changed or removed since); nothing was done."""

    def __init__(self, import_id: int):
        super().__init__(f"import {import_id} changed since it was read")
        self.import_id = import_id


def move(import_id: int, name: str, *, version: int | None = None, held=ANY, where=None, **changes) -> bool:
    """Make move `name` from the state expected (version, lease held, where), setting changes; True if it happened."""
    from webapp.models import Import, utcnow  # here: the models take Status from this module

    rule = MOVES[name]
    expected = (Import.id == import_id) & Import.status.in_(rule.start)
    if rule.unsubmitted:
        expected &= Import.terms_accepted_at.is_null()
    if version is not None:
        expected &= Import.version == version
    if held is not ANY:
        expected &= Import.lease.is_null() if held is None else Import.lease == held
    if where is not None:
        expected &= where
    if rule.to is not None:
        changes["status"] = rule.to
    # Every move touches the import: an unfinished draft nobody moved for days expires (importer/drafts.py).
    changes.setdefault("touched_at", utcnow())
    return Import.update(**changes, version=Import.version + 1).where(expected).execute() == 1


def advance(upload, name: str, **changes) -> None:
    """Make the move from the version this upload was read at, and update it to match; else Changed."""
    if not move(upload.id, name, version=upload.version, **changes):
        raise Changed(upload.id)
    for field, value in changes.items():
        setattr(upload, field, value)
    upload.status = MOVES[name].to or upload.status
    upload.version += 1
