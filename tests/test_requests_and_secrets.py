"""Hostile requests and kept secrets: CSRF on every unsafe route, cross-site refusal, security headers,
the upload rate limit, and customer data kept out of cookies, logs and URLs."""
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import url_for
from werkzeug.routing import AnyConverter, IntegerConverter, UnicodeConverter

from tests.test_wizard import csv_bytes, import_id_of, run_wizard, upload
from webapp.accounts import create_account, create_user
from webapp.importer import storage
from webapp.models import Audience, Import, Membership, Persona, ProblemRow, StagedChunk, UploadChunk, User
from webapp.ratelimit import parse_rate
from webapp.security import CrossSiteError, CSRFError

HTMX = {"HX-Request": "true"}
EXPIRED = CSRFError.description
CROSS_SITE = CrossSiteError.description
TOO_MANY = "You have uploaded many files in a short time."
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ROOT = Path(__file__).resolve().parent.parent

# A file whose every value is recognizable wherever it might leak.
PEOPLE = [["Email", "Phone", "First Name", "Last Name", "Points"],
          ["zelda.quist@example.com", "(415) 555-0187", "Zelda", "Quistorff", "10"],
          ["yorick.mabb@example.com", "4155550188", "Yorick", "Mabberley", "5"]]
SECRETS = ["zelda.quist@example.com", "yorick.mabb@example.com", "555-0187", "5550187", "4155550188",
           "Zelda", "Quistorff", "Yorick", "Mabberley"]


def signed_in(app, user, login):
    """A new client signed in as user."""
    client = app.test_client()
    assert login(client, user.email, user.password).status_code == 302
    return client


def owner_of(account_name: str, email: str):
    """A new account and its owner (password in .password), for tests that build their own app."""
    user = create_user(email, "pw-" + email, create_account(account_name), Membership.OWNER)
    user.password = "pw-" + email
    return user


# ---------------------------------------------------------------- 1. CSRF on every unsafe route

def sample_args(rule, ids: dict) -> dict:
    """Values for a rule's URL arguments: real ids where the test has them; fail on an unknown converter."""
    args = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            args[name] = ids.get(name, 1)
        elif isinstance(converter, AnyConverter):
            args[name] = sorted(converter.items)[0]
        elif isinstance(converter, UnicodeConverter):
            args[name] = ids.get(name, "x")
        else:
            pytest.fail(f"{rule.rule}: give this test a sample value for {type(converter).__name__} <{name}>")
    return args


def unsafe_urls(app, ids: dict) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) of every rule that accepts an unsafe method."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods & UNSAFE_METHODS):
                found.append((method, url_for(rule.endpoint, **sample_args(rule, ids)), rule.endpoint))
    return found


def test_every_unsafe_route_needs_the_csrf_token(app, owner_a, csrf, login):
    draft = import_id_of(upload(signed_in(app, owner_a, login), csrf, csv_bytes(PEOPLE)))
    routes = unsafe_urls(app, {"import_id": draft})
    assert {"auth.login_post", "auth.logout", "auth.switch_account", "wizard.upload_post", "wizard.mapping_post",
            "wizard.review_post", "wizard.remove_post", "imports.delete_file", "imports.revert_post"} \
        <= {endpoint for _, _, endpoint in routes}
    for method, url, _ in routes:
        client = signed_in(app, owner_a, login)
        form = client.open(url, method=method, data={"email": owner_a.email})
        assert form.status_code == 400 and EXPIRED in form.get_data(as_text=True), (method, url)
        assert "<html" in form.get_data(as_text=True)
        partial = client.open(url, method=method, headers=HTMX)
        assert partial.status_code == 400 and EXPIRED in partial.get_data(as_text=True), (method, url)
        assert "<html" not in partial.get_data(as_text=True)
        with client.session_transaction() as session:
            assert session["_user_id"] == owner_a.id, (method, url)  # nothing was done, not even sign-out
        accepted = client.open(url, method=method, headers={"X-CSRFToken": csrf(client)})
        assert accepted.status_code != 400 and EXPIRED not in accepted.get_data(as_text=True), (method, url)


