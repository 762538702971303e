"""CSRF protection, cross-site request refusal, security headers and session cookie flags.

Unsafe requests must come from our own origin. FRAME_ANCESTORS does not widen that: a form posted
inside our iframe comes from our own document (the browser sends our origin and
Sec-Fetch-Site: same-origin), and the dashboard around the iframe never posts to us. Trusting
its origin would only let that dashboard forge requests with the user's cookie.

The CSRF token is Flask-WTF's (CSRFProtect): the session holds a random token, pages carry it signed,
in forms (FORM_FIELD) and in the X-CSRFToken header every HTMX request sends (hx-headers on <body>).
"""
from urllib.parse import urlsplit

from flask import current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError as TokenRefused
from flask_wtf.csrf import CSRFProtect, generate_csrf
from itsdangerous import BadSignature
from werkzeug.exceptions import BadRequest, Forbidden

SESSION_KEY = FORM_FIELD = "csrf_token"  # Flask-WTF keeps the session's token under the form field's name
HEADER = "X-CSRFToken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DEFAULT_PORTS = {"http": 80, "https": 443}

csrf = CSRFProtect()


class CSRFError(BadRequest):
    """A state-changing request without the session's CSRF token."""

    description = "This form has expired. Reload the page and try again."


class CrossSiteError(Forbidden):
    """A state-changing request sent by another site's page."""

    description = ("This request came from another website, so it was refused. "
                   "Open Personas Import itself and try again.")


def rotate_csrf_token() -> str:
    """Replace the session's token (at sign-in, so a token seen before it is worthless); the new one, signed."""
    session.pop(SESSION_KEY, None)
    g.pop(SESSION_KEY, None)  # generate_csrf keeps the request's signed token there
    return generate_csrf()


def check_csrf() -> None:
    """Refuse an unsafe request whose header or form token is not the session's (Flask-WTF checks it)."""
    if request.method in SAFE_METHODS:
        return
    if not current_user.is_authenticated and request.endpoint != "auth.login_post":
        # Nobody is signed in, so nothing can be forged on anyone's behalf: the view sends them to sign in
        # (a session that expired mid-wizard then lands on the sign-in page, not on "form expired").
        return
    try:
        csrf.protect()
    except TokenRefused:
        # Flask-WTF's reasons ("The CSRF tokens do not match.") are for developers: one message a user can act on.
        raise CSRFError() from None


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, lower-cased, without a default port; None when it is not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def is_own_origin(origin: str) -> bool:
    """True when origin is this app's (as the browser addressed it: ProxyFix has set scheme and host)."""
    theirs = origin_of(origin)
    return theirs is not None and theirs == origin_of(request.host_url)


def check_origin() -> None:
    """Refuse an unsafe request that another site's page sent (Sec-Fetch-Site, else Origin, says so)."""
    if request.method in SAFE_METHODS:
        return
    site, origin = request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin")
    if site == "cross-site":
        raise CrossSiteError()
    if site in ("same-origin", "none"):  # "none": the user's own action (address bar, bookmark)
        return
    # same-site (a sibling subdomain), an unknown value, or an older browser: the Origin decides.
    if origin is None:
        if site == "same-site":
            raise CrossSiteError()
        return  # not a browser page's request (curl, scripts): the CSRF token still guards it
    if not is_own_origin(origin):  # including "null" (sandboxed frames, privacy redirects)
        raise CrossSiteError()


