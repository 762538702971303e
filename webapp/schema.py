"""Create or upgrade the schema: idempotent, with later changes as playhouse.migrate steps."""
import re
from contextlib import contextmanager

from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from webapp.db import db, is_postgres
from webapp.models import MODELS, Import, RememberedMapping, SchemaVersion, StagedChunk

REDUNDANT_INDEXES = ("upload_chunk_upload_id", "staged_row_upload_id", "import_problem_upload_id",
                     "persona_attribute_persona_id", "audience_member_audience_id")
# Each step upgrades from the version before it; append, never edit a released step.
MIGRATIONS: list = [
    # 1 -> 2: the persona table's bare account index goes (see Persona.account).
    lambda migrator: db.execute_sql('DROP INDEX IF EXISTS "persona_account_id"'),
    # 2 -> 3: single-column indexes that an index starting with the same column already serves;
    # every staged row, audience member and attribute an import writes paid for them.
    lambda migrator: [db.execute_sql(f'DROP INDEX IF EXISTS "{name}"') for name in REDUNDANT_INDEXES],
    # 3 -> 4: the audit entries' account index, which no query uses (see AuditEntry.account).
    lambda migrator: db.execute_sql('DROP INDEX IF EXISTS "audit_entry_account_id"'),
    # 4 -> 5: staged rows become compressed column chunks (the new tables come from create_tables).
    lambda migrator: db.execute_sql('DROP TABLE IF EXISTS "staged_row"'),
    # 5 -> 6: the apply goes by units (applied_unit comes from create_tables), their size fixed on the import.
    lambda migrator: _add_column(migrator, "imports", "unit_rows", Import.unit_rows),
    # 6 -> 7: kept chunks hold one kind of row each, so an apply unit reads only its own.
    lambda migrator: [db.execute_sql('DELETE FROM "staged_chunk"'),
                      _add_column(migrator, "staged_chunk", "kind", StagedChunk.kind),
                      db.execute_sql('DROP INDEX IF EXISTS "staged_chunk_upload_id_first_seq"'),
                      db.execute_sql('CREATE UNIQUE INDEX IF NOT EXISTS "staged_chunk_upload_id_kind_first_seq" '
                                     'ON "staged_chunk" ("upload_id", "kind", "first_seq")')],
    # 7 -> 8: every move of an import bumps its version (see importer/states.py). Plain SQL: on SQLite,
    # playhouse would rebuild the table to add NOT NULL, and dropping the old one cascades to its uploads.
    lambda migrator: (None if "version" in {column.name for column in db.get_columns("imports")} else
                      db.execute_sql('ALTER TABLE "imports" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1')),
    # 8 -> 9: ids are never reused (SQLite's INTEGER PRIMARY KEY took the largest + 1, so a removed upload's
    # number went to the next file).
    lambda migrator: None if is_postgres() else [_autoincrement(table) for table in NEVER_REUSED],
    # 9 -> 10: only runs that died without progress count toward the halt (see importer/lease.py).
    lambda migrator: [db.execute_sql(f'ALTER TABLE "imports" ADD COLUMN "{name}" INTEGER NOT NULL DEFAULT 0')
                      for name in ("run_checkpoint", "stalls")
                      if name not in {column.name for column in db.get_columns("imports")}],
    # 10 -> 11: the Map step names the import a remembered mapping came from; drafts untouched for days expire.
    lambda migrator: [_add_column(migrator, "remembered_mapping", "import_id", RememberedMapping.import_id),
                      _add_column(migrator, "remembered_mapping", "remembered_at", RememberedMapping.remembered_at),
                      _add_column(migrator, "imports", "touched_at", Import.touched_at),
                      None if "prefilled" in {column.name for column in db.get_columns("imports")} else
                      db.execute_sql("""ALTER TABLE "imports" ADD COLUMN "prefilled" TEXT NOT NULL DEFAULT '{}'""")],
    # 11 -> 12: the sheet picker shows each sheet's row count. Plain SQL, as in 7 -> 8.
    lambda migrator: (None if "sheet_rows" in {column.name for column in db.get_columns("imports")} else
                      db.execute_sql("""ALTER TABLE "imports" ADD COLUMN "sheet_rows" TEXT NOT NULL DEFAULT '{}'""")),
]
# Foreign keys of the tables an import fills by the million. A checked row (one trigger and one lookup
# each) cost more than the row itself: a million new personas with their audit entries and audience
# members took 35 s to COPY with them and 13 s without. The import core writes these rows from ids it
# has just read or made, and deletes dependent rows itself where it deletes personas or audiences.
BULK_FOREIGN_KEYS = (("persona", "persona_account_id_fkey"), ("persona_attribute", "persona_attribute_persona_id_fkey"),
                     ("audience_member", "audience_member_audience_id_fkey"),
                     ("audience_member", "audience_member_persona_id_fkey"),
                     ("audit_entry", "audit_entry_account_id_fkey"))
