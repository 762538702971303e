"""Reading one cell (SPEC section 3): each spelling a marketer's file may hold, and what it becomes."""

import math
import random
from datetime import date, datetime

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from webapp.importer.values import (
    PARSERS,
    ParseContext,
    cell_text,
    parse_bool,
    parse_customer_type,
    parse_date,
    parse_email,
    parse_phone,
    parse_points,
    parse_postal_code,
    parse_text,
    parse_value,
)

TODAY = date(2024, 6, 1)
US = ParseContext(today=TODAY)
DAY_FIRST = ParseContext(day_first=True, today=TODAY)
GB = ParseContext(region="GB", today=TODAY)

NOT_US_PHONE = "not a valid phone number for US"
DIGITS_LOST = "digits lost: Excel shortened this number (4.15556E+09); format the column as text and export again"


# --- blanks ---------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("raw", [None, "", "   ", "\t", float("nan")])
def test_blank_cells_change_nothing(kind, raw):
    assert parse_value(kind, raw, US) == (None, None)


# --- booleans -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["TRUE", "true", "True", "yes", "YES", "y", "Y", "1", "x", "X", "✓", "✔", "t", " TRUE ", "1.0", True, 1, 1.0],
)
def test_true_spellings(raw):
    assert parse_bool(raw, US) == (True, None)


@pytest.mark.parametrize("raw", ["FALSE", "false", "no", "No", "n", "N", "0", "f", "0.0", False, 0, 0.0])
def test_false_spellings(raw):
    assert parse_bool(raw, US) == (False, None)


@pytest.mark.parametrize("raw", ["maybe", "2", "yess", "on", 2, -1, 0.5, date(2024, 1, 1)])
def test_not_booleans(raw):
    assert parse_bool(raw, US) == (None, "not a yes/no value")


@pytest.mark.parametrize("raw", ["sí", "Sí", "SÍ", "si", "Si", "SI", " sí ", "si\u0301", "SI\u0301"])
def test_spanish_yes(raw):
    assert parse_bool(raw, US) == (True, None)


@pytest.mark.parametrize("raw", ["no", "No", "NO"])
def test_spanish_no_is_no(raw):
    assert parse_bool(raw, US) == (False, None)


# --- dates ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1990-01-05", date(1990, 1, 5)),
        ("1990-1-5", date(1990, 1, 5)),
        ("1990/01/05", date(1990, 1, 5)),
        ("1990-01-05 00:00:00", date(1990, 1, 5)),
        ("1990-01-05T10:30:00Z", date(1990, 1, 5)),
        ("01/05/1990", date(1990, 1, 5)),
        ("1/5/1990", date(1990, 1, 5)),
        ("1/5/90", date(1990, 1, 5)),
        ("01-05-1990", date(1990, 1, 5)),
        ("01.05.1990", date(1990, 1, 5)),
        ("01/05/1990 3:45 PM", date(1990, 1, 5)),
        ("19900105", date(1990, 1, 5)),
        ("5-Jan-90", date(1990, 1, 5)),
        ("January 5, 1990", date(1990, 1, 5)),
        ("Jan 5 1990", date(1990, 1, 5)),
        (" 1990-01-05 ", date(1990, 1, 5)),
    ],
)
def test_date_spellings(raw, expected):
    assert parse_date(raw, US) == (expected, None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1/5/90", date(1990, 1, 5)),
        ("1/5/00", date(2000, 1, 5)),
        ("1/5/24", date(2024, 1, 5)),
        ("6/1/24", date(2024, 6, 1)),  # today is not in the future
        ("6/2/24", date(1924, 6, 2)),  # tomorrow would be
        ("12/31/24", date(1924, 12, 31)),
        ("1/5/25", date(1925, 1, 5)),
        ("2/29/00", date(2000, 2, 29)),
    ],
)
def test_two_digit_year_is_the_most_recent_not_in_the_future(raw, expected):
    assert parse_date(raw, US) == (expected, None)


