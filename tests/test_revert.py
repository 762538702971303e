"""SPEC 8, "Revert an import": undo what it did from the audit log, never forcing what changed since."""
import pytest

from tests.engine_helpers import audit, import_rows, invoke, persona_by, personas
from webapp.importer import revert as revert_module
from webapp.importer.errors import FileRefused
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


# A later import whose row carried the same value changed nothing and left no audit entry, yet it re-asserted
# the value: reverting the earlier import keeps it.
SAME_FILE = [["Email", "First Name", "Birthday", "Zip", "Customer Type"],
             [A, "Anna", "1990-04-20", "94102", "Medical"], [B, "Bob", "1985-01-31", "02134", "Recreational"]]


def test_reverting_an_import_a_later_import_repeated_keeps_every_value_and_customer(
        account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    first = import_rows(account_a, owner_a, tmp_path, SAME_FILE, name="one.csv")
    second = import_rows(account_a, owner_a, tmp_path, SAME_FILE, name="two.csv")
    assert second.counts["unchanged"] == 2 and not audit(second)
    before = personas(account_a)
    result = revert_module.revert(first.id, account_a.id, owner_a.id)
    assert personas(account_a) == before  # nothing blanked, Bob (created by #1, reached by #2) kept
    same = f"kept: a later import set the same value (import #{second.id})"
    assert [r["reason"] for r in result["not_reverted"] if r["persona"] == A] == [
        f"{name} {same}" for name in ("First Name", "Birthday", "Postal Code", "Customer Type")]
    bob = [r["reason"] for r in result["not_reverted"] if r["persona"] == B]
    assert bob[0].startswith(f"created by this import and reached since by import #{second.id}: the customer was kept")
    assert bob[1:] == [f"{name} {same}" for name in ("First Name", "Birthday", "Postal Code", "Customer Type")]
    assert result["reverted"] == 0 and not AuditEntry.select().where(AuditEntry.action == "reverted").exists()


def test_a_later_row_with_a_blank_cell_did_not_set_the_value_again(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, first_name="Ann", city="Oakland")
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"], [A, "Anna", "Berkeley"]],
                        name="one.csv")
    second = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"], [A, "", "Berkeley"]],
                         name="two.csv")
    result = _revert(first, owner_a)
    assert result == {"reverted": 1, "not_reverted": [
        {"persona": A, "reason": f"City kept: a later import set the same value (import #{second.id})"}]}
    ann = persona_by(account_a, email=A)
    assert (ann["first_name"], ann["city"]) == ("Ann", "Berkeley")
    [entry] = AuditEntry.select().where(AuditEntry.action == "reverted")
    assert entry.changes == {"first_name": ["Anna", "Ann"]}


def test_a_later_import_whose_file_was_deleted_still_counts_what_its_rows_set(
        account_a, owner_a, tmp_path, make_persona):
    from webapp.importer import flow

    make_persona(account_a, email=A, first_name="Ann", city="Oakland")
    first = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"], [A, "Anna", "Berkeley"],
                                                       [B, "Bob", ""]], name="one.csv")
    second = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"], [A, "", "Berkeley"]],
                         name="two.csv")
    flow.delete_file(Import.get_by_id(second.id))  # its kept rows and audience go; a digest of them stays
    assert not Audience.select().where(Audience.source_import == second.id).exists()
    result = _revert(first, owner_a)
    assert result == {"reverted": 2, "not_reverted": [
        {"persona": A, "reason": f"City kept: a later import set the same value (import #{second.id})"}]}
    assert [(p["email"], p["first_name"], p["city"]) for p in personas(account_a)] == [(A, "Ann", "Berkeley")]


NEVER_OPT_IN = "SMS opt-out kept: opt-outs are never undone by a revert; collect consent again"


