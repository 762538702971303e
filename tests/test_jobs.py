"""Job entry points, leases, the reaper and progress: behaviour on SQLite and (when set) PostgreSQL."""
import datetime

import pytest

from tests.engine_helpers import tune
from tests.jobs_helpers import audit_count, changed_rows, validated_import, write_csv
from webapp.db import db
from webapp.importer import engine
from webapp.importer.progress import progress
from webapp.models import AppliedUnit, AuditEntry, Import
from worker import queue, tasks

DEAD_PORT = "redis://127.0.0.1:1/7"


@pytest.fixture
def queued(app, tmp_path, monkeypatch, account_a, owner_a):
    """A validated import of 500 rows, queued, applied in chunks of 100."""
    tune(monkeypatch, IMPORT_CHUNK_ROWS=100)
    return validated_import(account_a, owner_a, write_csv(tmp_path / "c.csv", 500))


def _age(import_id: int, **fields) -> None:
    hour_ago = engine.utcnow() - datetime.timedelta(hours=1)
    Import.update(**{name: hour_ago for name in fields}).where(Import.id == import_id).execute()


def test_claim_gives_one_lease_and_takes_over_only_a_dead_run(queued):
    lease = engine.claim(queued.id, ("queued",), "running")
    assert lease and engine.claim(queued.id, ("queued",), "running") is None  # alive: a second run does nothing
    _age(queued.id, heartbeat_at=True)
    second = engine.claim(queued.id, ("queued",), "running")
    upload = Import.get_by_id(queued.id)
    assert second not in (None, lease) and (upload.lease, upload.attempt) == (second, 2)
    with pytest.raises(engine.LeaseLost):
        engine.apply(queued.id, lease)  # the dead run's lease writes nothing
    assert Import.get_by_id(queued.id).checkpoint == 0


def test_attempt_cap_halts_with_a_readable_message(queued):
    Import.update(status="running", lease="dead", attempt=tasks.MAX_ATTEMPTS,
                  stalls=tasks.MAX_ATTEMPTS - 1).where(Import.id == queued.id).execute()
    _age(queued.id, heartbeat_at=True)
    tasks.apply_import(queued.id)
    upload = Import.get_by_id(queued.id)
    assert upload.status == "failed" and "halted" in upload.error_message and audit_count(upload.id) == 0


def test_resumed_apply_continues_from_checkpoint_and_completes(queued):
    lease = engine.claim(queued.id, ("queued",), "running")

    class Crash(BaseException):
        pass

    def crash():
        raise Crash

    with pytest.raises(Crash):
        engine.apply(queued.id, lease, after_chunk=crash)
    # The units committed before the crash (one, or two when two ran at once) are the checkpoint.
    stopped = Import.get_by_id(queued.id).checkpoint
    assert 0 < stopped < 500
    assert stopped == sum(unit.rows for unit in AppliedUnit.select().where(AppliedUnit.upload == queued.id))
    _age(queued.id, heartbeat_at=True)
    tasks.apply_import(queued.id)
    upload = Import.get_by_id(queued.id)
    assert (upload.status, upload.rows_done, upload.rows_total, upload.attempt) == ("completed", 500, 500, 2)
    assert audit_count(upload.id) == changed_rows(upload)


