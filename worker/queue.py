"""The one place that starts background work: an RQ job with REDIS_URL, else an in-process thread."""
import logging
import threading

from webapp.db import db
from webapp.models import Import

QUEUE = "imports"
JOB_TIMEOUT = 6 * 60 * 60  # the largest import (2M rows) with room to spare
RETRY_INTERVALS = [10, 30, 60]
WAITING_MESSAGE = "Waiting for the import service to come back; it will start on its own."
log = logging.getLogger(__name__)

JOBS = {"validate": "worker.tasks.validate_import", "import": "worker.tasks.apply_import"}


def enqueue(kind: str, import_id: int, redis_url: str | None, limits=None) -> bool:
    """Start job kind ("validate" or "import") for an import; False when the queue is unreachable."""
    if not redis_url:
        _start_thread(kind, import_id, limits)
        return True
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue, Retry

    try:
        Queue(QUEUE, connection=Redis.from_url(redis_url)).enqueue(
            JOBS[kind], import_id, job_id=f"{kind}-{import_id}", job_timeout=JOB_TIMEOUT,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS), failure_ttl=7 * 24 * 3600)
        return True
    except RedisError:
        log.exception("could not enqueue %s-%s", kind, import_id)
        Import.update(error_message=WAITING_MESSAGE).where(Import.id == import_id).execute()
        return False


def _start_thread(kind: str, import_id: int, limits) -> None:
    from worker import tasks

    job = tasks.validate_import if kind == "validate" else tasks.apply_import

    def run():
        try:
            job(import_id, limits)
        except Exception:
            log.exception("in-process %s-%s failed", kind, import_id)
            with db.connection_context():
                from webapp.importer.engine import fail

                fail(import_id, None, "The import failed unexpectedly. Rows applied so far stay applied "
                     "and none was applied twice.")

    threading.Thread(target=run, name=f"{kind}-{import_id}", daemon=True).start()


def requeue_stale(redis_url: str | None) -> list[int]:
    """Re-enqueue imports whose worker died or whose enqueue failed (the reaper); returns their ids."""
    from webapp.importer.engine import STALE_AFTER
    from webapp.models import utcnow

    stale = utcnow() - STALE_AFTER
    with db.connection_context():
        waiting = Import.select(Import.id, Import.status).where(
            Import.status.in_(["queued", "running", "validating"])
            & (Import.heartbeat_at.is_null() | (Import.heartbeat_at < stale))
            & (Import.queued_at < stale))
        found = [(u.id, "validate" if u.status == "validating" else "import") for u in waiting]
    for import_id, kind in found:
        enqueue(kind, import_id, redis_url)
    return [import_id for import_id, _ in found]