# ---------------------------------------------------------------- 2. cross-site requests

OWN = "http://localhost"
REFUSED_HEADERS = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": OWN},  # the browser's word wins over a header it let through
    {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://localhost"},  # another scheme is another origin
    {"Origin": "http://localhost:8080"},  # and another port
    {"Origin": "https://dash.example.com"},  # an allowed frame ancestor: it embeds us, it never posts to us
]
ACCEPTED_HEADERS = [
    {},  # not a browser page (curl, a script): the CSRF token alone guards it
    {"Sec-Fetch-Site": "same-origin", "Origin": OWN},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # the user's own action
    {"Origin": OWN},
    {"Origin": "http://LOCALHOST:80"},
    {"Sec-Fetch-Site": "same-site", "Origin": OWN},  # the Origin names us
]


def header_ids(headers: dict) -> str:
    return " ".join(f"{name}={value}" for name, value in headers.items()) or "no headers"


@pytest.fixture
def embedding_app(app_factory):
    """The app embedded by one dashboard (its frame-ancestors allow-list), on plain http for the test client."""
    return app_factory(FRAME_ANCESTORS=["'self'", "https://dash.example.com"])


def _post_login(app, headers, csrf):
    """A fresh client posting the sign-in form of an owner with these request headers: client, owner, response."""
    owner = owner_of("Alpha", "owner-a@example.com")
    client = app.test_client()
    response = client.post("/login", data={"email": owner.email, "password": owner.password,
                                           "csrf_token": csrf(client)}, headers=headers)
    return client, owner, response


@pytest.mark.parametrize("headers", REFUSED_HEADERS, ids=header_ids)
def test_login_form_from_another_site_is_refused(embedding_app, headers, csrf):
    client, _, response = _post_login(embedding_app, headers, csrf)
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and CROSS_SITE in page and "<html" in page
    with client.session_transaction() as session:
        assert "_user_id" not in session


@pytest.mark.parametrize("headers", ACCEPTED_HEADERS, ids=header_ids)
def test_login_form_from_our_own_pages_is_accepted(embedding_app, headers, csrf):
    client, owner, response = _post_login(embedding_app, headers, csrf)
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert session["_user_id"] == owner.id


def test_a_signed_in_users_cross_site_post_changes_nothing(owner_client, owner_a, csrf):
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example", **HTMX}):
        response = owner_client.post("/logout", data={"csrf_token": csrf(owner_client)}, headers=headers)
        assert response.status_code == 403 and CROSS_SITE in response.get_data(as_text=True)
        with owner_client.session_transaction() as session:
            assert session["_user_id"] == owner_a.id
    assert owner_client.get("/imports/new", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # links work


def test_behind_a_proxy_the_public_origin_is_ours(app_factory, csrf):
    app = app_factory(PROXY_HOPS=1)
    owner = owner_of("Alpha", "owner-a@example.com")
    public = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "personas.example.com"}
    client = app.test_client()
    form = {"email": owner.email, "password": owner.password, "csrf_token": csrf(client)}
    refused = client.post("/login", data=form, headers={**public, "Origin": "http://localhost"})
    assert refused.status_code == 403
    accepted = client.post("/login", data=form, headers={**public, "Origin": "https://personas.example.com"})
    assert accepted.status_code == 302


# ---------------------------------------------------------------- 3. security headers, htmx config, templates

def directives(csp: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in csp.split(";") if part.strip())}


