"""Issue 17.2: an import whose worker died runs again within IMPORT_STALE_SECONDS plus one IMPORT_SWEEP_SECONDS,
whatever RQ's registries say, on real `personas worker` processes, PostgreSQL and Redis.

When the dead worker held RQ's scheduler lock, RQ's cleanup of its started jobs schedules the abandoned job for a
retry that no scheduler will run (the lock outlives its holder, and a live worker takes it only at RQ's ten-minute
maintenance). The reaper must queue it anyway.
"""
import time

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from tests.engine_helpers import tune
from tests.jobs_helpers import ROOT, Workers, finished, status_of, validated_import, wait_for, write_csv
from tests.test_fault_injection import (  # noqa: F401 - fixtures
    ROWS,
    _assert_exactly_once,
    _owner_and_account,
    _redis_url,
    _reference,
    needs_services,
    pg_app,
    redis_db,
    workers,
)
from worker import queue

STALE, SWEEP = 3.0, 1.0
SLACK = 2.0  # forking the job's work horse and claiming, on a shared 2-core machine
WORKER_ENV = {"IMPORT_STALE_SECONDS": STALE, "IMPORT_SWEEP_SECONDS": SWEEP}
LOCK = "rq:scheduler-lock:" + queue.QUEUE


def _lock_holder(redis_db) -> bytes | None:
    return redis_db.get(LOCK)


def _claimed_again(import_id: int):
    return status_of(import_id).attempt >= 2


@pytest.mark.redis
@needs_services
@pytest.mark.parametrize("victim_holds_lock", [True, False], ids=["holding-the-scheduler-lock", "not-holding-it"])
def test_an_import_whose_worker_died_runs_again_within_stale_plus_one_sweep(workers: Workers, redis_db, tmp_path,
                                                                            victim_holds_lock, capsys):
    account, owner = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", ROWS)
    reference, reference_export = _reference(tmp_path, owner, path)
    upload = validated_import(account, owner, path)
    rq_queue = Queue(queue.QUEUE, connection=redis_db)

    # Each worker dies (main process and work horse, as SIGKILLed) right after 5 units of its run commit.
    kill = {"IMPORT_FAULT_KILL_AFTER_CHUNKS": 5}
    holder = workers.start(PYTHONPATH=ROOT, **WORKER_ENV, **(kill if victim_holds_lock else {}))
    wait_for(lambda: _lock_holder(redis_db), what="the first worker to take RQ's scheduler lock")
    if not victim_holds_lock:
        # The holder is kept busy while the other worker takes the import, and freed before that one dies.
        rq_queue.enqueue("tests.jobs_helpers.hold", _redis_url(), "release", job_id="hold")
        wait_for(lambda: Job.fetch("hold", connection=redis_db).get_status() == "started", what="the blocker")
    other = workers.start(**WORKER_ENV, **({} if victim_holds_lock else kill))
    wait_for(lambda: len(redis_db.smembers("rq:workers")) == 2, what="the second worker")
    victim = holder if victim_holds_lock else other
    assert queue.enqueue("import", upload.id, _redis_url())  # the holder waits on the queue first: it takes it
    if not victim_holds_lock:
        wait_for(lambda: status_of(upload.id).checkpoint > 0, interval=0.005, what="the other worker to apply")
        redis_db.set("release", 1)
        wait_for(lambda: Job.fetch("hold", connection=redis_db).get_status() == "finished", what="the holder free")
    lock = _lock_holder(redis_db)

    wait_for(lambda: workers.exited(victim), interval=0.005, what="the victim to die after 5 units")
    killed_at = time.monotonic()
    workers.kill(victim)  # and its scheduler process, when it ran one: the whole machine went down
    dead = status_of(upload.id)
    assert (dead.status, dead.attempt) == ("running", 1) and 0 < dead.checkpoint < ROWS
    if victim_holds_lock:
        # What a surviving worker's RQ maintenance does: the abandoned job goes to the scheduled registry, for a
        # retry that the dead scheduler would have run; its lock is still there, so no live worker takes it.
        StartedJobRegistry(queue=rq_queue).cleanup(timestamp=time.time() + 3600)
        assert Job.fetch(queue.job_id("import", upload.id), connection=redis_db).get_status() == "scheduled"
        assert queue.job_id("import", upload.id) in ScheduledJobRegistry(queue=rq_queue).get_job_ids()
        assert _lock_holder(redis_db) == lock

    wait_for(lambda: _claimed_again(upload.id), timeout=STALE + SWEEP + 30, interval=0.02,
              what="the import to run again")
    recovered = time.monotonic() - killed_at
    with capsys.disabled():
        print(f"\nrecovery after a worker kill ({'with' if victim_holds_lock else 'without'} the scheduler lock): "
              f"{recovered:.2f} s (stale {STALE:g} s + sweep {SWEEP:g} s)")
    assert recovered <= STALE + SWEEP + SLACK, workers.logs()

    wait_for(lambda: finished(upload.id), what="the import to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account.id, path)
    assert queue.job_id("import", upload.id) not in ScheduledJobRegistry(queue=rq_queue).get_job_ids()


@pytest.mark.redis
@needs_services
def test_rq_is_trusted_with_the_retry_of_a_failed_job_until_its_time_never_with_a_dead_worker_s(
        pg_app, redis_db, tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from webapp.models import Import

    tune(monkeypatch, IMPORT_SWEEP_SECONDS=SWEEP)
    account, owner = _owner_and_account()
    upload = validated_import(account, owner, write_csv(tmp_path / "customers.csv", 300))
    rq_queue = Queue(queue.QUEUE, connection=redis_db)
    name = queue.job_id("import", upload.id)

    def scheduled_in(seconds: float, message: str | None) -> None:
        """The job waits in RQ's scheduled registry; the import's last run stopped beating, for the reason given."""
        assert queue.enqueue("import", upload.id, _redis_url())
        job = Job.fetch(name, connection=redis_db)
        rq_queue.remove(job)
        rq_queue.schedule_job(job, datetime.now(timezone.utc) + timedelta(seconds=seconds))
        Import.update(status="running", lease="a-run", heartbeat_at=None, error_message=message).where(
            Import.id == upload.id).execute()

    scheduled_in(60, queue.RETRY_MESSAGE)  # the job failed and asked RQ to retry it in a minute
    assert queue.requeue_stale(_redis_url()) == []
    scheduled_in(-2 * SWEEP - 1, queue.RETRY_MESSAGE)  # its time passed a sweep ago: no scheduler is running it
    assert queue.requeue_stale(_redis_url()) == [upload.id]
    assert name not in ScheduledJobRegistry(queue=rq_queue).get_job_ids() and name in rq_queue.job_ids
    scheduled_in(60, None)  # RQ's cleanup scheduled it after its worker died
    assert queue.requeue_stale(_redis_url()) == [upload.id]
    assert name not in ScheduledJobRegistry(queue=rq_queue).get_job_ids()
