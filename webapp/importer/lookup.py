"""Personas by the thousand, as columns: which personas a file's keys match, their state and its version.

A persona's version says whether it changed since it was read: PostgreSQL's row version (xmin), which
every write renews whoever makes it; on SQLite, where one writer works at a time, its updated_at.
"""
import io
import json

import polars as pl

from webapp.db import db, is_postgres
from webapp.importer import bulk
from webapp.importer.fields import BOOL_COLUMNS, DATE_COLUMNS, PERSONA_COLUMNS
from webapp.importer.parse import NAME_JOIN
from webapp.models import Persona, PersonaAttribute

PERSONAS = Persona._meta.table_name
ATTRIBUTES = PersonaAttribute._meta.table_name
TIME_COLUMNS = tuple(c for c in PERSONA_COLUMNS if c.endswith("_consent_at"))
INT_COLUMNS = ("points",) + tuple(c for c in PERSONA_COLUMNS if c.endswith(("_consent_import", "_consent_user")))
MATCH_SCHEMA = {"seq": pl.Int64, "email_id": pl.Int64, "phone_id": pl.Int64}


def state_schema() -> dict:
    """The columns of a persona's state and their types."""
    schema = {"id": pl.Int64}
    for name in PERSONA_COLUMNS:
        schema[name] = (pl.Date if name in DATE_COLUMNS else pl.Boolean if name in BOOL_COLUMNS
                        else pl.Datetime("us") if name in TIME_COLUMNS else pl.Int64 if name in INT_COLUMNS
                        else pl.String)
    return {**schema, "attributes": pl.List(pl.String), "version": pl.String}


def _version() -> str:
    return "p.xmin::text" if is_postgres() else "CAST(p.updated_at AS TEXT)"


def has_personas(account_id: int) -> bool:
    """True when the account has any persona (else there is nothing to match)."""
    return Persona.select().where(Persona.account == account_id).exists()


class Matcher:
    """A file's keys, gathered batch by batch in a temporary table, then matched to the account's personas
    by one join: a million keys, one pass over the personas, and nothing of them held in memory meanwhile."""

    TABLE = "import_keys"

    def __init__(self, account_id: int):
        self.account_id, self.active = account_id, has_personas(account_id)
        if self.active:
            db.execute_sql(f"DROP TABLE IF EXISTS {self.TABLE}")
            db.execute_sql(f"CREATE TEMP TABLE {self.TABLE} (seq bigint, email text, phone text)")

    def add(self, keys: pl.DataFrame) -> None:
        """Gather rows' keys (seq, email, phone)."""
        if self.active:
            bulk.insert_frame(self.TABLE, keys.select("seq", "email", "phone").filter(
                pl.col("email").is_not_null() | pl.col("phone").is_not_null()))

    def matches(self) -> pl.DataFrame:
        """seq, email_id, phone_id: the personas holding each row's email and phone, for rows matching one."""
        if not self.active:
            return pl.DataFrame(schema=MATCH_SCHEMA)
        account = int(self.account_id)
        joined = (f"SELECT k.seq, pe.id AS email_id, pp.id AS phone_id FROM {self.TABLE} AS k "
                  f'LEFT JOIN "{PERSONAS}" AS pe ON pe.account_id = {account} AND pe.email = k.email '
                  f'LEFT JOIN "{PERSONAS}" AS pp ON pp.account_id = {account} AND pp.phone = k.phone '
                  "WHERE pe.id IS NOT NULL OR pp.id IS NOT NULL")
        with db.atomic():
            if is_postgres():
                db.execute_sql(f"ANALYZE {self.TABLE}")
                found = pl.read_csv(io.BytesIO(bulk.copy_out(joined, [])), schema=MATCH_SCHEMA)
            else:
                found = pl.DataFrame(db.execute_sql(joined).fetchall(), schema=MATCH_SCHEMA, orient="row")
            db.execute_sql(f"DROP TABLE {self.TABLE}")
        return found


