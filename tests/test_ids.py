"""Ids are never reused: a removed upload's number never goes to the next file, on either database (issue 13.1).

SQLite's plain INTEGER PRIMARY KEY hands out the largest id + 1, so deleting the newest row gave its id to
the next one; the tables are AUTOINCREMENT now, and `personas init-db` rebuilds those of an older database.
"""
import io

import pytest
from peewee import IntegrityError

from tests.engine_helpers import LIMITS, apply_queued, prepare_import, write_csv
from webapp import models
from webapp.db import db
from webapp.importer import flow
from webapp.importer.revert import revert
from webapp.models import (
    MODELS,
    Audience,
    AudienceMember,
    AuditEntry,
    Import,
    Membership,
    Persona,
    PersonaAttribute,
    SchemaVersion,
    UploadChunk,
    User,
)
from webapp.schema import CURRENT_VERSION, NEVER_REUSED, init_schema

CSV = b"Email\nann@example.com\n"


def _upload(account, user, name="people.csv") -> Import:
    return flow.start_upload(account, user, name, io.BytesIO(CSV), LIMITS)


def test_a_removed_upload_s_id_never_goes_to_the_next_file(account_a, owner_a):
    first = _upload(account_a, owner_a)
    flow.discard(first)
    second = _upload(account_a, owner_a)
    assert second.id > first.id
    assert Import.get_or_none(Import.id == first.id) is None


@pytest.mark.parametrize("model", [User, Audience, Persona])
def test_the_newest_row_deleted_its_id_is_not_given_again(account_a, owner_a, model):
    def make(n):
        if model is User:
            return User.create(email=f"u{n}@example.com", password_hash="x")
        if model is Audience:
            return Audience.create(account=account_a, name=f"Audience {n}")
        return Persona.create(account=account_a, email=f"p{n}@example.com")

    newest = make(1)
    newest.delete_instance()
    assert make(2).id > newest.id


def test_a_reverted_import_s_personas_ids_are_not_given_to_the_next_import(account_a, owner_a, tmp_path):
    """The import path numbers new personas itself (writes.new_ids): after the largest id ever given."""
    path = write_csv(tmp_path, [["Email"], ["ann@example.com"], ["bob@example.com"]])
    first = prepare_import(account_a, owner_a, path)
    apply_queued(first)
    removed = sorted(p.id for p in Persona.select())
    revert(first.id, account_a.id, owner_a.id)
    assert Persona.select().count() == 0

    apply_queued(prepare_import(account_a, owner_a, path))
    again = sorted(p.id for p in Persona.select())
    assert len(again) == 2 and min(again) > max(removed)
    # The history of the removed personas still names only them.
    assert {e.persona_id for e in AuditEntry.select().where(AuditEntry.import_id == first.id)} == set(removed)


# ---------------------------------------------------------------- the upgrade of an older SQLite database

def _old_schema_database(monkeypatch, account, user) -> dict:
    """Rebuild the test database as schema version 7 made it: no AUTOINCREMENT and no import version, with rows.

    Returns what the upgrade must keep. Import #3 was the newest and was removed, while an audit entry of
    an import still names id 4, which was removed too.
    """
    db.drop_tables(MODELS)
    monkeypatch.setattr(models, "is_sqlite", lambda: False)  # the plain INTEGER PRIMARY KEY of version 7
    db.create_tables(MODELS)
    monkeypatch.undo()
    account = models.Account.create(id=account.id, name=account.name)
    user = User.create(id=user.id, email=user.email, password_hash=user.password_hash)
    Membership.create(user=user, account=account, role=Membership.OWNER)
    kept = Import.create(account=account, user=user, file_name="kept.csv", status="completed")
    UploadChunk.create(upload=kept, seq=0, data=CSV)
    Import.create(account=account, user=user, file_name="other.csv")
    persona = Persona.create(account=account, email="ann@example.com")
    PersonaAttribute.create(persona=persona, name="veteran")
    audience = Audience.create(account=account, name="Import: kept.csv", source_import=kept.id)
    AudienceMember.create(audience=audience, persona=persona)
    AuditEntry.create(account=account, persona_id=persona.id, import_id=4, row=2, action="updated")
    newest = Import.create(account=account, user=user, file_name="removed.csv")
    newest.delete_instance()
    reused = Import.create(account=account, user=user, file_name="reused.csv")
    assert reused.id == newest.id  # the trouble: version 7 gave the removed upload's id to the next file
    reused.delete_instance()
    db.execute_sql('ALTER TABLE "imports" DROP COLUMN "version"')
    SchemaVersion.create(version=7)
    return {"account": account, "user": user, "kept": kept.id, "persona": persona.id, "audience": audience.id}


@pytest.mark.sqlite_only
def test_init_db_upgrades_an_old_sqlite_database_to_ids_never_reused(app, account_a, owner_a, monkeypatch):
    old = _old_schema_database(monkeypatch, account_a, owner_a)

    assert init_schema() == CURRENT_VERSION
    for table in NEVER_REUSED:
        (create,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()
        assert "AUTOINCREMENT" in create, table
    # Every row and every link between them survived the rebuild (nothing cascaded away).
    kept = Import.get_by_id(old["kept"])
    assert (kept.file_name, kept.status, kept.version) == ("kept.csv", "completed", 1)
    assert [bytes(c.data) for c in UploadChunk.select().where(UploadChunk.upload == kept)] == [CSV]
    assert [a.name for a in PersonaAttribute.select().where(PersonaAttribute.persona == old["persona"])] == ["veteran"]
    assert AudienceMember.select().where(AudienceMember.audience == old["audience"]).count() == 1
    assert Membership.select().where(Membership.user == old["user"]).count() == 1
    assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute_sql("PRAGMA foreign_keys").fetchone() == (1,)
    # New ids come after every id given or still named: not 3 (removed) nor 4 (named by the audit log).
    assert Import.create(account=old["account"], user=old["user"], file_name="next.csv").id == 5
    with pytest.raises(IntegrityError):  # the indexes came back with the tables
        Persona.create(account=old["account"], email="ann@example.com")
    assert init_schema() == CURRENT_VERSION  # idempotent
