"""A NUL character is a clear 400, no page is kept by a cache, and no access log line holds a query string.

The NUL and Cache-Control tests run on each database (PostgreSQL is where a NUL used to end as a 500); the
access-log tests start the real servers the README documents: `personas run` (werkzeug) and gunicorn with
gunicorn.conf.py, and read what they write.
"""
import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.live_server import http_request
from tests.test_wizard import HEADERS, ROWS, csv_bytes, import_id_of
from webapp.models import Import

ROOT = Path(__file__).resolve().parent.parent
NUL_MESSAGE = "null character (%00)"
HTMX = {"HX-Request": "true"}


def _refused_for_nul(response) -> bool:
    return response.status_code == 400 and NUL_MESSAGE in response.get_data(as_text=True)


# ---------------------------------------------------------------- 17.9: NUL in a query or a form field

@pytest.mark.parametrize("query", ["q=%00", "q=ann%00smith", "q=%00&page=2", "%00=1", "audience=%00",
                                   "page=%00", "embed=1%00"])
def test_nul_in_the_query_string_is_a_clear_400(owner_client, make_persona, account_a, query):
    make_persona(account_a, email="ann@example.com", first_name="Ann")
    response = owner_client.get(f"/personas?{query}")
    assert _refused_for_nul(response), (response.status_code, response.get_data(as_text=True)[:300])
    assert "<html" in response.get_data(as_text=True)  # the app's error page, with its layout
    assert owner_client.get("/personas?q=ann").status_code == 200  # nothing stuck


def test_nul_in_an_htmx_search_is_a_400_alert(owner_client):
    response = owner_client.get("/personas?q=%00", headers=HTMX)
    assert _refused_for_nul(response)
    assert response.headers["HX-Retarget"] == "#messages" and "<html" not in response.get_data(as_text=True)


@pytest.mark.parametrize("field", ["email", "password", "next"])
def test_nul_in_the_sign_in_form_is_a_clear_400(client, owner_a, csrf, field):
    data = {"email": owner_a.email, "password": owner_a.password, "csrf_token": csrf(client)}
    data[field] = (data.get(field) or "/personas") + "\x00"
    response = client.post("/login", data=data)
    assert _refused_for_nul(response)
    # The same with the token in the header (the form is then read by the view, not the CSRF check).
    response = client.post("/login", data={**data, "csrf_token": ""}, headers={"X-CSRFToken": csrf(client)})
    assert _refused_for_nul(response)
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_nul_as_raw_bytes_in_the_body_is_a_clear_400(client, owner_a, csrf):
    body = f"email=ann%00%40example.com&password=x&csrf_token={csrf(client)}"
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert _refused_for_nul(response)
    response = client.post("/login", data=body.replace("%00", "\x00"), content_type="application/x-www-form-urlencoded")
    assert _refused_for_nul(response)


def test_nul_in_wizard_forms_is_a_clear_400(owner_client, csrf):
    upload = owner_client.post("/imports/new", data={"file": (io.BytesIO(csv_bytes([HEADERS, *ROWS])), "people.csv"),
                                                     "csrf_token": csrf(owner_client)},
                               content_type="multipart/form-data")
    import_id = import_id_of(upload)
    before = Import.get_by_id(import_id).mapping
    for url, data in ((f"/imports/{import_id}/mapping", {"map:Email": "email\x00"}),
                      (f"/imports/{import_id}/sheet", {"sheet": "Customers\x00"}),
                      (f"/imports/{import_id}/header", {"header_line": "1\x00"})):
        response = owner_client.post(url, data={**data, "csrf_token": csrf(owner_client)})
        assert _refused_for_nul(response), url
    assert Import.get_by_id(import_id).mapping == before
    # A multipart form field too (the upload form's), while a NUL inside the file is the importer's business.
    response = owner_client.post("/imports/new", data={"file": (io.BytesIO(b"Email\r\nann@example.com\r\n"), "a.csv"),
                                                       "csrf_token": csrf(owner_client), "note": "x\x00"},
                                 content_type="multipart/form-data")
    assert _refused_for_nul(response)
    response = owner_client.post("/imports/new", data={"file": (io.BytesIO(b"Email\x00\r\nann@exa\x00mple.com\r\n"),
                                                                "nul.csv"), "csrf_token": csrf(owner_client)},
                                 content_type="multipart/form-data")
    assert response.status_code != 500 and NUL_MESSAGE not in response.get_data(as_text=True)


def test_nul_in_the_path_is_not_a_500(owner_client):
    for path in ("/personas/%00", "/imports/%00/uploaded", "/imports/templates/%00.csv", "/%00"):
        assert owner_client.get(path).status_code == 404, path


# ---------------------------------------------------------------- 17.10: no page is kept by a cache

