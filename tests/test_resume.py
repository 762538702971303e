"""Issue 17.3: worker deaths halt an import only when runs stop getting further, and an owner resumes a halted
import from its checkpoint (the history page, `personas requeue IMPORT_ID`), still applying each row exactly once.
"""
import datetime

import pytest

from tests.conftest import csrf_token_of
from tests.engine_helpers import invoke, tune
from tests.jobs_helpers import CHUNK, Workers, finished, status_of, validated_import, wait_for, write_csv
from tests.test_fault_injection import (  # noqa: F401 - fixtures
    Killed,
    _assert_exactly_once,
    _kill_after,
    _owner_and_account,
    _redis_url,
    _reference,
    needs_services,
    pg_app,
    redis_db,
    workers,
)
from webapp.importer import engine
from webapp.models import Import
from worker import queue, tasks

ROWS = 1000  # 10 units of CHUNK rows


@pytest.fixture(autouse=True)
def _small_units(monkeypatch):
    # One unit per kill: each run gets exactly one unit further.
    tune(monkeypatch, IMPORT_CHUNK_ROWS=CHUNK, IMPORT_APPLY_WORKERS=1)


@pytest.fixture
def file_and_reference(app, tmp_path, owner_a):
    path = write_csv(tmp_path / "customers.csv", ROWS)
    return path, *_reference(tmp_path, owner_a, path)


def _age_heartbeat(import_id: int) -> None:
    """The dead run's heartbeat goes stale, as time would make it."""
    beat = Import.get_by_id(import_id).heartbeat_at
    Import.update(heartbeat_at=beat - datetime.timedelta(hours=1)).where(Import.id == import_id).execute()


def _halted(account, owner, path) -> Import:
    """An import whose first run applied 3 units and died, then whose next runs all died where they started."""
    upload = validated_import(account, owner, path)
    with pytest.raises(Killed):
        tasks.apply_import(upload.id, after_chunk=_kill_after(3))
    for _ in range(tasks.MAX_ATTEMPTS + 1):
        _age_heartbeat(upload.id)
        if engine.claim(upload.id, ("queued",), "running", max_attempts=tasks.MAX_ATTEMPTS) is None:
            break
    halted = Import.get_by_id(upload.id)
    assert (halted.status, halted.stalls) == ("failed", tasks.MAX_ATTEMPTS) and 0 < halted.checkpoint < ROWS
    assert "halted" in halted.error_message and "resume" in halted.error_message
    return halted


def test_an_import_killed_eight_times_that_gets_further_each_time_completes_exactly_once(
        file_and_reference, account_a, owner_a):
    path, reference, reference_export = file_and_reference
    upload = validated_import(account_a, owner_a, path)
    checkpoint = 0
    for run in range(1, 9):
        with pytest.raises(Killed):
            tasks.apply_import(upload.id, after_chunk=_kill_after(1))
        killed = Import.get_by_id(upload.id)
        assert (killed.status, killed.attempt, killed.stalls) == ("running", run, 0)
        assert checkpoint < killed.checkpoint < ROWS  # one unit further each time
        checkpoint = killed.checkpoint
        _age_heartbeat(upload.id)
    tasks.apply_import(upload.id)
    _assert_exactly_once(upload.id, reference, reference_export, account_a.id, path)
    assert (Import.get_by_id(upload.id).attempt, Import.get_by_id(upload.id).stalls) == (9, 0)


def test_five_runs_that_die_where_they_started_halt_it(file_and_reference, account_a, owner_a):
    path, _reference_import, _export = file_and_reference
    halted = _halted(account_a, owner_a, path)
    tasks.apply_import(halted.id)  # a late job of RQ's does nothing to a halted import
    assert Import.get_by_id(halted.id).status == "failed"


