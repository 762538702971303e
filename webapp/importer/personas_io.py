"""Personas between the database and the merge's in-memory dicts: load by keys, write a chunk's result."""
import datetime
import json
import logging
from operator import itemgetter

from peewee import DatabaseError

from webapp.db import db, is_postgres
from webapp.importer import bulk
from webapp.importer.fields import BOOL_COLUMNS, DATE_COLUMNS, PERSONA_COLUMNS
from webapp.importer.merge import PersonaIndex
from webapp.importer.writes import new_ids
from webapp.models import AuditEntry, Persona, PersonaAttribute

# Keys as one JSON parameter: the same statement text every chunk. sqlite3 caches each distinct statement,
# and one "IN (?, ?, ...)" per chunk size held a compiled program of thousands of values each.
SQLITE_LIST = "(SELECT value FROM json_each(?))"
# Re-ANALYZE once this many rows, and half the table, changed since PostgreSQL last looked.
STALE_STATISTICS_ROWS = 20_000
SELECT_COLUMNS = ("id", *PERSONA_COLUMNS)
_column_values = itemgetter(*PERSONA_COLUMNS)
log = logging.getLogger(__name__)


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
    record["loaded"] = _column_values(record)
    return record


def refresh_statistics() -> None:
    """ANALYZE the persona and audit tables when an import has changed much of them since their statistics.

    Autovacuum gets there eventually; within a million-row import into a new account it is too late,
    and a planner that believes the account is empty picks an index that reads all of it per chunk.
    """
    if not is_postgres():
        return
    for table in (Persona._meta.table_name, AuditEntry._meta.table_name):
        row = db.execute_sql("SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
                             "WHERE relid = %s::regclass", [table]).fetchone()
        if row and row[1] >= max(STALE_STATISTICS_ROWS, row[0] // 2):
            try:
                db.execute_sql(f'ANALYZE "{table}"')
            except DatabaseError:  # e.g. a database user that does not own the table: autovacuum will do it
                log.warning("could not ANALYZE %s; imports may be slower until autovacuum does", table, exc_info=True)


def _any(column: str, values: list) -> tuple[str, list]:
    """`column IN (...)` as SQL and parameters: one array parameter on PostgreSQL, one JSON list on SQLite."""
    if is_postgres():
        return f'"{column}" = ANY(%s)', [values]
    return f'"{column}" IN {SQLITE_LIST}', [json.dumps(values)]


def load_into(index: PersonaIndex, account_id: int, emails, phones, lock: bool = False) -> None:
    """Add every persona of the account with one of these emails or phones (and its attributes)."""
    _load(index, account_id, {"email": emails, "phone": phones}, lock)


def load_by_ids(index: PersonaIndex, account_id: int, ids) -> None:
    """Add the account's personas with these ids (and their attributes)."""
    _load(index, account_id, {"id": ids}, lock=True)


def _matching(account_id: int, column: str, values: list) -> tuple[str, list]:
    """`FROM ... WHERE ...` selecting the account's personas (as p) whose column is one of values."""
    table = Persona._meta.table_name
    if is_postgres():
        # A join on the unnested keys: one index lookup per key. (With "= ANY(...)" PostgreSQL chose a
        # sequential scan of a million personas for each chunk.)
        array = "bigint[]" if column == "id" else "text[]"
        return (f'FROM unnest(%s::{array}) AS k(key) JOIN "{table}" AS p ON p."{column}" = k.key '
                f"WHERE p.account_id = %s", [values, account_id])
    return f'FROM "{table}" AS p WHERE p."{column}" IN {SQLITE_LIST} AND p.account_id = ?', [json.dumps(values), account_id]


def _load(index: PersonaIndex, account_id: int, keys: dict, lock: bool) -> None:
    # Raw SQL: building a Peewee expression of thousands of keys costs more than running it.
    names = ", ".join(f'p."{c}"' for c in SELECT_COLUMNS)
    loaded = {}
    # One statement per key column, never "email IN (...) OR phone IN (...)", which no index serves.
    for column, values in keys.items():
        # Most rows carry the email and phone of one persona: found by the first, it is not asked for again.
        held = {persona[column] for persona in loaded.values()}
        values = list({value for value in values if value and value not in held})
        if not values:
            continue
        matching, params = _matching(account_id, column, values)
        sql = f"SELECT {names} {matching} ORDER BY p.id"
        if lock and is_postgres():
            # Two imports touching one persona serialize on its row instead of overwriting each other.
            sql += " FOR UPDATE OF p"
        for record in db.execute_sql(sql, params).fetchall():
            if record[0] not in index.by_id and record[0] not in loaded:
                loaded[record[0]] = _state(dict(zip(SELECT_COLUMNS, record)))
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
    return (*_column_values(persona), now)


def write_personas(account_id: int, changed: list[dict], created: list[dict], now) -> None:
    """Write updated and new personas set-based, give new ones their ids, and add new attributes."""
    table = Persona._meta.table_name
    # Free changed keys first: a chunk may move a phone from one persona to another.
    rekeyed = [(p["id"], None if p["email"] != p["loaded_email"] else p["email"],
                None if p["phone"] != p["loaded_phone"] else p["phone"])
               for p in changed if (p["email"], p["phone"]) != (p["loaded_email"], p["loaded_phone"])]
    bulk.update_rows(table, ["email", "phone"], rekeyed)
    # Only the columns some persona of the chunk changed: a points import sends a few, not all thirty.
    names = _changed_columns(changed)
    values = _getter(names)
    bulk.update_rows(table, [*names, "updated_at"], [(p["id"], *values(p), now) for p in changed])
    unnumbered = [p for p in created if p["id"] is None]
    for persona, new_id in zip(unnumbered, new_ids(len(unnumbered))):
        persona["id"] = new_id
    bulk.insert_rows(table, ["id", "account_id", *PERSONA_COLUMNS, "updated_at", "created_at"],
                     [(p["id"], account_id, *_values(p, now), now) for p in created])
    new_attributes = [(p["id"], name) for p in changed + created
                      for name in sorted(p["attributes"] - p.get("loaded_attributes", set()))]
    bulk.insert_rows(PersonaAttribute._meta.table_name, ["persona_id", "name"], new_attributes,
                     ignore_conflicts=True)


def _getter(names: list[str]):
    """persona -> the tuple of its values for names (itemgetter returns a bare value for one name)."""
    if len(names) == 1:
        return lambda persona: (persona[names[0]],)
    return itemgetter(*names) if names else lambda persona: ()


def _changed_columns(personas: list[dict]) -> list[str]:
    """The persona columns whose value differs from the loaded one in at least one of personas."""
    changed = set()
    for persona in personas:
        current = _column_values(persona)
        if current != persona["loaded"]:
            changed.update(name for name, new, old in zip(PERSONA_COLUMNS, current, persona["loaded"]) if new != old)
    return [name for name in PERSONA_COLUMNS if name in changed]
