"""Set-based writes store every value exactly as given, whatever characters a customer's file holds."""
from datetime import datetime

from webapp.db import db
from webapp.importer import bulk
from webapp.models import AuditEntry

AWKWARD_TEXTS = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N", "\\.", '"quoted", comma',
                 "", None, "Zoë 🌿", '=HYPERLINK("x")', "trailing\\"]
WHEN = datetime(2026, 11, 28, 12, 30)


def _insert_notes(account, notes) -> dict:
    rows = [(account.id, n, 1, n + 1, None, WHEN, "updated", '{"points":[0,5]}', note) for n, note in enumerate(notes)]
    with db.atomic():
        bulk.insert_rows(AuditEntry._meta.table_name, ["account_id", "persona_id", "import_id", "row", "user_id",
                                                       "created_at", "action", "changes", "note"], rows)
    return {entry.persona_id: entry for entry in AuditEntry.select()}


def test_every_awkward_text_survives_a_bulk_insert_as_given(app, account_a):
    stored = _insert_notes(account_a, AWKWARD_TEXTS)
    assert [stored[n].note for n in range(len(AWKWARD_TEXTS))] == AWKWARD_TEXTS


def test_numbers_nulls_times_and_json_come_back_typed(app, account_a):
    entry = _insert_notes(account_a, ["x"])[0]
    assert (entry.row, entry.user_id, entry.created_at, entry.changes) == (1, None, WHEN, {"points": [0, 5]})
