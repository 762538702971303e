"""SPEC sections 3-5 and 8, one rule per test, through the real import core on every database.

Each test writes a small CSV, runs it as the wizard would (upload, mapping, validation job, terms,
apply job) and asserts the exported personas, the audit entries, the problems and the counts.
"""
import csv
import datetime
import io

import polars as pl
import pytest
from peewee import IntegrityError

from tests.engine_helpers import (
    IP,
    TERMS,
    apply_queued,
    audit,
    counts,
    import_rows,
    invoke,
    persona_by,
    personas,
    prepare_import,
    problems,
    review_counts,
    tune,
    write_csv,
)
from webapp.db import db
from webapp.importer import engine, flow
from webapp.models import Audience, AudienceMember, AuditEntry, Import, Persona, PersonaAttribute, utcnow
from worker import tasks

A, B = "ann@example.com", "bob@example.com"
P1, P2, P3 = "+14155550101", "+14155550102", "+14155550103"

# The consent columns of each channel, as a file names them, and the wizard's box for it.
CHANNELS = {
    "sms": {"in": "SMS Opt In", "out": "SMS Opt Out", "box": "opt_in_sms"},
    "email": {"in": "Email Opt In", "out": "Explicit Email Opt-out", "box": "opt_in_email"},
}


def _counts(created=0, updated=0, unchanged=0, rejected=0, warnings=0) -> dict:
    return {"created": created, "updated": updated, "unchanged": unchanged, "rejected": rejected,
            "warnings": warnings}


# ---------------------------------------------------------------- matching (SPEC 4)

def test_a_row_matching_no_persona_creates_one(account_a, owner_a, tmp_path):
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Phone", "First Name"], [A, "415 555 0101", "Ann"]])
    assert counts(upload) == _counts(created=1)
    [ann] = personas(account_a)
    assert (ann["email"], ann["phone"], ann["first_name"]) == (A, P1, "Ann")


@pytest.mark.parametrize("key", ["email", "phone", "both"])
def test_a_row_matching_one_persona_by_email_phone_or_both_updates_it(account_a, owner_a, tmp_path, make_persona, key):
    ann = make_persona(account_a, email=A, phone=P1, first_name="Ann")
    cells = {"email": [A, ""], "phone": ["", "(415) 555-0101"], "both": [A, "4155550101"]}[key]
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Phone", "First Name"], [*cells, "Annie"]])
    assert counts(upload) == _counts(updated=1)
    assert personas(account_a) == [{**persona_by(account_a, email=A), "first_name": "Annie"}]
    assert [e.persona_id for e in audit(upload)] == [ann.id]


def test_email_of_one_persona_and_phone_of_another_is_rejected_as_ambiguous_naming_both(
        account_a, owner_a, tmp_path, make_persona):
    ann = make_persona(account_a, email=A, phone=P1, points=5)
    bob = make_persona(account_a, email=B, phone=P2, points=7)
    before = personas(account_a)
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Phone", "Points"], [A, P2, "10"]])
    assert counts(upload) == _counts(rejected=1)
    [problem] = problems(upload)
    assert problem["row"] == 2 and problem["severity"] == "error"
    assert "ambiguous" in problem["reason"]
    assert f"#{ann.id}" in problem["reason"] and f"#{bob.id}" in problem["reason"]
    assert personas(account_a) == before
    assert audit(upload) == []


def test_emails_match_whatever_their_case_and_spaces_and_phones_whatever_their_format(
        account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    make_persona(account_a, phone=P2)
    rows = [["Email", "Phone", "Points"], ["  Ann@Example.COM ", "", "1"], ["", "+1 (415) 555-0102", "2"],
            ["", "415.555.0102", "3"], ["ANN@EXAMPLE.COM", "", "4"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows)
    assert counts(upload) == _counts(updated=4)
    assert [(p["email"], p["phone"], p["points"]) for p in personas(account_a)] == [(A, None, 5), (None, P2, 5)]


def test_only_personas_of_the_imports_account_are_touched(account_a, account_b, owner_a, tmp_path, make_persona):
    make_persona(account_b, email=A, first_name="Beta's Ann", points=100)
    before_b = personas(account_b)
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "Points"], [A, "Alpha's Ann", "5"]])
    assert counts(upload) == _counts(created=1)
    assert personas(account_b) == before_b
    [ann] = personas(account_a)
    assert (ann["first_name"], ann["points"]) == ("Alpha's Ann", 5)