def test_a_halted_import_resumed_from_the_history_page_completes_exactly_once(
        file_and_reference, account_a, owner_a, owner_client):
    path, reference, reference_export = file_and_reference
    halted = _halted(account_a, owner_a, path)
    action = f"/imports/{halted.id}/resume"
    assert f'action="{action}"' in owner_client.get("/imports").get_data(as_text=True)

    response = owner_client.post(action, data={"csrf_token": csrf_token_of(owner_client)})
    assert response.status_code == 303
    wait_for(lambda: finished(halted.id), what="the resumed import to finish")
    _assert_exactly_once(halted.id, reference, reference_export, account_a.id, path)
    page = owner_client.get("/imports").get_data(as_text=True)
    assert "resumes where it stopped" in page and f'action="{action}"' not in page

    again = owner_client.post(action, data={"csrf_token": csrf_token_of(owner_client)}, follow_redirects=True)
    assert "Only a halted or failed import can be resumed." in again.get_data(as_text=True)
    _assert_exactly_once(halted.id, reference, reference_export, account_a.id, path)


def test_staff_cannot_resume(file_and_reference, account_a, owner_a, staff_a, app):
    from tests.conftest import _signed_in

    path, _reference_import, _export = file_and_reference
    halted = _halted(account_a, owner_a, path)
    staff = _signed_in(app, staff_a)
    assert f"/imports/{halted.id}/resume" not in staff.get("/imports").get_data(as_text=True)
    assert staff.post(f"/imports/{halted.id}/resume", data={"csrf_token": csrf_token_of(staff)}).status_code == 403
    assert status_of(halted.id).status == "failed"


def test_a_halted_import_resumed_by_the_cli_completes_exactly_once(file_and_reference, account_a, owner_a, runner):
    path, reference, reference_export = file_and_reference
    halted = _halted(account_a, owner_a, path)
    code, data, _ = invoke(runner, "requeue", halted.id)
    assert (code, data) == (0, {"requeued": [halted.id], "status": "completed"})
    _assert_exactly_once(halted.id, reference, reference_export, account_a.id, path)

    code, data, _ = invoke(runner, "requeue", halted.id)  # completed: nothing to resume, nothing applied again
    assert (code, data) == (2, {"status": "refused", "error": "Only a halted or failed import can be resumed."})
    code, data, _ = invoke(runner, "requeue", 999999)
    assert (code, data) == (2, {"status": "refused", "error": "There is no import #999999."})
    _assert_exactly_once(halted.id, reference, reference_export, account_a.id, path)


def test_an_import_whose_file_was_deleted_cannot_be_resumed(file_and_reference, account_a, owner_a, runner):
    from webapp.importer import flow

    path, _reference_import, _export = file_and_reference
    halted = _halted(account_a, owner_a, path)
    flow.delete_file(halted)
    code, data, _ = invoke(runner, "requeue", halted.id)
    assert code == 2 and "file was deleted" in data["error"]
    assert status_of(halted.id).status == "failed"


@pytest.mark.redis
@needs_services
def test_real_workers_killed_seven_times_mid_apply_complete_exactly_once(workers: Workers, tmp_path):
    """Seven `personas worker` processes each die (SIGKILL, with their work horse) after one more unit."""
    account, owner = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", ROWS)
    reference, reference_export = _reference(tmp_path, owner, path, name="Reference")
    upload = validated_import(account, owner, path)
    assert queue.enqueue("import", upload.id, _redis_url())
    checkpoint = 0
    for run in range(1, 8):
        tag = workers.start(IMPORT_FAULT_KILL_AFTER_CHUNKS=1, IMPORT_APPLY_WORKERS=1)
        wait_for(lambda tag=tag: workers.exited(tag), what=f"worker {run} to die after one unit")
        workers.kill(tag)
        killed = status_of(upload.id)
        assert killed.attempt == run and checkpoint < killed.checkpoint < ROWS, workers.logs()
        checkpoint = killed.checkpoint
    workers.start()
    wait_for(lambda: finished(upload.id), what="the import to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account.id, path)
    done = Import.get_by_id(upload.id)
    assert (done.attempt, done.stalls) == (8, 0), workers.logs()
