"""The Uploaded step stays fast for any accepted file (issue 17 item 8) and tells the row count when known (issue 15).

The upload request reads only what the step needs when that is cheap; a large workbook is only stored, and a
background job (the in-process runner here, an RQ worker process below) reads its sheets and header row and
counts its rows. Meanwhile the step says so and polls a small partial; then the whole step comes in with the
count, the sheet picker (each sheet's rows, the largest preselected) and Next.
"""
import io
import re
import threading
import time
import zipfile
from datetime import timedelta

import pytest

from tests.conftest import POSTGRES_URL
from tests.jobs_helpers import Workers, wait_for
from tests.test_fault_injection import _redis_url, needs_services, pg_app, redis_db  # noqa: F401 - fixtures
from tests.test_wizard import HTMX, csv_bytes, import_id_of, post, upload
from tests.workbooks import write_workbook
from webapp.importer import engine, excel_reader, flow
from webapp.importer.excel_reader import DAMAGED
from webapp.models import Import, utcnow
from worker import tasks

FINISH_DESCRIPTION = flow.finish_description  # the job's real work, for tests that hold it back
TINY_MB = 0.01  # READ_NOW_MB for the tests: a workbook of a few dozen rows is "large"


def workbook_bytes(tmp_path, sheets: dict[str, int], note_bytes: int = 400) -> bytes:
    """A workbook whose shared strings part is large for its rows (each row's Notes text is unique)."""
    return write_workbook(tmp_path / "book.xlsx", sheets, note_bytes=note_bytes).read_bytes()


@pytest.fixture
def held(monkeypatch):
    """The background job waits for held.set(): the test sees the Uploaded step as it is before the job runs."""
    gate, over = threading.Event(), threading.Event()

    def after_release(import_id, limits):
        gate.wait(30)
        if not over.is_set():  # a job still held when its test ended must not touch the next test's database
            FINISH_DESCRIPTION(import_id, limits)

    monkeypatch.setattr(flow, "finish_description", after_release)
    yield gate
    over.set()
    gate.set()


@pytest.fixture
def reads_in_this_thread(monkeypatch):
    """The zip members and tables opened by the calling thread (the request's, with Flask's test client)."""
    me, members, tables = threading.get_ident(), [], []
    real_open, real_table = zipfile.ZipFile.open, engine.open_table

    def member_open(self, name, *args, **kwargs):
        if threading.get_ident() == me:
            members.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    def open_table(*args, **kwargs):
        if threading.get_ident() == me:
            tables.append(kwargs.get("sheet"))
        return real_table(*args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", member_open)
    monkeypatch.setattr(engine, "open_table", open_table)
    monkeypatch.setattr(flow, "open_table", open_table)
    return {"members": members, "tables": tables}


def step_of(client, import_id: int) -> str:
    return client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)


def facts_url(page: str) -> str | None:
    found = re.search(r'hx-get="(/imports/\d+/uploaded/facts\?version=\d+)"', page)
    return found and found.group(1)


def polled_until_done(client, page: str, timeout: float = 30) -> str:
    """Poll as HTMX does: the facts partial, until it brings the whole step back; again while that step polls."""
    url, deadline = facts_url(page), time.monotonic() + timeout
    assert url, "the step does not poll"
    while url:
        assert time.monotonic() < deadline, "the background job did not finish"
        response = client.get(url, headers=HTMX)
        assert response.status_code == 200
        if response.headers.get("HX-Retarget"):
            assert (response.headers["HX-Retarget"], response.headers["HX-Reswap"]) == ("#wizard-step", "outerHTML")
            page = response.get_data(as_text=True)
            assert page.startswith("<section") and "<html" not in page
            url = facts_url(page)  # read, but not yet counted: the new step polls on
            continue
        still = response.get_data(as_text=True)
        assert still.startswith('<div class="uploaded-facts"') and "<html" not in still
        time.sleep(0.05)
    return page


def next_offered(page: str) -> bool:
    return bool(re.search(r'href="/imports/\d+/mapping"', page))


def selected_option(page: str) -> str:
    return re.search(r'<option value="([^"]*)" selected>', page).group(1)


# ---------------------------------------------------------------- a large workbook: stored, read later

