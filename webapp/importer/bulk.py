"""Set-based writes through Peewee's connection: COPY and unnested arrays on PostgreSQL, executemany on SQLite."""
import io
import json
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
