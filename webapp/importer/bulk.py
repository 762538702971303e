"""Set-based writes through Peewee's connection: COPY and unnested arrays on PostgreSQL, executemany on SQLite."""
import io
import json
import struct
import zlib

from webapp.db import db, is_postgres

NULL = r"\N"
# One encoder for every staged row and audit entry: json.dumps with options builds a new one per call.
to_json = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False).encode


def _text(value) -> str:
    """A value in COPY's text format: \\N for NULL, text with backslash, tab and line breaks escaped."""
    if value is None:
        return NULL
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    return str(value)  # numbers, True/False and datetimes read back as they were


def _copy(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
    # COPY's text format, not CSV: the staged rows and audit entries are JSON, whose every quote CSV doubles.
    buffer = io.StringIO("".join("\t".join(map(_text, row)) + "\n" for row in rows))
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(f'COPY "{table}" ({names}) FROM STDIN', buffer)


def _staging_table(cursor, table: str, columns: list[str]) -> str:
    """A temporary copy of table's columns, dropped at commit, to COPY rows into."""
    staging = f"staging_{table}_{zlib.crc32(','.join(columns).encode()):08x}"
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" ON COMMIT DROP AS '
                   f'SELECT {names} FROM "{table}" WITH NO DATA')
    cursor.execute(f'TRUNCATE "{staging}"')
    return staging


def _array_type(value) -> str:
    """The PostgreSQL array type for a column whose first value is value (ids and names here)."""
    if isinstance(value, bool):
        return "boolean[]"
    return "bigint[]" if isinstance(value, int) else "text[]"


