"""Rate limits (Flask-Limiter): uploads per user, failed sign-ins per account and per client address.

Counters live in Redis when REDIS_URL is set (shared by every web process), else in this process: with
several gunicorn workers and no Redis each counts alone, which is enough to stop a runaway script on a
laptop or a small install. A window opens with the first counted request and lasts the limit's period;
past the limit the view is not called and the answer is its own page with a message, 429 and Retry-After
(seconds until the window closes). An unreachable Redis refuses nobody: the limit is then not checked.
"""
import functools
import hashlib
import math
import time

from flask import Response, current_app, make_response
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse

from webapp.errors import handle_http_error

RATE_SETTINGS = ("UPLOAD_RATE_LIMIT", "SIGN_IN_RATE_LIMIT_ACCOUNT", "SIGN_IN_RATE_LIMIT_ADDRESS")
REDIS_PREFIX = "personas:ratelimit"
TOO_MANY = "There were many requests in a short time. Wait a minute, then try again."  # if refused() failed

# One limiter, as its decorators sit on the blueprints' views: each app's init_app points it at that app's
# storage (a web process serves one app; a test run makes one app after another).
limiter = Limiter(
    key_func=get_remote_address,
    strategy="fixed-window",
    # Redis down: better to let people work than to refuse everyone (the failure is logged).
    swallow_errors=True,
    headers_enabled=False,  # only a refusal says when to come back (Retry-After)
    storage_options={"socket_connect_timeout": 2, "socket_timeout": 2, "key_prefix": REDIS_PREFIX},
)


def parse_rate(text: str) -> tuple[int, int]:
    """'10/minute' -> (10 requests, 60 seconds); '10/15 minutes' -> (10, 900)."""
    try:
        item = parse(str(text))
    except ValueError:
        item = None
    if item is None or item.amount < 1:
        raise ValueError(f"A rate limit reads like '10/minute' or '10/15 minutes' (second, minute, hour or day), "
                         f"not {text!r}")
    return item.amount, item.get_expiry()


def _refusal(refused, limit: RequestLimit) -> Response:
    """refused(seconds to wait) as a 429 with Retry-After: the answer Flask-Limiter raises with."""
    wait = max(1, math.ceil(limit.window.reset_time - time.time()))
    response = make_response(refused(wait))
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


def limited(setting: str, key, refused, counts=None):
    """Let each key() (a callable) reach the view config[setting] times per period; beyond, refused(seconds).

    counts(response): only the answers it is true for are counted (e.g. failed sign-ins), else every call.
    """
    return limiter.limit(lambda: current_app.config[setting], key_func=key, deduct_when=counts,
                         on_breach=functools.partial(_refusal, refused), error_message=TOO_MANY)


def per_user() -> str:
    """The counter of the signed-in user (one per person, whichever account they work in)."""
    return f"user:{current_user.id}"


def hashed(value: str) -> str:
    """A counter's key for a value that is no business of Redis or the logs (an email): its short hash."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def answer_refusal(error: RateLimitExceeded):
    """The refusal's own page (_refusal's), else the friendly error page."""
    return error.response if error.response is not None else handle_http_error(error)


def init_app(app) -> None:
    """Check the configured limits now (a typo fails at start-up) and choose where counters live."""
    for setting in RATE_SETTINGS:
        parse_rate(app.config[setting])
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, answer_refusal)