@pytest.mark.sqlite_only
def test_security_headers_on_pages_errors_and_static_files(app_factory, csrf):
    app = app_factory(FRAME_ANCESTORS=["'self'", "https://dash.example.com"], MAX_UPLOAD_MB=1,
                      PROPAGATE_EXCEPTIONS=False)

    @app.get("/_test/boom")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    responses = {
        "page": client.get("/login"),
        "404": client.get("/nowhere"),
        "400": client.post("/login", data={"email": "x"}),
        "403": client.post("/login", headers={"Sec-Fetch-Site": "cross-site"}),
        "413": client.post("/login", data={"csrf_token": csrf(client), "file": "x" * (2 * 1024 * 1024)}),
        "500": client.get("/_test/boom"),
        "css": client.get("/static/css/app.css"),
        "htmx": client.get("/static/vendor/htmx.min.js"),
        "js": client.get("/static/js/upload.js"),
    }
    assert {name: r.status_code for name, r in responses.items()} == {
        "page": 200, "404": 404, "400": 400, "403": 403, "413": 413, "500": 500, "css": 200, "htmx": 200, "js": 200}
    for name, response in responses.items():
        csp = response.headers["Content-Security-Policy"]
        policy = directives(csp)
        assert policy["script-src"] == ["'self'"], name
        assert "'unsafe-eval'" not in csp and "'unsafe-inline'" not in csp, name
        assert policy["frame-ancestors"] == ["'self'", "https://dash.example.com"], name
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"], name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "same-origin", name


HTMX_CONFIG = {"selfRequestsOnly": True, "allowEval": False, "allowScriptTags": False, "includeIndicatorStyles": False}


def htmx_config(page: str) -> dict:
    """The htmx configuration a page's <meta name="htmx-config"> gives (fails when there is none)."""
    metas = re.findall(r"""<meta name="htmx-config" content='([^']*)'>""", page)
    assert len(metas) == 1, "a full page has exactly one htmx-config meta tag"
    return json.loads(metas[0])


def test_every_full_page_configures_htmx_safely(owner_client, csrf, app):
    done = run_wizard(owner_client, csrf, csv_bytes(PEOPLE))
    ids = {"import_id": done.id, "persona_id": Persona.select().first().id,
           "audience_id": Audience.get(Audience.source_import == done.id).id, "slug": "previous-provider"}
    with app.test_request_context():
        urls = [url_for(rule.endpoint, **sample_args(rule, ids)) for rule in app.url_map.iter_rules()
                if "GET" in rule.methods and rule.endpoint != "static"]
    urls += ["/nowhere", "/personas?embed=1", "/imports?embed=0"]
    full_pages = 0
    for url in urls:
        response = owner_client.get(url, follow_redirects=True)
        page = response.get_data(as_text=True)
        if "<html" in page:
            full_pages += 1
            assert htmx_config(page).items() >= HTMX_CONFIG.items(), url
    assert full_pages >= 12
    login_page = app.test_client().get("/login").get_data(as_text=True)
    assert htmx_config(login_page).items() >= HTMX_CONFIG.items()


