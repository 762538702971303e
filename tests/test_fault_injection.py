"""Fault injection: real `personas worker` processes on Redis and PostgreSQL are SIGKILLed mid-import,
and the in-process runner on SQLite is "killed" mid-import; every row still applies exactly once.

Every scenario compares with an uninterrupted run of the same file on a fresh account: same export
(so points are exact), one audit entry per changed persona per row, status completed.
"""
import csv
import os
import re
import threading
import time

import pytest

from tests.conftest import POSTGRES_URL, csrf_token_of, log_in
from tests.engine_helpers import tune
from tests.jobs_helpers import (
    CHUNK,
    Workers,
    audit_count,
    changed_rows,
    exported,
    file_points,
    finished,
    mapped_import,
    row_of,
    status_of,
    validate_now,
    validated_import,
    wait_for,
    write_csv,
)
from tests.live_server import LiveServer, held_post, response_of
from webapp.accounts import create_account
from webapp.db import db
from webapp.models import Import, Persona
from webapp.views.wizard import CHANGED
from worker import queue, tasks

REDIS_URL = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
ROWS = 3000  # 30 chunks of CHUNK rows


def _redis_url() -> str:
    """The test's own Redis database: the given URL's server, database 7 unless TEST_REDIS_URL names one."""
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/7", "", ""))


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    tune(monkeypatch, IMPORT_CHUNK_ROWS=CHUNK)


def _reference(tmp_path, owner, path, name="Reference", seeded=False):
    """An uninterrupted in-process run of the file on a fresh (optionally seeded) account: (import, export)."""
    account = create_account(name)
    if seeded:
        _seed(account)
    upload = validated_import(account, owner, path)
    tasks.apply_import(upload.id)
    upload = Import.get_by_id(upload.id)
    assert upload.status == "completed"
    return upload, exported(account.id)


def _assert_exactly_once(upload_id: int, reference: Import, reference_export: list[dict], account_id: int, path,
                         seeded: int = 0):
    upload = Import.get_by_id(upload_id)
    assert upload.status == "completed", upload.error_message
    assert upload.rows_done == upload.rows_total == reference.rows_total
    assert upload.counts == reference.counts
    assert exported(account_id) == reference_export
    assert sum(p["points"] for p in reference_export) == file_points(path) + seeded
    assert audit_count(upload_id) == changed_rows(upload) == audit_count(reference.id)


# ---------------------------------------------------------------- real workers: Redis + PostgreSQL

needs_services = pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL),
    reason="needs TEST_DATABASE_URL (PostgreSQL) and REDIS_URL or TEST_REDIS_URL (a real Redis): .ci/run sets both")


@pytest.fixture
def pg_app(tmp_path):
    """The app on the (emptied) test PostgreSQL database, with the test's Redis."""
    from tests.conftest import _reset_postgres, _test_config
    from webapp import create_app
    from webapp.schema import init_schema

    app = create_app(_test_config(tmp_path, POSTGRES_URL, {"REDIS_URL": _redis_url()}))
    _reset_postgres()
    init_schema()
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def redis_db():
    from redis import Redis

    connection = Redis.from_url(_redis_url())
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def workers(pg_app, redis_db, tmp_path):
    pool = Workers(POSTGRES_URL, _redis_url(), tmp_path)
    yield pool
    pool.stop_all()


def _owner_and_account(name="Alpha"):
    from webapp.accounts import create_user
    from webapp.models import Membership

    account = create_account(name)
    return account, create_user(f"owner@{name.lower()}.example.com", "pw-long-enough", account, Membership.OWNER)


def _seed(account, rows=200) -> int:
    """Personas already in the account, so the file updates some and creates others; returns their points."""
    for n in range(0, rows, 2):
        Persona.create(account=account, email=f"c{n}@example.com", points=1000 + n)
    return _seed_points(rows)


def _seed_points(rows=200) -> int:
    return sum(1000 + n for n in range(0, rows, 2))


@pytest.mark.redis
@needs_services
@pytest.mark.parametrize("k", [1, 5, 17])
def test_sigkill_after_k_chunks_then_new_worker_finishes_exactly_once(workers, tmp_path, k):
    account, owner = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", ROWS)
    _seed(account)
    reference, reference_export = _reference(tmp_path, owner, path, seeded=True)

    upload = validated_import(account, owner, path)
    first = workers.start(IMPORT_FAULT_KILL_AFTER_CHUNKS=k)
    assert queue.enqueue("import", upload.id, _redis_url())
    wait_for(lambda: workers.exited(first), what=f"worker to die after {k} chunks")
    workers.kill(first)  # its scheduler, if it outlived the worker
    killed = status_of(upload.id)
    # The apply's second writer thread may commit one more unit before the kill lands.
    assert (killed.status, killed.attempt) == ("running", 1) and killed.checkpoint in (k * CHUNK, (k + 1) * CHUNK)
    assert audit_count(upload.id) < audit_count(reference.id)

    workers.start()
    wait_for(lambda: finished(upload.id), what="the import to finish on the second worker")
    _assert_exactly_once(upload.id, reference, reference_export, account.id, path, seeded=_seed_points())
    assert Import.get_by_id(upload.id).attempt == 2


