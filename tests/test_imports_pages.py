"""Around the wizard: import history, an import's page and progress, problem report, file deletion, revert."""
import csv
import datetime
import io
import re
import time

from tests.test_wizard import HEADERS, HTMX, ROWS, csv_bytes, import_id_of, post, run_wizard, upload
from webapp.models import (
    Audience,
    AudienceMember,
    AuditEntry,
    Import,
    ImportProblem,
    Persona,
    ProblemRow,
    StagedChunk,
    UploadChunk,
    utcnow,
)
from worker.queue import WAITING_MESSAGE


def test_history_empty_state(owner_client, staff_client):
    page = owner_client.get("/imports").get_data(as_text=True)
    assert "<html" in page and "No imports yet." in page and 'href="/imports/new"' in page
    staff = staff_client.get("/imports").get_data(as_text=True)
    assert "No imports yet." in staff and 'href="/imports/new"' not in staff


def test_history_lists_every_import_with_its_status_and_actions(owner_client, csrf, owner_a):
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), "march.csv")
    draft_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), "april.csv"))
    response = owner_client.get("/imports")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert page.index("april.csv") < page.index("march.csv")  # newest first
    row = page[page.index(f'id="import-{done.id}"'):]
    row = row[:row.index("</tr>")]
    assert "Completed" in row and owner_a.email in row
    assert re.findall(r'<td class="num"[^>]*>([^<]+)</td>', row) == ["5"]
    result = " ".join(re.sub(r"<[^>]+>", " ", row.split('class="history-result">')[1].split("</td>")[0]).split())
    assert result == "4 created , 0 updated , 0 unchanged , 1 rejected , 1 warning"
    assert f'href="/imports/{done.id}"' in row and f'href="/imports/{done.id}/report.csv"' in row
    assert f'href="/imports/{done.id}/revert"' in row and f'action="/imports/{done.id}/delete-file"' in row
    assert "hx-confirm" in row
    draft = page[page.index(f'id="import-{draft_id}"'):]
    draft = draft[:draft.index("</tr>")]
    assert f'<a class="draft-link" href="/imports/{draft_id}/uploaded">Draft — continue</a>' in draft
    assert "revert" not in draft and "delete-file" not in draft

    partial = owner_client.get("/imports", headers=HTMX)
    assert "<html" not in partial.get_data(as_text=True) and "HX-Request" in partial.headers["Vary"]


def test_staff_see_history_and_results_but_cannot_change_them(owner_client, staff_client, csrf):
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]))
    page = staff_client.get("/imports").get_data(as_text=True)
    assert "people.csv" in page and f'href="/imports/{done.id}/report.csv"' in page
    assert "/revert" not in page and "delete-file" not in page
    assert staff_client.get(f"/imports/{done.id}").status_code == 200
    assert staff_client.get(f"/imports/{done.id}/progress").status_code == 200
    assert staff_client.get(f"/imports/{done.id}/report.csv").status_code == 200
    response = staff_client.get(f"/imports/{done.id}/revert")
    assert response.status_code == 403 and "Only account owners" in response.get_data(as_text=True)
    assert post(staff_client, csrf, f"/imports/{done.id}/revert").status_code == 403
    assert post(staff_client, csrf, f"/imports/{done.id}/delete-file").status_code == 403
    assert Import.get_by_id(done.id).status == "completed" and not Import.get_by_id(done.id).file_deleted


