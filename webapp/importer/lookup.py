"""Personas by the thousand, as columns: which personas a file's keys match, their state and its version.

A persona's version says whether it changed since it was read: PostgreSQL's row version (xmin), which
every write renews whoever makes it; on SQLite, where one writer works at a time, its updated_at.
"""
import io
import json
import os
import tempfile
from collections import defaultdict

import polars as pl

from webapp.db import db, is_postgres
from webapp.importer import bulk, staging
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
    """The state of the account's personas with these ids, on SQLite: every import column, attributes, version.

    (PostgreSQL reads a whole file's by one scan: PartStates.)
    """
    ids = sorted({int(i) for i in ids if i is not None})
    schema = state_schema()
    if not ids:
        return pl.DataFrame(schema=schema)
    attributes = (f"(SELECT group_concat(name, char({ord(NAME_JOIN)})) FROM (SELECT a.name FROM \"{ATTRIBUTES}\" "
                  "AS a WHERE a.persona_id = p.id ORDER BY a.name))")
    casts = ", ".join(f'CAST(p."{c}" AS TEXT)' for c in ("id", *PERSONA_COLUMNS))
    sql = (f"SELECT {casts}, {attributes}, {_version()} FROM \"{PERSONAS}\" AS p "
           "WHERE p.id IN (SELECT value FROM json_each(?)) AND p.account_id = ?")
    rows = db.execute_sql(sql, [json.dumps(ids), account_id]).fetchall()
    return _typed(pl.DataFrame(rows, schema={c: pl.String for c in schema}, orient="row"), schema)


class PartStates:
    """The state of the personas each part of a file matches, read by one scan of the table and kept in a
    temp file by part, for the parts to take in turn (a context manager).

    Part by part, by "= ANY" of their ids, 750,000 personas cost ~9 µs an id in index probes; one join over
    the table reads them all in a few seconds. Its COPY goes to a file as it comes, marked off in batches; polars reads a batch at a time and
    keeps its rows, split by part, as compressed pieces, so no more than a batch is held in memory. SQLite reads each
    part's state when asked.
    """

    TABLE = "import_state_ids"
    BATCH_ROWS = 20_000

    def __init__(self, account_id: int, wanted: pl.DataFrame):
        """wanted: (id, part), the personas whose state each part needs."""
        self.account_id, self.schema = account_id, state_schema()
        self.pieces: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.ids_of, self.file = None, None
        if not is_postgres():
            self.ids_of = {key[0]: frame["id"] for key, frame in wanted.partition_by("part", as_dict=True).items()}
        elif not wanted.is_empty():
            self.file = tempfile.TemporaryFile()
            self._read(wanted)

    def __enter__(self) -> "PartStates":
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()

    def _read(self, wanted: pl.DataFrame) -> None:
        names = ", ".join(f'p."{c}"' for c in ("id", *PERSONA_COLUMNS))
        sql = (f'SELECT w.part, {names}, a.attributes, {_version()} AS version FROM {self.TABLE} AS w '
               f'JOIN "{PERSONAS}" AS p ON p.id = w.id AND p.account_id = {int(self.account_id)} '
               # The names unordered, polars sorts them: PostgreSQL 15 sorts each persona's few on its own, slower.
               f"LEFT JOIN (SELECT persona_id, string_agg(name, E'{NAME_JOIN}') AS attributes "
               f'FROM "{ATTRIBUTES}" WHERE persona_id IN (SELECT id FROM {self.TABLE}) GROUP BY persona_id) AS a '
               "ON a.persona_id = p.id")
        with tempfile.TemporaryFile() as text, db.atomic():
            db.execute_sql(f"CREATE TEMP TABLE {self.TABLE} (id bigint, part integer) ON COMMIT DROP")
            bulk.insert_frame(self.TABLE, wanted.select(pl.col("id"), pl.col("part").cast(pl.Int32)))
            db.execute_sql(f"ANALYZE {self.TABLE}")
            batches = _Batches(text, self.BATCH_ROWS)
            db.cursor().copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", batches, size=1 << 20)
            columns = {"part": pl.Int32, **{name: pl.String for name in self.schema}}
            for start, end in batches.bounds():
                batch = pl.read_csv(io.BytesIO(os.pread(text.fileno(), end - start, start)), has_header=False,
                                    schema=columns)
                for key, piece in batch.partition_by("part", as_dict=True, include_key=False).items():
                    data = staging.encode(piece)
                    self.pieces[key[0]].append((self.file.tell(), len(data)))
                    self.file.write(data)
        self.file.flush()

    def of(self, part: int) -> pl.DataFrame:
        """The state of the personas this part needs (once: its pieces are let go)."""
        if self.ids_of is not None:
            return load_state(self.account_id, self.ids_of.get(part, pl.Series(dtype=pl.Int64)).to_list())
        pieces = [staging.decode(os.pread(self.file.fileno(), length, offset))
                  for offset, length in self.pieces.pop(part, [])]
        if not pieces:
            return pl.DataFrame(schema=self.schema)
        return _typed(pl.concat(pieces), self.schema).with_columns(pl.col("attributes").list.sort())


class _Batches:
    """A COPY's rows to a file, where every rows rows ends a batch (COPY hands over one row a write)."""

    def __init__(self, file, rows: int):
        self.file, self.rows, self.count, self.ends = file, rows, 0, []

    def write(self, row: bytes) -> None:
        self.file.write(row)
        self.count += 1
        if self.count == self.rows:
            self.ends.append(self.file.tell())
            self.count = 0

    def bounds(self) -> list[tuple[int, int]]:
        """(start, end) of each batch in the file."""
        self.file.flush()
        ends = [*self.ends, self.file.tell()] if self.count else self.ends
        return list(zip([0, *ends], ends))


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
