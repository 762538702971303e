"""Personas between the database and the merge's in-memory dicts: load by keys, write a chunk's result."""
import datetime

from webapp.db import db, is_postgres
from webapp.importer import bulk
from webapp.importer.merge import PERSONA_COLUMNS, PersonaIndex
from webapp.models import Persona, PersonaAttribute

DATE_COLUMNS = ("birthday", "loyalty_signup_date")


BOOL_COLUMNS = ("loyalty_member", "archived", "sms_opt_in", "sms_opt_out", "email_opt_in", "email_opt_out")
SELECT_COLUMNS = ("id", *PERSONA_COLUMNS)


def _state(record: dict) -> dict:
    """A database row as the merge sees it: dates as ISO text, booleans as bools, attributes as a set."""
    for name in DATE_COLUMNS:
        if isinstance(record[name], datetime.date):
            record[name] = record[name].isoformat()
    for name in BOOL_COLUMNS:
        if record[name] is not None:
            record[name] = bool(record[name])
    record["attributes"] = set()
    record["loaded_email"], record["loaded_phone"] = record["email"], record["phone"]
    return record


def _any(column: str, values: list) -> tuple[str, list]:
    """`column IN (...)` as SQL and parameters: one array parameter on PostgreSQL."""
    if is_postgres():
        return f'"{column}" = ANY(%s)', [values]
    return f'"{column}" IN ({", ".join("?" * len(values))})', values


def load_into(index: PersonaIndex, account_id: int, emails, phones, lock: bool = False) -> None:
    """Add every persona of the account with one of these emails or phones (and its attributes)."""
    emails, phones = [e for e in emails if e], [p for p in phones if p]
    if emails or phones:
        by_email, email_params = _any("email", emails)
        by_phone, phone_params = _any("phone", phones)
        _load(index, f"account_id = {_param()} AND ({by_email} OR {by_phone})",
              [account_id, *email_params, *phone_params], lock)


def load_by_ids(index: PersonaIndex, account_id: int, ids) -> None:
    """Add the account's personas with these ids (and their attributes)."""
    by_id, params = _any("id", list(ids))
    _load(index, f"account_id = {_param()} AND {by_id}", [account_id, *params], lock=True)


def _param() -> str:
    return "%s" if is_postgres() else "?"


def _load(index: PersonaIndex, where: str, params: list, lock: bool) -> None:
    # Raw SQL: building a Peewee expression of thousands of keys costs more than running it.
    names = ", ".join(f'"{c}"' for c in SELECT_COLUMNS)
    sql = f'SELECT {names} FROM "{Persona._meta.table_name}" WHERE {where} ORDER BY id'
    if lock and is_postgres():
        # Two imports touching one persona serialize on its row instead of overwriting each other.
        sql += " FOR UPDATE"
    loaded = {}
    for values in db.execute_sql(sql, params).fetchall():
        record = dict(zip(SELECT_COLUMNS, values))
        if record["id"] not in index.by_id:
            loaded[record["id"]] = _state(record)
    if loaded:
        by_persona, id_params = _any("persona_id", list(loaded))
        rows = db.execute_sql(
            f'SELECT persona_id, name FROM "{PersonaAttribute._meta.table_name}" WHERE {by_persona}', id_params)
        for persona_id, name in rows.fetchall():
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
    bulk.update_rows(table, ["email", "phone"], rekeyed)
    columns = [*PERSONA_COLUMNS, "updated_at"]
    bulk.update_rows(table, columns, [(p["id"], *_values(p, now)) for p in changed])
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
    by_email, email_params = _any("email", [p["email"] for p in created if p["email"]])
    by_phone, phone_params = _any("phone", [p["phone"] for p in created if p["phone"] and not p["email"]])
    rows = db.execute_sql(
        f'SELECT id, email, phone FROM "{Persona._meta.table_name}" '
        f"WHERE account_id = {_param()} AND ({by_email} OR {by_phone})",
        [account_id, *email_params, *phone_params]).fetchall()
    ids_by_email = {email: persona_id for persona_id, email, _ in rows}
    ids_by_phone = {phone: persona_id for persona_id, _, phone in rows}
    for persona in created:
        persona["id"] = ids_by_email[persona["email"]] if persona["email"] else ids_by_phone[persona["phone"]]