@pytest.mark.parametrize("key", ["email", "phone"])
def test_a_row_matching_an_archived_persona_is_rejected_and_never_reactivates_it(
        runner, account_a, owner_a, tmp_path, make_persona, key):
    make_persona(account_a, email=A, phone=P1, points=3)
    code, data, _ = invoke(runner, "archive", "--account", "Alpha", f"--{key}", A if key == "email" else "415-555-0101")
    assert code == 0 and data["archived"] is True
    before = personas(account_a)
    rows = [["Email", "Phone", "Points", "SMS Opt In"], [A if key == "email" else "", P1 if key == "phone" else "", "9",
                                                          "TRUE"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows, opt_in_sms=True)
    assert counts(upload) == _counts(rejected=1)
    [problem] = problems(upload)
    assert problem["severity"] == "error" and "archived persona" in problem["reason"]
    assert personas(account_a) == before and before[0]["archived"] is True


def test_archiving_an_unknown_customer_blocks_their_first_import(runner, account_a, owner_a, tmp_path):
    code, data, _ = invoke(runner, "archive", "--account", "Alpha", "--email", B)
    assert code == 0 and data["created"] is True
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [B, "Bob"]])
    assert counts(upload) == _counts(rejected=1)
    assert [(p["email"], p["first_name"], p["archived"]) for p in personas(account_a)] == [(B, None, True)]


# ---------------------------------------------------------------- file order (SPEC 4)

def test_two_rows_for_one_email_add_both_their_points(account_a, owner_a, tmp_path):
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "10"], [A.upper(), "+15"]])
    assert counts(upload) == _counts(created=1, updated=1)
    assert persona_by(account_a, email=A)["points"] == 25


@pytest.mark.parametrize("chunk_rows", [None, 1, 2])
def test_a_later_row_sees_an_earlier_rows_new_phone_across_chunks(account_a, owner_a, tmp_path, chunk_rows):
    rows = [["Email", "Phone", "Points"], [A, P1, "1"], [A, P2, "2"], ["", P2, "4"], ["", P1, "8"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows, chunk_rows=chunk_rows)
    # Row 3 moves Ann to P2, row 4 finds her by P2, row 5's P1 is free again: a new persona.
    assert counts(upload) == _counts(created=2, updated=2)
    assert [(p["email"], p["phone"], p["points"]) for p in personas(account_a)] == [(A, P2, 7), (None, P1, 8)]
    assert [(e.row, e.action) for e in audit(upload)] == [(2, "created"), (3, "updated"), (4, "updated"), (5, "created")]


def test_chunked_apply_equals_a_single_chunk(account_a, account_b, owner_a, owner_b, tmp_path, make_persona):
    for account in (account_a, account_b):
        make_persona(account, email=A, phone=P1, points=50, sms_opt_out=True)
        make_persona(account, email=B, phone=P3)
    rows = [["Email", "Phone", "Points", "SMS Opt In", "SMS Opt Out", "Veteran"],
            [A, "", "-10", "", "", "TRUE"], ["cy@example.com", P2, "5", "TRUE", "", ""],
            ["", P2, "5", "", "TRUE", ""], [B, P1, "1", "", "", ""], [A, P3, "", "", "", ""],
            ["cy@example.com", "", "", "TRUE", "", "FALSE"], ["", P3, "3", "", "", "TRUE"]]
    path = write_csv(tmp_path, rows)
    whole = apply_queued(prepare_import(account_a, owner_a, path, opt_in_sms=True))
    chunked = apply_queued(prepare_import(account_b, owner_b, path, opt_in_sms=True), chunk_rows=2)
    assert personas(account_b) == personas(account_a)
    assert counts(chunked) == counts(whole)
    assert [(p["row"], p["severity"]) for p in problems(chunked)] == [(p["row"], p["severity"]) for p in problems(whole)]
    assert [(e.row, e.action, e.changes) for e in audit(chunked)] == [(e.row, e.action, e.changes) for e in audit(whole)]


# ---------------------------------------------------------------- values (SPEC 3, 5)

def test_blank_cells_never_erase_a_stored_value(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, phone=P1, first_name="Ann", city="Oakland", postal_code="02134", points=4)
    before = personas(account_a)
    upload = import_rows(account_a, owner_a, tmp_path,
                         [["Email", "Phone", "First Name", "City", "Zip", "Points"], [A, "", "", "", "", ""]])
    assert counts(upload) == _counts(unchanged=1)
    assert personas(account_a) == before


def test_a_file_value_replaces_the_stored_value(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, first_name="Ann", city="Oakland", birthday=datetime.date(1990, 1, 2))
    upload = import_rows(account_a, owner_a, tmp_path,
                         [["Email", "First Name", "City", "Birthday", "Zip"], [A, "Anna", "Berkeley", "03/04/1985", "02134"]])
    ann = persona_by(account_a, email=A)
    assert (ann["first_name"], ann["city"], ann["birthday"], ann["postal_code"]) == ("Anna", "Berkeley", "1985-03-04",
                                                                                      "02134")
    [entry] = audit(upload)
    assert entry.changes == {"first_name": ["Ann", "Anna"], "city": ["Oakland", "Berkeley"],
                             "birthday": ["1990-01-02", "1985-03-04"], "postal_code": [None, "02134"]}


def test_points_add_and_subtract_and_never_set_the_balance(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=100)
    make_persona(account_a, email=B, points=100)
    import_rows(account_a, owner_a, tmp_path, [["Email", "Points"], [A, "+50"], [B, "-20"], [A, "50.0"]])
    assert [p["points"] for p in personas(account_a)] == [200, 80]


def test_a_balance_below_zero_is_applied_with_a_warning(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=10)
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Loyalty Points"], [A, "-25"]])
    assert persona_by(account_a, email=A)["points"] == -15
    assert counts(upload) == _counts(updated=1, warnings=1)
    [warning] = problems(upload)
    assert (warning["row"], warning["column"], warning["severity"]) == (2, "Loyalty Points", "warning")
    assert "below zero" in warning["reason"]
    assert audit(upload)[0].changes == {"points": [10, -15]}
    # The merge finds this problem, after the cells were read: the report still finds the row by its email
    # (its points, imported already, are left out so a fixed report does not add them twice).
    report = list(csv.reader(io.StringIO(flow.problem_report(upload).decode("utf-8-sig"))))
    assert report[1][:2] == ["2", "warning"] and report[1][-2:] == [A, ""]


def test_markup_and_formulas_are_stored_exactly_as_given(account_a, owner_a, tmp_path):
    script, formula = "<script>alert('x')</script>", '=HYPERLINK("http://evil.example","click")'
    import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "Last Name"], [A, script, formula]])
    ann = persona_by(account_a, email=A)
    assert (ann["first_name"], ann["last_name"]) == (script, formula)


