"""SPEC 8, "Revert an import": undo what it did from the audit log, never forcing what changed since."""
import pytest

from tests.engine_helpers import audit, import_rows, invoke, persona_by, personas
from webapp.importer.errors import FileRefused
from webapp.importer import revert as revert_module
from webapp.importer.revert import revert
from webapp.models import Audience, AuditEntry, Import, Persona, PersonaAttribute, utcnow

A, B, C = "ann@example.com", "bob@example.com", "cy@example.com"
P1, P2 = "+14155550101", "+14155550102"


def _revert(upload, user):
    return revert(upload.id, upload.account_id, user.id)


def test_revert_subtracts_the_imported_points_back_whatever_happened_since(
        account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=100)
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "+50"], [A, "-20"]], name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "+7"]], name="two.csv")
    assert persona_by(account_a, email=A)["points"] == 137
    result = _revert(first, owner_a)
    assert result == {"reverted": 1, "not_reverted": []}
    assert persona_by(account_a, email=A)["points"] == 107


def test_revert_restores_fields_consent_and_attributes_nothing_changed_since(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, phone=P1, first_name="Ann", city="Oakland", sms_opt_out=True)
    before = personas(account_a)
    upload = import_rows(account_a, owner_a, tmp_path, [
        ["Email", "Phone", "First Name", "City", "SMS Opt In", "Email Opt In", "Veteran"],
        [A, P2, "Anna", "Berkeley", "TRUE", "TRUE", "TRUE"]])
    changed = persona_by(account_a, email=A)
    assert (changed["phone"], changed["sms_opt_in"], changed["attributes"]) == (P2, True, ["veteran"])
    assert _revert(upload, owner_a) == {"reverted": 1, "not_reverted": []}
    assert personas(account_a) == before
    persona = Persona.get(Persona.email == A)
    # No consent was ever recorded before the import: its stamps go with its values.
    assert [getattr(persona, f"{channel}_consent_{part}") for channel in ("sms", "email")
            for part in ("at", "import", "user", "terms")] == [None] * 8


def test_revert_removes_the_personas_it_created_unless_changed_since(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [B, "Bob"], [C, "Cy"]], name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "City"], [C, "Denver"]], name="two.csv")
    result = _revert(first, owner_a)
    assert result["reverted"] == 2  # Bob removed; Cy kept, with the first name this import gave him undone
    [kept] = result["not_reverted"]
    assert kept["persona"] == C and "changed since" in kept["reason"] and "was kept" in kept["reason"]
    assert [(p["email"], p["first_name"], p["city"]) for p in personas(account_a)] == [(A, None, None),
                                                                                      (C, None, "Denver")]


def test_a_kept_created_persona_still_gets_its_points_and_consent_reverted(account_a, owner_a, tmp_path):
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "Points", "SMS Opt In"], [B, "100", "TRUE"]],
                        name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [B, "10"]], name="two.csv")
    _revert(first, owner_a)
    bob = persona_by(account_a, email=B)
    assert (bob["points"], bob["sms_opt_in"]) == (10, False)


def test_two_reverts_at_once_subtract_points_once(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=10)
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "1"]])
    Import.update(status="reverting", reverted_at=utcnow()).where(Import.id == first.id).execute()
    with pytest.raises(FileRefused, match="is being reverted right now"):
        revert(first.id, account_a.id, owner_a.id)
    assert persona_by(account_a, email=A)["points"] == 11