def test_a_revert_never_lifts_an_opt_out_the_import_recorded(account_a, owner_a, tmp_path):
    import_rows(account_a, owner_a, tmp_path, [["Email", "SMS Opt In"], [A, "TRUE"]], name="in.csv")
    opt_out = import_rows(account_a, owner_a, tmp_path,
                          [["Email", "Explicit SMS Opt-out", "City"], [A, "TRUE", "Reno"]], name="out.csv")
    result = _revert(opt_out, owner_a)
    assert result == {"reverted": 1, "not_reverted": [{"persona": A, "reason": NEVER_OPT_IN}]}
    ann = Persona.get(Persona.email == A)
    assert (ann.sms_opt_in, ann.sms_opt_out, ann.city) == (False, True, None)
    assert ann.sms_consent_import == opt_out.id  # the opt-out in force is still the one that import recorded
    [entry] = AuditEntry.select().where(AuditEntry.action == "reverted")
    assert entry.changes == {"city": ["Reno", None]}


def test_reverting_an_opt_in_that_lifted_an_opt_out_restores_the_opt_out_with_its_stamps(
        owner_client, account_a, owner_a, tmp_path):
    out = import_rows(account_a, owner_a, tmp_path, [["Email", "Explicit SMS Opt-out"], [A, "TRUE"]], name="out.csv")
    stamped = Persona.get(Persona.email == A)
    lifted = import_rows(account_a, owner_a, tmp_path, [["Email", "SMS Opt In"], [A, "TRUE"]], name="in.csv",
                         terms="terms-test-2")
    assert Persona.get(Persona.email == A).sms_consent_import == lifted.id
    assert _revert(lifted, owner_a) == {"reverted": 1, "not_reverted": []}
    ann = Persona.get(Persona.email == A)
    assert (ann.sms_opt_in, ann.sms_opt_out) == (False, True)
    assert (ann.sms_consent_at, ann.sms_consent_import, ann.sms_consent_user, ann.sms_consent_terms) == (
        stamped.sms_consent_at, out.id, owner_a.id, "terms-test-1")
    [entry] = AuditEntry.select().where(AuditEntry.action == "reverted")
    assert entry.changes["sms_opt_out"] == [False, True] and entry.changes["sms_consent_import"] == [lifted.id, out.id]
    page = owner_client.get(f"/personas/{ann.id}").get_data(as_text=True)
    consent = page[page.index("<dt>SMS</dt>"):page.index("</dd>", page.index("<dt>SMS</dt>"))]
    assert f'by <a href="/imports/{out.id}">import #{out.id}</a>, terms version terms-test-1' in consent
    assert f"import #{lifted.id}" not in consent


def test_an_opt_in_a_later_import_box_set_again_stays(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    first = import_rows(account_a, owner_a, tmp_path, [["Email"], [A]], name="one.csv", opt_in_sms=True)
    second = import_rows(account_a, owner_a, tmp_path, [["Email"], [A]], name="two.csv", opt_in_sms=True)
    result = _revert(first, owner_a)
    assert result["not_reverted"] == [
        {"persona": A, "reason": f"Opt-in SMS kept: a later import set the same value (import #{second.id})"}]
    assert Persona.get(Persona.email == A).sms_opt_in is True


def test_the_preview_says_what_a_revert_would_do_and_changes_nothing(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=5, sms_opt_in=True)
    make_persona(account_a, email=C, first_name="Cy")
    first = import_rows(account_a, owner_a, tmp_path, [
        ["Email", "First Name", "Points", "Explicit SMS Opt-out"], [A, "Anna", "10", "TRUE"], [B, "Bob", "3", ""],
        [C, "Cyrus", "", ""]], name="one.csv")
    import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [C, "Cyrus"]], name="two.csv")
    before = personas(account_a)
    found = revert_module.preview(Import.get_by_id(first.id))
    assert personas(account_a) == before and not AuditEntry.select().where(AuditEntry.action == "reverted").exists()
    assert {k: found[k] for k in ("remove", "restore", "fields", "points", "points_personas", "consent",
                                  "not_reverted")} == {
        "remove": 1, "restore": 1, "fields": {"First Name": 1}, "points": 10, "points_personas": 1, "consent": 0,
        "not_reverted": 2}
    assert [item["persona"] for item in found["sample"]] == [A, C]
    assert found["sample"][0]["reason"] == NEVER_OPT_IN
    result = _revert(first, owner_a)
    assert result["not_reverted"] == found["sample"] and result["reverted"] == 2


