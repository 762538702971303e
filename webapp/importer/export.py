"""Personas of an account as plain JSON-ready dicts (the CLI's `export`)."""
import datetime
from collections import defaultdict

from webapp.importer.fields import EXPORT_KEYS
from webapp.models import Persona, PersonaAttribute


def export_personas(account_id: int) -> list[dict]:
    """Every persona of the account, ordered by id, with attributes and archived flag."""
    attributes = defaultdict(list)
    query = (PersonaAttribute.select(PersonaAttribute.persona, PersonaAttribute.name)
             .join(Persona).where(Persona.account == account_id).order_by(PersonaAttribute.name))
    for persona_id, name in query.tuples():
        attributes[persona_id].append(name)
    fields = [getattr(Persona, key) for key in EXPORT_KEYS]
    result = []
    for record in (Persona.select(Persona.id, *fields, Persona.archived)
                   .where(Persona.account == account_id).order_by(Persona.id).dicts().iterator()):
        persona_id = record.pop("id")
        for key, value in record.items():
            if isinstance(value, datetime.date):
                record[key] = value.isoformat()
        archived = record.pop("archived")
        result.append({**record, "attributes": attributes.get(persona_id, []), "archived": bool(archived)})
    return result
