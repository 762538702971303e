"""Running an apply's units: the ordered ones one after the other, the free ones on every worker at once.

Interacting rows must apply in file order, so their units run in order on the first worker. Independent
rows commute with everything, so their units go to whichever worker is free: on PostgreSQL two workers
(two connections, one per thread) keep both cores busy while the database writes.
"""
import threading
from collections import deque

from webapp.db import db


def run(ordered: list, free: list, work, workers: int, after_each=None) -> None:
    """work(unit) for every unit; after_each() after each one that ran. The first error stops the rest."""
    if workers <= 1:
        for unit in [*ordered, *free]:
            _one(work, unit, after_each)
        return
    queue, lock, failed = deque(free), threading.Lock(), []

    def take():
        with lock:
            return queue.popleft() if queue and not failed else None

    def worker(first: list) -> None:
        try:
            with db.connection_context():
                for unit in first:
                    if failed:
                        return
                    _one(work, unit, after_each)
                while (unit := take()) is not None:
                    _one(work, unit, after_each)
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            failed.append(error)

    threads = [threading.Thread(target=worker, args=(ordered if n == 0 else [],), name=f"apply-{n}", daemon=True)
               for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]


def _one(work, unit, after_each) -> None:
    if work(unit) and after_each:
        after_each()