def test_a_large_import_s_preview_looks_at_its_first_personas_and_says_so(owner_client, account_a, owner_a, tmp_path,
                                                                         monkeypatch):
    rows = [["Email", "First Name", "Points"]] + [[f"p{i}@example.com", f"P{i}", "2"] for i in range(25)]
    first = import_rows(account_a, owner_a, tmp_path, rows, name="big.csv")
    import_rows(account_a, owner_a, tmp_path, rows[:11], name="again.csv")  # re-asserts the first ten's names
    found = revert_module.preview(Import.get_by_id(first.id), limit=10)
    # The import changed 25 customers; the preview looked at the first 10 (their ids' order), all reached again.
    assert (found["covered"], found["personas"]) == (10, 25)
    assert (found["remove"], found["restore"], found["points"]) == (0, 10, 20)
    whole = revert_module.preview(Import.get_by_id(first.id))
    assert (whole["covered"], whole["personas"], whole["remove"], whole["restore"]) == (25, 25, 15, 10)
    monkeypatch.setattr(revert_module, "PREVIEW_PERSONAS", 10)
    page = " ".join(owner_client.get(f"/imports/{first.id}/revert").get_data(as_text=True).split())
    assert "It changed 25 customers; this preview looks at the first 10 of them" in page


def test_the_confirmation_page_shows_the_preview(owner_client, account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, sms_opt_in=True)
    first = import_rows(account_a, owner_a, tmp_path, [
        ["Email", "First Name", "Points", "Explicit SMS Opt-out"], [A, "Anna", "10", "TRUE"], [B, "Bob", "3", ""]])
    page = owner_client.get(f"/imports/{first.id}/revert").get_data(as_text=True)
    assert "remove <strong>1</strong> persona it created" in page
    assert "give <strong>1</strong> persona back what they had before (First Name: 1);" in page
    assert "subtract <strong>10</strong> points in all, from <strong>1</strong> persona;" in page
    assert "<strong>1</strong> change stays, listed after the revert</h2>" in page
    assert f"<tr><td>{A}</td><td>{NEVER_OPT_IN}</td></tr>" in page
    assert persona_by(account_a, email=A)["first_name"] == "Anna"


def test_cli_revert_lists_every_kept_value_and_opt_out(runner, account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, sms_opt_in=True)
    rows = [["Email", "City", "Explicit SMS Opt-out"], [A, "Reno", "TRUE"]]
    first = import_rows(account_a, owner_a, tmp_path, rows, name="one.csv")
    second = import_rows(account_a, owner_a, tmp_path, rows, name="two.csv")
    code, data, _ = invoke(runner, "revert", first.id, "--account", "Alpha", "--user", "owner-a@example.com")
    assert code == 0 and data == {"reverted": 0, "not_reverted": [
        {"persona": A, "reason": f"City kept: a later import set the same value (import #{second.id})"},
        {"persona": A, "reason": NEVER_OPT_IN}]}


def test_rows_that_interact_set_values_again_too(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    rows = [["Email", "First Name", "Points"], [A, "Anna", "1"], [A, "", "2"]]  # one persona, two rows: the Merger's
    first = import_rows(account_a, owner_a, tmp_path, rows, name="one.csv")
    second = import_rows(account_a, owner_a, tmp_path, rows, name="two.csv")
    result = _revert(first, owner_a)
    assert result["not_reverted"] == [
        {"persona": A, "reason": f"First Name kept: a later import set the same value (import #{second.id})"}]
    assert (persona_by(account_a, email=A)["first_name"], persona_by(account_a, email=A)["points"]) == ("Anna", 3)
