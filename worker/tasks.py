"""RQ job entry points: they take an import id, open their own connection and call the core."""
import logging
import os

from webapp import config
from webapp.db import db, init_db
from webapp.importer import engine, flow, revert
from webapp.importer.errors import FileRefused
from webapp.importer.states import Status
from webapp.logs import describe
from webapp.logs import install as install_safe_logging
from webapp.models import Import
from worker.queue import RETRY_MESSAGE, connected

MAX_ATTEMPTS = 5
log = logging.getLogger(__name__)


class JobFailed(Exception):
    """What a job raises to RQ (which logs and stores its traceback) instead of the error it met.

    The error's own message may quote a customer's row (PostgreSQL's DETAIL line does): this one says what
    failed in words that are safe to log (webapp.logs.describe), and the job's log line before it carries
    the whole traceback, with every message made as safe.
    """


def describe_upload(import_id: int, limits=None) -> None:
    """Job: read what the upload request left (a large workbook's sheets and header row, the row counts)."""
    limits = limits or config.current().limits
    ensure_db()
    with connected():
        try:
            flow.finish_description(import_id, limits)
        except Exception as error:
            # The Uploaded step already says the file could not be read; RQ records the failure.
            log.exception("describing import %s failed", import_id)
            raise JobFailed(f"describing import {import_id} failed: {describe(error)}") from None


def validate_import(import_id: int, limits=None) -> None:
    """Job: the Review step's full validation pass (dry run)."""
    limits = limits or config.current().limits
    _run(import_id, ready=(), working=Status.VALIDATING, work=lambda lease: engine.validate(
        import_id, lease, max_rows=limits.max_rows, max_bytes=limits.max_bytes))


def apply_import(import_id: int, limits=None, after_chunk=None) -> None:
    """Job: apply a validated import from its checkpoint to the end."""
    after_chunk = after_chunk or _fault_injection()
    _run(import_id, ready=(Status.QUEUED,), working=Status.RUNNING,
         work=lambda lease: engine.apply(import_id, lease, after_chunk=after_chunk))


def revert_import(import_id: int, limits=None) -> None:
    """Job: revert a claimed import (resumes where a stopped run left off)."""
    ensure_db()
    with connected():
        try:
            revert.run_revert(import_id)
        except Exception as error:
            log.exception("revert of import %s failed; it will be retried", import_id)
            raise JobFailed(f"revert of import {import_id} failed: {describe(error)}") from None


def ensure_db() -> None:
    """Bind the database when the job runs in a bare `rq worker` (no app factory ran)."""
    install_safe_logging()
    if db.obj is None:
        init_db(config.current().database_url)


def _run(import_id: int, ready: tuple[Status, ...], working: Status, work) -> None:
    ensure_db()
    # A connection of our own (a work horse or runner thread opens it and closes it when the job
    # ends; ImportWorker forks with none open, so none is ever shared across fork).
    with connected():
        if not Import.select().where(Import.id == import_id).exists():
            return
        lease = engine.claim(import_id, ready, working, max_attempts=MAX_ATTEMPTS)
        if lease is None:
            return  # a live run holds it, it is already done, or it was halted after too many attempts
        try:
            work(lease)
        except FileRefused as refused:
            engine.fail(import_id, lease, refused.message)  # a bad file fails the same way every time
        except engine.LeaseLost:
            return
        except Exception as error:
            log.exception("%s of import %s failed; it will be retried", working, import_id)
            # Let a retry claim it at once (counted as an attempt), and tell the user the truth meanwhile.
            try:
                Import.update(heartbeat_at=None, error_message=RETRY_MESSAGE).where(
                    (Import.id == import_id) & (Import.lease == lease)).execute()
            except Exception:  # noqa: BLE001 - the database may be what failed; the reaper still sees a stale beat
                log.warning("could not mark import %s for retry", import_id, exc_info=True)
            # RQ logs the traceback of what a job raises, and of every exception chained to it: none of it.
            raise JobFailed(f"{working} of import {import_id} failed: {describe(error)}") from None


def _fault_injection():
    """IMPORT_FAULT_KILL_AFTER_CHUNKS=k (fault-injection tests only): SIGKILL this worker and its
    work horse right after the k-th chunk of this run commits, as a crash would."""
    k = config.current().fault_kill_after_chunks
    if not k:
        return None
    import signal

    done = [0]

    def after_chunk():
        done[0] += 1
        if done[0] >= k:
            # RQ names the work horse it forks in its environment (not a setting): take its worker down too.
            if os.environ.get("RQ_WORKER_ID"):
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)

    return after_chunk