def test_a_large_workbook_upload_returns_without_reading_a_sheet_and_the_step_fills_in(
        app, owner_client, csrf, tmp_path, held, reads_in_this_thread):
    app.config["READ_NOW_MB"] = TINY_MB
    data = workbook_bytes(tmp_path, {"Customers": 60})
    members = {i.filename: i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert members["xl/sharedStrings.xml"] > 2 * TINY_MB * 1024 * 1024  # well past the threshold
    reads_in_this_thread["members"].clear()  # writing the test's file opened them

    response = upload(owner_client, csrf, data, "customers.xlsx")
    assert response.status_code == 303
    # The request read the zip's directory only: no sheet, no shared strings, no table opened.
    assert reads_in_this_thread["members"] == [] and reads_in_this_thread["tables"] == []
    import_id = import_id_of(response)
    assert Import.get_by_id(import_id).status == "describing"

    page = step_of(owner_client, import_id)
    assert "describing your file…" in page and 'hx-trigger="load delay:1s"' in page
    assert "customers.xlsx" in page and "Fields found in your file" not in page and not next_offered(page)
    assert 'action="/imports/%d/remove"' % import_id in page  # the user may still discard it

    held.set()
    page = polled_until_done(owner_client, page)
    assert "60 customer rows" in page and "describing your file…" not in page and "counting…" not in page
    assert "Fields found in your file" in page and "from “Email”" in page and next_offered(page)
    assert "hx-trigger" not in page  # nothing left to poll for
    row = Import.get_by_id(import_id)
    assert (row.status, row.kind, row.sheet, row.headers, row.row_count) == (
        "draft", "xlsx", "Customers", ["Email", "First Name", "Notes"], 60)
    assert row.samples["Email"] == ["s0c0@example.com", "s0c1@example.com", "s0c2@example.com"]


def test_a_large_workbook_with_several_sheets_preselects_the_largest_and_reads_the_chosen_one_later(
        app, owner_client, csrf, tmp_path, held):
    app.config["READ_NOW_MB"] = TINY_MB
    import_id = import_id_of(upload(owner_client, csrf, workbook_bytes(
        tmp_path, {"Summary": 3, "Customers": 40, "Staff": 12}), "book.xlsx"))
    page = step_of(owner_client, import_id)
    held.set()
    page = polled_until_done(owner_client, page)
    assert "This workbook has several sheets with data: Summary, Customers, Staff." in page
    assert ">Summary (3 rows)</option>" in page and ">Staff (12 rows)</option>" in page
    assert selected_option(page) == "Customers" and ">Customers (40 rows)</option>" in page
    assert not next_offered(page)

    held.clear()
    response = post(owner_client, csrf, f"/imports/{import_id}/sheet", {"sheet": "Customers"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "describing your file…" in page  # the chosen sheet is read later too
    assert Import.get_by_id(import_id).status == "describing"
    held.set()
    page = polled_until_done(owner_client, page)
    assert "40 customer rows" in page and next_offered(page) and selected_option(page) == "Customers"
    assert ">Customers (40 rows)</option>" in page  # the picker keeps the counts


def test_remove_while_describing_discards_the_upload_and_the_job_then_does_nothing(app, owner_client, csrf, tmp_path,
                                                                                   held):
    app.config["READ_NOW_MB"] = TINY_MB
    import_id = import_id_of(upload(owner_client, csrf, workbook_bytes(tmp_path, {"Customers": 40}), "book.xlsx"))
    response = post(owner_client, csrf, f"/imports/{import_id}/remove")
    assert response.status_code == 303 and response.headers["Location"].endswith("/imports/new")
    FINISH_DESCRIPTION(import_id, flow.Limits(2 ** 30, 1000))  # the job, late: nothing to read any more
    assert Import.select().count() == 0
    assert owner_client.get(f"/imports/{import_id}/uploaded").status_code == 404


def test_a_small_workbook_is_read_in_the_request_with_each_sheets_rows(owner_client, csrf, tmp_path):
    import_id = import_id_of(upload(owner_client, csrf, workbook_bytes(
        tmp_path, {"Notes": 2, "Customers": 5, "Old": 3}, note_bytes=0), "book.xlsx"))
    page = step_of(owner_client, import_id)
    assert "hx-trigger" not in page and "describing your file…" not in page
    assert [(n, c) for n, c in re.findall(r'<option value="([^"]+)"[^>]*>\1 \((\d+) rows\)</option>', page)] == [
        ("Notes", "2"), ("Customers", "5"), ("Old", "3")]
    assert selected_option(page) == "Customers"


# ---------------------------------------------------------------- a large file: counted later

def test_a_workbook_read_at_once_but_too_large_to_count_gets_its_sheet_counts_later(owner_client, csrf, tmp_path,
                                                                                    monkeypatch, held):
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    import_id = import_id_of(upload(owner_client, csrf, workbook_bytes(
        tmp_path, {"Summary": 2, "Customers": 9}, note_bytes=0), "book.xlsx"))
    page = step_of(owner_client, import_id)
    assert "several sheets with data: Summary, Customers" in page and "counting the rows of each sheet…" in page
    assert ">Summary</option>" in page and facts_url(page)
    held.set()
    page = polled_until_done(owner_client, page)
    assert ">Summary (2 rows)</option>" in page and selected_option(page) == "Customers"
    assert "counting the rows of each sheet…" not in page



def test_a_large_csv_shows_its_columns_at_once_and_its_row_count_when_counted(owner_client, csrf, monkeypatch, held):
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    rows = [["Email", "Points"]] + [[f"p{n}@example.com", str(n)] for n in range(7)]
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes(rows)))
    page = step_of(owner_client, import_id)
    assert "counting…" in page and "Fields found in your file" in page and facts_url(page)
    assert not next_offered(page)  # not before the whole file is checked
    assert "the Review step gives the exact count" not in page

    still = owner_client.get(facts_url(page), headers=HTMX)
    assert "counting…" in still.get_data(as_text=True) and "HX-Retarget" not in still.headers
    held.set()
    page = polled_until_done(owner_client, page)
    assert "7 customer rows" in page and "counting…" not in page and next_offered(page)


def test_counting_in_the_request_stops_at_its_time_budget_and_the_background_finishes(owner_client, csrf,
                                                                                      monkeypatch, held):
    monkeypatch.setattr(flow, "COUNT_NOW_SECONDS", 0)  # the budget is spent before the first row
    rows = [["Email", "Points"]] + [[f"p{n}@example.com", str(n)] for n in range(3000)]
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes(rows)))
    assert Import.get_by_id(import_id).row_count is None
    page = step_of(owner_client, import_id)
    held.set()
    page = polled_until_done(owner_client, page)
    assert "3,000 customer rows" in page