def test_htmx_config_keys_are_those_of_the_installed_htmx():
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"]["htmx.org"].startswith("2.")
    source = (ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.js")
    if not source.exists():
        pytest.skip("node_modules/htmx.org is not installed (make vendor)")
    defaults = source.read_text()
    for key in HTMX_CONFIG:
        assert re.search(rf"^\s+{key}: ", defaults, re.M), f"htmx {package['dependencies']['htmx.org']} has no {key}"


def test_templates_have_no_inline_script_handlers_or_styles():
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert len(templates) > 20
    for path in templates:
        text = re.sub(r"{#.*?#}", "", path.read_text(), flags=re.S)  # comments never reach the browser
        name = path.relative_to(ROOT)
        for tag in re.findall(r"<script\b[^>]*>.*?</script>", text, re.S | re.I):
            assert re.match(r"<script\b[^>]*\bsrc=[^>]*>\s*</script>$", tag, re.I), f"{name}: inline script {tag}"
        assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", text, re.I), f"{name}: an on*= handler attribute"
        assert "hx-on" not in text, f"{name}: hx-on runs code from an attribute"
        assert not re.search(r"\bstyle=|<style", text, re.I), f"{name}: inline style (CSP style-src 'self')"
        assert "javascript:" not in text.lower(), f"{name}: a javascript: URL"
        assert not re.search(r"hx-vals=[\"']\s*js:|hx-vars", text), f"{name}: evaluated hx values"


# ---------------------------------------------------------------- 4. upload rate limit

def test_uploads_beyond_the_limit_get_429_with_retry_after(app_factory, csrf, login):
    app = app_factory(UPLOAD_RATE_LIMIT="2/minute")
    owner_a = owner_of("Alpha", "owner-a@example.com")
    client = signed_in(app, owner_a, login)
    for n in range(2):
        assert upload(client, csrf, csv_bytes(PEOPLE), f"file-{n}.csv").status_code == 303
    refused = upload(client, csrf, csv_bytes(PEOPLE), "third.csv")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert TOO_MANY in page and f"Wait {refused.headers['Retry-After']} second" in page
    assert "<html" in page and 'data-step="upload"' in page
    partial = upload(client, csrf, csv_bytes(PEOPLE), "fourth.csv", headers=HTMX)
    assert partial.status_code == 429 and "Retry-After" in partial.headers
    assert TOO_MANY in partial.get_data(as_text=True) and "<html" not in partial.get_data(as_text=True)
    assert 'data-step="upload"' in partial.get_data(as_text=True)
    assert Import.select().count() == 2  # refused uploads store nothing
    assert client.get("/imports/new").status_code == 200  # only uploads are limited

    other = signed_in(app, owner_of("Beta", "owner-b@example.com"), login)
    assert upload(other, csrf, csv_bytes(PEOPLE)).status_code == 303


REDIS_URL = os.environ.get("REDIS_URL")


def _test_redis() -> str:
    """The server of REDIS_URL, database 12: this file's counters stay out of other tests' way."""
    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/12", "", ""))


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real Redis)")
def test_with_redis_every_process_shares_the_counters(app_factory, csrf, login):
    from redis import Redis

    redis = Redis.from_url(_test_redis())
    for key in redis.scan_iter("personas:ratelimit:*"):
        redis.delete(key)
    first = app_factory(UPLOAD_RATE_LIMIT="2/minute", REDIS_URL=_test_redis())
    owner_a = owner_of("Alpha", "owner-a@example.com")
    second = app_factory(UPLOAD_RATE_LIMIT="2/minute", REDIS_URL=_test_redis())  # another gunicorn worker
    assert upload(signed_in(first, owner_a, login), csrf, csv_bytes(PEOPLE)).status_code == 303
    assert upload(signed_in(second, owner_a, login), csrf, csv_bytes(PEOPLE)).status_code == 303
    refused = upload(signed_in(first, owner_a, login), csrf, csv_bytes(PEOPLE))
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert redis.ttl(f"personas:ratelimit:LIMITER/user:{owner_a.id}/wizard.upload_post/2/1/minute") > 0


def test_an_unreachable_redis_never_blocks_uploads(app_factory, csrf, login):
    app = app_factory(UPLOAD_RATE_LIMIT="1/minute", REDIS_URL="redis://127.0.0.1:1/12")
    client = signed_in(app, owner_of("Alpha", "owner-a@example.com"), login)
    for _ in range(2):
        assert upload(client, csrf, csv_bytes(PEOPLE)).status_code == 303


@pytest.mark.sqlite_only
def test_rate_setting_is_checked_at_start_up(app_factory):
    assert parse_rate("10/minute") == (10, 60) and parse_rate("3 / Hours") == (3, 3600)
    for wrong in ("10", "ten/minute", "0/minute", "10/fortnight"):
        with pytest.raises(ValueError):
            parse_rate(wrong)
    with pytest.raises(ValueError):
        app_factory(UPLOAD_RATE_LIMIT="lots")


# ---------------------------------------------------------------- 5. secrets and customer data