# ---------------------------------------------------------------- consent (SPEC 5)

@pytest.mark.parametrize("channel", CHANNELS)
def test_opt_in_true_opts_in_and_false_or_blank_change_nothing(account_a, owner_a, tmp_path, make_persona, channel):
    make_persona(account_a, email=A)
    make_persona(account_a, email=B, **{f"{channel}_opt_in": True})
    make_persona(account_a, email="cy@example.com", **{f"{channel}_opt_in": True})
    rows = [["Email", CHANNELS[channel]["in"]], [A, "TRUE"], [B, "FALSE"], ["cy@example.com", ""]]
    upload = import_rows(account_a, owner_a, tmp_path, rows)
    assert [p[f"{channel}_opt_in"] for p in personas(account_a)] == [True, True, True]
    assert counts(upload) == _counts(updated=1, unchanged=2)


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_explicit_opt_out_wins_over_an_opt_in_in_the_same_row_and_over_the_box(
        account_a, owner_a, tmp_path, make_persona, channel):
    make_persona(account_a, email=A, **{f"{channel}_opt_in": True})
    names = CHANNELS[channel]
    rows = [["Email", names["in"], names["out"]], [A, "TRUE", "TRUE"], [B, "", "yes"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows, **{names["box"]: True})
    assert [(p[f"{channel}_opt_in"], p[f"{channel}_opt_out"]) for p in personas(account_a)] == [(False, True),
                                                                                                 (False, True)]
    assert counts(upload)["warnings"] == 0


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_personas_own_opt_in_row_lifts_a_recorded_opt_out_with_a_warning(
        account_a, owner_a, tmp_path, make_persona, channel):
    make_persona(account_a, email=A, **{f"{channel}_opt_out": True})
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", CHANNELS[channel]["in"]], [A, "y"]])
    ann = persona_by(account_a, email=A)
    assert (ann[f"{channel}_opt_in"], ann[f"{channel}_opt_out"]) == (True, False)
    assert counts(upload) == _counts(updated=1, warnings=1)
    [warning] = problems(upload)
    assert warning["severity"] == "warning" and "opt-out" in warning["reason"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_opt_in_all_box_opts_in_everyone_except_opt_outs_in_the_file_or_on_record(
        account_a, owner_a, tmp_path, make_persona, channel):
    make_persona(account_a, email=A)
    make_persona(account_a, email=B, **{f"{channel}_opt_out": True})  # on record
    make_persona(account_a, email="cy@example.com", phone=P3)
    names = CHANNELS[channel]
    rows = [["Email", "Phone", names["out"]],
            [A, "", ""],  # opted in by the box
            [B, "", ""],  # a recorded opt-out is never undone by the box
            ["cy@example.com", "", ""],  # opted out by a LATER row of the file (found by phone)
            ["dee@example.com", "", ""],  # created, opted in by the box
            ["", P3, "TRUE"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows, **{names["box"]: True})
    states = {p["email"]: (p[f"{channel}_opt_in"], p[f"{channel}_opt_out"]) for p in personas(account_a)}
    assert states == {A: (True, False), B: (False, True), "cy@example.com": (False, True),
                      "dee@example.com": (True, False)}
    # Cy's own first row changed nothing: the box never opted her in, not even for a moment.
    assert counts(upload) == _counts(created=1, updated=2, unchanged=2)
    assert [e.row for e in audit(upload)] == [2, 5, 6]


def test_without_the_box_rows_without_consent_columns_change_no_consent(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    import_rows(account_a, owner_a, tmp_path, [["Email", "First Name"], [A, "Ann"], [B, "Bob"]])
    assert {(p["sms_opt_in"], p["email_opt_in"]) for p in personas(account_a)} == {(False, False)}


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_consent_change_is_stamped_with_time_import_user_and_terms(
        account_a, owner_a, tmp_path, make_persona, channel):
    make_persona(account_a, email=A)
    untouched = make_persona(account_a, email=B, **{f"{channel}_opt_in": True})
    started = utcnow()
    names = CHANNELS[channel]
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", names["in"]], [A, "TRUE"], [B, "TRUE"],
                                                        ["cy@example.com", "TRUE"]])
    for email in (A, "cy@example.com"):
        persona = Persona.get(Persona.email == email)
        assert getattr(persona, f"{channel}_consent_at") >= started.replace(microsecond=0)
        assert getattr(persona, f"{channel}_consent_import") == upload.id
        assert getattr(persona, f"{channel}_consent_user") == owner_a.id
        assert getattr(persona, f"{channel}_consent_terms") == TERMS
    untouched = Persona.get_by_id(untouched.id)  # already opted in: no change, no stamp
    assert getattr(untouched, f"{channel}_consent_import") is None
    other = "email" if channel == "sms" else "sms"
    assert Persona.get(Persona.email == A).__data__[f"{other}_consent_import"] is None


def test_the_terms_acceptance_is_stored_on_the_import(account_a, owner_a, tmp_path):
    before = utcnow()
    upload = import_rows(account_a, owner_a, tmp_path, [["Email"], [A]])
    assert upload.terms_accepted_by_id == owner_a.id
    assert upload.terms_ip == IP
    assert upload.terms_version == TERMS
    assert upload.terms_accepted_at >= before.replace(microsecond=0)


def test_an_import_cannot_start_without_the_terms_accepted(account_a, owner_a, tmp_path):
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, [["Email"], [A]]), accept=False)
    tasks.apply_import(upload.id)  # a job started before flow.submit finds nothing queued and does nothing
    assert personas(account_a) == []
    assert Import.get_by_id(upload.id).status == "validated"


