"""Deleting personas and audiences with the rows that hang off them.

On PostgreSQL the bulk tables carry no foreign keys (schema.BULK_FOREIGN_KEYS), so no ON DELETE CASCADE
removes a persona's attributes and audience memberships, or an audience's members: these do.
"""
from webapp.models import Audience, AudienceMember, Persona, PersonaAttribute


def delete_personas(ids: list[int]) -> None:
    """Delete these personas, their attributes and their audience memberships."""
    if not ids:
        return
    PersonaAttribute.delete().where(PersonaAttribute.persona.in_(ids)).execute()
    AudienceMember.delete().where(AudienceMember.persona.in_(ids)).execute()
    Persona.delete().where(Persona.id.in_(ids)).execute()


def delete_audiences(query) -> None:
    """Delete the audiences a query of their ids selects, with their members."""
    ids = [audience_id for (audience_id,) in query.tuples()]
    if not ids:
        return
    AudienceMember.delete().where(AudienceMember.audience.in_(ids)).execute()
    Audience.delete().where(Audience.id.in_(ids)).execute()
