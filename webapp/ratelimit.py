"""Per-user rate limits ("10/minute"): counters in Redis when REDIS_URL is set, else in this process.

A user's window opens with their first request and lasts the limit's period; past the limit the view
is not called and the answer is 429 with Retry-After (seconds until the window closes). In-process
counters are per process: with several gunicorn workers and no Redis each counts alone, which is
enough to stop a runaway script on a laptop or a small install.
"""
import functools
import logging
import math
import threading
import time

from flask import current_app, g, make_response
from redis.exceptions import RedisError

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
REDIS_PREFIX = "personas:ratelimit:"
log = logging.getLogger(__name__)


def parse_rate(text: str) -> tuple[int, int]:
    """'10/minute' -> (10 requests, 60 seconds)."""
    count, _, unit = str(text).partition("/")
    unit = unit.strip().lower().removesuffix("s")
    if not count.strip().isdigit() or int(count) < 1 or unit not in UNITS:
        raise ValueError(f"A rate limit reads like '10/minute' (second, minute, hour or day), not {text!r}")
    return int(count), UNITS[unit]


class MemoryCounter:
    """Windows held in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, period: int) -> tuple[int, float]:
        """Count one request; return the window's count and the seconds left in it."""
        now = time.monotonic()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= period:
                start, count = now, 0
            self._windows[key] = (start, count + 1)
            if len(self._windows) > 10_000:  # forget closed windows so memory stays bounded
                self._windows = {k: w for k, w in self._windows.items() if now - w[0] < period}
            return count + 1, period - (now - start)


class RedisCounter:
    """Windows shared by every process that reaches the same Redis."""

    def __init__(self, url: str):
        from redis import Redis

        self._redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def hit(self, key: str, period: int) -> tuple[int, float]:
        """Count one request atomically (the first one sets the window's expiry); count and seconds left."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(REDIS_PREFIX + key, 0, ex=period, nx=True)
        pipe.incr(REDIS_PREFIX + key)
        pipe.ttl(REDIS_PREFIX + key)
        _, count, ttl = pipe.execute()
        return count, max(ttl, 1)


def init_app(app) -> None:
    """Check the configured limits now (a typo fails at start-up) and choose where counters live."""
    for setting in ("UPLOAD_RATE_LIMIT",):
        parse_rate(app.config[setting])
    app.extensions["ratelimit"] = RedisCounter(app.config["REDIS_URL"]) if app.config["REDIS_URL"] else MemoryCounter()


def retry_after(name: str, user_id: int, rate: str) -> int | None:
    """Count a request of user to name; None when within rate, else the seconds to wait."""
    limit, period = parse_rate(rate)
    try:
        count, left = current_app.extensions["ratelimit"].hit(f"{name}:{user_id}", period)
    except RedisError:  # Redis is down: better to let the user work than to refuse everyone
        log.warning("rate limit %s not checked: counter unavailable", name, exc_info=True)
        return None
    return None if count <= limit else max(1, math.ceil(left))


def rate_limited(name: str, setting: str, refused):
    """Let each signed-in user call the view `setting` times per period; beyond, refused(seconds) as 429."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            wait = retry_after(name, g.user.id, current_app.config[setting])
            if wait is None:
                return view(*args, **kwargs)
            response = make_response(refused(wait))
            response.status_code = 429
            response.headers["Retry-After"] = str(wait)
            return response

        return wrapped

    return decorate
