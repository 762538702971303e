"""Sign-in, sign-out, the signed-in user (Flask-Login) and account, and the access decorators."""
import functools
from urllib.parse import urlsplit

import flask_login
from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from peewee import ModelSelect

from webapp import hx, sessions
from webapp.accounts import authenticate, memberships_of
from webapp.models import Membership
from webapp.ratelimit import hashed, limited
from webapp.render import render
from webapp.security import rotate_csrf_token
from webapp.words import counted

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
# No check of the IP address and browser a session began with: a phone changing networks stays signed in.
# What ends a session is server-side (webapp/sessions.py): sign-out, a password change, its lifetime.
login_manager.session_protection = None

OWNER_ONLY = "Only account owners can run imports and reverts."
NO_ACCOUNT = "Your user does not belong to any account yet. Ask an account owner to add you."
WRONG_PASSWORD = "Wrong email or password."


@login_manager.user_loader
def load_signed_in_user(user_id):
    """The user of the session's cookie, when its session is still open (sessions.user_of), else None."""
    # The cookie's signature only says we made it: its session must still be open (not signed out, no
    # password change since, not older than the session lifetime), and the user must still exist.
    user = sessions.user_of(user_id, session.get(sessions.TOKEN_KEY), current_app.permanent_session_lifetime)
    if user is None:
        session.clear()  # and the cookie is expired, in every variant the browser may hold (security.py)
    return user


@login_manager.unauthorized_handler
def send_to_sign_in():
    """Anonymous users go to the login page; HTMX requests get 401 and an HX-Redirect."""
    if request.htmx:
        return hx.redirect(_login_url(), 401)
    return redirect(_login_url())


@bp.before_app_request
def load_account():
    """Set g.account, g.role and g.memberships for the signed-in user (None and [] when signed out)."""
    g.account = g.role = None
    g.memberships = []
    if request.endpoint == "static" or not current_user.is_authenticated:
        return
    g.memberships = memberships_of(current_user)
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
    """Flask-Login's login_required (anonymous users to sign in), and a user of no account gets a 403."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.account is None:
            abort(403, NO_ACCOUNT)
        return view(*args, **kwargs)

    return flask_login.login_required(wrapped)


def owner_required(view):
    """Like login_required, and refuse staff who are not owners of the current account."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user.is_authenticated and g.account is not None and g.role != Membership.OWNER:
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
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")) or url_for("personas.index"))
    return render("auth/login.html", "auth/_login_form.html", next=_safe_next(request.args.get("next")), email="")


def _sign_in_form(status: int, error: str):
    """The sign-in form again, with the email (never the password) kept and the error above it."""
    return render("auth/login.html", "auth/_login_form.html", status=status, error=error,
                  next=_safe_next(request.form.get("next")), email=request.form.get("email", ""))


def _email_key() -> str:
    """The counter of failed sign-ins to the posted email (hashed: the counter's key is no place for it)."""
    return "account:" + hashed(request.form.get("email", "").strip().lower())


def _address_key() -> str:
    """The counter of failed sign-ins from this client address (ProxyFix's, behind a proxy)."""
    return f"address:{get_remote_address()}"


def _wait(seconds: int) -> str:
    """How long to wait, as people say it: "40 seconds", "15 minutes"."""
    return counted(seconds, "second") if seconds < 60 else counted(-(-seconds // 60), "minute")


def _failed(response) -> bool:
    """Only failed sign-ins count: a busy office signing in all day is never refused."""
    return response.status_code == 401


def _too_many_for_account(wait: int):
    """The sign-in limit per email's answer."""
    return _sign_in_form(429, f"There were too many failed sign-ins to this account. Wait {_wait(wait)}, "
                              "then try again.")


def _too_many_from_address(wait: int):
    """The sign-in limit per client address's answer."""
    return _sign_in_form(429, f"There were too many failed sign-ins from your network. Wait {_wait(wait)}, "
                              "then try again.")


@bp.post("/login")
@limited("SIGN_IN_RATE_LIMIT_ACCOUNT", _email_key, _too_many_for_account, counts=_failed)
@limited("SIGN_IN_RATE_LIMIT_ADDRESS", _address_key, _too_many_from_address, counts=_failed)
def login_post():
    """Check the password; on success renew the session and go where the user was going."""
    user = authenticate(request.form.get("email", ""), request.form.get("password", ""))
    if user is None:
        return _sign_in_form(401, WRONG_PASSWORD)
    memberships, embed = memberships_of(user), session.get("embed")
    # A new session at sign-in: nothing set before it (e.g. by an attacker) survives, and the session this
    # browser had before (maybe another user's) ends with every copy of its cookie.
    sessions.end(session.get(sessions.TOKEN_KEY))
    session.clear()
    login_user(user)
    session[sessions.TOKEN_KEY] = sessions.start(user, current_app.permanent_session_lifetime)
    if embed:
        session["embed"] = True
    rotate_csrf_token()
    if memberships:
        session["account_id"] = memberships[0].account_id
    return redirect(_safe_next(request.form.get("next")) or url_for("personas.index"))


@bp.post("/logout")
def logout():
    """End the session server-side (every copy of its cookie), expire the cookie, return to sign-in."""
    sessions.end(session.get(sessions.TOKEN_KEY))
    logout_user()
    session.clear()  # the CSRF token, account and embed mode too: the cookie is expired
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


def init_app(app) -> None:
    """Flask-Login for the signed-in user (current_user, also in every template)."""
    login_manager.init_app(app)
