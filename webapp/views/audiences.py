"""Customers > Audiences: the list, and one audience's members."""
from flask import Blueprint, g, request
from peewee import JOIN, fn

from webapp.importer.export import Selection
from webapp.importer.selection import personas as personas_of
from webapp.models import Audience, AudienceMember
from webapp.render import render
from webapp.templating import Page
from webapp.views.auth import get_owned_or_404, login_required
from webapp.views.personas import download, persona_page

bp = Blueprint("audiences", __name__, url_prefix="/audiences")


@bp.get("")
@login_required
def index():
    """The current account's audiences, newest first, with their member counts."""
    audiences = (Audience.select(Audience, fn.COUNT(AudienceMember.id).alias("member_count"))
                 .join(AudienceMember, JOIN.LEFT_OUTER)
                 .where(Audience.account == g.account)
                 .group_by(Audience.id)
                 .order_by(Audience.created_at.desc(), Audience.id.desc()))
    page = Page(audiences, request.args.get("page", 1, type=int))
    return render("audiences/index.html", "audiences/_list.html", listing=page)


@bp.get("/<int:audience_id>")
@login_required
def detail(audience_id: int):
    """One audience and a page of its members."""
    audience = get_owned_or_404(Audience, audience_id)
    members = personas_of(g.account.id, audience_id=audience.id)
    page, attributes = persona_page(members, request.args.get("page", 1, type=int))
    return render("audiences/detail.html", "audiences/_members.html", audience=audience, listing=page,
                  attributes=attributes)


@bp.get("/<int:audience_id>/export.<ext>")
@login_required
def export(audience_id: int, ext: str):
    """The audience's members as a CSV or XLSX file of every field."""
    audience = get_owned_or_404(Audience, audience_id)
    return download(Selection(g.account.id, audience_id=audience.id), ext, f"audience-{audience.id}")
