"""Reading a whole row (SPEC section 3): cell problems are warnings, a row without a contact is rejected."""

import json
from datetime import date, datetime

import pytest

from webapp.importer.fields import IGNORE
from webapp.importer.values import ParseContext, RowParser, parse_row

CTX = ParseContext(today=date(2024, 6, 1))
HEADERS = ["Email", "Phone", "First Name", "Birthday", "Points", "Opt-in SMS", "Veteran", "Notes"]
MAPPING = {
    "Email": "email",
    "Phone": "phone",
    "First Name": "first_name",
    "Birthday": "birthday",
    "Points": "points",
    "Opt-in SMS": "sms_opt_in",
    "Veteran": "attribute:veteran",
    "Notes": IGNORE,
}


def row(line, cells, headers=HEADERS, mapping=MAPPING):
    return parse_row(line, cells, headers, mapping, CTX)


def warning(line, column, value, reason):
    return {"row": line, "column": column, "value": value, "reason": reason, "severity": "warning"}


def error(line, reason):
    return {"row": line, "column": "", "value": "", "reason": reason, "severity": "error"}


def test_a_clean_row():
    cells = ["Jane@Example.com", "(415) 555-0123", " Jane ", "04/12/1988", "+50", "TRUE", "yes", "vip"]
    assert row(2, cells) == {
        "line": 2,
        "fields": {
            "email": "jane@example.com",
            "phone": "+14155550123",
            "first_name": "Jane",
            "birthday": "1988-04-12",
            "points": 50,
            "sms_opt_in": True,
        },
        "attributes": ["veteran"],
        "problems": [],
        "error": None,
        "cells": cells,
    }


def test_blank_cells_are_left_out():
    result = row(3, ["jane@example.com", "", None, "  ", "", "", "", ""])
    assert result["fields"] == {"email": "jane@example.com"}
    assert result["attributes"] == []
    assert result["problems"] == []
    assert result["cells"] == ["jane@example.com", "", "", "  ", "", "", "", ""]


def test_false_booleans_are_kept_as_false_and_false_attributes_add_nothing():
    result = row(4, ["jane@example.com", "", "", "", "", "FALSE", "FALSE", ""])
    assert result["fields"] == {"email": "jane@example.com", "sms_opt_in": False}
    assert result["attributes"] == []


def test_a_bad_cell_is_a_warning_and_skipped_the_rest_applies():
    cells = ["jane@example.com", "", "Jane", "02/30/1990", "ten", "maybe", "sure", ""]
    result = row(5, cells)
    assert result["fields"] == {"email": "jane@example.com", "first_name": "Jane"}
    assert result["attributes"] == []
    assert result["problems"] == [
        warning(5, "Birthday", "02/30/1990", "impossible date"),
        warning(5, "Points", "ten", "not a whole number of points"),
        warning(5, "Opt-in SMS", "maybe", "not a yes/no value"),
        warning(5, "Veteran", "sure", "not a yes/no value"),
    ]
    assert result["error"] is None


def test_a_bad_phone_with_a_good_email_is_a_warning_only():
    result = row(6, ["jane@example.com", "555-0123", "", "", "", "", "", ""])
    assert result["fields"] == {"email": "jane@example.com"}
    assert result["problems"] == [warning(6, "Phone", "555-0123", "not a valid phone number for US")]
    assert result["error"] is None


def test_phone_alone_is_enough():
    result = row(7, ["", "415.555.0123", "", "", "", "", "", ""])
    assert result["fields"] == {"phone": "+14155550123"}
    assert result["error"] is None


def test_no_email_or_phone_rejects_the_row():
    result = row(8, ["", "", "Jane", "", "10", "", "TRUE", ""])
    assert result["error"] == "no email or phone"
    assert result["problems"] == [error(8, "no email or phone")]


def test_invalid_email_and_no_phone_rejects_the_row():
    result = row(9, ["jane@", "", "Jane", "", "", "", "", ""])
    assert result["error"] == "email not valid and no phone"
    assert result["problems"] == [
        warning(9, "Email", "jane@", "not a valid email address"),
        error(9, "email not valid and no phone"),
    ]


def test_invalid_phone_and_no_email_rejects_the_row():
    result = row(10, ["", "123", "", "", "", "", "", ""])
    assert result["error"] == "phone not valid and no email"
    assert result["problems"] == [
        warning(10, "Phone", "123", "not a valid phone number for US"),
        error(10, "phone not valid and no email"),
    ]


def test_both_invalid_rejects_the_row():
    result = row(11, ["jane", "4.15556E+09", "", "", "", "", "", ""])
    assert result["error"] == "neither email nor phone is valid"
    assert [p["reason"] for p in result["problems"]] == [
        "not a valid email address",
        "digits lost: Excel shortened this number (4.15556E+09); format the column as text and export again",
        "neither email nor phone is valid",
    ]


def test_ignored_columns_are_not_read_but_kept_in_cells():
    mapping = {**MAPPING, "First Name": IGNORE}
    result = row(12, ["jane@example.com", "", "<b>", "", "", "", "", "anything"], mapping=mapping)
    assert result["fields"] == {"email": "jane@example.com"}
    assert result["cells"][2] == "<b>"
    assert result["cells"][7] == "anything"


