"""Every state change of an import is a compare-and-set move (issue 17.1): a stale read changes nothing.

Each test reads the import twice, as two requests (or a request and a job) would; one moves it, and the
other, acting on its older read, must find the import changed and leave it exactly as it is.
"""
import pytest

from tests.engine_helpers import IP, LIMITS, TERMS, apply_queued, prepare_import, write_csv
from tests.jobs_helpers import row_of
from webapp.importer import engine, flow, states
from webapp.importer.errors import FileRefused
from webapp.importer.revert import claim_revert
from webapp.models import Import, Persona
from worker import tasks

ROWS = [["Email", "Points"], ["ann@example.com", "5"], ["bob@example.com", "7"]]
MAPPING = {"Email": "email", "Points": "points"}


def _row(upload: Import) -> dict:
    return row_of(upload.id)


def _read(upload: Import) -> Import:
    """Another read of the import, as another request would make it."""
    return Import.get_by_id(upload.id)


@pytest.fixture
def validated(account_a, owner_a, tmp_path):
    return prepare_import(account_a, owner_a, write_csv(tmp_path, ROWS), accept=False)


def test_every_move_bumps_the_version_and_a_move_from_another_version_does_nothing(validated):
    before = _row(validated)
    assert not states.move(validated.id, "submit", version=before["version"] - 1, terms_version="x")
    assert _row(validated) == before
    assert states.move(validated.id, "submit", version=before["version"], terms_version="x")
    after = _row(validated)
    assert (after["status"], after["version"], after["terms_version"]) == ("queued", before["version"] + 1, "x")


@pytest.mark.parametrize("name, status", [
    ("submit", "draft"), ("map", "queued"), ("remove", "running"), ("complete", "validated"), ("fail", "completed"),
    ("delete_file", "running"), ("revert", "validated"), ("reverted", "completed"), ("run_apply", "completed"),
])
def test_a_move_never_starts_from_a_status_it_does_not_start_from(validated, name, status):
    Import.update(status=status).where(Import.id == validated.id).execute()
    before = _row(validated)
    assert not states.move(validated.id, name)
    assert _row(validated) == before


def test_a_second_import_personas_click_does_nothing(validated, owner_a, staff_a):
    first, late = _read(validated), _read(validated)
    flow.submit(first, owner_a, IP, TERMS, opt_in_sms=False, opt_in_email=False)
    before = _row(validated)
    with pytest.raises(states.Changed):
        flow.submit(late, staff_a, "198.51.100.1", TERMS, opt_in_sms=True, opt_in_email=True)
    assert _row(validated) == before  # still the first click's terms, user and choices
    assert (before["terms_accepted_by"], before["options"]) == (owner_a.id, {"opt_in_sms": False, "opt_in_email": False})


def test_a_late_submit_never_rewinds_a_running_import(validated, owner_a, account_a):
    late = _read(validated)  # the request that read the import before the first submit
    flow.submit(_read(validated), owner_a, IP, TERMS, False, False)
    lease = engine.claim(validated.id, ("queued",), "running")
    running = _row(validated)
    with pytest.raises(states.Changed):
        flow.submit(late, owner_a, IP, TERMS, True, True)
    assert _row(validated) == running
    engine.apply(validated.id, lease)
    done = _read(validated)
    assert (done.status, done.checkpoint, done.counts["created"]) == ("completed", 2, 2)
    assert sorted(p.points for p in Persona.select().where(Persona.account == account_a)) == [5, 7]


def test_a_stale_mapping_sheet_or_removal_does_nothing(validated, owner_a):
    shown = _read(validated)  # a tab still showing the Review step's version
    flow.set_mapping(_read(validated), {"Email": "email", "Points": "ignore"})  # another tab maps again
    before = _row(validated)
    with pytest.raises(states.Changed):
        flow.set_mapping(shown, MAPPING)
    with pytest.raises(states.Changed):
        flow.describe(shown, LIMITS, header_line=1)
    with pytest.raises(states.Changed):
        flow.queue_validation(shown)
    with pytest.raises(states.Changed):
        flow.discard(shown)
    assert _row(validated) == before


