"""The CLI contract other tools drive the product through: `personas import|export|revert|archive`.

import prints one JSON object and exits 0 when completed; a refusal prints
{"status": "refused", "error": ...} and exits 2.
"""
import os

import openpyxl

from tests.engine_helpers import import_via_cli, invoke, personas, write_csv
from tests.importer import corpus
from webapp.importer.fields import CONTACT_MESSAGE
from webapp.importer.header_row import NO_HEADER
from webapp.models import AuditEntry, Import, Persona

A, B = "ann@example.com", "bob@example.com"
P1 = "+14155550101"

IMPORT_KEYS = {"import_id", "status", "rows", "created", "updated", "unchanged", "rejected", "warnings", "audience",
               "audience_members", "duplicate_of", "problems"}
PROBLEM_KEYS = {"row", "column", "value", "reason", "severity"}
# Every field in the catalogue's order (SPEC section 2), then attributes and the archived flag.
EXPORT_KEYS = ["email", "phone", "first_name", "last_name", "birthday", "gender", "street", "city", "state",
               "postal_code", "external_id", "loyalty_member", "loyalty_signup_date", "points", "sms_opt_in",
               "email_opt_in", "sms_opt_out", "email_opt_out", "customer_type", "attributes", "archived"]


def _refused(runner, path, *args, accept=True) -> str:
    data = import_via_cli(runner, path, *args, accept=accept, code=2)
    assert set(data) == {"status", "error"} and data["status"] == "refused"
    return data["error"]


def test_import_prints_exactly_the_result_keys(runner, owner_a, tmp_path, make_persona, account_a):
    make_persona(account_a, email=A, points=5)
    path = write_csv(tmp_path, [["Email", "Phone", "Points", "Birthday"], [A, "", "-10", ""],
                                [B, "415 555 0101", "3", "02/30/1990"], ["", "", "1", ""], [A, "", "", ""]])
    data = import_via_cli(runner, path)
    assert set(data) == IMPORT_KEYS
    assert data["status"] == "completed"
    assert data["import_id"] == Import.select().get().id
    assert (data["rows"], data["created"], data["updated"], data["unchanged"], data["rejected"], data["warnings"]) == (
        4, 1, 1, 1, 1, 2)
    assert data["audience"].startswith("Import: people.csv ")
    assert data["audience_members"] == 2  # Ann (updated, then unchanged) and Bob; the rejected row adds no one
    assert data["duplicate_of"] is None
    assert all(set(p) == PROBLEM_KEYS for p in data["problems"])
    assert [(p["row"], p["column"], p["severity"]) for p in data["problems"]] == [
        (2, "Points", "warning"), (3, "Birthday", "warning"), (4, "", "error")]
    assert data["problems"][1]["value"] == "02/30/1990"


def test_export_prints_every_persona_with_exactly_the_contract_keys(runner, owner_a, tmp_path):
    import_via_cli(runner, write_csv(tmp_path, [["Email", "Phone", "Zip", "Veteran"], [A, P1, "02134", "TRUE"]]))
    code, data, _ = invoke(runner, "export", "--account", "Alpha")
    assert code == 0
    [ann] = data
    assert list(ann) == EXPORT_KEYS
    assert (ann["email"], ann["phone"], ann["postal_code"], ann["attributes"], ann["archived"]) == (
        A, P1, "02134", ["veteran"], False)


def test_map_overrides_name_fields_attributes_and_ignored_columns(runner, owner_a, account_a, tmp_path):
    path = write_csv(tmp_path, [["Contact", "Veteran", "Notes", "Nick"], [A, "TRUE", "loud", "Annie"]])
    import_via_cli(runner, path, "--map", "Contact=email", "--map", "Veteran=attribute:veteran",
                   "--map", "Notes=ignore", "--map", "Nick=first_name")
    [ann] = personas(account_a)
    assert (ann["email"], ann["first_name"], ann["attributes"]) == (A, "Annie", ["veteran"])


