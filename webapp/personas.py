"""Customers > Personas: the searchable list and one persona's page with its history."""
import datetime
import math
import re

import phonenumbers
from flask import Blueprint, g, request, url_for

from webapp.auth import get_owned_or_404, login_required
from webapp.importer.fields import CHANNELS, FIELDS
from webapp.models import Audience, AudienceMember, AuditEntry, Import, Persona, PersonaAttribute
from webapp.render import render

bp = Blueprint("personas", __name__, url_prefix="/personas")

PER_PAGE = 50
PHONE_LIKE = re.compile(r"^[\d\s()+.\-]+$")


class Page:
    """One page of a query: its rows, its number and the page count."""

    def __init__(self, query, number: int, per_page: int = PER_PAGE):
        self.total = query.count()
        self.pages = max(1, math.ceil(self.total / per_page))
        self.number = min(max(1, number), self.pages)
        self.rows = list(query.paginate(self.number, per_page))
        self.first = (self.number - 1) * per_page + 1 if self.total else 0
        self.last = self.first + len(self.rows) - 1 if self.rows else 0


@bp.app_template_global()
def page_url(number: int) -> str:
    """This page's URL with the same query and another page number."""
    args = {**request.view_args, **request.args.to_dict(), "page": number}
    return url_for(request.endpoint, **args)


@bp.app_template_filter()
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
    return str(value)


def search(query, text: str):
    """Narrow query to personas whose email, phone or name contains every word of text."""
    for word in text.split():
        condition = (
            Persona.email.contains(word) | Persona.first_name.contains(word) | Persona.last_name.contains(word)
            | Persona.phone.contains(word)
        )
        digits = re.sub(r"\D", "", word)
        # Phones are stored as E.164 (+14155550123): "(415) 555" should still find them.
        if PHONE_LIKE.match(word) and len(digits) >= 3:
            condition |= Persona.phone.contains(digits)
        query = query.where(condition)
    return query


def attributes_by_persona(personas) -> dict[int, list[str]]:
    """The custom attributes of these personas, in one query."""
    ids = [persona.id for persona in personas]
    names: dict[int, list[str]] = {}
    if ids:
        rows = PersonaAttribute.select().where(PersonaAttribute.persona.in_(ids)).order_by(PersonaAttribute.name)
        for row in rows:
            names.setdefault(row.persona_id, []).append(row.name)
    return names


def persona_page(query, page_number: int) -> tuple[Page, dict]:
    """A page of personas, newest first, with their attributes."""
    # Newest first walks the primary key index: names would need a sort of the whole account.
    page = Page(query.order_by(Persona.id.desc()), page_number)
    return page, attributes_by_persona(page.rows)


@bp.get("")
@login_required
def index():
    """The personas of the current account: search, filter by audience or import, 50 a page."""
    q = request.args.get("q", "").strip()
    audience = get_owned_or_404(Audience, request.args["audience"]) if request.args.get("audience") else None
    upload = get_owned_or_404(Import, request.args["import"]) if request.args.get("import") else None
    query = Persona.select().where(Persona.account == g.account)
    if audience:
        query = query.where(Persona.id.in_(AudienceMember.select(AudienceMember.persona)
                                           .where(AudienceMember.audience == audience)))
    if upload:
        query = query.where(Persona.id.in_(AuditEntry.select(AuditEntry.persona_id)
                                           .where(AuditEntry.import_id == upload.id, AuditEntry.account == g.account)))
    page, attributes = persona_page(search(query, q), request.args.get("page", 1, type=int))
    has_any = bool(q or audience or upload) or Persona.select().where(Persona.account == g.account).exists()
    return render("personas/index.html", "personas/_results.html", listing=page, attributes=attributes, q=q,
                  audience=audience, upload=upload, has_any=has_any)


@bp.get("/<int:persona_id>")
@login_required
def detail(persona_id: int):
    """One persona: every field, attributes, consent and its audit history, newest first."""
    persona = get_owned_or_404(Persona, persona_id)
    history = (AuditEntry.select()
               .where(AuditEntry.persona_id == persona.id, AuditEntry.account == g.account)
               .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()))
    attributes = attributes_by_persona([persona]).get(persona.id, [])
    return render("personas/detail.html", "personas/_detail.html", persona=persona, attributes=attributes,
                  history=list(history), fields=FIELDS.values(), channels=CHANNELS)


@bp.app_template_filter()
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