def content_security_policy(frame_ancestors: list[str]) -> str:
    """The CSP: only our own scripts and styles (no inline ones), framing by the allow-list."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors " + " ".join(frame_ancestors or ["'self'"]),
    ])


def set_security_headers(response):
    """Add the security headers to every response (no X-Frame-Options: CSP frame-ancestors decides)."""
    response.headers["Content-Security-Policy"] = content_security_policy(current_app.config["FRAME_ANCESTORS"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        # Every page but the static files is made for one user, most show customers (lists, a persona, the
        # review, reports): no browser or proxy keeps a copy on disk (or shows it to the next user of the machine).
        response.headers["Cache-Control"] = "private, no-store"
    return response


class Session(SecureCookieSession):
    """The session, knowing how many session cookies the request carried."""

    cookies_sent = 0


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure whenever the request came over HTTPS, one cookie per browser.

    A browser keeps one session cookie per cookie setting it was given: after FRAME_ANCESTORS is turned on
    (or off), it holds the old SameSite=Lax cookie and the new Partitioned one side by side and sends both.
    So the session read is the most recently written of the cookies sent, and each time the session cookie
    is written or expired, it is expired under the other setting first: the browser is left with one.
    """

    session_class = Session

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def open_session(self, app, request):
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        sent = request.cookies.getlist(self.get_cookie_name(app))
        max_age = int(app.permanent_session_lifetime.total_seconds())
        newest = None
        for position, value in enumerate(sent):
            try:
                data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except BadSignature:
                continue
            # The newest signature wins; within a second, the later cookie (browsers send older ones first).
            if newest is None or (signed_at, position) > newest[:2]:
                newest = (signed_at, position, data)
        session = self.session_class(newest[2] if newest else {})
        session.cookies_sent = len(sent)
        if len(sent) > 1:
            session.modified = True  # written back below as the one cookie, the other copies expired
        return session

    def other_cookie_variants(self, app) -> list[dict]:
        """Attributes of the session cookie under the cookie settings other than the current one."""
        if self.get_cookie_partitioned(app):
            return [{"samesite": "Lax", "secure": self.get_cookie_secure(app), "partitioned": False}]
        # A Partitioned cookie is only ever Secure with SameSite=None (and is only expired so).
        return [{"samesite": "None", "secure": True, "partitioned": True}]

    def save_session(self, app, session, response) -> None:
        writes = session.modified if not session else self.should_set_cookie(app, session)
        if writes and getattr(session, "cookies_sent", 0):
            # First, so that a client keeping one cookie per name (no partitions) keeps the one set after.
            for variant in self.other_cookie_variants(app):
                response.delete_cookie(self.get_cookie_name(app), domain=self.get_cookie_domain(app),
                                       path=self.get_cookie_path(app), httponly=True, **variant)
        super().save_session(app, session, response)


def cookie_settings(embedding: bool) -> dict:
    """The session cookie's settings: a cross-site iframe only gets its cookie back with SameSite=None;
    Secure; Partitioned (CHIPS), a page of its own with the SameSite=Lax default."""
    if embedding:
        return {"SESSION_COOKIE_SAMESITE": "None", "SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_PARTITIONED": True}
    return {"SESSION_COOKIE_SAMESITE": "Lax", "SESSION_COOKIE_SECURE": False, "SESSION_COOKIE_PARTITIONED": False}


def init_app(app) -> None:
    """Install cross-site and CSRF checks, security headers, cookie flags and the csrf_token() template global."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("EMBEDDING"):
        app.config.update(cookie_settings(embedding=True))
    app.session_interface = SessionInterface()
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # check_csrf below decides when, after the cross-site check
        WTF_CSRF_FIELD_NAME=FORM_FIELD,
        WTF_CSRF_HEADERS=[HEADER],
        # A form stays good as long as its session: a mapping left open over lunch still submits.
        WTF_CSRF_TIME_LIMIT=None,
        # Flask-WTF's HTTPS check wants a Referer; check_origin asks Sec-Fetch-Site and Origin instead,
        # which browsers send even where a Referrer-Policy drops the Referer.
        WTF_CSRF_SSL_STRICT=False,
    )
    csrf.init_app(app)  # also the csrf_token() template global
    # Cross-site first: a foreign page is refused as such, whatever token it guessed.
    app.before_request(check_origin)
    app.before_request(check_csrf)
    app.after_request(set_security_headers)