def test_every_page_of_a_signed_in_user_is_no_store(owner_client, csrf, make_persona, account_a):
    persona = make_persona(account_a, email="ann@example.com", first_name="Ann")
    upload = owner_client.post("/imports/new", data={"file": (io.BytesIO(csv_bytes([HEADERS, *ROWS])), "people.csv"),
                                                     "csrf_token": csrf(owner_client)},
                               content_type="multipart/form-data")
    import_id = import_id_of(upload)
    pages = ["/personas", "/personas?q=ann", f"/personas/{persona.id}", "/audiences", "/imports", "/imports/new",
             f"/imports/{import_id}/uploaded", f"/imports/{import_id}/mapping", "/personas/999999", "/"]
    for path in pages:
        for headers in ({}, HTMX):
            response = owner_client.get(path, headers=headers)
            assert response.headers.get("Cache-Control") == "private, no-store", (path, headers, response.status_code)
    assert owner_client.post(f"/imports/{import_id}/remove", data={"csrf_token": csrf(owner_client)}).headers[
        "Cache-Control"] == "private, no-store"


def test_pages_without_a_user_are_no_store_too_but_static_files_may_be_cached(client):
    assert client.get("/login").headers["Cache-Control"] == "private, no-store"
    static = client.get("/static/vendor/htmx.min.js") if (ROOT / "static/vendor/htmx.min.js").exists() else None
    static = static or client.get("/static/app.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")


# ---------------------------------------------------------------- 17.11: no query string in an access log

SECRET = "zelda.quist@example.com"
PHONE = "+14155550199"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server not listening: {log.read_text(errors='replace')}")


def _browse(port: int, email: str, password: str) -> None:
    """Sign in and search as a browser would: the customer values in query strings, Referer and HX headers."""
    def request(method, path, body=None, headers=None, cookie=None):
        return http_request(port, method, path, body=body, headers=headers, cookie=cookie)

    search = "/personas?" + urlencode({"q": SECRET})
    status, _, _ = request("GET", search)
    assert status == 302  # to /login?next=/personas%3Fq%3D... (in the Location header only)
    _, page, cookies = request("GET", f"/login?{urlencode({'next': search})}")
    cookie = cookies[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urlencode({"email": email, "password": password, "csrf_token": token, "next": search})
    status, _, cookies = request("POST", "/login", body=body, cookie=cookie)
    assert status == 302, status
    cookie = cookies[0]
    referer = f"http://127.0.0.1:{port}{search}"
    for path in (search, "/personas?" + urlencode({"q": PHONE}), search + "&page=2"):
        status, page, _ = request("GET", path, cookie=cookie, headers={"Referer": referer, "HX-Request": "true",
                                                                        "HX-Current-URL": referer})
        assert status == 200, (path, status, page[:300])
    request("GET", f"/static/app.css?v={SECRET}", headers={"Referer": referer})


def _assert_no_customer_values(log: str) -> None:
    assert "GET /personas HTTP/1.1" in log, log  # the requests are logged, by path
    for value in (SECRET, "zelda", PHONE, "4155550199", "%40example.com", "q="):
        assert value not in log, f"{value!r} in the access log:\n{log}"


@pytest.fixture
def served_db(app, owner_a):
    """The test's database with owner_a, for a server process to serve (its URL)."""
    from webapp.db import db

    url = app.config["DATABASE_URL"]
    if not db.is_closed():
        db.close()
    return url


def _server_env(database_url: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FRAME_ANCESTORS")}
    env.update(DATABASE_URL=database_url, SECRET_KEY="test-secret-key", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.sqlite_only
def test_dev_server_request_log_has_paths_without_queries(served_db, owner_a, tmp_path):
    port, log = _free_port(), tmp_path / "dev-server.log"
    personas = Path(sys.executable).parent / "personas"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(personas), "run", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                env=_server_env(served_db, tmp_path), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        _browse(port, owner_a.email, owner_a.password)
    finally:
        proc.terminate()
        proc.wait(10)
    _assert_no_customer_values(log.read_text(errors="replace"))


@pytest.mark.sqlite_only
@pytest.mark.parametrize("log_format", [None, '%(r)s %(U)s %(q)s "%(f)s" %({referer}i)s %({hx-current-url}i)s '
                                              '%({cookie}i)s %({location}o)s %({query_string}e)s %({raw_uri}e)s'],
                         ids=["documented-format", "every-url-atom"])
def test_gunicorn_access_log_has_paths_without_queries(served_db, owner_a, tmp_path, log_format):
    """The README's production command (its gunicorn.conf.py); and a format asking for every URL-ish atom."""
    port, log = _free_port(), tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "-c", "gunicorn.conf.py", "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    if log_format:
        command[1:1] = ["--access-logformat", log_format]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=_server_env(served_db, tmp_path), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        _browse(port, owner_a.email, owner_a.password)
        time.sleep(0.3)  # the last line's flush
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    if log_format is None:
        _assert_no_customer_values(text)
        assert re.search(r'"GET /personas HTTP/1.1" 200 \d+ \d+ms', text), text
    else:
        assert "GET /personas HTTP/1.1 /personas - " in text, text
        for value in (SECRET, "zelda", PHONE, "4155550199", "%40example.com", "q=", "session="):
            assert value not in text, f"{value!r} in the access log:\n{text}"


def test_gunicorn_error_log_loses_the_query_of_a_request_it_names():
    from webapp.serving import _ErrorLogFilter

    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, "Error handling request %s",
                               (f"/personas?q={SECRET}",), None)
    _ErrorLogFilter().filter(record)
    assert record.getMessage() == "Error handling request /personas"
