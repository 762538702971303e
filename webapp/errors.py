"""Friendly error pages (full page, or a partial for HTMX), never a stack trace."""
from flask import current_app
from werkzeug.exceptions import HTTPException

from webapp import hx
from webapp.render import render, wants_partial

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "File too large",
    429: "Too many requests",
    500: "Something went wrong",
}

MESSAGES = {
    400: "The request could not be understood. Reload the page and try again.",
    401: "Please sign in to continue.",
    403: "You do not have access to this page.",
    404: "This page does not exist, or it belongs to another account.",
    405: "This page cannot be used that way. Go back and try again.",
    500: "Something went wrong on our side. Nothing was changed. Please try again in a moment.",
}


def message_for(error: HTTPException) -> str:
    """The message to show: the one given to abort(), else a friendly one for the status."""
    if error.code == 413:
        return f"This file is larger than the upload limit of {current_app.config['MAX_UPLOAD_MB']} MB."
    # Werkzeug's own descriptions are technical; a description passed to abort() is written for users.
    if error.description and error.description != type(error).description:
        return error.description
    if type(error).description and type(error).__module__ != "werkzeug.exceptions":
        return type(error).description
    return MESSAGES.get(error.code, MESSAGES[500] if (error.code or 500) >= 500 else MESSAGES[400])


def handle_http_error(error: HTTPException):
    """Render the error page, or for HTMX a small alert swapped into the page's message area."""
    code = error.code or 500
    context = {"code": code, "title": TITLES.get(code, "Error"), "message": message_for(error)}
    try:
        response = render("errors/error.html", "errors/_error.html", status=code, **context)
    except Exception:  # the layout itself failed: still answer without a trace
        current_app.logger.exception("Error page could not be rendered")
        return context["message"], code, {"Content-Type": "text/plain; charset=utf-8"}
    if wants_partial():
        # Show the message where the page keeps its alerts, not in place of the form that failed.
        hx.retarget(response, "#messages", "innerHTML")
    if code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def init_app(app) -> None:
    """Register the error handlers."""
    # Unhandled exceptions arrive here as InternalServerError, after Flask has logged them with their trace.
    app.register_error_handler(HTTPException, handle_http_error)
