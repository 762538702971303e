"""What every template may use, registered once on the app: the filters that write values for people, the
page of a list and its links. (words.py writes the counts and dates; this adds the values and the pages.)"""
import datetime
import math

import phonenumbers
from flask import g, request, url_for

from webapp import words
from webapp.importer.fields import label
from webapp.models import utcnow

PER_PAGE = 50


class Page:
    """One page of a query: its rows, its number and the page count."""

    def __init__(self, query, number: int, per_page: int = PER_PAGE):
        self.total = query.count()
        self.pages = max(1, math.ceil(self.total / per_page))
        self.number = min(max(1, number), self.pages)
        self.rows = list(query.paginate(self.number, per_page))
        self.first = (self.number - 1) * per_page + 1 if self.total else 0
        self.last = self.first + len(self.rows) - 1 if self.rows else 0


def page_url(number: int) -> str:
    """This page's URL with the same query and another page number."""
    args = {**request.view_args, **request.args.to_dict(), "page": number}
    return url_for(request.endpoint, **args)


def show(value) -> str:
    """A stored value as text for people: blanks as a dash, booleans as Yes/No, lists joined."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, int):  # points and balances: thousands separated
        return f"{value:,}"
    return str(value)


def phone(value) -> str:
    """An E.164 phone as people read it: national format in its own country, international otherwise."""
    if not value:
        return show(value)
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return str(value)
    national = g.account is not None and phonenumbers.region_code_for_number(number) == g.account.phone_region
    style = phonenumbers.PhoneNumberFormat.NATIONAL if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def field_label(name: str) -> str:
    """A field, mapping target or audited column as users see it: "Opt-in SMS", "Custom attribute “veteran”"."""
    return label(name)


def since(moment) -> str:
    """How long ago a time was, briefly: "just now", "5 min ago", "3 h ago", else the date."""
    if moment is None:
        return "—"
    seconds = (utcnow() - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return moment.strftime("%Y-%m-%d")


def duration(seconds) -> str:
    """A number of seconds for people: "40 s", "3 min", "1 h 20 min"."""
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return f"{max(seconds, 1)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


FILTERS = (words.number, words.noun, words.counted, words.day_month, show, phone, field_label, since, duration)


def init_app(app) -> None:
    """Make the filters and page_url available to every template."""
    for function in FILTERS:
        app.add_template_filter(function)
    app.add_template_global(page_url)
