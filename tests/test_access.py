"""Who may use which route: every rule of the app's URL map is classified here, and each class is checked.

SPEC section 9: staff sign in; owners run imports and reverts, other staff view them; another
account's ids answer 404. Anonymous users are sent to sign in; only the routes marked public are not.
"""
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for

from webapp.accounts import create_user
from webapp.models import Audience, AudienceMember, Import, Membership, Persona, UploadChunk
from webapp.security import FORM_FIELD
from webapp.views.auth import OWNER_ONLY

HTMX = {"HX-Request": "true"}
PUBLIC, MEMBER, OWNER = "public", "member", "owner"
EXPIRED = "This form has expired"

# endpoint: (who may use it, how its request names an account's object: "path import_id", "query audience"…).
# A route missing here fails test_every_route_is_classified: classify it before it ships.
ROUTES = {
    "static": (PUBLIC, ()),
    "auth.home": (PUBLIC, ()),  # only redirects to the personas list, which asks to sign in
    "auth.login_get": (PUBLIC, ()),
    "auth.login_post": (PUBLIC, ()),
    "auth.logout": (PUBLIC, ()),  # signing out needs no sign-in
    "auth.switch_account": (MEMBER, ("form account_id",)),
    "personas.index": (MEMBER, ("query audience", "query import")),
    "personas.detail": (MEMBER, ("path persona_id",)),
    "personas.export": (MEMBER, ("query audience", "query import")),
    "audiences.index": (MEMBER, ()),
    "audiences.detail": (MEMBER, ("path audience_id",)),
    "audiences.export": (MEMBER, ("path audience_id",)),
    "imports.history": (MEMBER, ()),
    "imports.detail": (MEMBER, ("path import_id",)),
    "imports.progress": (MEMBER, ("path import_id",)),
    "imports.report": (MEMBER, ("path import_id",)),
    "imports.revert_result": (MEMBER, ("path import_id",)),
    "imports.revert_get": (OWNER, ("path import_id",)),
    "imports.revert_post": (OWNER, ("path import_id",)),
    "imports.delete_file": (OWNER, ("path import_id",)),
    "imports.resume": (OWNER, ("path import_id",)),
    "wizard.template_download": (MEMBER, ()),
    "wizard.upload_get": (OWNER, ()),
    "wizard.upload_post": (OWNER, ()),
    "wizard.uploaded_get": (OWNER, ("path import_id",)),
    "wizard.uploaded_facts_get": (OWNER, ("path import_id",)),
    "wizard.sheet_post": (OWNER, ("path import_id",)),
    "wizard.header_post": (OWNER, ("path import_id",)),
    "wizard.remove_post": (OWNER, ("path import_id",)),
    "wizard.discard_post": (OWNER, ("path import_id",)),
    "wizard.mapping_get": (OWNER, ("path import_id",)),
    "wizard.mapping_post": (OWNER, ("path import_id",)),
    "wizard.mapping_check_post": (OWNER, ("path import_id",)),
    "wizard.review_get": (OWNER, ("path import_id",)),
    "wizard.review_counts_get": (OWNER, ("path import_id",)),
    "wizard.review_post": (OWNER, ("path import_id",)),
}
# Path arguments that name no account's object.
FIXED_ARGS = {"slug": "points", "ext": "csv", "filename": "css/app.css"}

SIGNED_IN = sorted(endpoint for endpoint, (access, _) in ROUTES.items() if access != PUBLIC)
ID_WAYS = [(endpoint, way) for endpoint, (_, ways) in ROUTES.items() for way in ways]


def kind_of(way: str) -> str:
    """The object a way of naming one refers to: "path import_id" -> "import"."""
    return way.split()[1].removesuffix("_id")


def form_for(endpoint: str, ids: dict) -> dict:
    """A form that would change something if the request were allowed."""
    return {
        "auth.login_post": {"email": "owner-a@example.com", "password": "not the password"},
        "auth.switch_account": {"account_id": ids.get("account")},
        "wizard.upload_post": {"file": (io.BytesIO(b"Email\nnew@example.com\n"), "new.csv")},
        "wizard.sheet_post": {"sheet": "Sheet1"},
        "wizard.header_post": {"header_line": "1"},
        "wizard.mapping_post": {"target-0": "email"},
        "wizard.mapping_check_post": {"target-0": "email", "reset": "0"},
        "wizard.discard_post": {"back": "history"},
        "wizard.review_post": {"accept_terms": "1", "opt_in_sms": "1"},
    }.get(endpoint, {})