def test_detail_page_shows_the_import_and_its_result(owner_client, csrf, owner_a):
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), opt_in_sms="1")
    response = owner_client.get(f"/imports/{done.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page and 'hx-history="false"' in page
    assert f"Import #{done.id}: people.csv" in page and "Completed" in page
    assert "version 2026-11" in page and owner_a.email in page and "127.0.0.1" in page
    assert "<dt>Opt in all</dt>\n      <dd>SMS" in page
    assert "Email → Email" in page and "Veteran → Custom attribute “veteran”" in page
    assert 'data-step="progress"' in page and "hx-trigger" not in page and "Import complete" in page


def test_progress_polls_while_queued_and_says_when_the_queue_is_down(owner_client, account_a, owner_a):
    queued = Import.create(account=account_a, user=owner_a, file_name="big.csv", status="queued",
                           terms_accepted_at=utcnow(), terms_version="2026-11", rows_total=1000,
                           error_message=WAITING_MESSAGE)
    response = owner_client.get(f"/imports/{queued.id}/progress", headers=HTMX)
    page = response.get_data(as_text=True)
    assert "<html" not in page and 'hx-trigger="load delay:1s"' in page
    assert f'hx-get="/imports/{queued.id}/progress"' in page and 'hx-target="this"' in page
    assert WAITING_MESSAGE in page and "Queued" in page and '<progress value="0" max="1000"' in page

    started = utcnow() - datetime.timedelta(seconds=10)
    Import.update(status="running", error_message=None, rows_done=400, started_at=started,
                  heartbeat_at=started + datetime.timedelta(seconds=8)).where(Import.id == queued.id).execute()
    page = owner_client.get(f"/imports/{queued.id}/progress", headers=HTMX).get_data(as_text=True)
    assert '<progress value="400" max="1000"' in page and "400 of 1,000 rows" in page and "(40%)" in page
    assert "50 rows/s · about 12 s left" in page and 'hx-trigger="load delay:1s"' in page and "Importing" in page

    Import.update(status="failed", error_message="The file vanished.").where(Import.id == queued.id).execute()
    page = owner_client.get(f"/imports/{queued.id}/progress", headers=HTMX).get_data(as_text=True)
    assert "The file vanished." in page and "hx-trigger" not in page and 'role="alert"' in page


def test_problem_report_has_the_problem_rows_neutralized(owner_client, csrf):
    rows = [HEADERS, *ROWS, ["not-an-email", "", "=cmd|' /C calc'!A0", "x1", "", ""]]
    done = run_wizard(owner_client, csrf, csv_bytes(rows))
    response = owner_client.get(f"/imports/{done.id}/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="problems-{done.id}-people.csv"' in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert lines[0][:5] == ["Problem Row", "Problem Severity", "Problem Columns", "Problem Values", "Problem Reasons"]
    assert lines[0][5:] == HEADERS
    by_row = {line[0]: line for line in lines[1:]}
    assert set(by_row) == {"4", "5", "7"}
    assert by_row["4"][1] == "error" and by_row["4"][7] == "Nobody"
    assert by_row["5"][1] == "warning" and by_row["5"][2] == "Points" and by_row["5"][3] == "lots"
    # A row with warnings was imported but for its skipped cells: the report keeps those and its keys only.
    assert by_row["5"][5:] == ["cara@example.com", "4155550103", "", "lots", "", ""]
    # A rejected row keeps every cell, neutralized as in every file the app writes.
    assert by_row["7"][1] == "error" and by_row["7"][5:8] == ["not-an-email", "", "'=cmd|' /C calc'!A0"]


def test_review_report_before_the_import(owner_client, csrf):
    validated = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), accept=False)
    lines = list(csv.reader(io.StringIO(
        owner_client.get(f"/imports/{validated.id}/report.csv").data.decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["4", "5"]


def test_delete_file_keeps_the_persona_changes(owner_client, csrf):
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]))
    audience = Audience.get(Audience.source_import == done.id)
    assert UploadChunk.select().where(UploadChunk.upload == done.id).count() == 1
    assert StagedChunk.select().where(StagedChunk.upload == done.id).exists()
    personas = Persona.select().count()

    response = post(owner_client, csrf, f"/imports/{done.id}/delete-file")
    assert response.status_code == 303 and response.headers["Location"] == "/imports"
    page = owner_client.get("/imports").get_data(as_text=True)
    assert "and its audience were deleted" in page and "file deleted" in page
    assert f'action="/imports/{done.id}/delete-file"' not in page
    row = Import.get_by_id(done.id)
    assert row.file_deleted and row.audience_id is None and row.status == "completed"
    assert UploadChunk.select().where(UploadChunk.upload == done.id).count() == 0
    # The kept rows go; the problem rows' cells stay: the report still carries them to fix.
    assert StagedChunk.select().where(StagedChunk.upload == done.id).count() == 0
    assert sorted(r.line for r in ProblemRow.select().where(ProblemRow.upload == done.id)) == [4, 5]
    report = owner_client.get(f"/imports/{done.id}/report.csv").get_data(as_text=True)
    assert "Nobody" in report and "cara@example.com" in report
    assert Audience.get_or_none(Audience.id == audience.id) is None
    assert AudienceMember.select().where(AudienceMember.audience == audience.id).count() == 0
    assert Persona.select().count() == personas and AuditEntry.select().where(AuditEntry.import_id == done.id).count() == 4
    assert ImportProblem.select().where(ImportProblem.upload == done.id).count() == 2

    page = owner_client.get(f"/imports/{done.id}/progress").get_data(as_text=True)
    assert "The generated audience was deleted with the file." in page
    report = owner_client.get(f"/imports/{done.id}/report.csv")
    assert report.status_code == 200 and len(list(csv.reader(io.StringIO(report.data.decode("utf-8-sig"))))) == 3

    response = post(owner_client, csrf, f"/imports/{done.id}/delete-file", headers=HTMX)
    assert response.headers["HX-Redirect"] == "/imports"