def test_a_map_naming_no_column_of_the_file_is_refused(runner, owner_a, tmp_path):
    error = _refused(runner, write_csv(tmp_path, [["Email"], [A]]), "--map", "Mobile=phone")
    assert "Mobile" in error


def test_dry_run_writes_nothing_and_counts_what_the_import_then_does(runner, owner_a, account_a, tmp_path,
                                                                     make_persona):
    make_persona(account_a, email=A, points=5)
    path = write_csv(tmp_path, [["Email", "Points"], [A, "-10"], [B, "1"], [B, "1"], ["nope", "1"]])
    dry = import_via_cli(runner, path, "--dry-run", accept=False)
    assert dry["status"] == "dry_run" and IMPORT_KEYS <= set(dry)
    assert (dry["audience"], dry["audience_members"], dry["duplicate_of"]) == (None, 0, None)
    assert personas(account_a) == [{**personas(account_a)[0], "points": 5}]
    assert len(personas(account_a)) == 1 and not AuditEntry.select().exists()
    real = import_via_cli(runner, path)
    keys = ("rows", "created", "updated", "unchanged", "rejected", "warnings")
    assert {k: dry[k] for k in keys} == {k: real[k] for k in keys} == {
        "rows": 4, "created": 1, "updated": 2, "unchanged": 0, "rejected": 1, "warnings": 2}


def test_a_dry_run_with_an_opt_in_flag_counts_what_the_import_with_it_does(runner, owner_a, account_a, tmp_path,
                                                                          make_persona):
    make_persona(account_a, email=A)
    path = write_csv(tmp_path, [["Email", "First Name"], [A, ""], [B, "Bo"]])
    keys = ("created", "updated", "unchanged")
    plain = import_via_cli(runner, path, "--dry-run", accept=False)
    boxed = import_via_cli(runner, path, "--dry-run", "--opt-in-sms", accept=False)
    assert [plain[k] for k in keys] == [1, 0, 1] and [boxed[k] for k in keys] == [1, 1, 0]
    real = import_via_cli(runner, path, "--opt-in-sms")
    assert [real[k] for k in keys] == [boxed[k] for k in keys]


def test_without_accept_terms_the_import_is_refused_and_nothing_is_stored(runner, owner_a, account_a, tmp_path):
    error = _refused(runner, write_csv(tmp_path, [["Email"], [A]]), accept=False)
    assert "--accept-terms" in error
    assert personas(account_a) == [] and not Import.select().exists()


def test_opt_in_boxes_and_terms_are_recorded(runner, owner_a, account_a, tmp_path):
    data = import_via_cli(runner, write_csv(tmp_path, [["Email", "SMS Opt Out"], [A, ""], [B, "TRUE"]]),
                          "--opt-in-sms")
    upload = Import.get_by_id(data["import_id"])
    assert upload.terms_accepted_by_id == owner_a.id and upload.terms_accepted_at and upload.terms_version
    assert [(p["email"], p["sms_opt_in"], p["email_opt_in"]) for p in personas(account_a)] == [(A, True, False),
                                                                                                (B, False, False)]
    assert Persona.get(Persona.email == A).sms_consent_import == upload.id


