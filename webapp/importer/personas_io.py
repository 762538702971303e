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
    keys = {"email": [e for e in emails if e], "phone": [p for p in phones if p]}
    _load(index, [_by_account_and(account_id, key, values) for key, values in keys.items() if values], lock)


def load_by_ids(index: PersonaIndex, account_id: int, ids) -> None:
    """Add the account's personas with these ids (and their attributes)."""
    ids = list(ids)
    _load(index, [_by_account_and(account_id, "id", ids)] if ids else [], lock=True)


def _by_account_and(account_id: int, column: str, values: list) -> tuple[str, list]:
    """`account_id = ? AND column IN (...)` as SQL and parameters."""
    where, params = _any(column, values)
    return f"account_id = {_param()} AND {where}", [account_id, *params]


def _param() -> str:
    return "%s" if is_postgres() else "?"


def _load(index: PersonaIndex, conditions: list[tuple[str, list]], lock: bool) -> None:
    # Raw SQL: building a Peewee expression of thousands of keys costs more than running it.
    names = ", ".join(f'"{c}"' for c in SELECT_COLUMNS)
    loaded = {}
    # One statement per key, never "email IN (...) OR phone IN (...)": for that OR PostgreSQL reads the
    # whole account (a sequential scan per chunk over a million personas), each alone is an index lookup.
    for where, params in conditions:
        sql = f'SELECT {names} FROM "{Persona._meta.table_name}" WHERE {where} ORDER BY id'
        if lock and is_postgres():
            # Two imports touching one persona serialize on its row instead of overwriting each other.
            sql += " FOR UPDATE"
        for values in db.execute_sql(sql, params).fetchall():
            record = dict(zip(SELECT_COLUMNS, values))
            if record["id"] not in index.by_id and record["id"] not in loaded:
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
    ids = {}
    for key, values in (("email", [p["email"] for p in created if p["email"]]),
                        ("phone", [p["phone"] for p in created if p["phone"] and not p["email"]])):
        if values:
            where, params = _by_account_and(account_id, key, values)
            rows = db.execute_sql(f'SELECT {key}, id FROM "{Persona._meta.table_name}" WHERE {where}', params)
            ids[key] = dict(rows.fetchall())
    for persona in created:
        persona["id"] = ids["email"][persona["email"]] if persona["email"] else ids["phone"][persona["phone"]]
