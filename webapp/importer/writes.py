"""What an import writes, set-based from frames: problems, problem rows' cells, personas, attributes, audit
entries and audience members (COPY on PostgreSQL, executemany on SQLite)."""
import polars as pl

from webapp.db import db, is_postgres
from webapp.importer import bulk
from webapp.importer.fields import PERSONA_COLUMNS
from webapp.models import AudienceMember, AuditEntry, ImportProblem, Persona, PersonaAttribute, ProblemRow

AUDIT_COLUMNS = ("account_id", "persona_id", "import_id", "row", "user_id", "created_at", "action", "changes")


def problems(import_id: int, source: str, found: pl.DataFrame) -> None:
    """Store problems (line, column, value, reason, severity) found by source: parse, review or apply."""
    if found.is_empty():
        return
    bulk.insert_frame(ImportProblem._meta.table_name, found.select(
        upload_id=pl.lit(import_id, dtype=pl.Int64), source=pl.lit(source), line="line", column_name="column",
        value=pl.col("value").fill_null(""), reason="reason", severity="severity"))


def problem_cells(import_id: int, rows: list[tuple[int, list[str]]]) -> None:
    """Keep the original cells of rows with problems, for the problem report."""
    if rows:
        bulk.insert_rows(ProblemRow._meta.table_name, ["upload_id", "line", "cells"],
                         [(import_id, line, bulk.to_json(cells)) for line, cells in rows], ignore_conflicts=True)


def new_ids(count: int) -> list[int]:
    """Ids for count new personas, in order, taken before inserting them (reading them back cost a query by key)."""
    if not count:
        return []
    table = Persona._meta.table_name
    if is_postgres():
        (sequence,) = db.execute_sql("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()
        low, high = db.execute_sql("SELECT min(v), max(v) FROM (SELECT nextval(%s::regclass) AS v "
                                   "FROM generate_series(1, %s)) AS taken", [sequence, count]).fetchone()
        if high - low + 1 == count:
            return list(range(low, high + 1))  # no other import took one between ours: a block
        rows = db.execute_sql("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
        return sorted(new_id for (new_id,) in rows.fetchall())
    # SQLite: the chunk's transaction holds the write lock, so nobody else takes the ids after the largest
    # ever given (sqlite_sequence: AUTOINCREMENT's record), never an id a deleted persona had.
    largest = db.execute_sql(f'SELECT MAX(COALESCE(MAX(id), 0), COALESCE((SELECT seq FROM sqlite_sequence '
                             f'WHERE name = ?), 0)) FROM "{table}"', [table]).fetchone()[0]
    return list(range(largest + 1, largest + 1 + count))


def create_personas(account_id: int, personas: pl.DataFrame, now) -> None:
    """Insert new personas, numbered ("id"), with every persona column and their attributes."""
    bulk.insert_frame(Persona._meta.table_name, personas.select(
        "id", pl.lit(account_id, dtype=pl.Int64).alias("account_id"), *PERSONA_COLUMNS,
        pl.lit(now).alias("updated_at"), pl.lit(now).alias("created_at")))
    add_attributes(personas, ignore_conflicts=False)


def update_personas(personas: pl.DataFrame, columns: list[str], now, checked: bool) -> set[int]:
    """Write changed columns of existing personas; returns the ids written.

    checked: only where a persona's version is still the one read (PostgreSQL; SQLite's chunk holds the lock).
    """
    if personas.is_empty():
        return set()
    frame = personas.select("id", *columns, pl.lit(now).alias("updated_at"),
                            *(["version"] if checked and is_postgres() else []))
    written = bulk.update_frame(Persona._meta.table_name, frame,
                                version="version" if checked and is_postgres() else None)
    # A persona written here still had the attributes read with its version (every gain rewrites the
    # persona's row), so its new names are not there yet: a plain COPY, not an INSERT that checks each.
    add_attributes(personas.filter(pl.col("id").is_in(list(written))), ignore_conflicts=False)
    return written


def add_attributes(personas: pl.DataFrame, ignore_conflicts: bool) -> None:
    """Insert each persona's "added" attribute names."""
    added = personas.select(persona_id="id", name="added").explode("name").drop_nulls("name")
    bulk.insert_frame(PersonaAttribute._meta.table_name, added, ignore_conflicts=ignore_conflicts)


def audit(upload, entries: pl.DataFrame, now) -> None:
    """One audit entry per created or updated row: entries has persona_id, row (line), action, changes."""
    bulk.insert_frame(AuditEntry._meta.table_name, entries.select(
        account_id=pl.lit(upload.account_id, dtype=pl.Int64), persona_id="persona_id",
        import_id=pl.lit(upload.id, dtype=pl.Int64), row="row", user_id=pl.lit(upload.user_id, dtype=pl.Int64),
        created_at=pl.lit(now), action="action", changes="changes"))


def audience(audience_id: int, persona_ids: list[int], ignore_conflicts: bool) -> None:
    """Add personas to the import's audience."""
    frame = pl.DataFrame({"persona_id": sorted(set(persona_ids))}, schema={"persona_id": pl.Int64})
    bulk.insert_frame(AudienceMember._meta.table_name,
                      frame.select(audience_id=pl.lit(audience_id, dtype=pl.Int64), persona_id="persona_id"),
                      ignore_conflicts=ignore_conflicts)
