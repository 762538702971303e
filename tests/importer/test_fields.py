"""The field catalogue, header auto-matching and mapping validation (SPEC section 2)."""

import pytest

from webapp.importer.fields import (
    ATTRIBUTE_PREFIX,
    FIELDS,
    IGNORE,
    attribute_name,
    attribute_target,
    auto_match,
    normalize_header,
    validate_mapping,
)

CONTACT = "Map an Email or Phone column: personas are matched on phone or email"


def test_fields_are_the_spec_fields_in_spec_order():
    assert list(FIELDS) == [
        "email", "phone", "first_name", "last_name", "birthday", "gender", "street", "city",
        "state", "postal_code", "external_id", "loyalty_member", "loyalty_signup_date", "points",
        "sms_opt_in", "email_opt_in", "sms_opt_out", "email_opt_out", "customer_type",
    ]


def test_field_kinds():
    kinds = {name: f.kind for name, f in FIELDS.items()}
    assert kinds == {
        "email": "email", "phone": "phone", "first_name": "text", "last_name": "text",
        "birthday": "date", "gender": "text", "street": "text", "city": "text", "state": "text",
        "postal_code": "postal_code", "external_id": "text", "loyalty_member": "bool",
        "loyalty_signup_date": "date", "points": "points", "sms_opt_in": "bool",
        "email_opt_in": "bool", "sms_opt_out": "bool", "email_opt_out": "bool",
        "customer_type": "customer_type",
    }


def test_labels_are_human():
    assert FIELDS["email"].label == "Email"
    assert FIELDS["phone"].label == "Phone"
    assert FIELDS["first_name"].label == "First Name"
    assert FIELDS["sms_opt_in"].label == "Opt-in SMS"
    assert FIELDS["sms_opt_out"].label == "Explicit SMS Opt-out"
    assert FIELDS["email_opt_out"].label == "Explicit Email Opt-out"


def test_every_label_is_recognised_as_its_own_field():
    # Templates and exports use the labels as headers; they must map back.
    labels = [f.label for f in FIELDS.values()]
    assert auto_match(labels) == {f.label: name for name, f in FIELDS.items()}


@pytest.mark.parametrize(
    "header, field",
    [
        # SPEC section 2, every typical header.
        ("Email", "email"), ("E-mail", "email"), ("Email Address", "email"),
        ("Phone", "phone"), ("Phone Number", "phone"), ("Mobile", "phone"), ("Cell", "phone"),
        ("First Name", "first_name"), ("First", "first_name"),
        ("Last Name", "last_name"), ("Last", "last_name"),
        ("Birthday", "birthday"), ("Birth Date", "birthday"), ("DOB", "birthday"),
        ("Date of Birth", "birthday"),
        ("Gender", "gender"),
        ("Address", "street"), ("City", "city"), ("State", "state"),
        ("Zip", "postal_code"), ("Postal Code", "postal_code"),
        ("Customer ID", "external_id"), ("External ID", "external_id"), ("Member ID", "external_id"),
        ("Loyalty", "loyalty_member"), ("Loyalty Member", "loyalty_member"),
        ("Loyalty Signup Date", "loyalty_signup_date"), ("Loyalty Join Date", "loyalty_signup_date"),
        ("Points", "points"), ("Loyalty Points", "points"),
        ("Opt-in SMS", "sms_opt_in"), ("SMS Opt In", "sms_opt_in"),
        ("Opt-in Email", "email_opt_in"), ("Email Opt In", "email_opt_in"),
        ("Explicit SMS Opt-out", "sms_opt_out"), ("SMS Opt Out", "sms_opt_out"),
        ("Explicit Email Opt-out", "email_opt_out"),
        ("Customer Type", "customer_type"),
        # What other providers' exports call them.
        ("Mobile Phone", "phone"), ("Cell Phone", "phone"), ("Phone #", "phone"),
        ("Zip Code", "postal_code"), ("ZIP", "postal_code"), ("Address 1", "street"),
        ("Street Address", "street"), ("Email Opt Out", "email_opt_out"),
        ("Accepts SMS Marketing", "sms_opt_in"), ("Accepts Email Marketing", "email_opt_in"),
        ("Medical/Recreational", "customer_type"),
    ],
)
def test_synonyms(header, field):
    assert auto_match([header]) == {header: field}


