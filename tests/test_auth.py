"""Sign-in, sign-out, session renewal, account switching and the access decorators."""
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import g
from werkzeug.exceptions import NotFound

from webapp.accounts import create_user, hash_password
from webapp.models import Membership, Persona, User
from webapp.views.auth import OWNER_ONLY, get_owned_or_404, owner_required

HTMX = {"HX-Request": "true"}


def test_login_shows_personas_page(client, owner_a, login):
    response = login(client, owner_a.email, owner_a.password)
    assert response.status_code == 302
    assert urlsplit(response.location).path == "/personas"
    page = client.get("/personas").get_data(as_text=True)
    assert "<h1>Personas</h1>" in page
    assert "owner-a@example.com" in page
    with client.session_transaction() as session:
        assert session["_user_id"] == owner_a.id
        assert session["account_id"] == owner_a.memberships[0].account_id


def test_wrong_password_shows_error_and_no_session(client, owner_a, login):
    response = login(client, owner_a.email, "not-the-password")
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Wrong email or password." in page
    assert 'value="owner-a@example.com"' in page  # the email is kept, the password is not
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert client.get("/personas").status_code == 302


def test_unknown_email_is_the_same_error(client, owner_a, login):
    response = login(client, "nobody@example.com", owner_a.password)
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_login_renews_the_session_cookie_which_is_httponly(client, owner_a, login):
    client.get("/login")
    before = client.get_cookie("session").value
    with client.session_transaction() as session:
        token_before = session["csrf_token"]
        session["planted"] = "by someone else"
    response = login(client, owner_a.email, owner_a.password)
    # The one that sets it (the others expire it under another cookie setting: see test_sessions.py).
    set_cookie = next(h for h in response.headers.getlist("Set-Cookie") if not h.startswith("session=;"))
    assert "HttpOnly" in set_cookie
    assert "Secure" not in set_cookie  # plain http in tests
    assert client.get_cookie("session").value != before
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["csrf_token"] != token_before


def test_session_cookie_is_secure_over_https(client, owner_a, login):
    client.get("/login", base_url="https://localhost")
    assert client.get_cookie("session", domain="localhost").secure


def test_logout_forgets_the_user(owner_client, csrf):
    response = owner_client.post("/logout", data={"csrf_token": csrf(owner_client)})
    assert urlsplit(response.location).path == "/login"
    with owner_client.session_transaction() as session:
        assert "_user_id" not in session
    assert owner_client.get("/personas").status_code == 302


def test_anonymous_is_sent_to_login_with_next(client, owner_a, csrf):
    response = client.get("/personas?q=ann")
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/personas?q=ann"]
    page = client.get(response.location).get_data(as_text=True)
    assert 'name="next" value="/personas?q=ann"' in page
    signed_in = client.post("/login", data={"email": owner_a.email, "password": owner_a.password,
                                            "next": "/personas?q=ann", "csrf_token": csrf(client)})
    assert signed_in.location.endswith("/personas?q=ann")


def test_login_never_redirects_to_another_site(client, owner_a, csrf):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "evil"):
        response = client.post("/login", data={"email": owner_a.email, "password": owner_a.password,
                                               "next": target, "csrf_token": csrf(client)})
        assert urlsplit(response.location).path == "/personas"
        assert "evil" not in response.location


def test_htmx_request_when_signed_out_gets_401_and_hx_redirect(client):
    response = client.get("/personas", headers={**HTMX, "HX-Current-URL": "http://localhost/audiences/3"})
    assert response.status_code == 401
    redirect = urlsplit(response.headers["HX-Redirect"])
    assert redirect.path == "/login"
    assert parse_qs(redirect.query)["next"] == ["/audiences/3"]


def test_user_of_account_a_gets_404_for_account_b_persona(owner_client, account_b, make_persona):
    other = make_persona(account_b, email="secret@beta.example", first_name="Bea")
    response = owner_client.get(f"/personas/{other.id}")
    assert response.status_code == 404
    assert "secret@beta.example" not in response.get_data(as_text=True)
    assert "belongs to another account" in response.get_data(as_text=True)


def test_account_switch_only_to_own_accounts(app, owner_client, owner_a, account_b, csrf, make_persona):
    make_persona(account_b, email="beta-customer@example.com")
    refused = owner_client.post("/accounts/switch", data={"account_id": account_b.id, "csrf_token": csrf(owner_client)})
    assert refused.status_code == 404
    create_user(owner_a.email, "", account_b, Membership.STAFF)
    page = owner_client.get("/personas").get_data(as_text=True)
    assert 'id="account-switch"' in page and "beta-customer@example.com" not in page
    switched = owner_client.post("/accounts/switch",
                                 data={"account_id": account_b.id, "csrf_token": csrf(owner_client)})
    assert urlsplit(switched.location).path == "/personas"
    page = owner_client.get("/personas").get_data(as_text=True)
    assert "beta-customer@example.com" in page
    with owner_client.session_transaction() as session:
        assert session["account_id"] == account_b.id


def test_removed_membership_falls_back_to_the_first_account(owner_client, owner_a, account_a, account_b, csrf):
    create_user(owner_a.email, "", account_b, Membership.STAFF)
    owner_client.post("/accounts/switch", data={"account_id": account_b.id, "csrf_token": csrf(owner_client)})
    Membership.delete().where(Membership.user == owner_a, Membership.account == account_b).execute()
    owner_client.get("/personas")
    with owner_client.session_transaction() as session:
        assert session["account_id"] == account_a.id


def test_user_without_account_gets_a_friendly_403(client, login):
    User.create(email="lonely@example.com", password_hash=hash_password("pw"))
    login(client, "lonely@example.com", "pw")
    response = client.get("/personas")
    assert response.status_code == 403
    assert "does not belong to any account" in response.get_data(as_text=True)


@pytest.fixture
def owner_only_app(app):
    """The app with a throwaway owner-only page (the wizard's pages are owner-only the same way)."""

    @app.post("/_test/owner-only")
    @owner_required
    def owner_only():
        return "owner stuff"

    return app


def test_staff_cannot_reach_owner_only_page(owner_only_app, staff_client, csrf):
    response = staff_client.post("/_test/owner-only", data={"csrf_token": csrf(staff_client)})
    assert response.status_code == 403
    assert OWNER_ONLY in response.get_data(as_text=True)
    assert "<html" in response.get_data(as_text=True)


def test_owner_reaches_owner_only_page(owner_only_app, owner_client, csrf):
    response = owner_client.post("/_test/owner-only", data={"csrf_token": csrf(owner_client)})
    assert response.get_data(as_text=True) == "owner stuff"


def test_owner_only_page_sends_anonymous_to_login(owner_only_app, client, csrf):
    response = client.post("/_test/owner-only", data={"csrf_token": csrf(client)})
    assert urlsplit(response.location).path == "/login"


def test_get_owned_or_404_is_scoped_to_the_current_account(app, account_a, account_b, make_persona):
    mine = make_persona(account_a, email="mine@example.com")
    theirs = make_persona(account_b, email="theirs@example.com")
    with app.test_request_context():
        g.account = account_a
        assert get_owned_or_404(Persona, mine.id).email == "mine@example.com"
        active = Persona.select().where(Persona.archived == False)  # noqa: E712 - a query, not a comparison
        assert get_owned_or_404(active, str(mine.id)).id == mine.id
        for bad in (theirs.id, 999999, "abc", None):
            with pytest.raises(NotFound):
                get_owned_or_404(Persona, bad)

