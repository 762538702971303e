"""A second "Import Personas" whose body arrives late never rewinds a running import (issue 17.1).

The sequence of the issue, against a real HTTP server: POST /imports/N/review is sent headers first (session
cookie, X-CSRFToken, HX-Request, Content-Length), so the view has read the import as validated when it
starts waiting for the form; the import is submitted normally from another request; once its first unit
of rows is applied, the held body arrives. Submitting is a compare-and-set from the validated state the
view read, so the late request finds the import changed and does nothing: the checkpoint, counts, lease
and status stay as the running import left them, and the import ends exactly right.
"""
import threading
import time

import pytest

from tests.conftest import csrf_token_of
from tests.engine_helpers import tune
from tests.jobs_helpers import row_of
from tests.live_server import LiveServer, held_post, response_of
from tests.test_wizard import HTMX, csv_bytes, post, run_wizard, wait_for
from webapp.models import Audience, AudienceMember, AuditEntry, Persona
from webapp.views.wizard import CHANGED
from worker import tasks

UNIT = 100
ROWS = 5 * UNIT


@pytest.fixture
def gate(monkeypatch):
    """Holds the apply after its first unit commits until gate.go is set (as a slow import would be)."""
    applied, go = threading.Event(), threading.Event()

    def after_unit():
        applied.set()
        assert go.wait(60), "the test never let the import go on"

    monkeypatch.setattr(tasks, "_fault_injection", lambda: after_unit)
    tune(monkeypatch, IMPORT_CHUNK_ROWS=UNIT, IMPORT_APPLY_WORKERS=1)  # one unit at a time: held means held
    yield type("Gate", (), {"applied": applied, "go": go})
    go.set()


def test_a_late_second_submit_never_rewinds_the_running_import(app, owner_client, csrf, gate):
    people = [["Email", "Points"], *[[f"c{i}@example.com", str(i % 7 + 1)] for i in range(ROWS)]]
    upload = run_wizard(owner_client, csrf, csv_bytes(people), "late.csv", accept=False)
    version = str(upload.version)
    server = LiveServer(app)
    try:
        body = f"version={version}&accept_terms=1&opt_in_sms=1&csrf_token={csrf_token_of(owner_client)}".encode()
        late = held_post(server.url, f"/imports/{upload.id}/review", owner_client.get_cookie("session").value,
                         csrf_token_of(owner_client), body)
        time.sleep(1)  # the server has read the import and waits for the form

        first = post(owner_client, csrf, f"/imports/{upload.id}/review", {"version": version, "accept_terms": "1"},
                     headers=HTMX)
        assert first.status_code == 200 and 'data-step="progress"' in first.get_data(as_text=True)
        assert gate.applied.wait(30), "the import never applied its first unit"
        running = row_of(upload.id)
        assert (running["status"], running["checkpoint"], running["attempt"]) == ("running", UNIT, 1)
        assert running["lease"] and running["audience_id"]

        late.sendall(body)
        status, page = response_of(late)
        assert status == 409 and CHANGED in page and 'data-step="progress"' in page
        assert row_of(upload.id) == running  # not rewound: checkpoint, counts, lease, status, options as they were
    finally:
        gate.go.set()
        server.stop()

    done = wait_for(upload.id, ("completed", "failed"))
    assert (done.status, done.checkpoint, done.rows_done, done.attempt) == ("completed", ROWS, ROWS, 1)
    assert done.counts == {"created": ROWS, "warnings": 0}
    assert done.options == {"opt_in_sms": False, "opt_in_email": False}  # the first click's choice, not the late one
    personas = list(Persona.select())
    assert len(personas) == ROWS and not any(p.sms_opt_in for p in personas)
    assert sum(p.points for p in personas) == sum(i % 7 + 1 for i in range(ROWS))
    assert AuditEntry.select().where(AuditEntry.import_id == upload.id).count() == ROWS
    audience = Audience.get_by_id(done.audience_id)
    assert AudienceMember.select().where(AudienceMember.audience == audience).count() == ROWS