@pytest.mark.parametrize(
    "raw", ["02/30/1990", "13/01/1990", "00/10/1990", "1990-02-30", "1990-13-01", "2/29/25", "19901301"]
)
def test_impossible_dates_are_problems_not_guesses(raw):
    assert parse_date(raw, US) == (None, "impossible date")


def test_day_first_flips_slashed_dates():
    assert parse_date("05/01/1990", DAY_FIRST) == (date(1990, 1, 5), None)
    assert parse_date("13/01/1990", DAY_FIRST) == (date(1990, 1, 13), None)
    assert parse_date("01/13/1990", DAY_FIRST) == (None, "impossible date")
    assert parse_date("1990-01-05", DAY_FIRST) == (date(1990, 1, 5), None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (datetime(1990, 1, 5, 13, 30), date(1990, 1, 5)),
        (date(1990, 1, 5), date(1990, 1, 5)),
        (32874, date(1990, 1, 1)),
        (32874.75, date(1990, 1, 1)),  # a time of day
        ("32874", date(1990, 1, 1)),
        (1, date(1900, 1, 1)),
        (59, date(1900, 2, 28)),
        (61, date(1900, 3, 1)),
        (2958465, date(9999, 12, 31)),
        (19900105, date(1990, 1, 5)),  # a YYYYMMDD number
    ],
)
def test_excel_dates_and_serial_numbers(raw, expected):
    assert parse_date(raw, US) == (expected, None)


def test_excel_serial_60_is_the_29_february_1900_that_never_was():
    assert parse_date(60, US) == (None, "impossible date")


@pytest.mark.parametrize("raw", ["abc", "1990", "1/5", "01/05/199", "Foo 5, 1990", 0, -5, 2958466, True, float("inf")])
def test_not_dates(raw):
    assert parse_date(raw, US) == (None, "not a date")


# --- phones ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "4155550123",
        "415-555-0123",
        "(415) 555-0123",
        "(415)555-0123",
        "415.555.0123",
        "415 555 0123",
        "+1 415 555 0123",
        "+14155550123",
        "1-415-555-0123",
        "14155550123",
        " 415-555-0123 ",
        "+1 (415) 555-0123",
        4155550123,
        4155550123.0,  # Excel's number cell
        "4155550123.0",  # ... saved to CSV
        "4.155550123E+09",  # scientific but every digit kept
    ],
)
def test_us_phone_spellings(raw):
    assert parse_phone(raw, US) == ("+14155550123", None)


def test_digits_lost_to_scientific_notation():
    assert parse_phone("4.15556E+09", US) == (None, DIGITS_LOST)


@pytest.mark.parametrize(
    "raw",
    [
        "999-555-0123", "123-555-0123", "415-055-0123", "415-155-0123", "555-0123", "123", "phone",
        "41555501234567890", True, 4155550123.5, date(2024, 1, 1),
    ],
)
def test_invalid_us_phones(raw):
    assert parse_phone(raw, US) == (None, NOT_US_PHONE)


def test_other_countries_with_their_prefix():
    assert parse_phone("+44 20 7946 0958", US) == ("+442079460958", None)
    assert parse_phone("(604) 555-0123", US) == ("+16045550123", None)  # Canada shares +1


def test_non_us_region():
    assert parse_phone("020 7946 0958", GB) == ("+442079460958", None)
    assert parse_phone("07911 123456", GB) == ("+447911123456", None)
    assert parse_phone("+1 415 555 0123", GB) == ("+14155550123", None)
    assert parse_phone("4155550123", GB) == (None, "not a valid phone number for GB")


NANP_FORMATS = ["{a}{b}{c}", "{a}-{b}-{c}", "({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}"]


@settings(max_examples=500)
@given(
    a=st.integers(200, 999),
    b=st.integers(200, 999),
    c=st.integers(0, 9999),
    fmt=st.sampled_from(NANP_FORMATS),
)
def test_fast_path_agrees_with_phonenumbers(a, b, c, fmt):
    raw = fmt.format(a=a, b=b, c=f"{c:04d}")
    number = phonenumbers.parse(raw, "US")
    if phonenumbers.is_valid_number(number):
        assert parse_phone(raw, US) == (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)
    else:
        assert parse_phone(raw, US) == (None, NOT_US_PHONE)