@pytest.mark.parametrize("header", ["Points Balance", "Notes", "ID", "Status", ""])
def test_headers_that_are_not_fields_are_ignored(header):
    assert auto_match([header]) == {header: IGNORE}


@pytest.mark.parametrize(
    "header, normal",
    [
        ("E-mail", "email"),
        ("Opt-in SMS", "optinsms"),
        ("  FIRST_NAME ", "firstname"),
        ("\ufeffEmail", "email"),
        ("Phone #", "phone"),
        ("e.mail", "email"),
        ("Date-of_Birth", "dateofbirth"),
        ("Medical/Recreational", "medicalrecreational"),
        (None, ""),
    ],
)
def test_normalize_header(header, normal):
    assert normalize_header(header) == normal


@pytest.mark.parametrize("header", ["EMAIL", "e_mail", " E-Mail ", "\ufeffemail", "E.Mail"])
def test_matching_ignores_case_spaces_punctuation_and_bom(header):
    assert auto_match([header]) == {header: "email"}


def test_attribute_target_and_name():
    assert ATTRIBUTE_PREFIX == "attribute:"
    assert attribute_target("  Veteran ") == "attribute:veteran"
    assert attribute_target("Frequent  Buyer") == "attribute:frequent buyer"
    assert attribute_name("attribute:Veteran") == "veteran"
    assert attribute_name("attribute:") == ""
    assert attribute_name("email") is None
    assert attribute_name(IGNORE) is None


def test_remembered_mapping_wins_over_synonyms():
    remembered = {"cell": "attribute:has cell", "contact": "email"}
    assert auto_match(["Cell", "Contact", "Phone"], remembered) == {
        "Cell": "attribute:has cell",
        "Contact": "email",
        "Phone": "phone",
    }


def test_remembered_field_is_not_also_given_to_a_synonym_column_further_left():
    assert auto_match(["Email", "Work Email"], {"workemail": "email"}) == {
        "Email": IGNORE,
        "Work Email": "email",
    }


def test_remembered_ignore_wins_over_a_synonym():
    assert auto_match(["Email", "Phone"], {"phone": IGNORE}) == {"Email": "email", "Phone": IGNORE}


def test_remembered_keys_are_compared_normalized():
    assert auto_match(["Contact Mail"], {"Contact-Mail": "email"}) == {"Contact Mail": "email"}


def test_remembered_unknown_target_falls_back_to_synonyms():
    assert auto_match(["Email"], {"email": "fax"}) == {"Email": "email"}


def test_a_field_is_auto_assigned_once_first_column_wins():
    assert auto_match(["Email", "E-mail", "Mobile", "Cell"]) == {
        "Email": "email",
        "E-mail": IGNORE,
        "Mobile": "phone",
        "Cell": IGNORE,
    }


def test_unknown_boolean_columns_become_attributes():
    headers = ["Email", "Veteran", "Police", " Locals "]
    samples = {
        "Veteran": ["TRUE", "FALSE", "TRUE"],
        "Police": ["FALSE", "", "yes"],
        " Locals ": [True, False, None],
    }
    assert auto_match(headers, samples=samples) == {
        "Email": "email",
        "Veteran": "attribute:veteran",
        "Police": "attribute:police",
        " Locals ": "attribute:locals",
    }


@pytest.mark.parametrize(
    "sample",
    [
        ["TRUE", "maybe"],  # one value is not yes/no
        ["", None, "  "],  # no value at all
        [],
        ["1", "0", "1"],  # digits alone look like ids or counts too
        [1, 0, 1.0],
    ],
)
def test_unknown_columns_stay_ignored_without_clear_boolean_samples(sample):
    assert auto_match(["Veteran"], samples={"Veteran": sample}) == {"Veteran": IGNORE}


