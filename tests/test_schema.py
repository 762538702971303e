"""init-db upgrades an existing database in place: each migration runs once, and the import path's indexes are right."""
import pytest

from webapp.db import db, is_postgres
from webapp.models import MODELS, Persona, SchemaVersion
from webapp.schema import CURRENT_VERSION, REDUNDANT_INDEXES, init_schema


def _persona_indexes() -> set[str]:
    return {index.name for index in db.get_indexes(Persona._meta.table_name)}


def _all_indexes() -> set[str]:
    return {index.name for model in MODELS for index in db.get_indexes(model._meta.table_name)}


def test_a_new_database_has_no_index_another_index_already_serves(app):
    assert "persona_account_id" not in _persona_indexes()
    assert {"persona_account_id_email", "persona_account_id_phone"} <= _persona_indexes()
    assert _all_indexes().isdisjoint({*REDUNDANT_INDEXES, "audit_entry_account_id"})
    assert {"staged_chunk_upload_id_kind_first_seq", "audience_member_audience_id_persona_id"} <= _all_indexes()


def test_a_version_2_database_loses_the_redundant_and_unused_indexes(app):
    db.execute_sql('CREATE INDEX "upload_chunk_upload_id" ON "upload_chunk" ("upload_id")')
    db.execute_sql('CREATE INDEX "audience_member_audience_id" ON "audience_member" ("audience_id")')
    db.execute_sql('CREATE INDEX "audit_entry_account_id" ON "audit_entry" ("account_id")')
    SchemaVersion.update(version=2).execute()

    assert init_schema() == CURRENT_VERSION
    assert _all_indexes().isdisjoint({*REDUNDANT_INDEXES, "audit_entry_account_id"})


def test_a_version_1_database_loses_the_bare_account_index_and_is_marked_current(app):
    db.execute_sql('CREATE INDEX "persona_account_id" ON "persona" ("account_id")')
    SchemaVersion.update(version=1).execute()

    assert init_schema() == CURRENT_VERSION
    assert "persona_account_id" not in _persona_indexes()
    assert SchemaVersion.get().version == CURRENT_VERSION
    assert init_schema() == CURRENT_VERSION  # idempotent


def test_a_version_4_database_loses_its_staged_rows_table(app):
    db.execute_sql('CREATE TABLE "staged_row" (id INTEGER PRIMARY KEY, upload_id INTEGER, seq INTEGER, '
                   'line INTEGER, data TEXT)')
    SchemaVersion.update(version=4).execute()

    assert init_schema() == CURRENT_VERSION
    assert "staged_row" not in db.get_tables()
    assert {"staged_chunk", "problem_row"} <= set(db.get_tables())


def test_the_bulk_tables_carry_no_foreign_keys_on_postgresql(app):
    """Each checked row cost more than the row: the import core keeps these tables consistent itself."""
    if not is_postgres():
        pytest.skip("a PostgreSQL schema choice")
    for table in ("persona", "persona_attribute", "audience_member", "audit_entry"):
        assert db.get_foreign_keys(table) == [], table
    assert [fk.dest_table for fk in db.get_foreign_keys("import_problem")] == ["imports"]


def test_uploaded_files_are_stored_with_fast_compression_on_postgresql(app):
    if not is_postgres():
        pytest.skip("a PostgreSQL storage setting")
    row = db.execute_sql("SELECT attcompression FROM pg_attribute "
                         "WHERE attrelid = 'upload_chunk'::regclass AND attname = 'data'").fetchone()
    assert row[0] in ("l", "")  # lz4, or the server default where lz4 is not built in


def test_an_import_refreshes_stale_planner_statistics_of_the_persona_table(app, account_a, make_persona, monkeypatch):
    """Without them PostgreSQL believes a just-imported account is empty and reads all of it per chunk."""
    from webapp.importer import personas_io

    if not is_postgres():
        pytest.skip("PostgreSQL planner statistics")
    for n in range(3):
        make_persona(account_a, email=f"p{n}@example.com")
    monkeypatch.setattr(personas_io, "STALE_STATISTICS_ROWS", 0)

    personas_io.refresh_statistics()

    assert db.execute_sql("SELECT reltuples FROM pg_class WHERE relname = 'persona'").fetchone()[0] == 3


def test_a_version_10_database_gets_the_mapping_notes_and_draft_touch_columns(app, account_a, owner_a):
    from webapp.models import Import, RememberedMapping

    upload = Import.create(account=account_a, user=owner_a, file_name="before.csv", mapping={"Email": "email"})
    RememberedMapping.create(account=account_a, header_key="email", target="email")
    for table, column in (("imports", "prefilled"), ("imports", "touched_at"), ("remembered_mapping", "import_id"),
                          ("remembered_mapping", "remembered_at")):
        db.execute_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    SchemaVersion.update(version=10).execute()

    assert init_schema() == CURRENT_VERSION
    row = Import.get_by_id(upload.id)  # the draft kept, with nothing pre-filled and its upload as its last touch
    assert (row.file_name, row.mapping, row.prefilled, row.touched_at) == ("before.csv", {"Email": "email"}, {}, None)
    memory = RememberedMapping.get()
    assert (memory.target, memory.import_id, memory.remembered_at) == ("email", None, None)
    assert init_schema() == CURRENT_VERSION  # idempotent
