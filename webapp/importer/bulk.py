"""Set-based writes through Peewee's connection: COPY / VALUES lists on PostgreSQL, executemany on SQLite."""
import csv
import io

from webapp.db import db, is_postgres

# PostgreSQL: rows per VALUES statement; large enough to be set-based, small enough for one packet.
PAGE = 2000


def _copy_text(value) -> str:
    if value is None:
        return r"\N"
    if value is True or value is False:
        return "t" if value else "f"
    return str(value)


def insert_rows(table: str, columns: list[str], rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """Insert rows into table in a few statements (COPY on PostgreSQL when no conflict can occur)."""
    if not rows:
        return
    cursor = db.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    if is_postgres():
        if ignore_conflicts:
            from psycopg2.extras import execute_values

            execute_values(cursor, f'INSERT INTO "{table}" ({names}) VALUES %s ON CONFLICT DO NOTHING', rows,
                           page_size=PAGE)
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([_copy_text(v) for v in row])
        buffer.seek(0)
        cursor.copy_expert(f'COPY "{table}" ({names}) FROM STDIN WITH (FORMAT csv, NULL \'\\N\')', buffer)
        return
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    marks = ", ".join("?" for _ in columns)
    cursor.executemany(f'{verb} INTO "{table}" ({names}) VALUES ({marks})', rows)


def update_rows(table: str, columns: list[str], rows: list[tuple], casts: dict[str, str]) -> None:
    """Update rows by id: each row is (id, *values for columns); casts names PostgreSQL types."""
    if not rows:
        return
    cursor = db.cursor()
    if is_postgres():
        from psycopg2.extras import execute_values

        sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
        names = ", ".join(f'"{c}"' for c in ("id", *columns))
        template = "(" + ", ".join(f"%s::{casts.get(c, 'text')}" for c in ("id", *columns)) + ")"
        execute_values(
            cursor, f'UPDATE "{table}" AS t SET {sets} FROM (VALUES %s) AS v ({names}) WHERE t.id = v.id',
            rows, template=template, page_size=PAGE)
        return
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    cursor.executemany(f'UPDATE "{table}" SET {sets} WHERE id = ?', [(*row[1:], row[0]) for row in rows])
