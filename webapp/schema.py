"""Create or upgrade the schema: idempotent, with later changes as playhouse.migrate steps."""
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from webapp.db import db, is_postgres
from webapp.models import MODELS, Import, SchemaVersion, StagedChunk

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


def _add_column(migrator, table: str, name: str, field) -> None:
    """Add a column unless the table has it already (tables made by this version's create_tables do)."""
    if name not in {column.name for column in db.get_columns(table)}:
        migrate(migrator.add_column(table, name, field))


def migrator():
    """The playhouse migrator for the bound database."""
    return PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)


def _fast_compression() -> str:
    """lz4 where this PostgreSQL was built with it, else its default."""
    row = db.execute_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    return "lz4" if row.fetchone()[0] else "default"


def init_schema() -> int:
    """Create missing tables, run pending migrations, and return the schema version."""
    with db.atomic():
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
        if row.version != CURRENT_VERSION:
            row.version = CURRENT_VERSION
            row.save()
    return row.version