CURRENT_VERSION = 1 + len(MIGRATIONS)
# Tables whose ids are never reused, with the columns of other tables that name those ids without a foreign
# key: the ids still named there are never handed out again either.
NEVER_REUSED = {
    "imports": (("audit_entry", "import_id"), ("audience", "source_import"), ("persona", "sms_consent_import"),
                ("persona", "email_consent_import")),
    "persona": (("audit_entry", "persona_id"),),
    "audience": (("imports", "audience_id"),),
    "user": (("audit_entry", "user_id"), ("imports", "reverted_by"), ("persona", "sms_consent_user"),
             ("persona", "email_consent_user")),
}


def _add_column(migrator, table: str, name: str, field) -> None:
    """Add a column unless the table has it already (tables made by this version's create_tables do)."""
    if name not in {column.name for column in db.get_columns(table)}:
        migrate(migrator.add_column(table, name, field))


def _autoincrement(table: str) -> None:
    """Rebuild a SQLite table with an AUTOINCREMENT id (SQLite cannot alter one), continuing after every id in use.

    SQLite's own way: a new table, the rows copied, the old one dropped, the new one renamed; foreign keys
    are off meanwhile (see init_schema), so dropping the old table deletes nothing that points at it.
    """
    (create,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
    if "AUTOINCREMENT" in create.upper():
        return
    indexes = [sql for (sql,) in db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", [table])]
    rebuilt = f"{table}__autoincrement"
    create = re.sub(r'^CREATE TABLE "?\w+"?', f'CREATE TABLE "{rebuilt}"', create)
    create, found = re.subn(r'("id" INTEGER NOT NULL PRIMARY KEY)', r"\1 AUTOINCREMENT", create, count=1)
    if not found:
        raise RuntimeError(f"unexpected id column in table {table}")
    db.execute_sql(create)
    db.execute_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "{table}"')
    db.execute_sql(f'DROP TABLE "{table}"')
    db.execute_sql(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    for sql in indexes:
        db.execute_sql(sql)
    named = [f'(SELECT MAX("{column}") FROM "{other}")' for other, column in NEVER_REUSED[table]]
    (largest,) = db.execute_sql(f'SELECT MAX(COALESCE(x, 0)) FROM (SELECT MAX(id) AS x FROM "{table}" '
                                + "".join(f" UNION ALL SELECT {sql}" for sql in named) + ")").fetchone()
    db.execute_sql("DELETE FROM sqlite_sequence WHERE name = ?", [table])
    db.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", [table, largest or 0])


@contextmanager
def _foreign_keys_off():
    """SQLite without foreign-key enforcement for the block (a table rebuild must not cascade), checked after."""
    if is_postgres():
        yield
        return
    db.execute_sql("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set before it begins
    try:
        yield
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")


def migrator():
    """The playhouse migrator for the bound database."""
    return PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)


def _fast_compression() -> str:
    """lz4 where this PostgreSQL was built with it, else its default."""
    row = db.execute_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    return "lz4" if row.fetchone()[0] else "default"


def init_schema() -> int:
    """Create missing tables, run pending migrations, and return the schema version."""
    with _foreign_keys_off(), db.atomic():
        db.create_tables(MODELS, safe=True)
        if is_postgres():
            # Imports rewrite persona rows: free room on each page lets PostgreSQL update in place (HOT).
            db.execute_sql('ALTER TABLE "persona" SET (fillfactor = 70)')
            # Uploaded bytes: lz4 stores a 100 MB file in about a second, the default pglz takes three.
            db.execute_sql(f'ALTER TABLE "upload_chunk" ALTER COLUMN "data" SET COMPRESSION {_fast_compression()}')
            # Kept column chunks come compressed already: compressing them again only costs time.
            db.execute_sql('ALTER TABLE "staged_chunk" ALTER COLUMN "data" SET STORAGE EXTERNAL')
            for table, constraint in BULK_FOREIGN_KEYS:
                db.execute_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{constraint}"')
        row = SchemaVersion.select().first()
        if row is None:
            row = SchemaVersion.create(version=CURRENT_VERSION)
        for step in MIGRATIONS[row.version - 1:]:
            step(migrator())
        if not is_postgres() and db.execute_sql("PRAGMA foreign_key_check").fetchall():
            raise RuntimeError("the upgraded database breaks a foreign key; nothing was changed")
        if row.version != CURRENT_VERSION:
            row.version = CURRENT_VERSION
            row.save()
    return row.version