def test_fast_path_agrees_with_phonenumbers_on_every_area_code():
    rnd = random.Random(7)
    for area in range(200, 1000):
        raw = f"{area}{rnd.randint(200, 999)}{rnd.randint(0, 9999):04d}"
        expected = phonenumbers.is_valid_number(phonenumbers.parse(raw, "US"))
        assert (parse_phone(raw, US)[1] is None) == expected, raw


# --- emails ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("o'brien+vip@mail.example.co.uk", "o'brien+vip@mail.example.co.uk"),
        ("a_b-c@sub-domain.example.org", "a_b-c@sub-domain.example.org"),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
    ],
)
def test_valid_emails(raw, expected):
    assert parse_email(raw, US) == (expected, None)


@pytest.mark.parametrize(
    "raw",
    [
        "jane", "jane@", "@example.com", "jane@example", "jane@@example.com", "ja ne@example.com",
        "jane@exa mple.com", ".jane@example.com", "jane.@example.com", "ja..ne@example.com",
        "jane@-example.com", "jane@example-.com", "jane@example..com", "jane@example.c",
        "jané@example.com", "<jane@example.com>", "jane@example.com;bob@example.com",
        "=HYPERLINK(\"x\")", 42, True, date(2024, 1, 1), ("a" * 65) + "@example.com",
    ],
)
def test_invalid_emails(raw):
    assert parse_email(raw, US) == (None, "not a valid email address")


# --- points ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("50", 50), ("+50", 50), ("-20", -20), ("50.0", 50), (" 1,000 ", 1000), ("-1,250", -1250),
        ("0", 0), ("\u221220", -20), (50, 50), (50.0, 50), (-20.0, -20), (0, 0),
    ],
)
def test_points(raw, expected):
    assert parse_points(raw, US) == (expected, None)


@pytest.mark.parametrize(
    "raw", ["50.5", "abc", "5 0", "1,00", "5e2", "+-5", "--5", True, 50.5, float("inf"), date(2024, 1, 1)]
)
def test_not_points(raw):
    assert parse_points(raw, US) == (None, "not a whole number of points")


def test_points_out_of_range():
    reason = "too many points in one row (more than 1,000,000,000)"
    assert parse_points("1000000001", US) == (None, reason)
    assert parse_points(-(10**12), US) == (None, reason)
    assert parse_points("1000000000", US) == (1_000_000_000, None)


# --- customer type --------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("medical", "medical"), ("Medical", "medical"), ("MED", "medical"), ("mmj", "medical"),
        ("Medical Patient", "medical"), ("medical  patient", "medical"),
        ("recreational", "recreational"), ("Rec", "recreational"), ("adult use", "recreational"),
        ("Adult-Use", "recreational"), ("ADULT_USE", "recreational"),
    ],
)
def test_customer_types(raw, expected):
    assert parse_customer_type(raw, US) == (expected, None)


@pytest.mark.parametrize("raw", ["both", "patient", "m", 1, True])
def test_unknown_customer_types(raw):
    assert parse_customer_type(raw, US) == (None, "unknown customer type (use medical or recreational)")


# --- text and postal codes ------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Jane ", "Jane"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ('=HYPERLINK("http://evil.example","click")', '=HYPERLINK("http://evil.example","click")'),
        ("O'Brien & Sons", "O'Brien & Sons"),
        ("Jane  Doe", "Jane  Doe"),
        (12345, "12345"),
        (12345.0, "12345"),
        (12.5, "12.5"),
        (True, "TRUE"),
        (datetime(1990, 1, 5), "1990-01-05"),
        (date(1990, 1, 5), "1990-01-05"),
    ],
)
def test_text_is_stored_as_given(raw, expected):
    assert parse_text(raw, US) == (expected, None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("02134", "02134"),
        ("94110-1234", "94110-1234"),
        (94110, "94110"),
        (2134, "02134"),  # Excel dropped the leading zero
        (2134.0, "02134"),
        ("2134", "02134"),  # ... and saved the CSV without it
        (601, "00601"),  # Puerto Rico loses two
        ("SW1A 1AA", "SW1A 1AA"),
    ],
)
def test_us_postal_codes(raw, expected):
    assert parse_postal_code(raw, US) == (expected, None)