def test_boolean_samples_do_not_override_a_known_field():
    assert auto_match(["Loyalty"], samples={"Loyalty": ["TRUE"]}) == {"Loyalty": "loyalty_member"}


def test_auto_match_keeps_header_order():
    headers = ["Notes", "Phone", "Email"]
    assert list(auto_match(headers)) == headers


def test_valid_mapping_has_no_messages():
    assert validate_mapping({"Email": "email", "Notes": IGNORE, "Veteran": "attribute:veteran"}) == []
    assert validate_mapping({"Mobile": "phone"}) == []


def test_a_field_from_two_columns():
    assert validate_mapping({"Email": "email", "E-mail": "email"}) == [
        "Email is mapped from two columns: Email, E-mail"
    ]


def test_a_field_from_three_columns():
    assert validate_mapping({"A": "phone", "B": "phone", "C": "phone"}) == [
        "Phone is mapped from 3 columns: A, B, C"
    ]


def test_an_attribute_from_two_columns():
    mapping = {"Email": "email", "Vet": "attribute:veteran", "Veteran": "attribute:veteran"}
    assert validate_mapping(mapping) == ['Custom attribute "veteran" is mapped from two columns: Vet, Veteran']


def test_unknown_target():
    assert validate_mapping({"Email": "email", "Fax": "fax"}) == ['Column "Fax" is mapped to an unknown field "fax"']


def test_attribute_without_a_name():
    assert validate_mapping({"Email": "email", "X": "attribute:  "}) == [
        'Column "X" is mapped to a custom attribute without a name'
    ]


def test_neither_email_nor_phone():
    assert validate_mapping({"First Name": "first_name", "Email": IGNORE}) == [CONTACT]
    assert validate_mapping({}) == [CONTACT]


def test_all_messages_together():
    mapping = {"First": "first_name", "Given": "first_name", "Fax": "fax"}
    assert validate_mapping(mapping) == [
        'Column "Fax" is mapped to an unknown field "fax"',
        "First Name is mapped from two columns: First, Given",
        CONTACT,
    ]


def test_attribute_names_compare_case_insensitively():
    mapping = {"Phone": "phone", "Vet": "attribute:Veteran", "Veteran": "attribute:veteran"}
    assert validate_mapping(mapping) == ['Custom attribute "veteran" is mapped from two columns: Vet, Veteran']
    samples = {"Veteran": ["TRUE"]}
    assert auto_match(["Vet", "Veteran"], {"vet": "attribute:VETERAN"}, samples) == {
        "Vet": "attribute:veteran",
        "Veteran": IGNORE,
    }


def test_a_custom_attribute_name_longer_than_100_characters_is_refused():
    mapping = {"Email": "email", "Notes": "attribute:" + "v" * 101}
    assert validate_mapping(mapping) == [
        'The custom attribute name for column "Notes" is too long: use at most 100 characters']


def test_the_catalogue_is_the_one_source_of_the_persona_columns_export_and_provider_template():
    from webapp.importer.fields import EXPORT_KEYS, PERSONA_COLUMNS, PLAIN_FIELDS
    from webapp.importer.templates import TEMPLATES
    from webapp.models import Persona

    columns = set(Persona._meta.columns)
    assert set(FIELDS) <= columns and set(PERSONA_COLUMNS) <= columns
    assert set(PLAIN_FIELDS) == {name for name, f in FIELDS.items() if f.merge == "replace"}
    assert EXPORT_KEYS == tuple(FIELDS)
    provider = TEMPLATES["provider"]
    assert provider.headers == tuple(f.synonyms[0] for f in FIELDS.values())
    assert auto_match(list(provider.headers)) == dict(zip(provider.headers, FIELDS))
    assert all(len(row) == len(FIELDS) for row in provider.rows)


def test_every_field_has_three_samples_and_a_page_group():
    for f in FIELDS.values():
        assert len(f.samples) == 3, f.name
        assert f.group in ("profile", "loyalty", "consent"), f.name
        assert (f.merge == "consent") == (f.channel is not None), f.name
