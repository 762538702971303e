"""The lease of an import's run: one run at a time holds it, beats while it works, and is taken over when it dies.

Every state an import's job changes is written under this lease, so a run that lost it (another took over
a run that looked dead) stops at its next chunk without writing.
"""
import uuid
from datetime import timedelta

from webapp import config
from webapp.db import is_postgres, write_transaction
from webapp.importer.states import RUN_MOVES, Status, move, resumable_where
from webapp.models import Import, utcnow


def stale_after() -> timedelta:
    """How long a silent heartbeat means the run died (the stale_seconds setting, IMPORT_STALE_SECONDS)."""
    return timedelta(seconds=config.current().stale_seconds)


class LeaseLost(Exception):
    """Another run owns this import now; this one must stop without writing."""


def _locked(import_id: int) -> Import:
    query = Import.select().where(Import.id == import_id)
    return (query.for_update() if is_postgres() else query).get()


def claim(import_id: int, ready: tuple[Status, ...], working: Status, max_attempts: int | None = None) -> str | None:
    """Take the import's lease when it is ready, or when its holder stopped beating; else None.

    Under the import's row lock, so of two runs started together exactly one gets the lease, and as a move
    from the version read there. A fresh start counts attempt 1 (a resumed one goes on counting); each takeover
    of a dead run counts one more. A dead run that left the checkpoint where it found it is a stall, and the
    max_attempts-th stall fails the import instead (halted): runs that made progress never count toward it.
    started_at excludes the time the import lay dead, so that rows_done / (heartbeat_at - started_at) stays the
    working rate.
    """
    with write_transaction():
        upload = _locked(import_id)
        now = utcnow()
        dead = upload.heartbeat_at is None or upload.heartbeat_at < now - stale_after()
        stalls = upload.stalls
        if upload.status in ready or (upload.status == working and upload.lease is None):
            # Queued afresh (a validation is queued straight into "validating", with no lease), or resumed.
            resumed = working == Status.RUNNING and upload.checkpoint > 0
            attempt = upload.attempt + 1 if resumed else 1
            started_at = now - _worked(upload) if resumed else now
        elif upload.status == working and dead:
            stalls += upload.checkpoint <= upload.run_checkpoint
            if max_attempts is not None and stalls >= max_attempts:
                _halt(upload, stalls, now)
                return None
            attempt, started_at = upload.attempt + 1, now - _worked(upload)
        else:
            return None
        lease = uuid.uuid4().hex
        # Applying resumes at the checkpoint; a validation starts over.
        taken = move(import_id, RUN_MOVES[working], version=upload.version, held=upload.lease, lease=lease,
                     attempt=attempt, started_at=started_at, heartbeat_at=now, error_message=None,
                     rows_done=upload.checkpoint if working == Status.RUNNING else 0, run_checkpoint=upload.checkpoint,
                     stalls=stalls)
        return lease if taken else None


def _worked(upload: Import) -> timedelta:
    """How long the import's runs worked so far (from its start to its last beat)."""
    if upload.heartbeat_at and upload.started_at and upload.heartbeat_at > upload.started_at:
        return upload.heartbeat_at - upload.started_at
    return timedelta(0)


HALTED = ("The import stopped unexpectedly {stalls} times without getting further and was halted. Rows applied so "
          "far stay applied; none was applied twice. An owner can resume it where it stopped.")


def _halt(upload: Import, stalls: int, now) -> None:
    move(upload.id, "halt", version=upload.version, held=upload.lease, lease=None, finished_at=now, stalls=stalls,
         error_message=HALTED.format(stalls=stalls))


def resume(import_id: int) -> bool:
    """Queue a failed, submitted import again from its checkpoint (see states.resumable); False if it is not one.

    The units with a marker are never applied again, so a resumed import still applies each row exactly once.
    """
    return move(import_id, "resume", where=resumable_where(), lease=None, error_message=None, finished_at=None,
                queued_at=utcnow(), stalls=0)


def fail(import_id: int, lease: str | None, message: str) -> None:
    """Mark the import failed with a message a marketer can read.

    With a lease: only if that lease still holds. Without: only if no run holds it (lease cleared,
    or its heartbeat stale), so a late failure report never fails a run that took over.
    """
    if lease is not None:
        move(import_id, "fail", held=lease, error_message=message, finished_at=utcnow(), lease=None)
        return
    stale = utcnow() - stale_after()
    move(import_id, "fail", where=Import.lease.is_null() | Import.heartbeat_at.is_null() | (Import.heartbeat_at < stale),
         error_message=message, finished_at=utcnow(), lease=None)


def check_lease(import_id: int, lease: str) -> Import:
    """The import, locked, when this run still holds its lease; else LeaseLost."""
    upload = _locked(import_id)
    if upload.lease != lease:
        raise LeaseLost(f"import {import_id} is owned by another run")
    return upload
