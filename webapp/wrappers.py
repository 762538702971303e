"""The app's request class: a NUL character in the query string or a form field is a clear 400.

PostgreSQL stores no NUL in text (psycopg2 refuses such a parameter with ValueError), so a search or a
sign-in with %00 in it would end as a 500. No field of the app has a use for one: the request is refused
when its query string or form is first read, before any view or database sees the value.
"""
from htmx_flask.requests import HtmxAwareRequest
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.utils import cached_property


class NulCharacter(BadRequest):
    """A query string or form field holding a NUL character (%00)."""

    description = ("The request contained a null character (%00), which no field accepts. "
                   "Remove it and try again.")


def _has_nul(values) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


class Request(HtmxAwareRequest):
    """htmx_flask's request (request.htmx), refusing a NUL character in the query string or a form field."""

    @cached_property
    def args(self):
        args = super().args
        if _has_nul(args):
            # Whatever reads the arguments later (the error page too) sees none, not the refused ones.
            self.__dict__["args"] = ImmutableMultiDict()
            raise NulCharacter()
        return args

    def _load_form_data(self) -> None:
        loaded = "form" in self.__dict__
        super()._load_form_data()
        if not loaded and _has_nul(self.form):
            self.__dict__["form"] = ImmutableMultiDict()
            raise NulCharacter()