def test_an_empty_file_is_refused(runner, owner_a, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert "empty" in _refused(runner, path)


def test_a_header_only_file_is_refused(runner, owner_a, tmp_path):
    assert "no customer rows" in _refused(runner, write_csv(tmp_path, [["Email", "Phone"]]))


def test_a_file_with_neither_email_nor_phone_mapped_is_refused_with_the_spec_message(runner, owner_a, tmp_path):
    assert _refused(runner, write_csv(tmp_path, [["First Name", "Points"], ["Ann", "5"]])) == CONTACT_MESSAGE
    assert _refused(runner, write_csv(tmp_path, [["Email"], [A]]), "--map", "Email=ignore") == CONTACT_MESSAGE


def _two_sheet_workbook(tmp_path):
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Stores"
    first.append(["Email", "Points"])
    first.append([A, 5])
    second = workbook.create_sheet("Online")
    second.append(["Email", "Points"])
    second.append([B, 7])
    path = tmp_path / "two.xlsx"
    workbook.save(path)
    return path


def test_a_workbook_with_several_sheets_needs_sheet(runner, owner_a, account_a, tmp_path):
    path = _two_sheet_workbook(tmp_path)
    error = _refused(runner, path)
    assert "Stores" in error and "Online" in error
    assert personas(account_a) == []
    data = import_via_cli(runner, path, "--sheet", "Online")
    assert data["created"] == 1
    assert [(p["email"], p["points"]) for p in personas(account_a)] == [(B, 7)]


def test_a_file_without_a_header_row_is_refused_until_header_line_names_it(runner, owner_a, account_a, tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("4155550101,12\n4155550102,13\n")
    assert _refused(runner, path) == NO_HEADER + " Choose it with --header-line N."
    assert personas(account_a) == []
    path.write_text("4155550101,12\nEmail,Points\nann@example.com,5\n")
    data = import_via_cli(runner, path, "--header-line", "2")
    assert data["created"] == 1
    assert [(p["email"], p["points"]) for p in personas(account_a)] == [(A, 5)]


def test_an_ods_from_libreoffice_imports_its_customers(runner, owner_a, account_a, tmp_path):
    path = corpus.ods_file(tmp_path / "customers.ods", {"Customers": [["Email", "Points", "Loyalty Member"],
                                                                      [A, 5, "sí"], [B, 7, "no"]]})
    data = import_via_cli(runner, path)
    assert (data["created"], data["problems"]) == (2, [])
    assert [(p["email"], p["points"], p["loyalty_member"]) for p in personas(account_a)] == [(A, 5, True),
                                                                                            (B, 7, False)]


def test_only_an_owner_may_import(runner, owner_a, staff_a, tmp_path):
    data = import_via_cli(runner, write_csv(tmp_path, [["Email"], [A]]), user="staff-a@example.com", code=2)
    assert data["status"] == "refused" and "owner" in data["error"]


def test_archive_then_import_rejects_the_row(runner, owner_a, account_a, tmp_path):
    code, data, _ = invoke(runner, "archive", "--account", "Alpha", "--phone", "(415) 555-0101")
    assert code == 0 and data["phone"] == P1
    result = import_via_cli(runner, write_csv(tmp_path, [["Phone", "Points"], ["4155550101", "5"]]))
    assert result["rejected"] == 1 and "archived persona" in result["problems"][0]["reason"]
    assert [(p["phone"], p["points"], p["archived"]) for p in personas(account_a)] == [(P1, 0, True)]


def test_a_file_name_that_is_not_utf8_is_imported_under_a_readable_name(runner, account_a, owner_a, tmp_path):
    path = os.path.join(os.fsencode(tmp_path), b"na\xefve.csv")
    with open(path, "wb") as handle:
        handle.write(b"Email\r\nann@example.com\r\n")
    result = import_via_cli(runner, os.fsdecode(path))
    assert result["status"] == "completed" and result["created"] == 1
    assert Import.get_by_id(result["import_id"]).file_name == "na\ufffdve.csv"


def test_the_same_file_twice_names_the_earlier_import_until_it_is_reverted(runner, owner_a, account_a, tmp_path):
    path = write_csv(tmp_path, [["Email", "Points"], [A, "10"]])
    first = import_via_cli(runner, path)
    assert first["duplicate_of"] is None
    assert import_via_cli(runner, path, "--dry-run", accept=False)["duplicate_of"] == first["import_id"]
    second = import_via_cli(runner, path)  # the user may go on: the points are added again
    assert second["duplicate_of"] == first["import_id"] and personas(account_a)[0]["points"] == 20
    other = write_csv(tmp_path, [["Email", "Points"], [A, "10"], [B, "1"]], name="other.csv")
    assert import_via_cli(runner, other)["duplicate_of"] is None  # other content, whatever its name
    for done in (second, first):
        code, _, _ = invoke(runner, "revert", done["import_id"], "--account", "Alpha", "--user", "owner-a@example.com")
        assert code == 0
    assert import_via_cli(runner, path)["duplicate_of"] is None
