"""`personas worker`: an RQ worker (with its scheduler, for retries) plus the stale-import reaper."""
import threading

from redis import Redis
from rq import Queue, Worker

from worker.queue import QUEUE, requeue_stale

SWEEP_SECONDS = 30


def run_worker(redis_url: str, burst: bool = False) -> None:
    """Recover imports whose worker died, keep sweeping for them, and work the imports queue."""
    requeue_stale(redis_url)
    if not burst:
        threading.Thread(target=_sweep, args=(redis_url,), name="reaper", daemon=True).start()
    connection = Redis.from_url(redis_url)
    Worker([Queue(QUEUE, connection=connection)], connection=connection).work(with_scheduler=True, burst=burst)


def _sweep(redis_url: str) -> None:
    stop = threading.Event()
    while not stop.wait(SWEEP_SECONDS):
        try:
            requeue_stale(redis_url)
        except Exception:  # noqa: BLE001 - the reaper must outlive a database or Redis hiccup
            continue