def test_delete_file_of_a_running_import_is_refused(owner_client, csrf, account_a, owner_a):
    running = Import.create(account=account_a, user=owner_a, file_name="big.csv", status="running",
                            terms_accepted_at=utcnow())
    UploadChunk.create(upload=running, seq=0, data=b"Email\na@example.com\n")
    post(owner_client, csrf, f"/imports/{running.id}/delete-file")
    page = owner_client.get("/imports").get_data(as_text=True)
    assert "This import is still running" in page
    assert UploadChunk.select().count() == 1 and not Import.get_by_id(running.id).file_deleted


def test_revert_from_the_history_page(owner_client, csrf, account_a, make_persona):
    make_persona(account_a, email="old@example.com", first_name="Olga", points=100)
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]))
    assert Persona.select().count() == 4
    history = owner_client.get("/imports").get_data(as_text=True)
    assert f'href="/imports/{done.id}/revert"' in history

    response = owner_client.get(f"/imports/{done.id}/revert")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page and f"Revert import #{done.id}" in page
    assert "remove <strong>3</strong> personas it created" in page
    assert "give <strong>1</strong> persona back what they had before;" in page
    assert "subtract <strong>20</strong> points in all, from <strong>1</strong> persona;" in page
    assert "Everything this import did can be reverted." in page
    assert "Revert import</button>" in page and Import.get_by_id(done.id).status == "completed"

    # The revert runs in the background: its page polls itself until the result is there.
    response = post(owner_client, csrf, f"/imports/{done.id}/revert", headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert "Reverting import" in page and f'hx-get="/imports/{done.id}/revert/result"' in page
    page = revert_result_when_done(owner_client, done.id)
    assert '<span data-reverted>4</span> personas reverted.' in page and "hx-trigger" not in page
    assert [p.email for p in Persona.select()] == ["old@example.com"]
    olga = Persona.get(Persona.email == "old@example.com")
    assert olga.points == 100
    row = Import.get_by_id(done.id)
    assert row.status == "reverted" and Audience.select().where(Audience.source_import == done.id).count() == 0

    # Twice is refused with a message, and the history says so.
    response = post(owner_client, csrf, f"/imports/{done.id}/revert")
    assert response.status_code == 409 and "already reverted" in response.get_data(as_text=True)
    assert owner_client.get(f"/imports/{done.id}/revert").status_code == 409
    history = owner_client.get("/imports").get_data(as_text=True)
    assert "Reverted" in history and f'href="/imports/{done.id}/revert"' not in history
    line = re.search(r'<div class="hint" data-revert>(.*?)</div>', history, re.S).group(1)
    assert " ".join(line.split()) == (f"Reverted {row.reverted_at:%Y-%m-%d %H:%M} UTC by owner-a@example.com: 4 personas "
                                      f'reverted, <a href="/imports/{done.id}/revert/result">0 kept</a>')


def test_revert_lists_what_could_not_be_reverted(owner_client, csrf):
    first = run_wizard(owner_client, csrf, csv_bytes([["Email", "City"], ["ann@example.com", "Boston"]]), "a.csv")
    run_wizard(owner_client, csrf, csv_bytes([["Email", "City"], ["ann@example.com", "Salem"]]), "b.csv")
    assert "<html" in post(owner_client, csrf, f"/imports/{first.id}/revert").get_data(as_text=True)
    page = revert_result_when_done(owner_client, first.id)
    assert "Not reverted" in page and "ann@example.com" in page
    assert f"by import #{first.id + 1}" in page and "the customer was kept" in page
    assert Persona.get().city == "Salem"


def revert_result_when_done(client, import_id: int, timeout: float = 20) -> str:
    """The revert's result partial once the background revert has finished."""
    deadline = time.monotonic() + timeout
    while Import.get_by_id(import_id).status == "reverting":
        assert time.monotonic() < deadline, "the revert did not finish"
        time.sleep(0.05)
    return client.get(f"/imports/{import_id}/revert/result", headers=HTMX).get_data(as_text=True)


def test_revert_of_an_unfinished_import_is_refused(owner_client, csrf):
    draft_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    response = owner_client.get(f"/imports/{draft_id}/revert")
    assert response.status_code == 409 and "Only a finished import can be reverted." in response.get_data(as_text=True)
    response = post(owner_client, csrf, f"/imports/{draft_id}/revert")
    assert response.status_code == 409 and Import.get_by_id(draft_id).status == "draft"


def test_draft_detail_links_back_into_the_wizard(owner_client, csrf):
    draft_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    page = owner_client.get(f"/imports/{draft_id}").get_data(as_text=True)
    assert "not submitted yet" in page and f'href="/imports/{draft_id}/uploaded"' in page
    assert 'data-step="progress"' not in page


def test_nav_links_to_the_history(owner_client):
    page = owner_client.get("/personas").get_data(as_text=True)
    assert 'href="/imports"' in page and 'href="/imports/new"' in page
