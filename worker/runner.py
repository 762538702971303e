"""`personas worker`: an RQ worker (with its scheduler, for retries) plus the stale-import reaper."""
import logging
import threading

from redis import Redis
from rq import Queue, Worker

from webapp.db import db
from webapp.logs import install as install_safe_logging
from worker.queue import QUEUE, requeue_stale, start_reaper

log = logging.getLogger(__name__)
# Held by the reaper while it has a database connection open, and by the worker while it forks:
# a work horse must never inherit a live connection (its cleanup would close the parent's socket).
FORK_LOCK = threading.Lock()


class ImportWorker(Worker):
    """RQ's forking worker that forks with no database connection open in the parent."""

    def fork_work_horse(self, job, queue):
        with FORK_LOCK:
            if not db.is_closed():
                db.close()
            super().fork_work_horse(job, queue)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_worker(redis_url: str, burst: bool = False) -> None:
    """Recover imports whose worker died, keep sweeping for them, and work the imports queue."""
    # One handler for RQ's lines and ours (RQ adds its own only when none is there), INFO and up; every
    # record is made safe first (webapp.logs: no customer value in any line).
    install_safe_logging()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    with FORK_LOCK:
        requeued = requeue_stale(redis_url)
    if requeued:
        log.info("requeued imports with no live worker: %s", requeued)
    if not burst:
        start_reaper(redis_url, FORK_LOCK)
    if not db.is_closed():
        db.close()
    connection = Redis.from_url(redis_url)
    ImportWorker([Queue(QUEUE, connection=connection)], connection=connection).work(
        with_scheduler=True, burst=burst)
