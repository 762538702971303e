"""Personas of an account as plain JSON-ready dicts (the CLI's `export`)."""
import datetime
from collections import defaultdict

from webapp.models import Persona, PersonaAttribute

EXPORT_KEYS = (
    "email", "phone", "first_name", "last_name", "birthday", "gender", "street", "city", "state",
    "postal_code", "external_id", "loyalty_member", "loyalty_signup_date", "points", "sms_opt_in",
    "sms_opt_out", "email_opt_in", "email_opt_out", "customer_type",
)


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