@pytest.mark.redis
@needs_services
def test_sigkill_mid_chunk_from_outside(workers, tmp_path):
    """A kill at whatever point the worker is (inside a chunk's transaction, most likely)."""
    account_a, owner_a = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", ROWS)
    reference, reference_export = _reference(tmp_path, owner_a, path)
    upload = validated_import(account_a, owner_a, path)
    first = workers.start()
    assert queue.enqueue("import", upload.id, _redis_url())
    wait_for(lambda: status_of(upload.id).checkpoint >= 5 * CHUNK, interval=0.005, what="5 chunks")
    workers.kill(first)
    workers.start()
    wait_for(lambda: finished(upload.id), what="the import to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account_a.id, path)


@pytest.mark.redis
@needs_services
def test_same_import_enqueued_twice_runs_once(workers, tmp_path):
    account_a, owner_a = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", ROWS)
    reference, reference_export = _reference(tmp_path, owner_a, path)
    account_id = account_a.id
    upload = validated_import(account_a, owner_a, path)
    assert queue.enqueue("import", upload.id, _redis_url())
    assert queue.enqueue("import", upload.id, _redis_url())
    workers.start()
    workers.start()
    wait_for(lambda: finished(upload.id), what="the import to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account_id, path)
    assert Import.get_by_id(upload.id).attempt == 1


@pytest.mark.redis
@needs_services
def test_two_overlapping_imports_in_parallel_give_sequential_sums(workers, tmp_path):
    account, owner_a = _owner_and_account()
    first_file = write_csv(tmp_path / "first.csv", ROWS, distinct=1500)
    second_file = write_csv(tmp_path / "second.csv", ROWS, start=500, distinct=1500, names=False)
    sequential = create_account("Sequential")
    for path in (first_file, second_file):
        tasks.apply_import(validated_import(sequential, owner_a, path).id)
    expected = {p["email"]: p["points"] for p in exported(sequential.id)}

    first, second = (validated_import(account, owner_a, p) for p in (first_file, second_file))
    workers.start()
    workers.start()
    for upload in (first, second):
        assert queue.enqueue("import", upload.id, _redis_url())
    for upload in (first, second):
        wait_for(lambda u=upload: finished(u.id), what="both imports to finish")
    result = exported(account.id)
    assert [Import.get_by_id(u.id).status for u in (first, second)] == ["completed", "completed"]
    assert len(result) == len(expected) == Persona.select().where(Persona.account == account).count()
    assert {p["email"]: p["points"] for p in result} == expected
    assert sum(expected.values()) == file_points(first_file) + file_points(second_file)
    for upload in (first, second):
        assert audit_count(upload.id) == changed_rows(Import.get_by_id(upload.id))
        assert Import.get_by_id(upload.id).attempt == 1  # a lost race is retried in the unit, not by RQ


def _people(path, first: int, count: int) -> list[str]:
    """A CSV of customers first..first+count-1 with values found nowhere else; returns those values."""
    import csv

    values = []
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Phone", "First Name", "Last Name", "Points"])
        for n in range(first, first + count):
            row = [f"qx{n:05d}.vantablack@example.org", f"(646) 555-{n % 10000:04d}", f"Ysolde{n:05d}",
                   f"Pemberton{n:05d}", n % 9 + 1]
            writer.writerow(row)
            values += [row[0], row[1], f"+1646555{n % 10000:04d}", row[2], row[3]]
    return values


@pytest.mark.redis
@needs_services
def test_three_overlapping_imports_on_real_workers_never_fail_and_log_no_customer(workers, redis_db, tmp_path):
    """Issue 17.4 and 17.5: all three are validated against an empty account, so each keeps its rows as new
    personas, and whichever writes a shared customer second meets the unique key in its bulk insert, for
    certain. Every lost race is retried inside the unit: each job runs once (no RQ retry, no failure), the
    sums are exact, and the workers' logs quote no customer (no "DETAIL: Key (account_id, email)=(5, x@y)
    already exists")."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    account, owner = _owner_and_account()
    files = [tmp_path / name for name in ("first.csv", "second.csv", "third.csv")]
    values = []
    for index, path in enumerate(files):
        values += _people(path, index * 700, 1400)  # each file shares half its customers with the next
    sequential = create_account("Sequential")
    for path in files:
        tasks.apply_import(validated_import(sequential, owner, path).id)
    expected = {p["email"]: p["points"] for p in exported(sequential.id)}

    uploads = [validated_import(account, owner, path) for path in files]
    assert all(u.review["created"] == 1400 for u in uploads)  # each validated against an empty account
    workers.start()
    workers.start()
    for upload in uploads:
        assert queue.enqueue("import", upload.id, _redis_url())
    for upload in uploads:
        wait_for(lambda u=upload: finished(u.id), timeout=120, what="the three imports to finish")

    done = [Import.get_by_id(u.id) for u in uploads]
    assert [(u.status, u.attempt, u.error_message) for u in done] == [("completed", 1, None)] * 3, workers.logs()
    for upload in done:
        job = Job.fetch(queue.job_id("import", upload.id), connection=redis_db)
        assert (job.get_status(), job.retries_left) == ("finished", len(queue.RETRY_INTERVALS))
        assert audit_count(upload.id) == changed_rows(upload)
    assert FailedJobRegistry(queue=Queue(queue.QUEUE, connection=redis_db)).count == 0
    result = {p["email"]: p["points"] for p in exported(account.id)}
    assert result == expected and len(result) == 700 * 4
    assert sum(result.values()) == sum(file_points(path) for path in files)

    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log")))
    assert "lost a race" in logs, "no import met the unique key: the test did not race\n" + logs[-3000:]
    assert "DETAIL" not in logs and "Key (" not in logs and "already exists" not in logs, logs[-3000:]
    for pattern in (r"vantablack", r"Ysolde\d", r"Pemberton\d", r"646\)? ?555", r"\+1646555"):
        assert not re.search(pattern, logs), f"{pattern} in the worker logs"
    assert not [value for value in values if value in logs]


@pytest.mark.redis
@needs_services
def test_redis_down_at_submit_runs_once_when_it_is_back(workers, tmp_path):
    account_a, owner_a = _owner_and_account()
    path = write_csv(tmp_path / "customers.csv", 500)
    reference, reference_export = _reference(tmp_path, owner_a, path)
    upload = validated_import(account_a, owner_a, path)
    assert queue.enqueue("import", upload.id, "redis://127.0.0.1:1/7") is False
    waiting = Import.get_by_id(upload.id)
    assert (waiting.status, waiting.error_message) == ("queued", queue.WAITING_MESSAGE)

    workers.start()
    wait_for(lambda: finished(upload.id), what="the reaper to queue it once Redis is reachable")
    _assert_exactly_once(upload.id, reference, reference_export, account_a.id, path)
    done = Import.get_by_id(upload.id)
    assert (done.attempt, done.error_message) == (1, None)


@pytest.mark.redis
@needs_services
def test_a_late_second_submit_never_rewinds_an_import_a_worker_is_applying(workers, pg_app, tmp_path):
    """Issue 17.1 with a real worker: the held body arrives while the worker is blocked mid-apply."""
    import psycopg2

    account, owner = _owner_and_account()
    held_email = "c250@example.com"  # a customer of the file's third unit of rows, already known
    Persona.create(account=account, email=held_email, points=1000)
    path = write_csv(tmp_path / "customers.csv", 5 * CHUNK, distinct=5 * CHUNK)
    upload = mapped_import(account, owner, path, validate_now)
    version = str(Import.get_by_id(upload.id).version)
    client = pg_app.test_client()
    assert log_in(client, owner.email, "pw-long-enough").status_code == 302
    token, cookie = csrf_token_of(client), client.get_cookie("session").value
    body = f"version={version}&accept_terms=1&opt_in_sms=1".encode()

    blocker = psycopg2.connect(POSTGRES_URL)  # holds the third unit's persona: the apply waits there
    blocker.cursor().execute("SELECT id FROM persona WHERE email = %s FOR UPDATE", [held_email])
    server = LiveServer(pg_app)
    try:
        late = held_post(server.url, f"/imports/{upload.id}/review", cookie, token, body)
        time.sleep(1)  # the server has read the import and waits for the form
        first = client.post(f"/imports/{upload.id}/review", data={"version": version, "accept_terms": "1"},
                            headers={"X-CSRFToken": token, "HX-Request": "true"})
        assert first.status_code == 200
        workers.start(IMPORT_APPLY_WORKERS=1, IMPORT_STALE_SECONDS=120)
        wait_for(lambda: status_of(upload.id).checkpoint == 2 * CHUNK, what="two units applied")
        time.sleep(1)
        running = row_of(upload.id)
        assert (running["status"], running["checkpoint"], running["attempt"]) == ("running", 2 * CHUNK, 1)

        late.sendall(body)
        status, page = response_of(late)
        assert status == 409 and CHANGED in page
        assert row_of(upload.id) == running
    finally:
        blocker.rollback()
        blocker.close()
        server.stop()
    done = wait_for(lambda: finished(upload.id), what="the import to finish")
    assert (done.status, done.checkpoint, done.attempt) == ("completed", 5 * CHUNK, 1), workers.logs()
    assert done.counts == {"created": 5 * CHUNK - 1, "updated": 1, "warnings": 0}
    assert done.options == {"opt_in_sms": False, "opt_in_email": False}
    assert Persona.get(Persona.email == held_email).points == 1000 + file_points_of(path, held_email)
    assert audit_count(upload.id) == 5 * CHUNK
    assert not Persona.select().where(Persona.sms_opt_in).exists()


def file_points_of(path, email: str) -> int:
    """The points the file adds to one customer."""
    with open(path, newline="") as source:
        return sum(int(row["Points"]) for row in csv.DictReader(source) if row["Email"] == email)


# ---------------------------------------------------------------- in-process runner on SQLite

class Killed(BaseException):
    """A crash: not an Exception, so no handler of the job sees it and nothing is cleaned up."""


def _kill_after(chunks: int):
    done = [0]

    def after_chunk():
        done[0] += 1
        if done[0] >= chunks:
            raise Killed

    return after_chunk


def _age_heartbeat(import_id: int) -> None:
    """Let the dead run's heartbeat go stale, as time would."""
    import datetime

    upload = Import.get_by_id(import_id)
    Import.update(heartbeat_at=upload.heartbeat_at - datetime.timedelta(hours=1)).where(
        Import.id == import_id).execute()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("k", [1, 5, 17])
def test_in_process_killed_after_k_chunks_resumes_exactly_once(app, tmp_path, account_a, owner_a, k):
    account = account_a
    path = write_csv(tmp_path / "customers.csv", ROWS)
    _seed(account)
    reference, reference_export = _reference(tmp_path, owner_a, path, seeded=True)

    upload = validated_import(account, owner_a, path)
    with pytest.raises(Killed):
        tasks.apply_import(upload.id, after_chunk=_kill_after(k))
    assert (status_of(upload.id).status, status_of(upload.id).checkpoint) == ("running", k * CHUNK)
    tasks.apply_import(upload.id)  # a second run while the first still "beats": does nothing
    assert status_of(upload.id).checkpoint == k * CHUNK
    assert queue.requeue_stale(None) == []  # nothing is stale yet

    _age_heartbeat(upload.id)
    assert queue.requeue_stale(None) == [upload.id]  # the in-process runner picks it up
    wait_for(lambda: finished(upload.id), what="the runner thread to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account.id, path, seeded=_seed_points())
    assert Import.get_by_id(upload.id).attempt == 2


@pytest.mark.sqlite_only
def test_in_process_same_import_enqueued_twice_runs_once(app, tmp_path, account_a, owner_a):
    path = write_csv(tmp_path / "customers.csv", ROWS)
    reference, reference_export = _reference(tmp_path, owner_a, path)
    upload = validated_import(account_a, owner_a, path)
    assert queue.enqueue("import", upload.id, None)
    assert queue.enqueue("import", upload.id, None)
    wait_for(lambda: finished(upload.id), what="the import to finish")
    _assert_exactly_once(upload.id, reference, reference_export, account_a.id, path)
    assert Import.get_by_id(upload.id).attempt == 1


@pytest.mark.sqlite_only
def test_in_process_two_overlapping_imports_in_parallel(app, tmp_path, account_a, owner_a):
    account = account_a
    first_file = write_csv(tmp_path / "first.csv", ROWS, distinct=1500)
    second_file = write_csv(tmp_path / "second.csv", ROWS, start=500, distinct=1500, names=False)
    sequential = create_account("Sequential")
    for path in (first_file, second_file):
        tasks.apply_import(validated_import(sequential, owner_a, path).id)
    expected = {p["email"]: p["points"] for p in exported(sequential.id)}

    uploads = [validated_import(account, owner_a, p) for p in (first_file, second_file)]
    threads = [threading.Thread(target=tasks.apply_import, args=(u.id,)) for u in uploads]
    db.close()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [Import.get_by_id(u.id).status for u in uploads] == ["completed", "completed"]
    result = exported(account.id)
    assert len(result) == len(expected)
    assert {p["email"]: p["points"] for p in result} == expected
    for upload in uploads:
        assert audit_count(upload.id) == changed_rows(Import.get_by_id(upload.id))
