"""The one place that decides between an HTMX partial and a full page."""
from flask import make_response, render_template, request


def wants_partial() -> bool:
    """True for an HTMX request that is not a history restore (which needs the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render(page: str, partial: str, status: int = 200, **context):
    """Render partial for HTMX, else the full page that includes it; vary on HX-Request."""
    template = partial if wants_partial() else page
    response = make_response(render_template(template, partial=partial, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response