def test_unexpected_error_clears_heartbeat_for_a_retry_and_reraises(queued, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(engine, "apply", boom)
    # RQ gets a summary safe to log (it logs and keeps what a job raises), not the error and its message.
    with pytest.raises(tasks.JobFailed, match=r"running of import \d+ failed: RuntimeError") as raised:
        tasks.apply_import(queued.id)
    assert "bug" not in str(raised.value) and raised.value.__suppress_context__
    upload = Import.get_by_id(queued.id)
    assert (upload.status, upload.heartbeat_at, upload.error_message) == ("running", None, tasks.RETRY_MESSAGE)
    assert queue.stale_imports() == [(queued.id, "import", True)]  # the retry (or the reaper) takes it at once


def test_bad_file_fails_once_without_retry(queued, monkeypatch):
    from webapp.importer.errors import FileRefused

    def refuse(*args, **kwargs):
        raise FileRefused("The file is not a spreadsheet.")

    monkeypatch.setattr(engine, "apply", refuse)
    tasks.apply_import(queued.id)  # handled: no exception, so RQ does not retry it
    upload = Import.get_by_id(queued.id)
    assert (upload.status, upload.error_message, upload.attempt) == ("failed", "The file is not a spreadsheet.", 1)
    assert queue.stale_imports() == []


def test_fail_without_lease_never_overwrites_a_finished_or_live_import(queued):
    tasks.apply_import(queued.id)
    engine.fail(queued.id, None, "late report")
    assert Import.get_by_id(queued.id).status == "completed"


def test_redis_down_at_submit_keeps_it_queued_with_an_honest_message(queued):
    assert queue.enqueue("import", queued.id, DEAD_PORT) is False
    upload = Import.get_by_id(queued.id)
    assert (upload.status, upload.error_message) == ("queued", queue.WAITING_MESSAGE)
    assert queue.stale_imports() == [(queued.id, "import", False)]  # no grace period: it was never enqueued


def test_reaper_leaves_fresh_and_finished_imports_alone(queued):
    assert queue.stale_imports() == []  # just queued: its job has not started yet
    _age(queued.id, queued_at=True, heartbeat_at=True)  # its job was lost (Redis flushed, say)
    assert queue.stale_imports() == [(queued.id, "import", False)]
    tasks.apply_import(queued.id)
    assert queue.stale_imports() == []


def test_progress_reports_rate_and_eta_from_the_row(queued):
    lease = engine.claim(queued.id, ("queued",), "running")
    start = engine.utcnow() - datetime.timedelta(seconds=10)
    Import.update(started_at=start, heartbeat_at=start + datetime.timedelta(seconds=4), rows_done=200,
                  checkpoint=200).where(Import.id == queued.id).execute()
    info = progress(Import.get_by_id(queued.id))
    assert (info["rows_done"], info["rows_total"], info["percent"]) == (200, 500, 40.0)
    assert (info["rate_per_s"], info["eta_s"], info["attempt"], info["finished"]) == (50.0, 6.0, 1, False)
    engine.apply(queued.id, lease)
    info = progress(Import.get_by_id(queued.id))
    assert (info["percent"], info["finished"], info["rate_per_s"]) == (100.0, True, None)


def test_resumed_run_rate_excludes_the_time_it_lay_dead(queued):
    engine.claim(queued.id, ("queued",), "running")
    hour_ago = engine.utcnow() - datetime.timedelta(hours=1)
    Import.update(started_at=hour_ago, heartbeat_at=hour_ago + datetime.timedelta(seconds=10), rows_done=100,
                  checkpoint=100).where(Import.id == queued.id).execute()
    engine.claim(queued.id, ("queued",), "running")
    upload = Import.get_by_id(queued.id)
    assert upload.rows_done == 100 and upload.attempt == 2
    assert (upload.heartbeat_at - upload.started_at).total_seconds() == pytest.approx(10, abs=1)


def test_deadlocks_and_key_races_are_retried_other_errors_are_not():
    class PgError(Exception):
        pgcode = "40P01"

    from peewee import IntegrityError, OperationalError

    assert engine._retryable(IntegrityError("dup"))
    assert engine._retryable(OperationalError(PgError("deadlock detected")))
    assert engine._retryable(PgError())
    assert engine._retryable(OperationalError("database is locked"))
    assert not engine._retryable(OperationalError("server closed the connection unexpectedly"))
    assert not engine._retryable(ValueError("x"))


def test_worker_forks_with_no_database_connection_open(app, monkeypatch):
    from rq import Worker

    from worker.runner import ImportWorker

    seen = []
    monkeypatch.setattr(Worker, "fork_work_horse", lambda self, job, q: seen.append(db.is_closed()))
    db.connect(reuse_if_open=True)
    ImportWorker.fork_work_horse(object.__new__(ImportWorker), None, None)
    assert seen == [True]


def test_in_process_enqueue_runs_the_import(queued):
    assert queue.enqueue("import", queued.id, None)
    from tests.jobs_helpers import finished, wait_for

    upload = wait_for(lambda: finished(queued.id), what="the runner thread")
    assert upload.status == "completed" and audit_count(upload.id) == changed_rows(upload)


def test_a_revert_whose_worker_died_is_resumed_by_the_reaper(queued, account_a, owner_a):
    from webapp.importer.revert import claim_revert

    tasks.apply_import(queued.id)
    claim_revert(queued.id, account_a.id, owner_a.id)
    assert queue.stale_imports() == []  # just claimed: its job is running
    _age(queued.id, reverted_at=True)
    assert queue.stale_imports() == [(queued.id, "revert", False)]
    touched = {e.persona_id for e in AuditEntry.select().where(AuditEntry.import_id == queued.id)}
    tasks.revert_import(queued.id)
    reverted = Import.get_by_id(queued.id)
    assert reverted.status == "reverted" and reverted.revert_result["reverted"] == len(touched) > 0
