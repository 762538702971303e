"""The one place that starts background work: an RQ job with REDIS_URL, else an in-process thread."""
import logging
import threading
import time
from contextlib import contextmanager, nullcontext

from webapp import config
from webapp.db import db
from webapp.importer.states import BEATING, JOB_OF, Status
from webapp.models import Import, utcnow

QUEUE = "imports"
JOB_TIMEOUT = 6 * 60 * 60  # the largest import (2M rows) with room to spare
RETRY_INTERVALS = [10, 30, 60]
WAITING_MESSAGE = "Waiting for the import service to come back; it will start on its own."
FAILED_MESSAGE = "The import failed unexpectedly. Rows applied so far stay applied and none was applied twice."
RETRY_MESSAGE = "The import was interrupted and is being resumed where it stopped."
DRAFT_SWEEP_SECONDS = 3600  # how often a reaper also removes drafts untouched for days
log = logging.getLogger(__name__)

JOBS = {"describe": "worker.tasks.describe_upload", "validate": "worker.tasks.validate_import",
        "import": "worker.tasks.apply_import", "revert": "worker.tasks.revert_import"}


@contextmanager
def connected():
    """The caller's open connection if it has one (a web request, a job), else one for this block only."""
    if not db.is_closed():
        yield
        return
    with db.connection_context():
        yield


def job_id(kind: str, import_id: int) -> str:
    """The RQ job id of an import's job: import-<id> or validate-<id>."""
    return f"{kind}-{import_id}"


def _queue(redis_url: str):
    from redis import Redis
    from rq import Queue

    # Fail fast when Redis is down or unreachable: the user gets an honest status instead of a hang.
    connection = Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
    return Queue(QUEUE, connection=connection)


def enqueue(kind: str, import_id: int, redis_url: str | None, limits=None) -> bool:
    """Start job kind (describe, validate, import or revert) for an import; False when the queue is unreachable."""
    if not redis_url:
        _start_thread(kind, import_id, limits)
        return True
    from redis.exceptions import RedisError
    from rq import Retry

    try:
        _queue(redis_url).enqueue(
            JOBS[kind], import_id, job_id=job_id(kind, import_id), job_timeout=JOB_TIMEOUT,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS), failure_ttl=7 * 24 * 3600)
    except RedisError:
        log.warning("could not enqueue %s; the reaper will queue it when Redis is back", job_id(kind, import_id))
        with connected():
            Import.update(error_message=WAITING_MESSAGE).where(Import.id == import_id).execute()
        return False
    with connected():
        Import.update(error_message=None).where(
            (Import.id == import_id) & (Import.error_message == WAITING_MESSAGE)).execute()
    return True


def _start_thread(kind: str, import_id: int, limits) -> None:
    """The embedded runner: the job in a daemon thread, retried like RQ would, failed after the last try."""
    from worker import tasks

    job = getattr(tasks, JOBS[kind].rpartition(".")[2])

    def run():
        for wait in [*RETRY_INTERVALS, None]:
            try:
                job(import_id, limits)
                return
            except Exception:
                log.exception("in-process %s failed", job_id(kind, import_id))
                if wait is None:
                    break
                time.sleep(wait)
        with connected():
            from webapp.importer.engine import fail

            fail(import_id, None, FAILED_MESSAGE)

    threading.Thread(target=run, name=job_id(kind, import_id), daemon=True).start()


def stale_imports() -> list[tuple[int, str, bool]]:
    """(id, kind, retrying) of imports nobody is running: heartbeat stale, or never enqueued (Redis was down).

    retrying: the job itself failed and handed its retry to RQ (RETRY_MESSAGE), as opposed to a worker that died.
    """
    from webapp.importer.engine import stale_after
    from webapp.importer.revert import REVERT_STALE

    stale = utcnow() - stale_after()
    with connected():
        # A revert beats by stamping reverted_at at each chunk.
        reverts = Import.select(Import.id, Import.status, Import.error_message).where(
            (Import.status == Status.REVERTING) & (Import.reverted_at < utcnow() - REVERT_STALE))
        query = Import.select(Import.id, Import.status, Import.error_message).where(
            Import.status.in_([Status.QUEUED, *BEATING])
            & ((Import.error_message == WAITING_MESSAGE)
               | ((Import.heartbeat_at.is_null() | (Import.heartbeat_at < stale))
                  # A just-queued job has not beaten yet: give it the same grace.
                  & ((Import.status == Status.RUNNING) | Import.queued_at.is_null() | (Import.queued_at < stale)))))
        return [(u.id, JOB_OF[u.status], u.error_message == RETRY_MESSAGE) for u in (*query, *reverts)]


def _pending_in_rq(queue, kind: str, import_id: int, retrying: bool) -> bool:
    """True when RQ will still run this job by itself (a hint only: the lease decides who runs).

    Only a job waiting in the queue, or a retry the job asked for whose time has not passed a sweep ago. A job
    RQ's cleanup scheduled after its worker died is not trusted: that worker may have held the scheduler lock,
    and no other worker takes the lock before RQ's next maintenance (10 minutes).
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    name = job_id(kind, import_id)
    try:
        status = Job.fetch(name, connection=queue.connection).get_status()
    except NoSuchJobError:
        return False
    status = getattr(status, "value", status)
    if status == "queued":
        return queue.get_job_position(name) is not None
    if status == "scheduled" and retrying:
        at = queue.connection.zscore(ScheduledJobRegistry(queue=queue).key, name)
        return at is not None and at + sweep_seconds() > time.time()
    return False


def requeue_stale(redis_url: str | None) -> list[int]:
    """Re-enqueue imports whose worker died or whose enqueue failed (the reaper); returns their ids."""
    found = stale_imports()
    queue = _queue(redis_url) if redis_url and found else None
    requeued = []
    for import_id, kind, retrying in found:
        if queue is not None:
            if _pending_in_rq(queue, kind, import_id, retrying):
                continue
            _unschedule(queue, job_id(kind, import_id))
        log.info("requeueing %s (no live worker)", job_id(kind, import_id))
        if enqueue(kind, import_id, redis_url):
            requeued.append(import_id)
    return requeued


def _unschedule(queue, name: str) -> None:
    """Take the job out of RQ's scheduled registry: it is queued now (a scheduler found later would run it twice)."""
    from rq.registry import ScheduledJobRegistry

    ScheduledJobRegistry(queue=queue).remove(name)


def sweep_seconds() -> float:
    """How often the reaper looks for dead imports (the sweep_seconds setting, IMPORT_SWEEP_SECONDS)."""
    return config.current().sweep_seconds


def expire_drafts() -> list[int]:
    """Remove the drafts nobody touched for drafts.DRAFT_DAYS, with their stored files (a reaper's chore)."""
    from webapp.importer import drafts

    with connected():
        return drafts.expire()


def start_reaper(redis_url: str | None, lock=None) -> threading.Thread:
    """A daemon thread that requeues dead imports every sweep_seconds() and expires old drafts hourly (holding lock)."""

    def sweep():
        drafts_due = 0.0
        while True:
            time.sleep(sweep_seconds())
            try:
                with lock or nullcontext():
                    requeue_stale(redis_url)
                    # Drafts expire by the day: once an hour is soon enough, and spares the database.
                    if time.monotonic() >= drafts_due:
                        expire_drafts()
                        drafts_due = time.monotonic() + DRAFT_SWEEP_SECONDS
            except Exception:  # noqa: BLE001 - the reaper must outlive a database or Redis hiccup
                log.warning("reaper sweep failed", exc_info=True)

    thread = threading.Thread(target=sweep, name="import-reaper", daemon=True)
    thread.start()
    return thread

