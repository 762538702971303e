"""Which personas a list holds: an account's, a search's, an audience's or an import's (pages and exports)."""
import re

from webapp.models import AudienceMember, AuditEntry, Persona

PHONE_LIKE = re.compile(r"^[\d\s()+.\-]+$")


def search(query, text: str):
    """Narrow query to personas whose email, phone or name contains every word of text."""
    for word in (text or "").split():
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


def personas(account_id: int, q: str = "", audience_id: int | None = None, import_id: int | None = None,
             columns=(), after: int = 0):
    """The account's personas (selecting columns, default all), narrowed to an audience, an import and a search;
    after: only ids above it (the keyset of a chunked read)."""
    query = Persona.select(*columns).where(Persona.account == account_id)
    if after:
        query = query.where(Persona.id > after)
    if audience_id is not None:
        # A join, not IN (subquery): the (audience, persona) index walks the members in persona order, from
        # `after` on when the bound is given on its side too (else each chunk would rescan the ones before).
        query = (query.join(AudienceMember, on=(AudienceMember.persona == Persona.id))
                 .where(AudienceMember.audience == audience_id))
        if after:
            query = query.where(AudienceMember.persona > after)
    if import_id is not None:
        query = query.where(Persona.id.in_(AuditEntry.select(AuditEntry.persona_id)
                                           .where(AuditEntry.import_id == import_id,
                                                  AuditEntry.account == account_id)))
    return search(query, q)