# ---------------------------------------------------------------- classification (SPEC 5)

@pytest.mark.parametrize("cell, expected", [
    ("medical", "medical"), ("Med", "medical"), ("MMJ", "medical"), ("medical patient", "medical"),
    ("recreational", "recreational"), ("rec", "recreational"), ("Adult Use", "recreational"),
    ("adult-use", "recreational"),
])
def test_customer_type_synonyms(account_a, owner_a, tmp_path, cell, expected):
    import_rows(account_a, owner_a, tmp_path, [["Email", "Customer Type"], [A, cell]])
    assert persona_by(account_a, email=A)["customer_type"] == expected


def test_custom_attributes_true_adds_lower_case_and_false_or_blank_never_remove(
        account_a, owner_a, tmp_path, make_persona):
    ann = make_persona(account_a, email=A)
    PersonaAttribute.create(persona=ann, name="police")
    rows = [["Email", "VETERAN", "Police", "Locals"], [A, "TRUE", "FALSE", ""], [B, "", "", "x"]]
    mapping = {"Email": "email", "VETERAN": "attribute:VETERAN", "Police": "attribute:Police",
               "Locals": "attribute:Locals"}
    upload = import_rows(account_a, owner_a, tmp_path, rows, mapping=mapping)
    assert [p["attributes"] for p in personas(account_a)] == [["police", "veteran"], ["locals"]]
    assert audit(upload)[0].changes == {"attributes": [["police"], ["police", "veteran"]]}


