"""gunicorn's logger for the production command (gunicorn.conf.py): no query string in any line it writes.

Persona search puts emails and phones in the URL (/personas?q=ann@example.com), the login redirect carries
it on (/login?next=/personas%3Fq%3D...), and a page's Referer or HX-Current-URL header repeats it. The access
log's request line and every URL among its atoms keep the path only; cookies and CSRF tokens are not logged
whatever the format asks for. The error log's "Error handling request /path?query" loses the query too.
"""
import logging

from gunicorn import glogging

from webapp.logs import install as install_safe_logging

# Atoms holding secrets rather than URLs: never written, whatever access_log_format says.
SECRET_ATOMS = {"{cookie}i", "{x-csrftoken}i", "{set-cookie}o", "{http_cookie}e", "{http_x_csrftoken}e"}
QUERY_ATOMS = {"q", "{query_string}e"}


def without_query(value):
    """A URL or path without its query string; anything else unchanged."""
    if isinstance(value, str) and "?" in value and (value.startswith(("/", "http://", "https://"))):
        return value.split("?", 1)[0]
    return value


class _ErrorLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(without_query(arg) for arg in record.args)
        return True


class Logger(glogging.Logger):
    """gunicorn's logger, writing paths without their query strings."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        install_safe_logging()
        if not any(isinstance(f, _ErrorLogFilter) for f in self.error_log.filters):
            self.error_log.addFilter(_ErrorLogFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = without_query(environ.get("RAW_URI") or environ.get("PATH_INFO") or "-")
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}"
        for key in list(atoms):
            if key in SECRET_ATOMS or key in QUERY_ATOMS:
                atoms[key] = "-"
            else:
                atoms[key] = without_query(atoms[key])
        return atoms