def test_passwords_are_stored_with_a_slow_salted_hash(app, account_a, monkeypatch):
    monkeypatch.undo()  # the product's own hashing, not the suite's cheap stand-in
    create_user("slow@example.com", "correct horse battery", account_a)
    create_user("same@example.com", "correct horse battery", account_a)
    stored = [u.password_hash for u in User.select().where(User.email.in_(["slow@example.com", "same@example.com"]))]
    assert stored[0] != stored[1]  # salted
    for value in stored:
        assert "correct horse" not in value
        method = value.split("$", 1)[0].split(":")
        if method[0] == "scrypt":
            assert int(method[1]) >= 2 ** 15
        else:
            assert method[:2] == ["pbkdf2", "sha256"] and int(method[2]) >= 600_000


def session_of(app, client) -> dict:
    """The client's Flask session, decoded from its signed cookie."""
    cookie = client.get_cookie("session")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_the_session_cookie_holds_only_ids(app, owner_client, csrf):
    response = upload(owner_client, csrf, csv_bytes(PEOPLE), headers=HTMX)
    assert response.status_code == 200
    run_wizard(owner_client, csrf, csv_bytes(PEOPLE))
    owner_client.get(f"/imports/{Import.select().order_by(Import.id.desc()).first().id}/progress")
    session = session_of(app, owner_client)
    # _user_id: Flask-Login's user id, _fresh and _id its flags; sid: a random token
    assert set(session) <= {"_user_id", "_fresh", "_id", "sid", "account_id", "csrf_token", "embed", "_flashes"}
    dumped = json.dumps(session)
    for secret in SECRETS:
        assert secret not in dumped


def test_no_customer_data_in_the_logs(owner_client, csrf, caplog):
    caplog.set_level(logging.DEBUG)
    done = run_wizard(owner_client, csrf, csv_bytes(PEOPLE))
    assert done.status == "completed" and done.counts["created"] == 2
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    for secret in SECRETS:
        assert secret not in logged


def test_uploaded_files_are_never_served(app, owner_client, csrf):
    data = csv_bytes(PEOPLE)
    done = run_wizard(owner_client, csrf, data, "customers-secret.csv")
    assert b"".join(bytes(c.data) for c in UploadChunk.select().where(UploadChunk.upload == done.id)) == data
    guesses = ["/static/customers-secret.csv", "/static/uploads/customers-secret.csv", "/uploads/customers-secret.csv",
               f"/uploads/{done.sha256}", f"/static/{done.sha256}", f"/imports/{done.id}/file",
               f"/imports/{done.id}/download", f"/imports/{done.id}/customers-secret.csv",
               "/static/../instance/personas.db", "/static/%2e%2e/instance/secret_key", "/instance/secret_key",
               "/static/../test.db", "/customers-secret.csv"]
    for url in guesses:
        response = owner_client.get(url)
        assert response.status_code == 404, url
        assert b"zelda" not in response.data, url
    # The bytes live in the database; nothing the app writes is under static/.
    static = Path(app.static_folder).resolve()
    for place in (Path(app.instance_path), Path(app.config["INSTANCE_PATH"]), Path(tempfile.gettempdir())):
        assert static not in place.resolve().parents and place.resolve() != static
    assert not any(b"zelda.quist" in path.read_bytes() for path in static.rglob("*") if path.is_file())


def test_deleting_an_imports_file_removes_its_bytes(owner_client, csrf):
    done = run_wizard(owner_client, csrf, csv_bytes([*PEOPLE, ["", "", "No", "Contact", "1"]]))
    assert UploadChunk.select().where(UploadChunk.upload == done.id).count() > 0
    response = owner_client.post(f"/imports/{done.id}/delete-file", data={"csrf_token": csrf(owner_client)})
    assert response.status_code == 303
    assert UploadChunk.select().where(UploadChunk.upload == done.id).count() == 0
    with storage.opened_file(Import.get_by_id(done.id)) as local:
        assert local.read() == b""
    # Only the rejected row's cells stay: the problem report is how the user fixes it.
    assert StagedChunk.select().where(StagedChunk.upload == done.id).count() == 0
    assert [row.line for row in ProblemRow.select().where(ProblemRow.upload == done.id)] == [4]
    assert Import.get_by_id(done.id).file_deleted
