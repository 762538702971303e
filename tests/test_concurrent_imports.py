"""Two imports creating the same personas: the loser of the race retries its unit in place, the job never
fails, and no log line at any level quotes a customer (the database's DETAIL line least of all).

The race is made certain: both imports are validated against an empty account (so each keeps its rows as
"create"), then one is applied, then the other: its first unit's new personas exist by then, so the bulk
insert meets the unique key (on PostgreSQL the COPY raises psycopg2's UniqueViolation, unwrapped).
The same runs with real `personas worker` processes in test_fault_injection.py.
"""
import logging
import re

import pytest
from peewee import IntegrityError
from psycopg2 import errors as pg_errors

from tests.engine_helpers import apply_queued, by_key, prepare_import, tune, write_csv
from webapp.accounts import create_account
from webapp.importer import engine
from webapp.importer.export import export_personas
from webapp.logs import describe, format_exception, install
from webapp.models import Import

ROWS = 240
CHUNK = 60


def people(first: int, count: int) -> list[list]:
    """Customers first..first+count-1 with distinctive values, so a log line quoting one is found."""
    rows = [["Email", "Phone", "First Name", "Last Name", "Points"]]
    for n in range(first, first + count):
        rows.append([f"qx{n:04d}.vantablack@example.org", f"(646) 555-{n:04d}", f"Ysolde{n:04d}", f"Pemberton{n:04d}",
                     str(n % 7 + 1)])
    return rows


def customer_values(rows: list[list]) -> list[str]:
    values = []
    for email, phone, first, last, _points in rows[1:]:
        digits = re.sub(r"\D", "", phone)
        values += [email, phone, f"+1{digits}", digits, first, last]
    return values


def assert_no_customer_value(text: str, values: list[str]) -> None:
    assert "DETAIL" not in text and "Key (" not in text, text[-3000:]
    for pattern in (r"vantablack", r"Ysolde\d", r"Pemberton\d", r"646\)? ?555", r"\+1646555"):
        assert not re.search(pattern, text), f"{pattern} in the logs:\n{text[-3000:]}"
    for value in values:
        assert value not in text


@pytest.fixture
def chunked(monkeypatch):
    tune(monkeypatch, IMPORT_CHUNK_ROWS=CHUNK)


def test_an_import_racing_another_for_new_personas_retries_the_unit(app, tmp_path, account_a, owner_a, chunked,
                                                                   caplog):
    caplog.set_level(logging.DEBUG)
    first_rows, second_rows = people(0, ROWS), people(ROWS // 2, ROWS)  # half of the second file overlaps
    first_file, second_file = write_csv(tmp_path, first_rows, "first.csv"), write_csv(tmp_path, second_rows, "second.csv")

    sequential = create_account("Sequential")
    for path in (first_file, second_file):
        apply_queued(prepare_import(sequential, owner_a, path))
    expected = by_key(export_personas(sequential.id))
    expected_second = Import.select().where(Import.account == sequential).order_by(Import.id.desc()).first().counts
    caplog.clear()

    first, second = (prepare_import(account_a, owner_a, path) for path in (first_file, second_file))
    assert second.review["created"] == ROWS  # validated before the first applied: all of it "new"
    first = apply_queued(first)
    second = apply_queued(second)

    assert (first.status, second.status) == ("completed", "completed"), second.error_message
    assert second.attempt == 1 and second.error_message is None  # the job never failed
    assert second.counts == expected_second
    assert second.counts["updated"] == ROWS // 2 and second.counts["created"] == ROWS // 2
    assert by_key(export_personas(account_a.id)) == expected
    assert sum(p["points"] for p in expected) == sum(int(r[4]) for r in first_rows[1:] + second_rows[1:])
    raced = [r for r in caplog.records if "lost a race" in r.getMessage()]
    assert raced, "the second import never met the unique key: the test did not race"
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert_no_customer_value(logged, customer_values(first_rows) + customer_values(second_rows))


def _unique_violation():
    """psycopg2's UniqueViolation as a COPY raises it: carrying the DETAIL with the customer's email."""
    error = pg_errors.UniqueViolation('duplicate key value violates unique constraint "persona_account_id_email"\n'
                                      "DETAIL:  Key (account_id, email)=(5, jose.smith.19@example.org) already exists.\n")
    return error


@pytest.mark.sqlite_only
def test_every_kind_of_unique_violation_is_a_retryable_race():
    import sqlite3

    assert engine._retryable(_unique_violation())
    assert engine._retryable(IntegrityError(_unique_violation()))
    assert engine._retryable(sqlite3.IntegrityError("UNIQUE constraint failed: persona.account_id, persona.email"))
    assert engine._retryable(sqlite3.OperationalError("database is locked"))
    assert not engine._retryable(ValueError("bad value"))
    assert not engine._retryable(pg_errors.UndefinedColumn("column x does not exist"))


@pytest.mark.sqlite_only
def test_a_logged_database_error_keeps_its_kind_and_loses_its_values():
    error = _unique_violation()
    assert "jose" not in describe(error) and "UniqueViolation" in describe(error)
    wrapped = IntegrityError(error)
    assert "jose" not in describe(wrapped)
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError(f"while writing {inner}") from inner
    except RuntimeError as outer:
        text = format_exception(outer)
    assert "jose" not in text and "Key (" not in text
    assert "UniqueViolation" in text and "RuntimeError" in text and "direct cause" in text
    assert "raise error" in text  # the traceback's lines stay: where it failed is what a log is for
    assert describe(ConnectionRefusedError(111, "Connection refused")).endswith("Connection refused")


@pytest.mark.sqlite_only
def test_every_log_record_with_an_exception_is_made_safe(caplog):
    install()  # as create_app and the worker do
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("tests.anything")
    try:
        raise _unique_violation()
    except Exception as error:
        log.exception("import failed")
        log.warning("import failed: %s", error)
        log.error("not even at", exc_info=True)
    assert "import failed" in caplog.text and "UniqueViolation" in caplog.text
    assert "jose" not in caplog.text and "DETAIL" not in caplog.text, caplog.text
