"""No customer value in any log line: exception messages are withheld, request lines lose their query.

Customer values reach a log through three doors, each closed here for every process (web, worker, CLI):
- an exception's message: PostgreSQL's quotes the row (`DETAIL: Key (account_id, email)=(5, x@y) already
  exists`, `invalid input syntax for type date: "..."`), and Python's and polars' quote the value they
  failed on. Every record carrying an exception gets its traceback with each message replaced by what is
  safe to say (`describe`): the type, PostgreSQL's SQLSTATE and constraint, table and column names. Only
  messages of a few kinds that never hold row data are kept (OS, Redis and connection errors, ours).
- an exception passed as a log argument: described the same way.
- a request line: persona search puts emails and phones in the query string. The dev server's request log
  (werkzeug) keeps the path without the query; gunicorn's access log is set up in gunicorn.conf.py
  (webapp/serving.py).
"""
import logging
import re
import traceback

WITHHELD = "message withheld: it may quote customer data"
# Exceptions whose message never holds a row's values (paths, hosts, our own ids), by qualified type name
# anywhere in their MRO, so that nothing needs importing.
SAFE_TYPES = frozenset({
    "builtins.OSError", "builtins.MemoryError", "builtins.RecursionError", "builtins.KeyboardInterrupt",
    "builtins.SystemExit",
    "redis.exceptions.RedisError", "rq.timeouts.BaseTimeoutException", "rq.exceptions.NoSuchJobError",
    "webapp.importer.lease.LeaseLost", "worker.tasks.JobFailed",
})
QUERY_IN_REQUEST_LINE = re.compile(r"\?[^ ]*(?= HTTP/)")

_installed = False


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(error: BaseException) -> str:
    """What a log may say about error: type and message, or the message's safe parts only."""
    return f"{_qualified(type(error)).removeprefix('builtins.')}: {_message(error)}"


def _message(error: BaseException) -> str:
    original = getattr(error, "orig", None)  # peewee wraps the driver's error
    if isinstance(original, BaseException) and original is not error:
        return _message(original)
    if any(_qualified(cls) in SAFE_TYPES for cls in type(error).__mro__):
        return str(error)
    pgcode = getattr(error, "pgcode", None)
    if pgcode:
        diag = getattr(error, "diag", None)
        names = [f"{part} {getattr(diag, part + '_name', None)}" for part in ("constraint", "table", "column")
                 if getattr(diag, part + "_name", None)]
        return ", ".join([f"SQLSTATE {pgcode}", *names]) + f" ({WITHHELD})"
    module = type(error).__module__
    if module.startswith("psycopg2") or module == "sqlite3":
        # No SQLSTATE: a client-side or connection error (host, port, "connection already closed"), or SQLite,
        # whose messages name the statement's columns ("UNIQUE constraint failed: persona.email"), not values.
        return str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"({WITHHELD})"


def format_exception(error: BaseException) -> str:
    """A traceback like Python's (chained exceptions included), each message as describe() puts it."""
    parts: list[str] = []
    seen: set[int] = set()

    def walk(current: BaseException) -> None:
        seen.add(id(current))
        if current.__cause__ is not None and id(current.__cause__) not in seen:
            walk(current.__cause__)
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n")
        elif (current.__context__ is not None and not current.__suppress_context__
              and id(current.__context__) not in seen):
            walk(current.__context__)
            parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        if current.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(current.__traceback__))
        parts.append(describe(current) + "\n")

    walk(error)
    return "".join(parts).rstrip("\n")


def _safe_record_factory(base):
    def make(*args, **kwargs):
        record = base(*args, **kwargs)
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters use exc_text when it is set, and format exc_info only when it is not.
            record.exc_text = format_exception(record.exc_info[1])
        if isinstance(record.args, tuple) and any(isinstance(arg, BaseException) for arg in record.args):
            record.args = tuple(describe(arg) if isinstance(arg, BaseException) else arg for arg in record.args)
        return record

    make.personas_safe = True
    return make


class RequestLineFilter(logging.Filter):
    """The dev server's request log without query strings ("GET /personas?q=ann HTTP/1.1" -> "GET /personas HTTP/1.1")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = QUERY_IN_REQUEST_LINE.sub("", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(QUERY_IN_REQUEST_LINE.sub("", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def install() -> None:
    """Make every log record of this process safe (idempotent): called by create_app and the worker."""
    global _installed
    if _installed:
        return
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "personas_safe", False):
        logging.setLogRecordFactory(_safe_record_factory(factory))
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, RequestLineFilter) for f in werkzeug.filters):
        werkzeug.addFilter(RequestLineFilter())
    _installed = True