def test_headers_missing_from_the_mapping_are_ignored():
    result = parse_row(2, ["jane@example.com", "x"], ["Email", "Extra"], {"Email": "email"}, CTX)
    assert result["fields"] == {"email": "jane@example.com"}
    assert result["problems"] == []


def test_short_rows_read_missing_cells_as_blank():
    result = row(13, ["jane@example.com"])
    assert result["fields"] == {"email": "jane@example.com"}
    assert result["cells"] == ["jane@example.com"]


def test_attributes_are_sorted_lower_case_and_unique():
    headers = ["Phone", "Police", "Veteran", "Locals", "Vet"]
    mapping = {
        "Phone": "phone",
        "Police": "attribute:Police",
        "Veteran": "attribute:veteran",
        "Locals": "attribute:locals",
        "Vet": "attribute:VETERAN",
    }
    result = parse_row(2, ["4155550123", "x", "TRUE", "FALSE", "1"], headers, mapping, CTX)
    assert result["attributes"] == ["police", "veteran"]


def test_excel_cells():
    headers = ["Phone", "Birthday", "Zip", "Points", "SMS", "Veteran", "Signup"]
    mapping = {
        "Phone": "phone",
        "Birthday": "birthday",
        "Zip": "postal_code",
        "Points": "points",
        "SMS": "sms_opt_in",
        "Veteran": "attribute:veteran",
        "Signup": "loyalty_signup_date",
    }
    cells = [4155550123.0, datetime(1988, 4, 12), 2134, 50.0, True, False, 45292]
    assert parse_row(2, cells, headers, mapping, CTX) == {
        "line": 2,
        "fields": {
            "phone": "+14155550123",
            "birthday": "1988-04-12",
            "postal_code": "02134",
            "points": 50,
            "sms_opt_in": True,
            "loyalty_signup_date": "2024-01-01",
        },
        "attributes": [],
        "problems": [],
        "error": None,
        "cells": ["4155550123", "1988-04-12", "2134", "50", "TRUE", "FALSE", "45292"],
    }


def test_markup_and_formulas_are_data():
    headers = ["Email", "First Name", "Last Name"]
    mapping = {"Email": "email", "First Name": "first_name", "Last Name": "last_name"}
    cells = ["jane@example.com", "<script>alert(1)</script>", '=HYPERLINK("http://evil.example","x")']
    result = parse_row(2, cells, headers, mapping, CTX)
    assert result["fields"] == {
        "email": "jane@example.com",
        "first_name": "<script>alert(1)</script>",
        "last_name": '=HYPERLINK("http://evil.example","x")',
    }


def test_customer_type_and_other_fields():
    headers = ["Phone", "Customer Type", "Zip", "Member ID", "Loyalty"]
    mapping = {
        "Phone": "phone",
        "Customer Type": "customer_type",
        "Zip": "postal_code",
        "Member ID": "external_id",
        "Loyalty": "loyalty_member",
    }
    result = parse_row(2, ["4155550123", "Adult-Use", "02134", 1234.0, "y"], headers, mapping, CTX)
    assert result["fields"] == {
        "phone": "+14155550123",
        "customer_type": "recreational",
        "postal_code": "02134",
        "external_id": "1234",
        "loyalty_member": True,
    }


def test_day_first_account():
    ctx = ParseContext(day_first=True, today=date(2024, 6, 1))
    result = parse_row(2, ["4155550123", "05/01/1990"], ["Phone", "DOB"], {"Phone": "phone", "DOB": "birthday"}, ctx)
    assert result["fields"]["birthday"] == "1990-01-05"


def test_date_problems_are_reported_on_every_row_even_when_remembered():
    parser = RowParser(["Phone", "DOB"], {"Phone": "phone", "DOB": "birthday"}, CTX)
    for line in (2, 3):
        assert parser(line, ["4155550123", "13/01/1990"])["problems"] == [
            warning(line, "DOB", "13/01/1990", "impossible date")
        ]
        assert parser(line, ["4155550123", "1/5/90"])["fields"]["birthday"] == "1990-01-05"


def test_row_parser_gives_the_same_result_as_parse_row():
    parser = RowParser(HEADERS, MAPPING, CTX)
    cells = ["jane@example.com", "4155550123", "Jane", "1/5/90", "-20", "no", "x", ""]
    assert parser(2, cells) == row(2, cells)


def test_result_is_json_serialisable():
    cells = ["jane@example.com", 4155550123, "Jane", datetime(1990, 1, 5), -20.0, True, "✓", None]
    result = row(2, cells)
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"Email": "fax"}, "unknown target 'fax' for column 'Email'"),
        ({"Email": "attribute: "}, "custom attribute without a name for column 'Email'"),
    ],
)
def test_a_mapping_validate_mapping_refuses_is_refused(mapping, message):
    with pytest.raises(ValueError) as excinfo:
        RowParser(["Email"], mapping, CTX)
    assert str(excinfo.value) == message


def test_remembered_dates_do_not_confuse_equal_keys_of_other_types():
    parser = RowParser(["Phone", "DOB"], {"Phone": "phone", "DOB": "birthday"}, CTX)
    assert parser(2, ["4155550123", True])["problems"] == [warning(2, "DOB", "TRUE", "not a date")]
    assert parser(3, ["4155550123", 1])["fields"]["birthday"] == "1900-01-01"