def test_a_file_slow_to_store_is_read_in_the_background_whatever_its_size(owner_client, csrf, monkeypatch, held):
    monkeypatch.setattr(flow, "STORE_BUDGET_SECONDS", -1)  # storing took longer than the request may spend on it
    rows = [["Email", "Points"]] + [[f"p{n}@example.com", str(n)] for n in range(3)]
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes(rows)))
    page = step_of(owner_client, import_id)
    assert "describing your file…" in page and not next_offered(page)
    held.set()
    page = polled_until_done(owner_client, page)
    assert "3 customer rows" in page and "from “Email”" in page and next_offered(page)


def test_a_step_left_waiting_too_long_says_so_and_stops_polling(owner_client, csrf, monkeypatch, held):
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([["Email"], ["a@example.com"]])))
    size = Import.get_by_id(import_id).size  # a second of patience per 100 KB
    Import.update(queued_at=utcnow() - flow.PATIENCE + timedelta(minutes=1)).where(Import.id == import_id).execute()
    assert "counting…" in step_of(owner_client, import_id)
    Import.update(queued_at=utcnow() - flow.PATIENCE - timedelta(seconds=size / flow.PATIENT_BYTES + 1)).where(
        Import.id == import_id).execute()
    page = step_of(owner_client, import_id)
    assert flow.LATE in page and "hx-trigger" not in page and next_offered(page)


# ---------------------------------------------------------------- refused in the background: the marketer's message