def test_removing_an_import_another_tab_submitted_is_refused(validated, owner_a):
    shown = _read(validated)
    flow.submit(_read(validated), owner_a, IP, TERMS, False, False)
    with pytest.raises(states.Changed):
        flow.discard(shown)
    assert _read(validated).status == "queued"


def test_a_validation_that_lost_its_lease_never_marks_the_import_validated(account_a, owner_a, tmp_path):
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, ROWS), accept=False)
    flow.set_mapping(upload, MAPPING)
    flow.queue_validation(upload)
    stale = engine.claim(upload.id, (), "validating")
    Import.update(heartbeat_at=None).where(Import.id == upload.id).execute()  # its run looked dead
    live = engine.claim(upload.id, (), "validating")
    with pytest.raises(engine.LeaseLost):
        engine.validate(upload.id, stale, max_rows=LIMITS.max_rows, max_bytes=LIMITS.max_bytes)
    assert (_read(upload).status, _read(upload).lease) == ("validating", live)
    engine.validate(upload.id, live, max_rows=LIMITS.max_rows, max_bytes=LIMITS.max_bytes)
    assert (_read(upload).status, _read(upload).staged) == ("validated", True)


def test_a_failure_report_for_a_lost_lease_and_a_late_completion_change_nothing(validated, owner_a):
    flow.submit(validated, owner_a, IP, TERMS, False, False)
    stale = engine.claim(validated.id, ("queued",), "running")
    Import.update(heartbeat_at=None).where(Import.id == validated.id).execute()  # its run looked dead
    live = engine.claim(validated.id, ("queued",), "running")
    before = _row(validated)
    engine.fail(validated.id, stale, "late failure")
    with pytest.raises(engine.LeaseLost):
        engine._complete(_read(validated), stale)
    assert _row(validated) == before
    engine.apply(validated.id, live)
    assert _read(validated).status == "completed"


def test_a_halt_happens_once_and_only_from_a_dead_run(validated, owner_a):
    flow.submit(validated, owner_a, IP, TERMS, False, False)
    engine.claim(validated.id, ("queued",), "running", max_attempts=1)
    assert engine.claim(validated.id, ("queued",), "running", max_attempts=1) is None  # alive: untouched
    assert _read(validated).status == "running"
    Import.update(heartbeat_at=None).where(Import.id == validated.id).execute()
    assert engine.claim(validated.id, ("queued",), "running", max_attempts=1) is None
    halted = _read(validated)
    assert (halted.status, halted.lease) == ("failed", None) and "halted" in halted.error_message


def test_deleting_a_running_import_s_file_and_a_second_revert_are_refused(validated, owner_a, account_a):
    flow.submit(validated, owner_a, IP, TERMS, False, False)
    engine.claim(validated.id, ("queued",), "running")
    with pytest.raises(FileRefused, match="still running"):
        flow.delete_file(_read(validated))
    Import.update(lease=None, heartbeat_at=None).where(Import.id == validated.id).execute()
    tasks.apply_import(validated.id, LIMITS)
    claim_revert(validated.id, account_a.id, owner_a.id)
    with pytest.raises(FileRefused, match="being reverted right now"):
        claim_revert(validated.id, account_a.id, owner_a.id)
    with pytest.raises(FileRefused, match="still running"):
        flow.delete_file(_read(validated))
    assert _read(validated).status == "reverting" and not _read(validated).file_deleted


def test_a_completed_import_s_file_is_deleted_once_from_its_finished_state(account_a, owner_a, tmp_path):
    upload = apply_queued(prepare_import(account_a, owner_a, write_csv(tmp_path, ROWS)))
    flow.delete_file(upload)
    done = _read(upload)
    assert (done.status, done.file_deleted, done.audience_id, done.staged) == ("completed", True, None, False)
