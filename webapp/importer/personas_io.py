"""Personas between the database and the merge's in-memory dicts: load by keys, write a chunk's result."""
import datetime

from webapp.db import is_postgres
from webapp.importer import bulk
from webapp.importer.merge import PERSONA_COLUMNS, PersonaIndex
from webapp.models import Persona, PersonaAttribute

DATE_COLUMNS = ("birthday", "loyalty_signup_date")
PG_CASTS = {
    "id": "bigint", "points": "bigint", "loyalty_member": "boolean", "archived": "boolean",
    "sms_opt_in": "boolean", "sms_opt_out": "boolean", "email_opt_in": "boolean", "email_opt_out": "boolean",
    "birthday": "date", "loyalty_signup_date": "date", "sms_consent_at": "timestamp",
    "email_consent_at": "timestamp", "sms_consent_import": "integer", "email_consent_import": "integer",
    "sms_consent_user": "integer", "email_consent_user": "integer", "updated_at": "timestamp",
}


def _state(record: dict) -> dict:
    """A database row as the merge sees it: dates as ISO text, attributes as a set."""
    for name in DATE_COLUMNS:
        if isinstance(record[name], datetime.date):
            record[name] = record[name].isoformat()
    record["attributes"] = set()
    record["loaded_email"], record["loaded_phone"] = record["email"], record["phone"]
    return record


def load_into(index: PersonaIndex, account_id: int, emails, phones, lock: bool = False) -> None:
    """Add every persona of the account with one of these emails or phones (and its attributes)."""
    emails, phones = [e for e in emails if e], [p for p in phones if p]
    if emails or phones:
        _load(index, (Persona.account == account_id) & (Persona.email.in_(emails) | Persona.phone.in_(phones)), lock)


def load_by_ids(index: PersonaIndex, account_id: int, ids) -> None:
    """Add the account's personas with these ids (and their attributes)."""
    _load(index, (Persona.account == account_id) & Persona.id.in_(list(ids)), lock=True)


def _load(index: PersonaIndex, where, lock: bool) -> None:
    query = Persona.select(Persona.id, *[getattr(Persona, c) for c in PERSONA_COLUMNS]).where(where)
    if lock and is_postgres():
        # Two imports touching one persona serialize on its row instead of overwriting each other.
        query = query.for_update()
    loaded = {}
    for record in query.dicts():
        if record["id"] not in index.by_id:
            loaded[record["id"]] = _state(record)
    if loaded:
        attributes = PersonaAttribute.select(PersonaAttribute.persona, PersonaAttribute.name).where(
            PersonaAttribute.persona.in_(list(loaded)))
        for persona_id, name in attributes.tuples():
            loaded[persona_id]["attributes"].add(name)
    for persona in loaded.values():
        persona["loaded_attributes"] = set(persona["attributes"])
        index.add_loaded(persona)


def _values(persona: dict, now) -> tuple:
    return tuple(persona[c] for c in PERSONA_COLUMNS) + (now,)


def write_personas(account_id: int, changed: list[dict], created: list[dict], now) -> None:
    """Write updated and new personas set-based, give new ones their ids, and add new attributes."""
    table = Persona._meta.table_name
    # Free changed keys first: a chunk may move a phone from one persona to another.
    rekeyed = [(p["id"], None if p["email"] != p["loaded_email"] else p["email"],
                None if p["phone"] != p["loaded_phone"] else p["phone"])
               for p in changed if (p["email"], p["phone"]) != (p["loaded_email"], p["loaded_phone"])]
    bulk.update_rows(table, ["email", "phone"], rekeyed, PG_CASTS)
    columns = [*PERSONA_COLUMNS, "updated_at"]
    bulk.update_rows(table, columns, [(p["id"], *_values(p, now)) for p in changed], PG_CASTS)
    bulk.insert_rows(table, ["account_id", *columns, "created_at"],
                     [(account_id, *_values(p, now), now) for p in created])
    _assign_ids(account_id, created)
    new_attributes = [(p["id"], name) for p in changed + created
                      for name in sorted(p["attributes"] - p.get("loaded_attributes", set()))]
    bulk.insert_rows(PersonaAttribute._meta.table_name, ["persona_id", "name"], new_attributes,
                     ignore_conflicts=True)


def _assign_ids(account_id: int, created: list[dict]) -> None:
    """Read back the ids of just-inserted personas by their unique email or phone."""
    if not created:
        return
    emails = [p["email"] for p in created if p["email"]]
    phones = [p["phone"] for p in created if p["phone"] and not p["email"]]
    query = Persona.select(Persona.id, Persona.email, Persona.phone).where(
        (Persona.account == account_id) & (Persona.email.in_(emails) | Persona.phone.in_(phones)))
    by_email, by_phone = {}, {}
    for persona_id, email, phone in query.tuples():
        by_email[email], by_phone[phone] = persona_id, persona_id
    for persona in created:
        persona["id"] = by_email[persona["email"]] if persona["email"] else by_phone[persona["phone"]]

