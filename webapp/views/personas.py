"""Customers > Personas: the searchable list and one persona's page with its history."""

from flask import Blueprint, Response, abort, g, request, stream_with_context

from webapp.importer.export import Selection
from webapp.importer.export_files import FORMATS, MIMETYPES, export_filename, export_stream
from webapp.importer.fields import CHANNELS, FIELDS
from webapp.importer.selection import personas as personas_of
from webapp.models import Audience, AuditEntry, Import, Persona, PersonaAttribute
from webapp.render import render
from webapp.templating import Page
from webapp.views.auth import get_owned_or_404, login_required

bp = Blueprint("personas", __name__, url_prefix="/personas")



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


def _filters() -> tuple[str, Audience | None, Import | None]:
    """The list's search, audience and import from the query string (other accounts' ids: 404)."""
    q = request.args.get("q", "").strip()
    audience = get_owned_or_404(Audience, request.args["audience"]) if request.args.get("audience") else None
    upload = get_owned_or_404(Import, request.args["import"]) if request.args.get("import") else None
    return q, audience, upload


@bp.get("")
@login_required
def index():
    """The personas of the current account: search, filter by audience or import, 50 a page."""
    q, audience, upload = _filters()
    query = personas_of(g.account.id, q, audience and audience.id, upload and upload.id)
    page, attributes = persona_page(query, request.args.get("page", 1, type=int))
    has_any = bool(q or audience or upload) or Persona.select().where(Persona.account == g.account).exists()
    return render("personas/index.html", "personas/_results.html", listing=page, attributes=attributes, q=q,
                  audience=audience, upload=upload, has_any=has_any)


def download(chosen: Selection, ext: str, stem: str) -> Response:
    """The chosen personas as a CSV or XLSX download, streamed chunk by chunk as it is written."""
    if ext not in FORMATS:
        abort(404)
    # stream_with_context keeps the request (and its database connection) open until the last chunk is sent.
    response = Response(stream_with_context(export_stream(chosen, ext)), mimetype=MIMETYPES[ext])
    response.headers["Content-Disposition"] = f'attachment; filename="{export_filename(stem, ext)}"'
    return response


@bp.get("/export.<ext>")
@login_required
def export(ext: str):
    """The list as shown (its search, audience or import) as a CSV or XLSX file of every field."""
    q, audience, upload = _filters()
    chosen = Selection(g.account.id, q, audience and audience.id, upload and upload.id)
    return download(chosen, ext, "personas-search" if q else "personas")


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


