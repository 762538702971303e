"""The HTMX response headers the views send, one function each (django-htmx's http.py is the model)."""
from flask import Response


def push_url(response: Response, url: str) -> Response:
    """Put url in the browser's address bar and history for the partial swapped in."""
    response.headers["HX-Push-Url"] = url
    return response


def retarget(response: Response, target: str, swap: str) -> Response:
    """Swap the response into target (a CSS selector) the swap's way, not where the request asked."""
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = swap
    return response


def redirect(url: str, status: int = 200) -> tuple[str, int, dict]:
    """A full page load of url (htmx follows HX-Redirect, where a 3xx would be swapped in)."""
    return "", status, {"HX-Redirect": url}