def insert_rows(table: str, columns: list[str], rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """Insert rows into table in a few statements (COPY on PostgreSQL)."""
    if not rows:
        return
    cursor = db.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    if is_postgres():
        if not ignore_conflicts:
            _copy(cursor, table, columns, rows)
            return
        # COPY has no ON CONFLICT: one statement over the columns as arrays (psycopg2 adapts a list in C;
        # a temp table and COPY, or a VALUES list built row by row, cost several times more).
        arrays = ", ".join(f"%s::{_array_type(value)}" for value in rows[0])
        cursor.execute(f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING',
                       [list(column) for column in zip(*rows)])
        return
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    marks = ", ".join("?" for _ in columns)
    cursor.executemany(f'{verb} INTO "{table}" ({names}) VALUES ({marks})', rows)


def update_rows(table: str, columns: list[str], rows: list[tuple]) -> None:
    """Update rows by id, each row being (id, *values for columns), in a few statements."""
    if not rows:
        return
    cursor = db.cursor()
    if is_postgres():
        staging = _staging_table(cursor, table, ["id", *columns])
        _copy(cursor, staging, ["id", *columns], rows)
        sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
        cursor.execute(f'UPDATE "{table}" AS t SET {sets} FROM "{staging}" AS s WHERE t.id = s.id')
        return
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    cursor.executemany(f'UPDATE "{table}" SET {sets} WHERE id = ?', [(*row[1:], row[0]) for row in rows])


# ---------------------------------------------------------------- frames (the columnar import path)

_COPY_SPECIAL = r"[\\\t\n\r]"


def _copy_text(frame) -> bytes:
    """A frame in COPY's text format: tab-separated, \\N for NULL, text with backslash, tab and line breaks escaped."""
    import polars as pl

    strings = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    escaped = frame.with_columns([
        pl.when(pl.col(c).str.contains(_COPY_SPECIAL)).then(
            pl.col(c).str.replace_all("\\", "\\\\", literal=True).str.replace_all("\t", "\\t", literal=True)
            .str.replace_all("\n", "\\n", literal=True).str.replace_all("\r", "\\r", literal=True))
        .otherwise(pl.col(c)) for c in strings])
    buffer = io.BytesIO()
    escaped.write_csv(buffer, include_header=False, separator="\t", quote_style="never", null_value=NULL,
                      datetime_format="%Y-%m-%d %H:%M:%S%.6f", date_format="%Y-%m-%d")
    return buffer.getvalue()


def insert_frame(table: str, frame, ignore_conflicts: bool = False) -> None:
    """Insert a frame's rows into table, its columns named as the table's (COPY on PostgreSQL)."""
    if frame.is_empty():
        return
    cursor = db.cursor()
    names = ", ".join(f'"{c}"' for c in frame.columns)
    if is_postgres():
        if not ignore_conflicts:
            cursor.copy_expert(f'COPY "{table}" ({names}) FROM STDIN', io.BytesIO(_copy_text(frame)))
            return
        staging = _staging_table(cursor, table, list(frame.columns))
        cursor.copy_expert(f'COPY "{staging}" ({names}) FROM STDIN', io.BytesIO(_copy_text(frame)))
        cursor.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{staging}" ON CONFLICT DO NOTHING')
        return
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    marks = ", ".join("?" for _ in frame.columns)
    cursor.executemany(f'{verb} INTO "{table}" ({names}) VALUES ({marks})', frame.iter_rows())


def update_frame(table: str, frame, version: str | None = None) -> set[int]:
    """Update rows by the frame's "id" with its other columns; returns the ids updated.

    version: a column of the frame holding each row's expected version (see lookup.VERSION): a row whose
    version changed since is left alone, and its id is not returned.
    """
    if frame.is_empty():
        return set()
    columns = [c for c in frame.columns if c not in ("id", version)]
    cursor = db.cursor()
    if is_postgres():
        staging = _staging_table_of(cursor, table, frame, version)
        names = ", ".join(f'"{c}"' for c in frame.columns)
        cursor.copy_expert(f'COPY "{staging}" ({names}) FROM STDIN', io.BytesIO(_copy_text(frame)))
        sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
        check = f' AND t.xmin::text = s."{version}"' if version else ""
        cursor.execute(f'UPDATE "{table}" AS t SET {sets} FROM "{staging}" AS s WHERE t.id = s.id{check} '
                       "RETURNING t.id")
        return {row_id for (row_id,) in cursor.fetchall()}
    # SQLite: the chunk's transaction holds the write lock, so the versions were checked under it already.
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    cursor.executemany(f'UPDATE "{table}" SET {sets} WHERE id = ?',
                       frame.select(*columns, "id").iter_rows())
    return set(frame["id"].to_list())


def _staging_table_of(cursor, table: str, frame, version: str | None) -> str:
    """A temporary table for a frame of table's columns (plus a text version column), dropped at commit."""
    columns = [c for c in frame.columns if c != version]
    staging = _staging_table(cursor, table, columns)
    if version:
        cursor.execute(f'ALTER TABLE "{staging}" ADD COLUMN IF NOT EXISTS "{version}" text')
    return staging


def copy_binary_row(table: str, columns: list[str], values: list[int | str | bytes]) -> None:
    """Insert one row by COPY in binary format: ints into 4-byte integer columns, text, bytes into bytea."""
    names = ", ".join(f'"{c}"' for c in columns)
    row = b"".join([b"PGCOPY\n\xff\r\n\x00", struct.pack(">iih", 0, 0, len(values)),
                    *map(_binary_field, values), struct.pack(">h", -1)])
    db.cursor().copy_expert(f'COPY "{table}" ({names}) FROM STDIN (FORMAT binary)', io.BytesIO(row))


def _binary_field(value: int | str | bytes) -> bytes:
    """A field of COPY's binary format: its length, then its bytes."""
    if isinstance(value, int):
        return struct.pack(">ii", 4, value)
    data = value.encode() if isinstance(value, str) else value
    return struct.pack(">i", len(data)) + data


def id_array(ids) -> str:
    """Integer ids as one PostgreSQL array literal: psycopg2 adapts a list element by element (2 µs each)."""
    return "{" + ",".join(map(str, ids)) + "}"


def copy_out(sql: str, params: list) -> bytes:
    """The rows of a query as CSV with a header (COPY … TO STDOUT on PostgreSQL)."""
    cursor = db.cursor()
    query = cursor.mogrify(sql, params).decode()
    buffer = io.BytesIO()
    cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    return buffer.getvalue()