def send(app, client, endpoint: str, ids: dict, way: str | None = None, headers=None, token: str | None = None):
    """Request endpoint about the objects in ids (way: which one it names in its query); POST with a form."""
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    args = {name: ids[name.removesuffix("_id")] if name.endswith("_id") else FIXED_ARGS[name]
            for name in rule.arguments}
    with app.test_request_context():
        url = url_for(endpoint, **args)
    query = {way.split()[1]: ids[kind_of(way)]} if way and way.startswith("query ") else {}
    if "POST" in rule.methods:
        data = {**form_for(endpoint, ids), **({FORM_FIELD: token} if token else {})}
        return client.post(url, data=data, headers=headers or {})
    return client.get(url, query_string=query, headers=headers or {})


def make_objects(account, user) -> dict:
    """An import with its stored file, a persona and the import's audience, in account: their ids."""
    upload = Import.create(account=account, user=user, file_name=f"{account.name.lower()}-secret.csv")
    UploadChunk.create(upload=upload, seq=0, data=b"Email\nsomeone@example.com\n")
    persona = Persona.create(account=account, email=f"secret@{account.name.lower()}.example", first_name="Secret")
    audience = Audience.create(account=account, name=f"{account.name} secret audience", source_import=upload.id)
    AudienceMember.create(audience=audience, persona=persona)
    return {"import": upload.id, "persona": persona.id, "audience": audience.id, "account": account.id}


def state_of(account) -> list:
    """Everything the routes could change in account, to compare before and after a refused request."""
    return [list(model.select().where(model.account == account).order_by(model.id).dicts())
            for model in (Import, Persona, Audience)] + [
        list(UploadChunk.select(UploadChunk.id).join(Import).where(Import.account == account).tuples()),
        list(AudienceMember.select().join(Audience).where(Audience.account == account).dicts())]


@pytest.fixture
def objects_a(account_a, owner_a):
    return make_objects(account_a, owner_a)


@pytest.fixture
def objects_b(account_b, owner_b):
    return make_objects(account_b, owner_b)


@pytest.mark.sqlite_only  # the URL map is the same on every database
def test_every_route_is_classified(app):
    rules = {}
    for rule in app.url_map.iter_rules():
        assert rule.endpoint not in rules, f"{rule.endpoint} has two rules: classify each"
        rules[rule.endpoint] = rule
    assert set(rules) - set(ROUTES) == set(), "a new route: say in ROUTES who may use it"
    assert set(ROUTES) - set(rules) == set(), "a route is gone: remove it from ROUTES"
    for endpoint, rule in rules.items():
        path_ids = {f"path {name}" for name in rule.arguments if name.endswith("_id")}
        listed = {way for way in ROUTES[endpoint][1] if way.startswith("path ")}
        assert path_ids == listed, endpoint
        assert rule.arguments - {name for name in rule.arguments if name.endswith("_id")} <= set(FIXED_ARGS), endpoint


# ---------------------------------------------------------------- anonymous

@pytest.mark.parametrize("endpoint", SIGNED_IN)
def test_anonymous_users_are_sent_to_sign_in(app, client, csrf, endpoint, objects_a, account_a):
    before = state_of(account_a)
    token = csrf(client)
    response = send(app, client, endpoint, objects_a, token=token)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    path = urlsplit(response.request.url).path
    assert location.path == "/login" and parse_qs(location.query)["next"] == [path]

    # HTMX cannot follow a redirect to a whole page: 401, and htmx sends the browser to sign in.
    response = send(app, client, endpoint, objects_a, headers=HTMX, token=token)
    assert response.status_code == 401 and urlsplit(response.headers["HX-Redirect"]).path == "/login"
    assert "secret" not in response.get_data(as_text=True)
    assert state_of(account_a) == before


PUBLIC_ANSWERS = {
    "static": (200, None),
    "auth.home": (302, "/personas"),
    "auth.login_get": (200, None),
    "auth.login_post": (401, None),  # the wrong password of form_for: the form again, with the error
    "auth.logout": (302, "/login"),
}


@pytest.mark.parametrize("endpoint", sorted(PUBLIC_ANSWERS))
def test_public_routes_answer_anonymous_users(app, client, csrf, endpoint):
    assert ROUTES[endpoint][0] == PUBLIC
    response = send(app, client, endpoint, {}, token=csrf(client))
    status, location = PUBLIC_ANSWERS[endpoint]
    assert response.status_code == status
    if location:
        assert urlsplit(response.headers["Location"]).path == location
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_every_public_route_has_its_answer():
    assert set(PUBLIC_ANSWERS) == {endpoint for endpoint, (access, _) in ROUTES.items() if access == PUBLIC}


