"""Sign-in, sign-out, the current user and account, and the access decorators."""
import functools
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from peewee import ModelSelect

from webapp import sessions
from webapp.accounts import authenticate, memberships_of
from webapp.models import Membership
from webapp.render import render
from webapp.security import rotate_csrf_token

bp = Blueprint("auth", __name__)

OWNER_ONLY = "Only account owners can run imports and reverts."
NO_ACCOUNT = "Your user does not belong to any account yet. Ask an account owner to add you."


@bp.before_app_request
def load_user():
    """Set g.user, g.account, g.role and g.memberships from the session (None when signed out)."""
    g.user = g.account = g.role = None
    g.memberships = []
    if request.endpoint == "static" or "user_id" not in session:
        return
    # The cookie's signature only says we made it: its session must still be open (not signed out, no
    # password change since, not older than the session lifetime), and the user must still exist.
    g.user = sessions.user_of(session["user_id"], session.get(sessions.TOKEN_KEY),
                              current_app.permanent_session_lifetime)
    if g.user is None:
        session.clear()  # and the cookie is expired, in every variant the browser may hold (security.py)
        return
    g.memberships = memberships_of(g.user)
    # Membership is re-checked on every request: a user removed from an account falls back to another.
    current = next((m for m in g.memberships if m.account_id == session.get("account_id")), None)
    current = current or (g.memberships[0] if g.memberships else None)
    if current:
        g.account, g.role = current.account, current.role
        if session.get("account_id") != current.account_id:
            session["account_id"] = current.account_id


@bp.before_app_request
def remember_embed_mode():
    """?embed=1 keeps this session in the embedded layout until ?embed=0."""
    if request.args.get("embed") == "1":
        session["embed"] = True
    elif request.args.get("embed") == "0":
        session.pop("embed", None)


def is_embedded() -> bool:
    """True inside an iframe (the browser says so in Sec-Fetch-Dest) or after ?embed=1."""
    return request.headers.get("Sec-Fetch-Dest") == "iframe" or bool(session.get("embed"))


@bp.app_context_processor
def layout_context():
    """`layout` for `{% extends layout %}`: the page without app navigation when embedded."""
    return {"layout": "embed.html" if is_embedded() else "base.html"}


def _safe_next(target: str | None) -> str | None:
    """target when it is a path on this site (never another host: no open redirect), else None."""
    # Browsers drop tabs and newlines and read "\\" as "/": "/\t/evil.example" would leave the site.
    if not target or not target.startswith("/") or "\\" in target or any(ord(c) < 33 for c in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _login_url():
    """The login page, with next= the page the user was on (for HTMX: the page, not the partial)."""
    here = request.full_path if request.query_string else request.path
    if request.htmx and request.htmx.current_url:
        current = urlsplit(request.htmx.current_url)
        here = current.path + (f"?{current.query}" if current.query else "")
    return url_for("auth.login_get", next=_safe_next(here))


def login_required(view):
    """Send anonymous users to the login page; HTMX requests get 401 and an HX-Redirect."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            if request.htmx:
                return "", 401, {"HX-Redirect": _login_url()}
            return redirect(_login_url())
        if g.account is None:
            abort(403, NO_ACCOUNT)
        return view(*args, **kwargs)

    return wrapped


def owner_required(view):
    """Like login_required, and refuse staff who are not owners of the current account."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is not None and g.account is not None and g.role != Membership.OWNER:
            abort(403, OWNER_ONLY)
        return view(*args, **kwargs)

    return login_required(wrapped)


def get_owned(model_or_query, id):
    """The row with this id in the current account, or None (also for other accounts' ids)."""
    query = model_or_query if isinstance(model_or_query, ModelSelect) else model_or_query.select()
    model = query.model
    try:
        id = int(id)
    except (TypeError, ValueError):
        return None
    if not 0 < id < 2 ** 63:  # beyond any id the databases can hold: asking would only raise
        return None
    return query.where(model.id == id, model.account == g.account).first()


def get_owned_or_404(model_or_query, id):
    """The row with this id in the current account; 404 for missing ids and other accounts' ids."""
    row = get_owned(model_or_query, id)
    if row is None:
        abort(404)
    return row


@bp.get("/")
def home():
    """The app starts at the personas list."""
    return redirect(url_for("personas.index"))


@bp.get("/login")
def login_get():
    """The sign-in form."""
    if g.user is not None:
        return redirect(_safe_next(request.args.get("next")) or url_for("personas.index"))
    return render("auth/login.html", "auth/_login_form.html", next=_safe_next(request.args.get("next")), email="")


@bp.post("/login")
def login_post():
    """Check the password; on success renew the session and go where the user was going."""
    email, next_url = request.form.get("email", ""), _safe_next(request.form.get("next"))
    user = authenticate(email, request.form.get("password", ""))
    if user is None:
        return render("auth/login.html", "auth/_login_form.html", status=401, next=next_url, email=email,
                      error="Wrong email or password.")
    memberships, embed = memberships_of(user), session.get("embed")
    # A new session at sign-in: nothing set before it (e.g. by an attacker) survives, and the session this
    # browser had before (maybe another user's) ends with every copy of its cookie.
    sessions.end(session.get(sessions.TOKEN_KEY))
    session.clear()
    session["user_id"] = user.id
    session[sessions.TOKEN_KEY] = sessions.start(user, current_app.permanent_session_lifetime)
    if embed:
        session["embed"] = True
    rotate_csrf_token()
    if memberships:
        session["account_id"] = memberships[0].account_id
    return redirect(next_url or url_for("personas.index"))


@bp.post("/logout")
def logout():
    """End the session server-side (every copy of its cookie), expire the cookie, return to sign-in."""
    sessions.end(session.get(sessions.TOKEN_KEY))
    session.clear()
    return redirect(url_for("auth.login_get"))


@bp.post("/accounts/switch")
@login_required
def switch_account():
    """Make another of the user's accounts the current one, with a new CSRF token; any other id is 404."""
    account_id = request.form.get("account_id", type=int)
    membership = next((m for m in g.memberships if m.account_id == account_id), None)
    if membership is None:
        abort(404)
    session["account_id"] = membership.account_id
    # A form still open in another tab was made for the old account (and maybe another role):
    # a new token makes it expire instead of acting in this account.
    rotate_csrf_token()
    # The page the user was on may show the old account's rows: start again from the list.
    return redirect(url_for("personas.index"))