def test_postal_codes_are_not_padded_outside_the_us():
    assert parse_postal_code("2134", GB) == ("2134", None)
    assert parse_postal_code(2000, ParseContext(region="AU")) == ("2000", None)


def test_parse_value_dispatches_on_kind():
    assert parse_value("phone", "415-555-0123", US) == ("+14155550123", None)
    assert parse_value("date", "1/5/90", US) == (date(1990, 1, 5), None)
    assert parse_value("text", " x ", US) == ("x", None)


def test_context_is_optional():
    assert parse_phone("415-555-0123") == ("+14155550123", None)
    assert parse_date("01/05/1990") == (date(1990, 1, 5), None)
    assert parse_postal_code(2134) == ("02134", None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, ""), ("  a ", "  a "), (True, "TRUE"), (4155550123.0, "4155550123"), (1.5, "1.5"),
        (7, "7"), (datetime(1990, 1, 5), "1990-01-05"), (datetime(1990, 1, 5, 13, 30), "1990-01-05 13:30:00"),
        (date(1990, 1, 5), "1990-01-05"),
    ],
)
def test_cell_text(raw, expected):
    assert cell_text(raw) == expected


# --- properties -----------------------------------------------------------

ANY_CELL = st.one_of(
    st.none(),
    st.text(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.from_regex(r"[0-9+().\- eE]{0,20}", fullmatch=True),
)
CONTEXTS = st.sampled_from([US, DAY_FIRST, GB, ParseContext(region="DE", today=TODAY)])


@settings(max_examples=300)
@given(kind=st.sampled_from(sorted(PARSERS)), raw=ANY_CELL, ctx=CONTEXTS)
def test_no_parser_raises(kind, raw, ctx):
    value, reason = parse_value(kind, raw, ctx)
    assert reason is None or (value is None and isinstance(reason, str) and reason)


@given(st.from_regex(r"\+1[2-9]\d\d[2-9]\d{6}", fullmatch=True))
def test_a_parsed_phone_parses_to_itself(raw):
    value, reason = parse_phone(raw, US)
    assume(reason is None)
    assert parse_phone(value, US) == (value, None)
    assert parse_phone(value, GB) == (value, None)


@given(st.dates())
def test_an_iso_date_parses_to_itself(d):
    assert parse_date(d.isoformat(), US) == (d, None)
    assert parse_date(d.isoformat(), DAY_FIRST) == (d, None)


@given(st.dates(min_value=date(1000, 1, 1)))
def test_a_us_date_parses_back(d):
    assert parse_date(f"{d.month}/{d.day}/{d.year}", US) == (d, None)
    assert parse_date(f"{d.day}/{d.month}/{d.year}", DAY_FIRST) == (d, None)


@given(st.integers(-1_000_000_000, 1_000_000_000))
def test_points_parse_back(n):
    assert parse_points(str(n), US) == (n, None)
    assert parse_points(f"{n:+,}", US) == (n, None)
    assert parse_points(float(n), US) == (n, None)


@given(st.emails())
def test_email_is_idempotent(raw):
    value, reason = parse_email(raw, US)
    assume(reason is None)
    assert parse_email(value, US) == (value, None)
    assert parse_email(value.upper(), US) == (value, None)


@given(st.booleans())
def test_bool_parses_its_own_text(b):
    assert parse_bool(str(b), US) == (b, None)
    assert parse_bool(cell_text(b), US) == (b, None)


@given(st.text())
def test_text_is_its_own_fixed_point(raw):
    value, reason = parse_text(raw, US)
    assert reason is None
    assert parse_text(value, US) == ((value, None) if value else (None, None))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_cell_text_of_a_float_is_a_number(x):
    assert math.isclose(float(cell_text(x)), x) or x == 0