def load_state(account_id: int, ids) -> pl.DataFrame:
    """The state of the account's personas with these ids: every import column, attributes, version."""
    ids = sorted({int(i) for i in ids if i is not None})
    schema = state_schema()
    if not ids:
        return pl.DataFrame(schema=schema)
    names = ", ".join(f'p."{c}"' for c in ("id", *PERSONA_COLUMNS))
    if is_postgres():
        # "= ANY" of a sorted array: a bitmap scan of the primary key, faster here than a join on unnest.
        sql = (f"SELECT {names}, {_version()} AS version FROM \"{PERSONAS}\" AS p "
               "WHERE p.id = ANY(%s::bigint[]) AND p.account_id = %s")
        array = bulk.id_array(ids)
        text = pl.read_csv(io.BytesIO(bulk.copy_out(sql, [array, account_id])), infer_schema=False)
        named = (f"SELECT persona_id AS id, string_agg(name, E'{NAME_JOIN}' ORDER BY name) AS attributes "
                 f'FROM "{ATTRIBUTES}" WHERE persona_id = ANY(%s::bigint[]) GROUP BY persona_id')
        names_of = pl.read_csv(io.BytesIO(bulk.copy_out(named, [array])), infer_schema=False,
                               schema_overrides={"id": pl.String, "attributes": pl.String})
        text = text.join(names_of, on="id", how="left").select(list(schema))
    else:
        attributes = (f"(SELECT group_concat(name, char({ord(NAME_JOIN)})) FROM (SELECT a.name FROM \"{ATTRIBUTES}\" "
                      "AS a WHERE a.persona_id = p.id ORDER BY a.name))")
        casts = ", ".join(f'CAST(p."{c}" AS TEXT)' for c in ("id", *PERSONA_COLUMNS))
        sql = (f"SELECT {casts}, {attributes}, {_version()} FROM \"{PERSONAS}\" AS p "
               "WHERE p.id IN (SELECT value FROM json_each(?)) AND p.account_id = ?")
        rows = db.execute_sql(sql, [json.dumps(ids), account_id]).fetchall()
        text = pl.DataFrame(rows, schema={c: pl.String for c in schema}, orient="row")
    return _typed(text, schema)


def _typed(text: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """A frame of text (COPY's CSV, SQLite's values as text) in the state's types."""
    columns = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype == pl.Boolean:
            # A NULL boolean (a persona never given loyalty membership) stays NULL.
            columns.append(pl.when(column.is_null()).then(None).otherwise(column.is_in(["t", "1", "true"])).alias(name))
        elif dtype == pl.Date:
            columns.append(column.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias(name))
        elif isinstance(dtype, pl.Datetime):
            columns.append(column.str.to_datetime(time_unit="us", strict=False).alias(name))
        elif isinstance(dtype, pl.List):
            columns.append(column.str.split(NAME_JOIN).fill_null(pl.lit([], dtype=pl.List(pl.String))).alias(name))
        else:
            columns.append(column.cast(dtype).alias(name))
    return text.select(columns)


def stale(account_id: int, ids: list[int], versions: list[str]) -> set[int]:
    """The ids whose persona changed (or went) since it had these versions."""
    if not ids:
        return set()
    if is_postgres():
        sql = (f'SELECT k.id FROM unnest(%s::bigint[], %s::text[]) AS k(id, version) LEFT JOIN "{PERSONAS}" AS p '
               f"ON p.id = k.id AND p.account_id = %s WHERE p.id IS NULL OR {_version()} <> k.version")
        return {row_id for (row_id,) in db.execute_sql(sql, [bulk.id_array(ids), versions, account_id]).fetchall()}
    sql = (f'SELECT p.id, {_version()} FROM "{PERSONAS}" AS p WHERE p.id IN (SELECT value FROM json_each(?)) '
           "AND p.account_id = ?")
    current = dict(db.execute_sql(sql, [json.dumps(ids), account_id]).fetchall())
    return {i for i, v in zip(ids, versions) if current.get(i) != v}
