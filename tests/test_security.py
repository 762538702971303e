"""CSRF, security headers, cookie flags for embedding, and the friendly error pages."""
import re

import pytest

from tests.conftest import is_csrf_token_of
from webapp.models import Persona

HTMX = {"HX-Request": "true"}
EXPIRED = "This form has expired. Reload the page and try again."


def test_form_post_without_token_is_refused(client, owner_a):
    response = client.post("/login", data={"email": owner_a.email, "password": owner_a.password})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert EXPIRED in page and "<html" in page
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_form_post_with_a_wrong_token_is_refused(client, owner_a, csrf):
    csrf(client)
    for forged in ("forged", "fälscht"):
        response = client.post("/login", data={"email": owner_a.email, "password": owner_a.password,
                                               "csrf_token": forged})
        assert response.status_code == 400 and EXPIRED in response.get_data(as_text=True)


def test_htmx_post_without_header_gets_the_message_as_a_partial(owner_client, owner_a, account_a):
    response = owner_client.post("/logout", headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert EXPIRED in page and "<html" not in page
    assert response.headers["HX-Retarget"] == "#messages"
    with owner_client.session_transaction() as session:
        assert session["_user_id"] == owner_a.id  # still signed in: the post did nothing


def test_htmx_post_with_header_succeeds(owner_client, csrf):
    response = owner_client.post("/logout", headers={**HTMX, "X-CSRFToken": csrf(owner_client)})
    assert response.status_code == 302
    with owner_client.session_transaction() as session:
        assert "_user_id" not in session


def test_pages_carry_the_token_for_forms_and_htmx(owner_client):
    page = owner_client.get("/personas").get_data(as_text=True)
    token = re.search(r'hx-headers=\'{"X-CSRFToken": "([^"]+)"}\'', page).group(1)  # signed when the page was made
    assert is_csrf_token_of(owner_client, token)
    assert f'name="csrf_token" value="{token}"' in page


def test_security_headers_on_every_response(client):
    for response in (client.get("/login"), client.get("/nowhere"), client.get("/static/css/app.css")):
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "X-Frame-Options" not in response.headers


def test_csp_frame_ancestors_from_config(app_factory):
    app = app_factory(FRAME_ANCESTORS=["'self'", "https://dash.example.com"], EMBEDDING=True)
    response = app.test_client().get("/login", base_url="https://localhost")
    assert "frame-ancestors 'self' https://dash.example.com" in response.headers["Content-Security-Policy"]
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie


def test_pages_have_no_inline_script_or_style(owner_client, make_persona, account_a):
    make_persona(account_a, email="ann@example.com")
    page = owner_client.get("/personas").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page and "<style" not in page
    assert 'src="/static/vendor/htmx.min.js"' in page
    assert '"includeIndicatorStyles":false' in page and '"historyCacheSize":0' in page


def test_htmx_request_gets_partial_and_plain_request_full_page(owner_client):
    full = owner_client.get("/personas")
    partial = owner_client.get("/personas", headers=HTMX)
    assert "<html" in full.get_data(as_text=True)
    assert "<html" not in partial.get_data(as_text=True)
    assert 'id="personas-results"' in partial.get_data(as_text=True)
    for response in (full, partial):
        assert "HX-Request" in response.headers["Vary"]
    restore = owner_client.get("/personas", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_not_found_page_is_friendly(owner_client):
    response = owner_client.get("/personas/123456")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" in page and "Not found" in page and "Back to personas" in page


def test_method_not_allowed_page(owner_client):
    response = owner_client.get("/logout")
    assert response.status_code == 405
    assert "cannot be used that way" in response.get_data(as_text=True)
    assert "POST" in response.headers["Allow"]


@pytest.mark.sqlite_only
def test_upload_over_the_limit_is_413_with_the_limit(app_factory, csrf):
    app = app_factory(MAX_UPLOAD_MB=1)
    client = app.test_client()
    response = client.post("/login", data={"csrf_token": csrf(client), "file": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "This file is larger than the upload limit of 1 MB." in response.get_data(as_text=True)


@pytest.mark.sqlite_only
def test_server_error_page_has_no_trace_and_is_logged(app_factory, caplog):
    app = app_factory(PROPAGATE_EXCEPTIONS=False)

    @app.get("/_test/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/_test/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side. Nothing was changed" in page
    assert "secret internals" not in page and "Traceback" not in page
    assert "secret internals" in caplog.text


def test_text_is_escaped_never_markup(owner_client, make_persona, account_a):
    persona = make_persona(account_a, email="x@example.com", first_name="<script>alert(1)</script>",
                           last_name='"><img src=x onerror=alert(2)>')
    for url in ("/personas", f"/personas/{persona.id}"):
        page = owner_client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<img src=x" not in page
    assert Persona.get_by_id(persona.id).first_name == "<script>alert(1)</script>"


def test_an_id_beyond_what_a_database_holds_is_not_found(owner_client):
    for url in ("/personas/99999999999999999999999", "/imports/99999999999999999999999",
                "/personas?audience=99999999999999999999999", "/audiences/-1"):
        response = owner_client.get(url)
        assert response.status_code == 404, url
        assert "Traceback" not in response.get_data(as_text=True)


def test_a_post_after_the_session_expired_goes_to_sign_in_and_changes_nothing(client, owner_a, account_a):
    response = client.post("/imports/1/review", data={"accept_terms": "1"})
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    response = client.post("/imports/1/review", data={"accept_terms": "1"}, headers=HTMX)
    assert response.status_code == 401 and "/login?next=" in response.headers["HX-Redirect"]