def test_attributes_a_persona_gains_are_listed_in_order_among_those_it_had(account_a, owner_a, tmp_path, make_persona):
    ann = make_persona(account_a, email=A)
    for name in ("veteran", "zen"):
        PersonaAttribute.create(persona=ann, name=name)
    mapping = {"Email": "email", "Local": "attribute:local", "Yoga": "attribute:yoga"}
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "Local", "Yoga"], [A, "yes", "yes"]], mapping=mapping)
    assert persona_by(account_a, email=A)["attributes"] == ["local", "veteran", "yoga", "zen"]
    assert audit(upload)[0].changes == {"attributes": [["veteran", "zen"], ["local", "veteran", "yoga", "zen"]]}


# ---------------------------------------------------------------- audience and audit (SPEC 8)

def test_the_audience_holds_every_persona_a_row_reached_created_updated_or_unchanged(
        account_a, owner_a, tmp_path, make_persona):
    updated = make_persona(account_a, email=A)
    unchanged = make_persona(account_a, email=B, first_name="Bob")
    make_persona(account_a, email="old@example.com")  # not in the file
    make_persona(account_a, email="dee@example.com", archived=True)  # its row is rejected
    rows = [["Email", "First Name"], [A, "Ann"], [B, "Bob"], ["cy@example.com", "Cy"], ["not-an-email", "X"],
            ["dee@example.com", "Dee"], [A, "Ann"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows)
    audience = Audience.get_by_id(upload.audience_id)
    assert audience.account_id == account_a.id
    assert audience.name.startswith(f"Import: people.csv {utcnow():%Y-%m-%d}")
    members = {m.persona_id for m in AudienceMember.select().where(AudienceMember.audience == audience)}
    created = Persona.get(Persona.email == "cy@example.com")
    assert members == {updated.id, unchanged.id, created.id}


def test_each_changed_row_writes_one_audit_entry_with_old_and_new_values(account_a, owner_a, tmp_path, make_persona):
    ann = make_persona(account_a, email=A, first_name="Ann", points=10)
    rows = [["Email", "First Name", "Points", "SMS Opt In"], [A, "Anna", "5", "TRUE"], [B, "Bob", "", ""],
            [A, "Anna", "-3", ""]]
    upload = import_rows(account_a, owner_a, tmp_path, rows)
    bob = Persona.get(Persona.email == B)
    entries = [(e.persona_id, e.import_id, e.row, e.user_id, e.action, e.changes) for e in audit(upload)]
    assert entries == [
        (ann.id, upload.id, 2, owner_a.id, "updated",
         {"first_name": ["Ann", "Anna"], "points": [10, 15], "sms_opt_in": [False, True]}),
        (bob.id, upload.id, 3, owner_a.id, "created", {"email": [None, B], "first_name": [None, "Bob"]}),
        (ann.id, upload.id, 4, owner_a.id, "updated", {"points": [15, 12]}),
    ]
    assert all(e.account_id == account_a.id and e.created_at for e in audit(upload))


def test_unchanged_rows_write_no_audit_entry_and_count_unchanged(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, first_name="Ann", sms_opt_in=True)
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "SMS Opt In", "Points"],
                                                        [A, "Ann", "TRUE", "0"], [A, "", "", ""]])
    assert counts(upload) == _counts(unchanged=2)
    assert audit(upload) == []
    assert Audience.select().where(Audience.id == upload.audience_id).exists()


