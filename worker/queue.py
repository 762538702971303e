"""The one place that starts background work: an RQ job with REDIS_URL, else an in-process thread."""
import logging
import os
import threading
import time
from contextlib import contextmanager, nullcontext

from webapp.db import db
from webapp.models import Import, utcnow

QUEUE = "imports"
JOB_TIMEOUT = 6 * 60 * 60  # the largest import (2M rows) with room to spare
RETRY_INTERVALS = [10, 30, 60]
WAITING_MESSAGE = "Waiting for the import service to come back; it will start on its own."
FAILED_MESSAGE = "The import failed unexpectedly. Rows applied so far stay applied and none was applied twice."
SWEEP_SECONDS = 30
log = logging.getLogger(__name__)

JOBS = {"validate": "worker.tasks.validate_import", "import": "worker.tasks.apply_import",
        "revert": "worker.tasks.revert_import"}
# RQ statuses under which the job will still run by itself: the reaper must not queue it again.
PENDING = {"queued", "scheduled", "deferred"}


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
    """Start job kind ("validate", "import" or "revert") for an import; False when the queue is unreachable."""
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


KIND_OF_STATUS = {"validating": "validate", "queued": "import", "running": "import", "reverting": "revert"}


def stale_imports() -> list[tuple[int, str]]:
    """(id, kind) of imports nobody is running: heartbeat stale, or never enqueued (Redis was down)."""
    from webapp.importer.engine import stale_after
    from webapp.importer.revert import REVERT_STALE

    stale = utcnow() - stale_after()
    with connected():
        # A revert beats by stamping reverted_at at each chunk.
        reverts = Import.select(Import.id, Import.status).where(
            (Import.status == "reverting") & (Import.reverted_at < utcnow() - REVERT_STALE))
        query = Import.select(Import.id, Import.status).where(
            Import.status.in_(["queued", "running", "validating"])
            & ((Import.error_message == WAITING_MESSAGE)
               | ((Import.heartbeat_at.is_null() | (Import.heartbeat_at < stale))
                  # A just-queued job has not beaten yet: give it the same grace.
                  & ((Import.status == "running") | Import.queued_at.is_null() | (Import.queued_at < stale)))))
        return [(u.id, KIND_OF_STATUS[u.status]) for u in (*query, *reverts)]


def _pending_in_rq(queue, kind: str, import_id: int) -> bool:
    """True when RQ will still run this job by itself (a hint only: the lease decides who runs)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        status = Job.fetch(job_id(kind, import_id), connection=queue.connection).get_status()
    except NoSuchJobError:
        return False
    status = getattr(status, "value", status)
    if status == "queued":
        return queue.get_job_position(job_id(kind, import_id)) is not None
    return status in PENDING


def requeue_stale(redis_url: str | None) -> list[int]:
    """Re-enqueue imports whose worker died or whose enqueue failed (the reaper); returns their ids."""
    found = stale_imports()
    queue = _queue(redis_url) if redis_url and found else None
    requeued = []
    for import_id, kind in found:
        if queue is not None and _pending_in_rq(queue, kind, import_id):
            continue
        log.info("requeueing %s (no live worker)", job_id(kind, import_id))
        if enqueue(kind, import_id, redis_url):
            requeued.append(import_id)
    return requeued


def sweep_seconds() -> float:
    """How often the reaper looks for dead imports (IMPORT_SWEEP_SECONDS, default 30 s)."""
    return float(os.environ.get("IMPORT_SWEEP_SECONDS") or SWEEP_SECONDS)


def start_reaper(redis_url: str | None, lock=None) -> threading.Thread:
    """A daemon thread that requeues dead imports every sweep_seconds() (holding lock while it works)."""

    def sweep():
        while True:
            time.sleep(sweep_seconds())
            try:
                with lock or nullcontext():
                    requeue_stale(redis_url)
            except Exception:  # noqa: BLE001 - the reaper must outlive a database or Redis hiccup
                log.warning("reaper sweep failed", exc_info=True)

    thread = threading.Thread(target=sweep, name="import-reaper", daemon=True)
    thread.start()
    return thread

