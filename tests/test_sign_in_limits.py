"""Failed sign-ins are limited per account (email) and per client address: a password guesser is refused
with a clear message and 429, even with the right password, until the window passes; people who sign in
right are never counted. Counters in this process, or in Redis when REDIS_URL is set."""
import os
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import csrf_token_of
from webapp.models import UserSession

HTMX = {"HX-Request": "true"}
OFFICE, ELSEWHERE = "203.0.113.7", "198.51.100.20"
LOCKED_ACCOUNT = "There were too many failed sign-ins to this account."
LOCKED_ADDRESS = "There were too many failed sign-ins from your network."


def sign_in(client, email: str, password: str, address: str = OFFICE, headers=None):
    """Post the sign-in form from a client address."""
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token_of(client)},
                       headers=headers or {}, environ_base={"REMOTE_ADDR": address})


def signed_in(client) -> bool:
    with client.session_transaction() as session:
        return "_user_id" in session


def test_eleven_wrong_passwords_lock_the_account_even_for_the_right_one(client, app, owner_a, owner_b):
    for attempt in range(10):
        assert sign_in(client, owner_a.email, f"guess-{attempt}").status_code == 401
    refused = sign_in(client, owner_a.email, "guess-10")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and 850 <= int(refused.headers["Retry-After"]) <= 900
    assert LOCKED_ACCOUNT in page and "Wait 15 minutes, then try again." in page
    assert "<html" in page and 'value="owner-a@example.com"' in page  # the sign-in form again, email kept

    right = sign_in(client, owner_a.email, owner_a.password)
    assert right.status_code == 429 and LOCKED_ACCOUNT in right.get_data(as_text=True)
    assert not signed_in(client) and UserSession.select().count() == 0
    # The email is what is locked, however it is typed and wherever the guesses come from.
    elsewhere = app.test_client()
    assert sign_in(elsewhere, " Owner-A@Example.com ", owner_a.password, address=ELSEWHERE).status_code == 429
    partial = sign_in(elsewhere, owner_a.email, owner_a.password, headers=HTMX)
    assert partial.status_code == 429 and "<html" not in partial.get_data(as_text=True)
    assert LOCKED_ACCOUNT in partial.get_data(as_text=True)

    # Another account from the same address is not locked by this one.
    response = sign_in(client, owner_b.email, owner_b.password)
    assert response.status_code == 302 and signed_in(client)


def test_the_address_limit_covers_every_account_tried_from_it(client, app, owner_a, owner_b):
    """50 failures from one address, 10 on each of five emails (none of them over its own limit)."""
    for email in (owner_a.email, "nobody-1@example.com", "nobody-2@example.com", "nobody-3@example.com",
                  "nobody-4@example.com"):
        for attempt in range(10):
            assert sign_in(client, email, f"guess-{attempt}").status_code == 401, (email, attempt)
    refused = sign_in(client, owner_b.email, owner_b.password)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and LOCKED_ADDRESS in page and "Retry-After" in refused.headers
    assert not signed_in(client)
    # The same account from another address: the address, not the account, was refused.
    other = app.test_client()
    assert sign_in(other, owner_b.email, owner_b.password, address=ELSEWHERE).status_code == 302


def test_the_lock_ends_when_the_window_passes(app_factory, owner_a):
    app = app_factory(SIGN_IN_RATE_LIMIT_ACCOUNT="2/2 seconds")
    client = app.test_client()
    for attempt in range(2):
        assert sign_in(client, owner_a.email, f"guess-{attempt}").status_code == 401
    refused = sign_in(client, owner_a.email, owner_a.password)
    assert refused.status_code == 429
    assert f"Wait {refused.headers['Retry-After']} second" in refused.get_data(as_text=True)
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)
    assert sign_in(client, owner_a.email, owner_a.password).status_code == 302 and signed_in(client)


def test_right_passwords_are_never_counted(app, owner_a):
    for _ in range(12):
        client = app.test_client()
        assert sign_in(client, owner_a.email, owner_a.password).status_code == 302
    # A refused form (no CSRF token) is not a failed sign-in either.
    for _ in range(11):
        assert app.test_client().post("/login", data={"email": owner_a.email, "password": "x"},
                                      environ_base={"REMOTE_ADDR": OFFICE}).status_code == 400
    assert sign_in(app.test_client(), owner_a.email, owner_a.password).status_code == 302


@pytest.mark.sqlite_only
def test_a_typo_in_a_sign_in_limit_fails_at_start_up(app_factory):
    for setting in ("SIGN_IN_RATE_LIMIT_ACCOUNT", "SIGN_IN_RATE_LIMIT_ADDRESS"):
        with pytest.raises(ValueError):
            app_factory(**{setting: "ten a minute"})


REDIS_URL = os.environ.get("REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real Redis)")
def test_with_redis_every_process_sees_the_lock(app_factory, owner_a):
    from redis import Redis

    parts = urlsplit(REDIS_URL)
    url = urlunsplit((parts.scheme, parts.netloc, "/12", "", ""))  # test_requests_and_secrets.py's database
    redis = Redis.from_url(url)
    for key in redis.scan_iter("personas:ratelimit:*"):
        redis.delete(key)
    first = app_factory(REDIS_URL=url, SIGN_IN_RATE_LIMIT_ACCOUNT="3/minute")
    second = app_factory(REDIS_URL=url, SIGN_IN_RATE_LIMIT_ACCOUNT="3/minute")  # another gunicorn worker
    for app in (first, second, first):
        assert sign_in(app.test_client(), owner_a.email, "guess").status_code == 401
    refused = sign_in(second.test_client(), owner_a.email, owner_a.password)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    keys = [key.decode() for key in redis.scan_iter("personas:ratelimit:*")]
    assert keys and not any("owner-a" in key for key in keys)  # the email is hashed in the counter's key