def test_rows_are_numbered_as_the_spreadsheet_shows_them_even_below_title_rows(account_a, owner_a, tmp_path):
    rows = [["Customer export, March"], [], ["Email", "Points"], [A, "1"], ["not-an-email", "2"], [B, "x"]]
    upload = import_rows(account_a, owner_a, tmp_path, rows)
    assert Import.get_by_id(upload.id).header_line == 3
    assert [(e.row, e.action) for e in audit(upload)] == [(4, "created"), (6, "created")]
    assert [(p["row"], p["severity"]) for p in problems(upload)] == [(5, "warning"), (5, "error"), (6, "warning")]


# ---------------------------------------------------------------- dry run

def test_the_dry_run_writes_nothing_and_counts_what_the_apply_does(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, phone=P1, points=5)
    make_persona(account_a, email=B, phone=P2)
    rows = [["Email", "Phone", "Points", "First Name"], [A, "", "-10", ""], [A, P2, "", ""], [B, "", "", ""],
            ["cy@example.com", P3, "1", "Cy"], ["", P3, "1", ""], ["", "bad phone", "1", ""]]
    before = personas(account_a)
    audit_before = AuditEntry.select().count()
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, rows))
    assert personas(account_a) == before
    assert AuditEntry.select().count() == audit_before
    review = review_counts(upload)
    assert review == _counts(created=1, updated=2, unchanged=1, rejected=2, warnings=2)
    assert counts(apply_queued(upload)) == review


# ---------------------------------------------------------------- exactly once

class Stop(Exception):
    """Stands in for a worker dying between two chunks."""


def _stop_after(chunks: int):
    done = [0]

    def after_chunk():
        done[0] += 1
        if done[0] == chunks:
            raise Stop

    return after_chunk


def _declare_dead(upload):
    """What a killed worker leaves: a running import whose heartbeat went stale."""
    Import.update(heartbeat_at=utcnow() - engine.stale_after() * 2).where(Import.id == upload.id).execute()


EXACTLY_ONCE_ROWS = [["Email", "Phone", "Points", "SMS Opt In"], [A, P1, "10", ""], [A, "", "5", "TRUE"],
                     ["", P1, "1", ""], [B, P2, "7", ""], [A, P3, "2", ""], ["", P3, "4", ""], [B, "", "-1", ""]]


def test_an_apply_stopped_between_chunks_resumes_at_the_checkpoint_exactly_once(
        account_a, account_b, owner_a, owner_b, tmp_path, monkeypatch):
    path = write_csv(tmp_path, EXACTLY_ONCE_ROWS)
    uninterrupted = apply_queued(prepare_import(account_b, owner_b, path), chunk_rows=2)

    upload = prepare_import(account_a, owner_a, path)
    tune(monkeypatch, IMPORT_CHUNK_ROWS=2)
    with pytest.raises(tasks.JobFailed, match="Stop"):  # what the job hands RQ instead of the error itself
        tasks.apply_import(upload.id, after_chunk=_stop_after(2))
    stopped = Import.get_by_id(upload.id)
    assert (stopped.status, stopped.checkpoint) == ("running", 4)
    assert len(audit(stopped)) == 4
    _declare_dead(upload)
    tasks.apply_import(upload.id)

    resumed = Import.get_by_id(upload.id)
    assert resumed.status == "completed"
    assert personas(account_a) == personas(account_b)
    assert counts(resumed) == counts(uninterrupted)
    assert [(e.row, e.changes) for e in audit(resumed)] == [(e.row, e.changes) for e in audit(uninterrupted)]


def test_a_worker_killed_mid_chunk_leaves_nothing_of_that_chunk(account_a, account_b, owner_a, owner_b, tmp_path,
                                                                monkeypatch):
    path = write_csv(tmp_path, EXACTLY_ONCE_ROWS)
    apply_queued(prepare_import(account_b, owner_b, path), chunk_rows=3)
    upload = prepare_import(account_a, owner_a, path)
    lease = engine.claim(upload.id, ("queued",), "running")
    real_write_audit, calls = engine._write_audit, [0]

    def dies_in_second_chunk(*args):
        calls[0] += 1
        real_write_audit(*args)
        if calls[0] == 2:
            raise Stop  # after the chunk's personas and audit are written, before its checkpoint

    monkeypatch.setattr(engine, "_write_audit", dies_in_second_chunk)
    with pytest.raises(Stop):
        engine.apply(upload.id, lease, chunk_rows=3)
    monkeypatch.setattr(engine, "_write_audit", real_write_audit)
    assert Import.get_by_id(upload.id).checkpoint == 3
    assert [e.row for e in audit(upload)] == [2, 3, 4]
    _declare_dead(upload)
    engine.apply(upload.id, engine.claim(upload.id, ("queued",), "running"), chunk_rows=3)
    assert personas(account_a) == personas(account_b)