def test_a_workbook_refused_in_the_background_shows_the_upload_refusal_message(app, owner_client, csrf, tmp_path,
                                                                                held):
    good = zipfile.ZipFile(io.BytesIO(workbook_bytes(tmp_path, {"Customers": 40})))
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as out:
        for info in good.infolist():
            data = good.read(info)
            out.writestr(info.filename, data[:len(data) // 2] if "worksheets/" in info.filename else data)
    data = broken.getvalue()

    # Read in the request (the default threshold), the upload is refused with this message and leaves nothing.
    refused = upload(owner_client, csrf, data, "book.xlsx").get_data(as_text=True)
    assert refused.count(DAMAGED) == 1 and Import.select().count() == 0

    app.config["READ_NOW_MB"] = TINY_MB
    import_id = import_id_of(upload(owner_client, csrf, data, "book.xlsx"))
    page = step_of(owner_client, import_id)
    held.set()
    page = polled_until_done(owner_client, page)
    assert DAMAGED in page and "Traceback" not in page and not next_offered(page)
    assert "The header row is line" not in page  # nothing to choose: the file itself cannot be read
    assert 'action="/imports/%d/remove"' % import_id in page
    assert owner_client.get(f"/imports/{import_id}/mapping").status_code == 303  # no way past the step


def test_a_large_file_over_the_row_limit_is_refused_on_the_uploaded_step(app, owner_client, csrf, monkeypatch, held):
    app.config["MAX_ROWS"] = 4
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    rows = [["Email", "Points"]] + [[f"p{n}@example.com", str(n)] for n in range(6)]
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes(rows)))
    page = step_of(owner_client, import_id)
    held.set()
    page = polled_until_done(owner_client, page)
    assert "The file has more than 4 customer rows, the most one import takes." in page and not next_offered(page)


def test_an_unexpected_error_in_the_job_shows_a_plain_message_and_fails_the_job(app, owner_client, csrf, tmp_path,
                                                                               monkeypatch, held):
    app.config["READ_NOW_MB"] = TINY_MB
    import_id = import_id_of(upload(owner_client, csrf, workbook_bytes(tmp_path, {"Customers": 40}), "book.xlsx"))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, with a customer's email in it: ann@example.com")

    monkeypatch.setattr(excel_reader, "check_members", broken)
    monkeypatch.setattr(flow, "finish_description", FINISH_DESCRIPTION)  # this job runs here, now
    with pytest.raises(tasks.JobFailed):
        tasks.describe_upload(import_id, flow.Limits(2 ** 30, 1000))
    page = step_of(owner_client, import_id)
    assert flow.UNREADABLE in page and "ann@example.com" not in page and "RuntimeError" not in page
    assert not next_offered(page) and "hx-trigger" not in page


# ---------------------------------------------------------------- with Redis: a real RQ worker process reads it

@needs_services
def test_an_rq_worker_describes_a_large_workbook_while_the_step_polls(pg_app, redis_db, tmp_path):
    from tests.conftest import csrf_token_of, log_in
    from tests.test_fault_injection import _owner_and_account

    pg_app.config["READ_NOW_MB"] = TINY_MB
    with pg_app.app_context():
        _owner_and_account()
    client = pg_app.test_client()
    log_in(client, "owner@alpha.example.com", "pw-long-enough")
    response = client.post("/imports/new", data={
        "file": (io.BytesIO(workbook_bytes(tmp_path, {"Summary": 2, "Customers": 30})), "book.xlsx"),
        "csrf_token": csrf_token_of(client)}, content_type="multipart/form-data")
    import_id = import_id_of(response)
    assert redis_db.exists(f"rq:job:describe-{import_id}")  # queued through the one enqueue point
    page = client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    assert "describing your file…" in page and facts_url(page)  # no worker yet: it waits

    workers = Workers(POSTGRES_URL, _redis_url(), tmp_path)
    try:
        workers.start()
        with pg_app.app_context():
            wait_for(lambda: Import.get_by_id(import_id).status == "draft", what="the worker's description")
            page = polled_until_done(client, page)
    finally:
        workers.stop_all()
    assert ">Customers (30 rows)</option>" in page and selected_option(page) == "Customers"
    assert "This workbook has several sheets with data: Summary, Customers." in page
