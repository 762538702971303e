"""The use cases of an import (webapp.importer.service): one state change each, then the job handed over.

The caller gives the enqueue function; these tests give one that records what it was handed, and read the
import the way the job would when it starts: already in its new state.
"""
import pytest

from tests.engine_helpers import LIMITS, TERMS, import_rows, prepare_import, write_csv
from tests.jobs_helpers import validate_now
from webapp.importer import service, states
from webapp.importer.errors import FileRefused
from webapp.importer.states import Status
from webapp.models import Import, Persona

ROWS = [["Email", "Points"], ["ann@example.com", "5"], ["bob@example.com", "7"]]


class Recorder:
    """An enqueue function that keeps (kind, import id, status the import had when handed over)."""

    def __init__(self, reachable: bool = True):
        self.calls, self.reachable = [], reachable

    def __call__(self, kind: str, import_id: int) -> bool:
        self.calls.append((kind, import_id, Import.get_by_id(import_id).status))
        return self.reachable


def _uploaded(account, user, tmp_path) -> Import:
    with open(write_csv(tmp_path, ROWS), "rb") as stream:
        return service.start_upload(account, user, "people.csv", stream, LIMITS)


def test_confirming_a_mapping_queues_the_dry_run_and_hands_it_to_the_queue_once(app, account_a, owner_a, tmp_path):
    upload = _uploaded(account_a, owner_a, tmp_path)
    assert upload.status == Status.DRAFT and Import.get_by_id(upload.id).status == "draft"
    enqueue = Recorder()
    assert service.confirm_mapping(upload, {"Email": "email", "Points": "points"}, enqueue) == []
    assert enqueue.calls == [("validate", upload.id, Status.VALIDATING)]
    assert Import.get_by_id(upload.id).mapping == {"Email": "email", "Points": "points"}


def test_a_mapping_with_errors_changes_nothing_and_queues_nothing(app, account_a, owner_a, tmp_path):
    upload = _uploaded(account_a, owner_a, tmp_path)
    enqueue = Recorder()
    errors = service.confirm_mapping(upload, {"Email": "ignore", "Points": "points"}, enqueue)
    assert errors == ["Map an Email or Phone column: personas are matched on phone or email"]
    assert enqueue.calls == []
    assert Import.get_by_id(upload.id).status == Status.DRAFT


def test_a_submit_while_the_queue_is_down_leaves_the_import_queued_for_the_reaper(app, account_a, owner_a, tmp_path):
    upload = _uploaded(account_a, owner_a, tmp_path)
    assert service.confirm_mapping(upload, dict(upload.mapping), validate_now) == []
    upload = Import.get_by_id(upload.id)
    down = Recorder(reachable=False)
    assert service.submit(upload, owner_a, None, TERMS, False, False, down) is False
    assert down.calls == [("import", upload.id, Status.QUEUED)]
    with pytest.raises(states.Changed):  # a second click finds it queued: nothing is handed over twice
        service.submit(Import.get_by_id(upload.id), owner_a, None, TERMS, False, False, down)
    assert len(down.calls) == 1


def test_a_revert_request_claims_the_import_before_handing_it_over(app, account_a, owner_a, tmp_path):
    done = import_rows(account_a, owner_a, tmp_path, ROWS)
    enqueue = Recorder()
    assert service.request_revert(done.id, account_a.id, owner_a.id, enqueue)
    assert enqueue.calls == [("revert", done.id, Status.REVERTING)]
    with pytest.raises(FileRefused, match="being reverted right now"):
        service.request_revert(done.id, account_a.id, owner_a.id, enqueue)
    assert len(enqueue.calls) == 1


def test_discard_removes_a_draft_and_refuses_a_submitted_import(app, account_a, owner_a, tmp_path):
    draft = _uploaded(account_a, owner_a, tmp_path)
    service.discard(draft)
    assert Import.get_or_none(Import.id == draft.id) is None

    queued = prepare_import(account_a, owner_a, write_csv(tmp_path, ROWS, "again.csv"))
    with pytest.raises(FileRefused, match="it can no longer be removed"):
        service.discard(Import.get_by_id(queued.id))
    assert Import.get_by_id(queued.id).status == Status.QUEUED


def test_archive_adds_an_unknown_customer_archived_and_refuses_a_bad_key(app, account_a):
    found = service.archive(account_a, email=" Zed@Example.com ")
    assert found["email"] == "zed@example.com" and found["created"] is True
    assert Persona.get_by_id(found["persona_id"]).archived
    assert service.archive(account_a, email="zed@example.com")["created"] is False
    with pytest.raises(FileRefused, match="exactly one"):
        service.archive(account_a, email="a@example.com", phone="4155550123")
    with pytest.raises(FileRefused, match="Email 'not-an-email'"):
        service.archive(account_a, email="not-an-email")