def test_a_run_whose_lease_was_taken_over_raises_lease_lost_and_writes_nothing(account_a, owner_a, tmp_path):
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, EXACTLY_ONCE_ROWS))
    stale_lease = engine.claim(upload.id, ("queued",), "running")
    _declare_dead(upload)
    live_lease = engine.claim(upload.id, ("queued",), "running")
    assert live_lease not in (None, stale_lease)
    with pytest.raises(engine.LeaseLost):
        engine.apply(upload.id, stale_lease, chunk_rows=2)
    assert personas(account_a) == []
    assert audit(upload) == []
    assert Import.get_by_id(upload.id).checkpoint == 0
    engine.apply(upload.id, live_lease, chunk_rows=2)
    assert [(p["email"], p["points"]) for p in personas(account_a)] == [(A, 22), (B, 6)]


def test_a_live_run_cannot_be_claimed_twice(account_a, owner_a, tmp_path):
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, [["Email"], [A]]))
    assert engine.claim(upload.id, ("queued",), "running") is not None
    assert engine.claim(upload.id, ("queued",), "running") is None


def test_an_import_row_has_at_most_one_audit_entry(account_a, owner_a, tmp_path):
    upload = import_rows(account_a, owner_a, tmp_path, [["Email"], [A]])
    [entry] = audit(upload)
    with pytest.raises(IntegrityError), db.atomic():
        AuditEntry.create(account=account_a, persona_id=entry.persona_id, import_id=upload.id, row=entry.row,
                          action="updated")


# ---------------------------------------------------------------- known deviations (reported, not yet fixed)

def test_the_box_never_opts_in_a_persona_whose_later_row_opts_out_even_after_its_keys_changed(
        account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    rows = [["Email", "Phone", "SMS Opt Out"],
            [A, "", ""],  # Ann has no phone yet: the opt-out row below names only P1
            [A, P1, ""],  # now Ann's phone is P1
            ["", P1, "TRUE"]]  # Ann's own opt-out row
    upload = import_rows(account_a, owner_a, tmp_path, rows, opt_in_sms=True)
    assert (persona_by(account_a, email=A)["sms_opt_in"], persona_by(account_a, email=A)["sms_opt_out"]) == (
        False, True)
    assert [(e.row, e.changes) for e in audit(upload)] == [
        (3, {"phone": [None, P1]}), (4, {"sms_opt_out": [False, True]})]


def test_dry_run_counts_equal_the_apply_with_an_opt_in_all_box(account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A)
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, [["Email"], [A]]), opt_in_sms=True)
    assert review_counts(upload) == _counts(updated=1)
    assert flow.review_counts(upload, False, False)["unchanged"] == 1  # the same rows without the box
    assert counts(apply_queued(upload)) == review_counts(upload)


def test_the_review_counts_follow_each_box_separately_for_rows_that_interact(account_a, owner_a, tmp_path,
                                                                            make_persona):
    make_persona(account_a, email=A, sms_opt_in=True)
    rows = [["Email", "Phone", "Explicit Email Opt-out"], [A, "", ""], [A, P1, ""], ["cy@example.com", "", "TRUE"],
            ["cy@example.com", "", ""]]
    upload = prepare_import(account_a, owner_a, write_csv(tmp_path, rows), accept=False)
    # Ann is opted in to SMS already, so only the Email box changes her first row. Cy is created by his
    # first row (whatever a box adds to it), and his email opt-out keeps the Email box off him.
    assert flow.review_counts(upload, False, False) == {"rows": 4, **_counts(created=1, updated=1, unchanged=2)}
    assert flow.review_counts(upload, True, False) == {"rows": 4, **_counts(created=1, updated=1, unchanged=2)}
    assert flow.review_counts(upload, False, True) == {"rows": 4, **_counts(created=1, updated=2, unchanged=1)}
    assert flow.review_counts(upload, True, True) == {"rows": 4, **_counts(created=1, updated=2, unchanged=1)}