def test_a_revert_that_stopped_mid_way_resumes_without_subtracting_twice(
        account_a, owner_a, tmp_path, make_persona, monkeypatch):
    for email in (A, B, C):
        make_persona(account_a, email=email, points=10)
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "1"], [B, "1"], [C, "1"]])
    monkeypatch.setattr("webapp.importer.revert.PERSONAS_PER_CHUNK", 2)
    real_chunk = revert_module._write
    calls = []

    def dies_after_first_chunk(*args):
        if calls:
            raise RuntimeError("worker killed")
        calls.append(1)
        return real_chunk(*args)

    monkeypatch.setattr("webapp.importer.revert._write", dies_after_first_chunk)
    with pytest.raises(RuntimeError):
        revert(first.id, account_a.id, owner_a.id)
    monkeypatch.setattr("webapp.importer.revert._write", real_chunk)
    Import.update(reverted_at=utcnow() - revert_module.REVERT_STALE).where(Import.id == first.id).execute()
    revert(first.id, account_a.id, owner_a.id)
    assert [p["points"] for p in personas(account_a)] == [10, 10, 10]
    assert Import.get_by_id(first.id).status == "reverted"


def test_a_field_a_later_import_changed_is_kept_and_listed_with_the_reason(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, first_name="Ann", city="Oakland")
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"], [A, "Anna", "Berkeley"]],
                        name="one.csv")
    later = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [A, "Annie"]], name="two.csv")
    result = _revert(first, owner_a)
    assert result["reverted"] == 1
    [kept] = result["not_reverted"]
    assert kept["persona"] == A
    assert kept["reason"] == f"First Name was changed later (by import #{later.id})"
    ann = persona_by(account_a, email=A)
    assert (ann["first_name"], ann["city"]) == ("Annie", "Oakland")


def test_a_key_taken_by_another_customer_since_is_not_forced_back(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, phone=P1)
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "Phone"], [A, P2]], name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "Phone"], [B, P1]], name="two.csv")  # P1 is Bob's now
    result = _revert(first, owner_a)
    assert [r["persona"] for r in result["not_reverted"]] == [A]
    assert "phone" in result["not_reverted"][0]["reason"]
    assert [(p["email"], p["phone"]) for p in personas(account_a)] == [(A, P2), (B, P1)]


def test_revert_removes_the_imports_audience_and_records_its_own_audit(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [A, "Ann"], [B, "Bob"]])
    assert Audience.select().where(Audience.source_import == upload.id).count() == 1
    _revert(upload, owner_a)
    assert not Audience.select().where(Audience.source_import == upload.id).exists()
    reverted = Import.get_by_id(upload.id)
    assert reverted.status == "reverted" and reverted.reverted_at is not None
    assert len(audit(upload)) == 2  # the import's own history stays
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.action == "reverted")]
    assert actions == ["reverted", "reverted"]


def test_reverting_twice_is_refused(account_a, owner_a, tmp_path):
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "5"]])
    _revert(upload, owner_a)
    with pytest.raises(FileRefused, match="already reverted"):
        _revert(upload, owner_a)


def test_an_import_of_another_account_cannot_be_reverted(account_a, account_b, owner_a, owner_b, tmp_path):
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "5"]])
    with pytest.raises(FileRefused):
        revert(upload.id, account_b.id, owner_b.id)
    assert persona_by(account_a, email=A)["points"] == 5


def test_cli_revert_prints_reverted_and_not_reverted(runner, account_a, owner_a, tmp_path, make_persona):
    ann = make_persona(account_a, email=A, first_name="Ann", points=1)
    PersonaAttribute.create(persona=ann, name="police")
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "Points", "Veteran"],
                                                       [A, "Anna", "10", "TRUE"], [B, "Bob", "", ""]], name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [A, "Annie"]], name="two.csv")
    code, data, _ = invoke(runner, "revert", first.id, "--account", "Alpha", "--user", "owner-a@example.com")
    assert code == 0
    assert set(data) == {"reverted", "not_reverted"}
    assert data["reverted"] == 2
    assert [set(item) for item in data["not_reverted"]] == [{"persona", "reason"}]
    assert data["not_reverted"][0]["persona"] == A
    [ann] = personas(account_a)
    assert (ann["first_name"], ann["points"], ann["attributes"]) == ("Annie", 1, ["police"])

    code, data, _ = invoke(runner, "revert", first.id, "--account", "Alpha", "--user", "owner-a@example.com")
    assert code == 2 and data["status"] == "refused" and "already reverted" in data["error"]
