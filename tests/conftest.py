"""Shared fixtures: the app on a temp SQLite file and, when TEST_DATABASE_URL is set, on PostgreSQL too.

Every test that uses `app` (or anything built on it: client, runner, accounts, users, logged-in
clients) runs once per database: test_x[sqlite], test_x[postgres]. Mark a test
`@pytest.mark.sqlite_only` to run it on SQLite alone.
"""
import os
import secrets

import flask
import pytest
from flask_wtf.csrf import generate_csrf, validate_csrf
from peewee import IntegrityError, ProgrammingError, sort_models
from wtforms import ValidationError

from webapp import accounts, create_app
from webapp.accounts import create_account, create_user
from webapp.db import db
from webapp.models import MODELS, Membership, Persona
from webapp.schema import init_schema
from webapp.security import FORM_FIELD, SESSION_KEY

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
DATABASES = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])

PASSWORDS = {
    "owner-a@example.com": "pw-owner-a",
    "staff-a@example.com": "pw-staff-a",
    "owner-b@example.com": "pw-owner-b",
}

# PostgreSQL tables are rebuilt on a run's first test (the models may have changed since the last run),
# then emptied before each test.
_postgres_rebuilt = False


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: run this test on SQLite only, not once per database")


def pytest_generate_tests(metafunc):
    if "db_kind" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("db_kind", ["sqlite"] if marked else DATABASES)


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch):
    """Cheap password hashes in tests: scrypt would make every sign-in cost a tenth of a second."""
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture
def db_kind():
    """The database under test: "sqlite" or "postgres" (parametrized by pytest_generate_tests)."""
    return "sqlite"


def _test_config(tmp_path, url: str, overrides: dict) -> dict:
    """Settings for a test app: temp instance folder, fixed secret, no Redis, no embedding."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": url,
        "REDIS_URL": None,
        "FRAME_ANCESTORS": ["'self'"],
        "EMBEDDING": False,
        **overrides,
    }


def _reset_postgres() -> None:
    """Empty every table, or rebuild them all on the run's first test or when one is missing."""
    global _postgres_rebuilt
    if _postgres_rebuilt:
        try:
            # DELETE of a test's few rows takes a few ms; TRUNCATE of 14 tables takes ~50.
            with db.atomic():
                for model in reversed(sort_models(MODELS)):
                    model.delete().execute()
            return
        except (ProgrammingError, IntegrityError):
            pass  # a test dropped a table, or another table points at ours: rebuild below
    db.drop_tables(MODELS, cascade=True, safe=True)
    _postgres_rebuilt = True


@pytest.fixture
def app_factory(db_kind, tmp_path):
    """app_factory(**config): a new app on this test's (empty, initialized) database, with config overrides."""
    url = POSTGRES_URL if db_kind == "postgres" else f"sqlite:///{tmp_path / 'test.db'}"
    databases, state = [], {"fresh": False}

    def make(**overrides):
        app = create_app(_test_config(tmp_path, url, overrides))
        databases.append(db.obj)
        if not state["fresh"]:
            if db_kind == "postgres":
                _reset_postgres()
            init_schema()
            state["fresh"] = True
        return app

    yield make
    for database in databases:
        if not database.is_closed():
            database.close()


@pytest.fixture
def app(app_factory):
    """The app on an empty database with the schema, once per database under test."""
    return app_factory()


@pytest.fixture
def app_sqlite(tmp_path):
    """An app on a temp SQLite file only, for tests that need just an app (not `client` & co.)."""
    app = create_app(_test_config(tmp_path, f"sqlite:///{tmp_path / 'sqlite-only.db'}", {}))
    init_schema()
    yield app
    if not db.is_closed():
        db.close()


@pytest.fixture
def database(app):
    """The Peewee database the app is bound to (webapp.db.db points at it)."""
    return db.obj


@pytest.fixture
def client(app):
    """A test client, not signed in."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's commands: runner.invoke(args=["init-db"])."""
    return app.test_cli_runner()


@pytest.fixture
def account_a(app):
    """Account "Alpha"."""
    return create_account("Alpha")


@pytest.fixture
def account_b(app):
    """Account "Beta"."""
    return create_account("Beta")


def _user(email: str, account, role: str):
    user = create_user(email, PASSWORDS[email], account, role)
    user.password = PASSWORDS[email]  # not a column: lets tests sign in as this user
    return user


@pytest.fixture
def owner_a(account_a):
    """owner-a@example.com, owner of Alpha; password "pw-owner-a" (also in .password)."""
    return _user("owner-a@example.com", account_a, Membership.OWNER)


@pytest.fixture
def staff_a(account_a):
    """staff-a@example.com, staff of Alpha; password "pw-staff-a"."""
    return _user("staff-a@example.com", account_a, Membership.STAFF)


@pytest.fixture
def owner_b(account_b):
    """owner-b@example.com, owner of Beta; password "pw-owner-b"."""
    return _user("owner-b@example.com", account_b, Membership.OWNER)


def csrf_token_of(client) -> str:
    """A CSRF token of the client's session, signed as a page carries it (creating the session's token when it
    has none)."""
    with client.session_transaction() as session:
        if SESSION_KEY not in session:
            session[SESSION_KEY] = secrets.token_hex(20)
        raw = session[SESSION_KEY]
    with client.application.test_request_context():
        flask.session[SESSION_KEY] = raw
        return generate_csrf()


def is_csrf_token_of(client, token: str) -> bool:
    """True when token is a CSRF token of the client's session (as csrf_token_of makes and pages carry)."""
    with client.session_transaction() as session:
        raw = session.get(SESSION_KEY)
    if raw is None:
        return False
    with client.application.test_request_context():
        flask.session[SESSION_KEY] = raw
        try:
            validate_csrf(token)
        except ValidationError:
            return False
        return True


def log_in(client, email: str, password: str):
    """Post the sign-in form as a browser would (with its CSRF token); returns the response."""
    return client.post("/login", data={"email": email, "password": password, FORM_FIELD: csrf_token_of(client)})


@pytest.fixture
def csrf():
    """csrf(client) -> the token to send as form field csrf_token or header X-CSRFToken."""
    return csrf_token_of


@pytest.fixture
def login():
    """login(client, email, password) -> the sign-in response (a redirect when it worked)."""
    return log_in


def _signed_in(app, user):
    client = app.test_client()
    response = log_in(client, user.email, user.password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def owner_client(app, owner_a):
    """A client signed in as owner_a (current account: Alpha)."""
    return _signed_in(app, owner_a)


@pytest.fixture
def staff_client(app, staff_a):
    """A client signed in as staff_a (current account: Alpha)."""
    return _signed_in(app, staff_a)


@pytest.fixture
def make_persona(app):
    """make_persona(account, **fields): a Persona row created directly in the database."""

    def make(account, **fields):
        return Persona.create(account=account, **fields)

    return make