def test_a_rejected_rows_opt_out_does_not_exclude_a_new_customer_with_its_phone_from_the_box(
        runner, account_a, owner_a, tmp_path):
    invoke(runner, "archive", "--account", "Alpha", "--email", B)
    rows = [["Email", "Phone", "SMS Opt Out"], [B, P1, "TRUE"], ["", P1, ""]]
    import_rows(account_a, owner_a, tmp_path, rows, opt_in_sms=True)
    assert persona_by(account_a, phone=P1)["sms_opt_in"] is True


def test_the_fixed_problem_report_reimports_only_what_was_not_imported(account_a, owner_a, tmp_path):
    rows = [["Email", "Birthday", "Points", "SMS Opt In"],
            ["ann@example.com", "02/30/1990", "10", "TRUE"],  # birthday skipped, the rest imported
            ["", "01/02/1990", "5", ""]]  # rejected: nothing imported
    first = import_rows(account_a, owner_a, tmp_path, rows)
    report = flow.problem_report(first).decode("utf-8-sig").replace("02/30/1990", "02/28/1990")
    import_rows(account_a, owner_a, tmp_path, list(csv.reader(io.StringIO(report.replace(
        ",,01/02/1990", ",bea@example.com,01/02/1990")))), name="fixed.csv")
    ann, bea = persona_by(account_a, email="ann@example.com"), persona_by(account_a, email="bea@example.com")
    assert (ann["birthday"], ann["points"], ann["sms_opt_in"]) == ("1990-02-28", 10, True)
    assert (bea["birthday"], bea["points"]) == ("1990-01-02", 5)


def test_long_texts_and_file_names_import_on_every_database(account_a, owner_a, tmp_path):
    long_name, long_city = "N" * 300, "C" * 1000
    upload = import_rows(account_a, owner_a, tmp_path, [["Email", "First Name", "City"],
                                                         ["long@example.com", long_name, long_city]],
                         name="x" * 200 + ".csv")
    assert upload.status == "completed"
    assert (persona_by(account_a, email="long@example.com")["first_name"],
            persona_by(account_a, email="long@example.com")["city"]) == (long_name, long_city)
    assert Audience.get(Audience.source_import == upload.id).name.startswith("Import: " + "x" * 200)


def test_a_persona_changed_between_the_review_and_the_import_is_merged_as_it_is_then(
        runner, account_a, owner_a, tmp_path, make_persona):
    make_persona(account_a, email=A, points=10, first_name="Ann")
    make_persona(account_a, email=B, first_name="Bob")
    make_persona(account_a, email="cy@example.com")
    first = prepare_import(account_a, owner_a, write_csv(tmp_path, [
        ["Email", "Points", "First Name"], [A, "5", "Annie"], [B, "", "Bob"], ["cy@example.com", "1", ""]], "first.csv"))
    assert review_counts(first) == _counts(updated=2, unchanged=1)
    # Before it is applied, another import adds to Ann's points and renames Bob; Cy is archived.
    import_rows(account_a, owner_a, tmp_path, [["Email", "Points", "First Name"], [A, "7", ""], [B, "", "Robert"]],
                name="second.csv")
    invoke(runner, "archive", "--account", "Alpha", "--email", "cy@example.com")

    upload = apply_queued(first)
    assert (persona_by(account_a, email=A)["points"], persona_by(account_a, email=A)["first_name"]) == (22, "Annie")
    assert persona_by(account_a, email=B)["first_name"] == "Bob"
    assert [(e.row, e.changes) for e in audit(upload)] == [
        (2, {"first_name": ["Ann", "Annie"], "points": [17, 22]}), (3, {"first_name": ["Robert", "Bob"]})]
    assert counts(upload) == _counts(updated=2, rejected=1)
    assert [p["reason"].split(":")[0] for p in problems(upload, "error")] == ["archived persona"]


def test_rows_without_an_email_do_not_interact_through_the_missing_key(account_a, owner_a, tmp_path):
    """Only a key two rows share joins them; rows lacking one stand alone (and merge column-wise)."""
    from webapp.importer import independence

    rows = pl.DataFrame({"seq": [1, 2, 3], "email": [None, None, A], "phone": [P1, P2, None],
                         "error": [None, None, None]}, schema_overrides={"email": pl.String, "error": pl.String})
    matched = pl.DataFrame(schema=independence.KEY_SCHEMA | {"email_id": pl.Int64, "phone_id": pl.Int64}).select(
        "seq", "email_id", "phone_id")
    assert independence.groups(independence.row_keys(rows), matched).is_empty()