# ---------------------------------------------------------------- another account's objects

@pytest.mark.parametrize("endpoint, way", ID_WAYS)
def test_another_accounts_object_is_not_found(app, owner_client, owner_b, login, csrf, endpoint, way,
                                              objects_a, objects_b, account_a, account_b):
    before = state_of(account_b)
    for headers in ({}, HTMX):
        response = send(app, owner_client, endpoint, objects_b, way, headers=headers, token=csrf(owner_client))
        page = response.get_data(as_text=True)
        assert response.status_code == 404, (headers, page[:300])
        assert "beta" not in page.lower()  # no name, email or file of the other account leaks
    assert state_of(account_b) == before
    with owner_client.session_transaction() as session:
        assert session["account_id"] == account_a.id

    # The same request by the other account's owner reaches the object: ownership, not a bad id, said 404.
    other = app.test_client()
    login(other, owner_b.email, owner_b.password)
    assert send(app, other, endpoint, objects_b, way, token=csrf(other)).status_code not in (401, 403, 404)


# ---------------------------------------------------------------- staff and owners

@pytest.mark.parametrize("endpoint", SIGNED_IN)
def test_staff_are_refused_owner_only_routes_and_may_use_the_others(app, staff_client, owner_client, csrf, endpoint,
                                                                    objects_a, account_a):
    before = state_of(account_a)
    response = send(app, staff_client, endpoint, objects_a, token=csrf(staff_client))
    if ROUTES[endpoint][0] == OWNER:
        assert response.status_code == 403 and OWNER_ONLY in response.get_data(as_text=True)
        partial = send(app, staff_client, endpoint, objects_a, headers=HTMX, token=csrf(staff_client))
        assert partial.status_code == 403 and "<html" not in partial.get_data(as_text=True)
        assert partial.headers["HX-Retarget"] == "#messages"
        assert state_of(account_a) == before
        owner = send(app, owner_client, endpoint, objects_a, token=csrf(owner_client))
        assert owner.status_code not in (401, 403, 404)  # the role, nothing else, refused the staff member
    else:
        assert response.status_code not in (401, 403, 404)
        assert urlsplit(response.headers.get("Location", "")).path != "/login"


# ---------------------------------------------------------------- session renewal

def test_sign_in_renews_the_session_and_its_csrf_token(app, client, owner_a, login, csrf):
    client.get("/login")
    cookie_before, token_before = client.get_cookie("session").value, csrf(client)
    assert login(client, owner_a.email, owner_a.password).status_code == 302
    assert client.get_cookie("session").value != cookie_before
    assert csrf(client) != token_before

    # A copy of the cookie from before sign-in (a fixated session) is still nobody.
    fixated = app.test_client()
    fixated.set_cookie("session", cookie_before)
    assert urlsplit(fixated.get("/personas").headers["Location"]).path == "/login"

    # A token seen before sign-in is worthless after it: the post is refused and changes nothing.
    response = client.post("/logout", data={FORM_FIELD: token_before})
    assert response.status_code == 400 and EXPIRED in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert session["_user_id"] == owner_a.id


def test_account_switch_renews_the_csrf_token(owner_client, owner_a, account_a, account_b, csrf):
    create_user(owner_a.email, "", account_b, Membership.OWNER)
    cookie_before, token_before = owner_client.get_cookie("session").value, csrf(owner_client)
    response = owner_client.post("/accounts/switch", data={"account_id": account_b.id, FORM_FIELD: token_before})
    assert response.status_code == 302
    assert owner_client.get_cookie("session").value != cookie_before
    assert csrf(owner_client) != token_before

    # A form still open in another tab was made for Alpha: posting it now would act in Beta. Refused.
    stale = owner_client.post("/imports/new", data={"file": (io.BytesIO(b"Email\na@example.com\n"), "a.csv"),
                                                    FORM_FIELD: token_before})
    assert stale.status_code == 400 and EXPIRED in stale.get_data(as_text=True)
    assert Import.select().count() == 0
    fresh = owner_client.post("/imports/new", data={"file": (io.BytesIO(b"Email\na@example.com\n"), "a.csv"),
                                                    FORM_FIELD: csrf(owner_client)})
    assert fresh.status_code == 303 and Import.get().account_id == account_b.id
