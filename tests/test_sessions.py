"""Sessions end server-side: a saved copy of the cookie is worthless after sign-out, a password change, a
new sign-in or the session lifetime; and sign-out and account switching work whatever the cookie settings
were when the session began (FRAME_ANCESTORS turned on or off in between), on each database.

`Browser` below keeps cookies the way Chromium does (checked by tests/browser/test_sessions_browser.py):
one per name *and* partition, so a Partitioned cookie and an unpartitioned one of the same name live side
by side and are both sent, the older first; each is replaced or expired only by a Set-Cookie of its kind.
"""
import datetime
import io
import re
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner

from tests.conftest import csrf_token_of
from tests.test_wizard import HEADERS, ROWS, csv_bytes, import_id_of
from webapp.accounts import create_user, set_password
from webapp.models import Import, Membership, UserSession, utcnow
from webapp.security import SESSION_KEY, cookie_settings

EMBEDDED = {"FRAME_ANCESTORS": ["'self'", "https://dashboard.example.com"], "EMBEDDING": True}


def _signed_out(response) -> bool:
    return response.status_code == 302 and urlsplit(response.location).path == "/login"


def _replay(app, cookie_value: str):
    """A client holding nothing but a saved copy of a session cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie_value)
    return client


def _draft(client, csrf) -> int:
    response = client.post("/imports/new", data={"file": (io.BytesIO(csv_bytes([HEADERS, *ROWS])), "people.csv"),
                                                 "csrf_token": csrf(client)}, content_type="multipart/form-data")
    return import_id_of(response)


# ---------------------------------------------------------------- a saved cookie after the session ended

def test_a_saved_cookie_opens_nothing_after_sign_out(app, owner_client, csrf):
    draft = _draft(owner_client, csrf)
    saved, token = owner_client.get_cookie("session").value, csrf_token_of(owner_client)
    assert _replay(app, saved).get("/personas").status_code == 200  # a copy works while the session is open

    response = owner_client.post("/logout", data={"csrf_token": token})
    assert _signed_out(response)
    assert UserSession.select().count() == 0

    thief = _replay(app, saved)
    assert _signed_out(thief.get("/personas"))
    # Not even with the session's own CSRF token: the draft stays.
    thief = _replay(app, saved)
    assert _signed_out(thief.post(f"/imports/{draft}/remove", data={"csrf_token": token}))
    assert Import.get_or_none(Import.id == draft) is not None
    # The refused copy is expired in the answer, so a browser holding it is left with none.
    assert thief.get_cookie("session") is None


def test_a_password_change_ends_every_session_of_the_user(app, owner_a, staff_a, login):
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    for client, user in ((laptop, owner_a), (phone, owner_a), (colleague, staff_a)):
        assert login(client, user.email, user.password).status_code == 302
    saved = laptop.get_cookie("session").value
    assert UserSession.select().count() == 3

    set_password(owner_a, "a-new-password")
    assert _signed_out(laptop.get("/personas")) and _signed_out(phone.get("/personas"))
    assert _signed_out(_replay(app, saved).get("/personas"))
    assert colleague.get("/personas").status_code == 200  # another user's session is not touched
    fresh = app.test_client()
    assert login(fresh, owner_a.email, owner_a.password).status_code == 401
    assert login(fresh, owner_a.email, "a-new-password").status_code == 302
    assert fresh.get("/personas").status_code == 200


def test_create_user_with_a_new_password_is_a_password_change(app, owner_client, owner_a, account_a):
    saved = owner_client.get_cookie("session").value
    create_user(owner_a.email, "", account_a, Membership.OWNER)  # no password: nothing changes
    assert owner_client.get("/personas").status_code == 200
    create_user(owner_a.email, "another-password", account_a, Membership.OWNER)  # `personas create-user`
    assert _signed_out(owner_client.get("/personas")) and _signed_out(_replay(app, saved).get("/personas"))


def test_signing_in_again_ends_the_session_the_browser_had(app, client, owner_a, staff_a, login):
    login(client, owner_a.email, owner_a.password)
    owners = client.get_cookie("session").value
    login(client, staff_a.email, staff_a.password)
    assert "staff-a@example.com" in client.get("/personas").get_data(as_text=True)
    assert _signed_out(_replay(app, owners).get("/personas"))
    assert UserSession.select().count() == 1


def test_a_session_older_than_its_lifetime_is_refused(app, owner_client):
    assert owner_client.get("/personas").status_code == 200
    old = utcnow() - app.permanent_session_lifetime - datetime.timedelta(minutes=1)
    UserSession.update(created_at=old).execute()
    assert _signed_out(owner_client.get("/personas"))


def test_a_cookie_from_before_sessions_were_kept_is_refused(app, owner_client, owner_a):
    """A cookie signed before this change (user_id, no session token) no longer signs anyone in."""
    forged = app.session_interface.get_signing_serializer(app).dumps(
        {"user_id": owner_a.id, "account_id": owner_a.memberships[0].account_id, SESSION_KEY: "x"})
    assert _signed_out(_replay(app, forged).get("/personas"))


# ---------------------------------------------------------------- cookie settings changed mid-session

class Browser:
    """Cookies kept per (name, partitioned) as Chromium keeps them, sent oldest first."""

    def __init__(self, app):
        self.client = app.test_client(use_cookies=False)
        self.jar: dict[tuple[str, bool], str] = {}  # insertion order = creation order

    def use(self, app) -> None:
        """The same browser talking to another app (the server restarted with other settings)."""
        self.client = app.test_client(use_cookies=False)

    def cookies(self, name: str = "session") -> list[tuple[bool, str]]:
        return [(partitioned, value) for (cookie, partitioned), value in self.jar.items() if cookie == name]

    def request(self, method: str, path: str, **kwargs):
        header = "; ".join(f"{name}={value}" for (name, _), value in self.jar.items())
        response = self.client.open(path, method=method, headers={"Cookie": header} if header else {}, **kwargs)
        for line in response.headers.getlist("Set-Cookie"):
            pair, *attributes = [part.strip() for part in line.split(";")]
            name, _, value = pair.partition("=")
            flags = {a.split("=")[0].lower(): a.partition("=")[2] for a in attributes}
            key = (name, "partitioned" in flags)
            if flags.get("max-age") == "0" or (not value and "expires" in flags):
                self.jar.pop(key, None)
            else:
                self.jar[key] = value  # a replaced cookie keeps its creation time, so its place
        return response

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data=None, token: str | None = None):
        """Post a form with the CSRF token of the page the user is on (token, else read from /personas)."""
        return self.request("POST", path, data={**(data or {}), "csrf_token": token or self.csrf()})

    def csrf(self, path: str = "/personas") -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).get_data(as_text=True))
        return match.group(1) if match else ""

    def sign_in(self, user) -> None:
        response = self.post("/login", {"email": user.email, "password": user.password}, token=self.csrf("/login"))
        assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def two_accounts(owner_a, account_b):
    """owner_a is also staff of Beta (so the account switcher shows)."""
    create_user(owner_a.email, "", account_b, Membership.STAFF)
    return owner_a


@pytest.mark.parametrize("began_embedded", [False, True], ids=["turned-on", "turned-off"])
def test_sign_out_after_frame_ancestors_changed(app_factory, owner_a, began_embedded):
    """Sign in, restart the app with (or without) FRAME_ANCESTORS, click Sign out: signed out (issue 13.5)."""
    plain, embedded = app_factory(), app_factory(**EMBEDDED)
    before, after = (embedded, plain) if began_embedded else (plain, embedded)
    browser = Browser(before)
    browser.sign_in(owner_a)
    saved = browser.cookies()[0][1]
    browser.use(after)
    assert browser.get("/personas").status_code == 200  # the session goes on under the new setting
    assert _signed_out(browser.post("/logout"))
    assert browser.cookies() == []
    assert _signed_out(browser.get("/personas"))
    assert _signed_out(_replay(after, saved).get("/personas"))


@pytest.mark.parametrize("began_embedded", [False, True], ids=["turned-on", "turned-off"])
def test_switching_accounts_after_frame_ancestors_changed(app_factory, two_accounts, account_a, account_b,
                                                          began_embedded):
    """Sign in, restart with the other setting, switch account: the switch holds, then sign-out works."""
    plain, embedded = app_factory(), app_factory(**EMBEDDED)
    before, after = (embedded, plain) if began_embedded else (plain, embedded)
    browser = Browser(before)
    browser.sign_in(two_accounts)
    assert [partitioned for partitioned, _ in browser.cookies()] == [began_embedded]

    browser.use(after)
    response = browser.post("/accounts/switch", {"account_id": account_b.id})
    assert urlsplit(response.location).path == "/personas"
    # One cookie left, of the new setting: the old one was expired with it.
    assert [partitioned for partitioned, _ in browser.cookies()] == [not began_embedded]
    for _ in range(2):
        page = browser.get("/personas").get_data(as_text=True)
        assert f'value="{account_b.id}" selected' in page, "the switch did not hold"
    response = browser.post("/accounts/switch", {"account_id": account_a.id})
    assert f'value="{account_a.id}" selected' in browser.get("/personas").get_data(as_text=True)

    saved = browser.cookies()[0][1]
    assert _signed_out(browser.post("/logout"))
    assert browser.cookies() == []
    assert _signed_out(browser.get("/personas"))
    assert _signed_out(_replay(after, saved).get("/personas"))


def test_sign_out_when_the_browser_already_holds_both_cookies(app_factory, two_accounts, account_a, account_b,
                                                              monkeypatch):
    """The state the issue found: an old Lax cookie and a newer Partitioned one, both sent, old one first."""
    app = app_factory(**EMBEDDED)
    browser = Browser(app)
    browser.sign_in(two_accounts)
    (_, current), = browser.cookies()
    serializer = app.session_interface.get_signing_serializer(app)
    session = serializer.loads(current)
    older = int(datetime.datetime.now().timestamp()) - 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: older)
    stale = serializer.dumps({**session, "account_id": account_a.id})
    monkeypatch.undo()
    newer = serializer.dumps({**session, "account_id": account_b.id})
    browser.jar = {("session", False): stale, ("session", True): newer}  # the older one is sent first

    page = browser.get("/personas").get_data(as_text=True)
    assert f'value="{account_b.id}" selected' in page  # the most recently written cookie is the session
    assert [partitioned for partitioned, _ in browser.cookies()] == [True]  # and the stale copy is gone

    token = browser.csrf()
    browser.jar = {("session", False): stale, ("session", True): browser.jar[("session", True)]}
    assert _signed_out(browser.post("/logout", token=token))
    assert browser.cookies() == []
    assert _signed_out(browser.get("/personas"))


@pytest.mark.parametrize("embedding", [False, True], ids=["lax", "partitioned"])
def test_sign_out_expires_the_cookie_under_every_setting(app_factory, owner_a, login, embedding):
    app = app_factory(**(EMBEDDED if embedding else {}))
    client = app.test_client()
    login(client, owner_a.email, owner_a.password)
    token = csrf_token_of(client)
    response = client.post("/logout", data={"csrf_token": token})
    expired = [line for line in response.headers.getlist("Set-Cookie") if line.startswith("session=;")]
    assert len(expired) == 2, expired
    partitioned = [line for line in expired if "Partitioned" in line]
    plain = [line for line in expired if "Partitioned" not in line]
    assert len(partitioned) == len(plain) == 1
    assert "Secure" in partitioned[0] and "SameSite=None" in partitioned[0]
    assert "SameSite=Lax" in plain[0]
    # The current setting's expiry comes last: a client keeping one cookie per name ends with it.
    assert ("Partitioned" in expired[-1]) == embedding
    assert cookie_settings(embedding)["SESSION_COOKIE_PARTITIONED"] == embedding
