"""Property: the columnar parsers (columns.parse_column, parse.parse_batch) agree with values.py.

values.py parses one cell at a time and is the reference. For every cell, parse_column must give the
same value and the same problem as values.PARSERS[kind]; for every row, parse_batch must give what
values.RowParser gives: the same field values, attributes, rejection, problems (in order) and cells.

The cells are drawn to hit each kind's edges on purpose (every spelling values.py knows, and the
near misses around each), padded with whitespace, plus plain text; each is read under several
accounts (region, day-first, today). Deterministic by default; PROPERTY_EXAMPLES=2000
PROPERTY_RANDOM=1 explores further.
"""
import os
from datetime import date, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.importer import columns, values
from webapp.importer.columns import VALUE_TYPES, parse_column
from webapp.importer.fields import FIELDS, IGNORE
from webapp.importer.parse import Batch, Plan, parse_batch
from webapp.importer.values import ParseContext, RowParser

KINDS = sorted(values.PARSERS)


def property_settings(examples: int):
    return settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", examples)), deadline=None,
                    derandomize=not os.environ.get("PROPERTY_RANDOM"), database=None)


# --- accounts -----------------------------------------------------------------------------------------

TODAYS = [date(2026, 12, 2), date(2000, 2, 29), date(2099, 12, 31)]
contexts = st.builds(ParseContext, region=st.sampled_from(["US", "CA", "GB"]), day_first=st.booleans(),
                     today=st.sampled_from(TODAYS))

# --- cells, kind by kind --------------------------------------------------------------------------------

# Whitespace str.strip() removes (incl. the no-break, ideographic and \x1c separators) and one it keeps.
SPACES = ["", "", "", " ", "  ", "\t", "\n", "\xa0", "\u3000", "\x1c", "\u2003 ", "\u200b"]


def padded(cells: st.SearchStrategy) -> st.SearchStrategy:
    """A cell with whitespace (or a zero-width space, which is not whitespace) around it."""
    return st.tuples(st.sampled_from(SPACES), cells, st.sampled_from(SPACES)).map("".join)


def mixed_case(words) -> st.SearchStrategy:
    """One of the words with each letter upper- or lower-case at random."""
    def spell(word):
        return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
            lambda ups: "".join(c.upper() if up else c for c, up in zip(word, ups)))
    return st.sampled_from(list(words)).flatmap(spell)


def number(lo: int, hi: int, widths=(1, 2)) -> st.SearchStrategy:
    """An integer in [lo, hi] as text, zero-padded to one of the widths."""
    return st.tuples(st.integers(lo, hi), st.sampled_from(widths)).map(lambda t: str(t[0]).zfill(t[1]))


# dates: every form values.parse_date knows, impossible days, two-digit years, serials, names, times.
YEAR4 = st.one_of(st.integers(0, 9999), st.sampled_from([1900, 2000, 2100, 2023, 2024, 1999])).map("{:04d}".format)
YEAR2 = number(0, 99, (2,))
MONTH = number(0, 13)
DAY = number(0, 32)
SEP = st.sampled_from("-/.")
TIMES = st.sampled_from([
    "", "", "", " 00:00:00", "T10:30:00Z", "T10:30:00z", " 10:30", "  10:30", "T 10:30", " 10:30:15.123",
    " 10:30:15,5", " 9:05 PM", " 9:05 p.m.", " 9:05PM", "T23:59:59+05:30", " 10:30 -0800", " 10:30\t+0800",
    " 10:3", "T", " 25:99", " 10:30 +05", " 10:30 EST", " 10:30:00.", "\n10:30",
])
MONTH_NAMES = [*values._MONTHS, "Foo", "Ja", "Janu", "Septem", "Mayo", "Decembers", "Sept."]
FEB_29_YEARS = ["1900", "2000", "2100", "2023", "2024", "00", "23", "24", "99"]


@st.composite
def iso_dates(draw):
    """YYYY-MM-DD with -, / or . (mixed separators are not a date), then maybe a time."""
    sep = draw(SEP)
    return f"{draw(YEAR4)}{sep}{draw(MONTH)}{draw(st.one_of(st.just(sep), SEP))}{draw(DAY)}{draw(TIMES)}"


@st.composite
def slashed_dates(draw):
    """M/D/Y (D/M/Y for day-first accounts) with 2- or 4-digit years, then maybe a time."""
    sep = draw(SEP)
    year = draw(st.one_of(YEAR2, YEAR4, number(0, 999, (3,))))
    return f"{draw(DAY)}{sep}{draw(DAY)}{draw(st.one_of(st.just(sep), SEP))}{year}{draw(TIMES)}"


@st.composite
def feb_29s(draw):
    """29 February in leap and non-leap years (1900 and 2100 are not, 2000 is), in every form."""
    year = draw(st.sampled_from(FEB_29_YEARS))
    form = draw(st.sampled_from(["{y}-02-29", "02/29/{y}", "2/29/{y}", "29/02/{y}", "29.2.{y}", "29-Feb-{y}",
                                 "February 29, {y}", "Feb 29th {y}", "{y}0229"]))
    return form.format(y=year)


@st.composite
def compact_dates(draw):
    """YYYYMMDD."""
    return f"{draw(YEAR4)}{draw(number(0, 13, (2,)))}{draw(number(0, 32, (2,)))}"


@st.composite
def serials(draw):
    """Five-digit Excel serials, with a fraction (the time of day); leading zeros reach serials below 61."""
    serial = draw(st.one_of(st.integers(0, 99999), st.integers(0, 70), st.integers(9990, 10010)))
    return f"{serial:05d}{draw(st.sampled_from(['', '', '.5', '.0', '.999', '.', '.5.5', '.00001']))}"


@st.composite
def named_dates(draw):
    """'5-Jan-90' (Excel's display format) and 'January 5, 1990' / 'Jan 5th 1990' as people type them."""
    month = draw(mixed_case(MONTH_NAMES))
    year = draw(st.one_of(YEAR2, YEAR4))
    if draw(st.booleans()):
        return (f"{draw(DAY)}{draw(st.sampled_from('- '))}{month}{draw(st.sampled_from(['', '.']))}"
                f"{draw(st.sampled_from(['-', ' ', ', ', ',', ' ,', '--', '']))}{year}")
    return (f"{month}{draw(st.sampled_from(['', '.']))}{draw(st.sampled_from([' ', '  ', '']))}{draw(DAY)}"
            f"{draw(st.sampled_from(['', '', 'st', 'nd', 'rd', 'th', 'TH', 'xx']))}"
            f"{draw(st.sampled_from(['', ',']))}{draw(st.sampled_from([' ', '  ', '']))}{year}")


def near_today(today: date) -> st.SearchStrategy:
    """Days around today with two-digit years (the most recent such year not after today wins)."""
    @st.composite
    def cells(draw):
        day = today + timedelta(days=draw(st.one_of(st.integers(-3, 3), st.integers(-800, 800))))
        yy = f"{day.year % 100:02d}"
        form = draw(st.sampled_from(["{m}/{d}/{yy}", "{d}/{m}/{yy}", "{d}-{mon}-{yy}", "{mon} {d}, {yy}"]))
        return form.format(m=day.month, d=day.day, yy=yy, mon=day.strftime("%b"))
    return cells()


def dates(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(iso_dates(), slashed_dates(), feb_29s(), compact_dates(), serials(), named_dates(),
                            near_today(ctx.today), st.text("0123456789-/. :,TZPMapm+", max_size=24), st.text()))


# phones: the clean North American forms, invalid area and exchange codes, other NANP countries,
# international numbers, Excel's float and scientific spellings, garbage.
AREAS = ["415", "212", "303", "200", "555", "911", "999", "800", "900", "876", "242", "416", "604", "671",
         "787", "340", "264", "123", "055"]
EXCHANGES = ["555", "200", "234", "867", "911", "123", "099"]
NANP_BODIES = ["{a}{e}{l}", "({a}) {e}-{l}", "({a}){e}-{l}", "({a}) {e} {l}", "{a}.{e}.{l}", "{a}-{e}-{l}",
               "{a} {e} {l}", "{a}-{e}.{l}", "({a} {e}-{l}", "{a}  {e} {l}", "{a}/{e}-{l}", "({a})  {e}-{l}"]
NANP_PREFIXES = ["", "", "1", "+1", "1-", "+1 ", "+1.", "1 ", "+1-", "+", "01", "+ 1 ", "001", "+1  "]
INTERNATIONAL = ["+44 20 7946 0958", "020 7946 0958", "07700 900123", "+44 7700 900123", "+33 1 23 45 67 89",
                 "+61 2 9374 4000", "+49 30 901820", "+1 876 555 0123", "+52 55 1234 5678", "0044 20 7946 0958",
                 "+86 10 1234 5678", "+4420 7946 0958", "+1 (604) 555-0123", "tel:+14155550123"]


@st.composite
def nanp_phones(draw):
    """(415) 555-0123 and kin, with or without +1 / 1, some with a trailing .0 or extension."""
    body = draw(st.sampled_from(NANP_BODIES)).format(a=draw(st.sampled_from(AREAS)),
                                                    e=draw(st.sampled_from(EXCHANGES)),
                                                    l=draw(st.text("0123456789", min_size=4, max_size=4)))
    return draw(st.sampled_from(NANP_PREFIXES)) + body + draw(st.sampled_from(["", "", "", ".0", " x123", " ext. 5"]))


@st.composite
def float_phones(draw):
    """What a number-formatted column gives: 4155550123.0, and 4.15556E+09 (digits lost) or 4.155550123E9."""
    digits = draw(st.sampled_from(["1", "", "", "44"])) + draw(st.sampled_from(AREAS)) + draw(
        st.sampled_from(EXCHANGES)) + draw(st.text("0123456789", min_size=4, max_size=4))
    if draw(st.booleans()):
        return f"{draw(st.sampled_from(['', '+']))}{digits}.{draw(st.sampled_from(['0', '00', '5']))}"
    kept = draw(st.integers(1, len(digits)))
    exponent = draw(st.sampled_from([len(digits) - 1, len(digits) - 1, len(digits), len(digits) - 2]))
    return (f"{digits[0]}{draw(st.sampled_from(['.', ',']))}{digits[1:kept]}"
            f"{draw(st.sampled_from(['E+', 'E', 'e+', 'e', 'E-']))}{exponent:{draw(st.sampled_from(['', '02']))}}")


def phones(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(nanp_phones(), nanp_phones(), float_phones(), st.sampled_from(INTERNATIONAL),
                            st.text("0123456789+-.() xet", max_size=20), st.text()))


# emails: dots and dashes in bad places, case, whitespace, the 64/254 limits, xn-- TLDs, two @, non-ASCII.
LOCAL_CHARS = "abcXYZ019._-+!#$%&'*/=?^`{|}~"
TLDS = ["com", "COM", "Org", "c", "co", "xn--p1ai", "XN--P1AI", "xn--", "xn--a", "x1", "1com", "-com", "com-",
        "a" * 63, "a" * 64, "xn--" + "a" * 59, "xn--" + "a" * 60]
ODD_CHARS = ["\u212a", "ü", "İ", "ß", "Σ", "ａ", " ", "\t", "@", "..", ".-", "-.", "\x00", "é"]


@st.composite
def emails(draw):
    """local@label.label.tld, with a stray character put somewhere now and then."""
    local = draw(st.one_of(st.text(LOCAL_CHARS, max_size=8), st.sampled_from(["a" * 63, "a" * 64, "a" * 65])))
    labels = draw(st.lists(st.one_of(st.text("abz09-", max_size=6), st.sampled_from(["example", "-x", "x-"])),
                           min_size=0, max_size=3))
    address = f"{local}@{'.'.join([*labels, draw(st.sampled_from(TLDS))])}"
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(address)))
        address = address[:at] + draw(st.sampled_from(ODD_CHARS)) + address[at:]
    return address.upper() if draw(st.integers(0, 4)) == 0 else address


@st.composite
def long_emails(draw):
    """Addresses around the 64-character local part and 254-character total limits."""
    local = "a" * draw(st.sampled_from([1, 63, 64, 65]))
    total = draw(st.sampled_from([252, 253, 254, 255, 256]))
    return f"{local}@{'b' * max(1, total - len(local) - 5)}.com"


def email_cells(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(emails(), emails(), long_emails(), mixed_case(["Jane@Example.COM", "\u212a@example.com"]),
                            st.text()))


# points: signs (incl. U+2212), .0 and bare dots, thousands commas right and wrong, the 1,000,000,000 limit.
POINTS_EDGES = ["+50", "-20", "50.0", "50.", "1,000", "1,00", "\u22125", "0", "-0", "+0", "5.5", "1e3", ",100",
                "1,000.", "1,0000", "1,000,000,000", "1,000,000,001", "-1,000,000,000", "1000000000", "1000000001",
                "-1000000001", "9999999999", "10000000000", "99999999999", "0001000000000", "0" * 25 + "1",
                "12,345,678,901", "--5", "+-5", "5-", "٥", "５"]


@st.composite
def point_numbers(draw):
    """A signed number, plain, zero-padded or with commas, maybe with a fraction."""
    value = draw(st.one_of(st.integers(0, 2000), st.integers(0, 10**12),
                           st.sampled_from([10**9 - 1, 10**9, 10**9 + 1, 10**10 - 1, 10**10, 10**11])))
    style = draw(st.sampled_from(["plain", "zeros", "commas", "stray comma"]))
    text = str(value)
    if style == "zeros":
        text = "0" * draw(st.integers(1, 12)) + text
    elif style == "commas":
        text = f"{value:,}"
    elif style == "stray comma":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + "," + text[at:]
    sign = draw(st.sampled_from(["", "", "+", "-", "\u2212", " -"]))
    return sign + text + draw(st.sampled_from(["", "", ".", ".0", ".00", ".5", ".05", ".0.0"]))


def points(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(point_numbers(), st.sampled_from(POINTS_EDGES), st.text("0123456789,.+-\u2212 ", max_size=14),
                            st.text()))


# booleans: every word values._BOOLEANS knows, in any case; the check marks; near misses.
NOT_BOOLEANS = ["maybe", "2", "yess", "on", "off", "✗", "ｙｅｓ", "True.", "T R U E", "1.00", "01", "-1", "0.5", "✓✓",
                "TRUE\u200b", "nope", "y e s"]


def booleans(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(mixed_case(values._BOOLEANS), mixed_case(values._BOOLEANS), st.sampled_from(NOT_BOOLEANS),
                            st.text(max_size=5)))


# customer types: every spelling, its words joined by any run of separators, in any case.
SEPARATOR_RUNS = ["_", "-", " ", "  ", "_-_", "\t", "\xa0", "\u3000", "--", "\x1c", " _ ", "\u200b", "/", "."]
NOT_TYPES = ["medic", "recreation", "adult", "medical patients", "rec.", "med/rec", "_", "-", "adultuse"]


@st.composite
def customer_type_spellings(draw):
    words = draw(mixed_case(values._CUSTOMER_TYPES)).split(" ")
    edge = st.sampled_from(["", "", "", "_", "-", " _"])
    joined = "".join(w + draw(st.sampled_from(SEPARATOR_RUNS)) for w in words[:-1]) + words[-1]
    return draw(edge) + joined + draw(edge)


def customer_types(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(customer_type_spellings(), customer_type_spellings(), st.sampled_from(NOT_TYPES),
                            st.text(max_size=8)))


# postal codes: 3- and 4-digit ZIPs Excel shortened, full ones, ZIP+4, other countries', other digits.
POSTAL_EDGES = ["SW1A 1AA", "K1A 0B6", "02134-1234", "١٢٣٤", "１２３４", "12 34", "123a", "0", "00", "2134.0"]


def postal_codes(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.one_of(st.text("0123456789", min_size=1, max_size=7), st.sampled_from(POSTAL_EDGES), st.text()))


def texts(ctx: ParseContext) -> st.SearchStrategy:
    return padded(st.text())


TEXT_CELLS = {"date": dates, "phone": phones, "email": email_cells, "points": points, "bool": booleans,
              "customer_type": customer_types, "postal_code": postal_codes, "text": texts}


def text_cells(kind: str, ctx: ParseContext) -> st.SearchStrategy:
    """A CSV cell: text, or missing."""
    return st.one_of(st.none(), TEXT_CELLS[kind](ctx), TEXT_CELLS[kind](ctx), TEXT_CELLS[kind](ctx))


# What Excel readers hand over besides text: numbers (NaN for an empty numeric cell), booleans, dates.
EXCEL_EDGES = [0, 1, 2, -1, 59, 60, 61, 45000, 2958465, 2958466, 10000101, 20240229, 20230229, 99991231, 99991232,
               4155550123, 14155550123, 2125550123, 10**9, 10**9 + 1, 2134, 601, float("nan"), float("inf"),
               -float("inf"), 0.0, 1.0, -0.0, 0.5, 1.5, 59.99, 60.5, 45000.5, 4155550123.0, 4.15556e9, 2134.0, 1e20]
excel_values = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(), st.sampled_from(EXCEL_EDGES),
                         st.dates(), st.datetimes(), st.datetimes(timezones=st.just(timezone.utc)))


def excel_cells(kind: str, ctx: ParseContext) -> st.SearchStrategy:
    """An Excel cell: text, a number, a boolean, a date or datetime, or missing."""
    return st.one_of(TEXT_CELLS[kind](ctx), excel_values)


# --- the comparison ------------------------------------------------------------------------------------


def reference(kind: str, cell, ctx: ParseContext):
    """values.py's (value, reason) for one cell; a missing cell is blank."""
    return (None, None) if cell is None else values.PARSERS[kind](cell, ctx)


def disagreements(kind: str, cells, ctx: ParseContext) -> list:
    """[(cell, values.py's (value, reason), parse_column's)] for every cell where they differ."""
    parsed, reasons = parse_column(kind, cells, ctx)
    assert (parsed.dtype, reasons.dtype) == (VALUE_TYPES[kind], pl.String)
    assert len(parsed) == len(reasons) == len(cells)
    cells = cells.to_list() if isinstance(cells, pl.Series) else cells
    found = []
    for cell, got in zip(cells, zip(parsed.to_list(), reasons.to_list())):
        expected = reference(kind, cell, ctx)
        # pl.Date reads back as datetime.date; the type check keeps True from passing for 1.
        if got != expected or type(got[0]) is not type(expected[0]):
            found.append((cell, expected, got))
    return found


def as_series(cells: list) -> pl.Series:
    return pl.Series(cells, dtype=pl.String)


# --- cell by cell ----------------------------------------------------------------------------------------


def test_whitespace_is_what_str_strip_removes():
    """columns.WHITESPACE is exactly the characters str.isspace() is true of (what str.strip() removes)."""
    assert len(columns.WHITESPACE) == len(set(columns.WHITESPACE))
    assert set(columns.WHITESPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}


@pytest.mark.parametrize("kind", KINDS)
@property_settings(40)
@given(data=st.data())
def test_text_cells_parse_as_values_py(kind, data):
    """A CSV column (text cells, nulls for missing ones): every cell's value and problem is values.py's.
    The cells are distinct, so parse_column parses them in place (no lookup)."""
    ctx = data.draw(contexts, "ctx")
    cells = data.draw(st.lists(text_cells(kind, ctx), max_size=60, unique=True), "cells")
    assert disagreements(kind, as_series(cells), ctx) == []


@pytest.mark.parametrize("kind", KINDS)
@property_settings(30)
@given(data=st.data())
def test_excel_cells_parse_as_values_py(kind, data):
    """An Excel column (text, numbers, NaN and inf, booleans, dates, datetimes, None): values.py's answer per cell."""
    ctx = data.draw(contexts, "ctx")
    cells = data.draw(st.lists(excel_cells(kind, ctx), max_size=40), "cells")
    assert disagreements(kind, cells, ctx) == []


@pytest.mark.parametrize("kind", KINDS)
@property_settings(25)
@given(data=st.data())
def test_repeated_cells_parse_as_values_py(kind, data):
    """A column of a few values repeated (parse_column parses each distinct value once and looks the rest up)."""
    ctx = data.draw(contexts, "ctx")
    pool = data.draw(st.lists(text_cells(kind, ctx), min_size=1, max_size=4), "pool")
    cells = data.draw(st.permutations(pool * data.draw(st.integers(2, 6), "repeats")), "cells")
    assert len(set(cells)) * 2 <= len(cells)  # the lookup path
    assert disagreements(kind, as_series(cells), ctx) == []
    # Excel: the text cells repeat, the others go to values.py one by one.
    mixed = data.draw(st.permutations(cells + data.draw(st.lists(excel_values, max_size=4), "others")), "mixed")
    assert disagreements(kind, mixed, ctx) == []


EDGES = {
    "date": ["00000", "00001", "00059", "00059.9", "00060", "00060.5", "00061", "00000.5", "09999", "10000",
             "99999.99", "02/29/1900", "02/29/2000", "02/29/2100", "2/29/00", "1990-01-05T10:30:00Z", "1990-1/05",
             "13/01/1990", "5-Jan-90", "January 5, 1990", "Jan 5th 1990", "\xa01990-01-05\u3000", "\x1c19900105"],
    "phone": ["4155550123", "+1 (415) 555-0123", "1-415-555-0123", "415.555.0123", "(123) 555-0123",
              "(415) 123-0123", "8765550123", "4165550123", "+44 20 7946 0958", "4155550123.0", "4.15556E+09",
              "4.155550123E9", "555-0123", "not a phone"],
    "email": ["Jane@Example.com", " a@b.co ", "a.@b.co", ".a@b.co", "a..b@c.co", "a@-b.co", "a@b-.co", "a@b.-co",
              "a-.b@c.co", "a@b@c.co", "\u212a@example.com", "ü@example.com", "a@b.xn--p1ai", "a" * 64 + "@b.co",
              "a" * 65 + "@b.co", "a@" + "b" * 245 + ".com", "a@" + "b" * 246 + ".com"],
    "points": POINTS_EDGES,
    "bool": [*values._BOOLEANS, " TRUE ", "Yes", "maybe", "2"],
    "customer_type": ["Medical", "MED", "mmj", "Medical_Patient", "medical -_ patient", "Adult\u00a0Use", "rec",
                      "adult-use", "medic"],
    "postal_code": ["2134", "601", "02134", "12", "123456", "SW1A 1AA", "١٢٣٤"],
    "text": ["  Jane ", "\u3000", "\x1c\x1d", "a\u200b", ""],
}


@pytest.mark.parametrize("ctx", [ParseContext(region=r, day_first=f, today=t)
                                 for r in ("US", "GB") for f in (False, True) for t in TODAYS], ids=repr)
@pytest.mark.parametrize("kind", KINDS)
def test_known_edges_parse_as_values_py(kind, ctx):
    """The edges named in values.py, and the ones the properties found, each alone, as CSV and as Excel cells."""
    cells = [*EDGES[kind], None]
    assert disagreements(kind, as_series(cells), ctx) == []
    assert disagreements(kind, cells + [1, 1.5, True, date(2024, 1, 5), float("nan")], ctx) == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_column(kind):
    """No cells: empty values and reasons of the kind's types."""
    ctx = ParseContext(today=TODAYS[0])
    assert disagreements(kind, as_series([]), ctx) == []
    assert disagreements(kind, [], ctx) == []


# --- row by row ------------------------------------------------------------------------------------------

KEY_FIELDS = ["email", "phone"]
OTHER_FIELDS = [name for name in FIELDS if name not in KEY_FIELDS]
# Attribute names are compared once spaces collapse and case folds; "email" and "phone" are names too.
ATTRIBUTES = ["attribute:veteran", "attribute:Local", "attribute:  VIP   member ", "attribute:email",
              "attribute:phone"]


@st.composite
def layouts(draw):
    """(headers, mapping, targets): contact fields, other fields, attributes and ignored columns, in any order.
    Each target at most once, as validate_mapping requires; ignored columns are mapped "ignore" or left out."""
    targets = (draw(st.lists(st.sampled_from(KEY_FIELDS), unique=True, max_size=2))
               + draw(st.lists(st.sampled_from(OTHER_FIELDS), unique=True, max_size=5))
               + draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=2))
               + [IGNORE] * draw(st.integers(0, 2)))
    targets = draw(st.permutations(targets))
    headers = [f"{draw(st.sampled_from(['Column', 'Spalte ', 'Col ']))}{i}" for i in range(len(targets))]
    mapping = {h: t for h, t in zip(headers, targets) if t != IGNORE or draw(st.booleans())}
    return headers, mapping, targets


def column_kind(target: str) -> str:
    if target == IGNORE:
        return "text"
    return FIELDS[target].kind if target in FIELDS else "bool"


@st.composite
def batches(draw, excel: bool):
    """A layout, an account, line numbers (increasing, with gaps) and rows of cells for each column's kind."""
    headers, mapping, targets = draw(layouts())
    ctx = draw(contexts)
    cells = [(excel_cells if excel else text_cells)(column_kind(t), ctx) for t in targets]
    rows = draw(st.lists(st.tuples(*cells).map(list), max_size=12))
    steps = draw(st.lists(st.integers(1, 3), min_size=len(rows), max_size=len(rows)))
    lines = [2 + sum(steps[:i]) for i in range(len(rows))]
    return headers, mapping, ctx, lines, rows


def assert_batch_parses_as_row_parser(headers, mapping, ctx, lines, rows, excel: bool):
    """parse_batch on the rows as columns gives, row by row, what RowParser gives on each row."""
    parser = RowParser(headers, mapping, ctx)
    expected = [parser(line, row) for line, row in zip(lines, rows)]
    cells = [[row[i] for row in rows] for i in range(len(headers))]
    batch = Batch(pl.Series(lines, dtype=pl.Int64), cells if excel else [as_series(column) for column in cells])
    plan = Plan.of(headers, mapping)
    parsed = parse_batch(batch, plan, ctx)

    assert parsed.rows.schema == plan.schema()
    field_names = [name for _, _, name in plan.fields]
    assert len(parsed.rows) == len(expected)
    for got, want in zip(parsed.rows.to_dicts(), expected):
        # RowParser gives dates as ISO text and leaves blank fields out.
        fields = {name: got[name].isoformat() if isinstance(got[name], date) else got[name]
                  for name in field_names if got[name] is not None}
        warnings = sum(p["severity"] == "warning" for p in want["problems"])
        assert (got["line"], fields, got["attributes"], got["error"], got["warnings"]) == (
            want["line"], want["fields"], want["attributes"], want["error"], warnings)
    problems = [{"row": p.pop("line"), **p} for p in parsed.problems.to_dicts()]
    assert problems == [p for want in expected for p in want["problems"]]
    assert parsed.problem_cells == [(want["line"], want["cells"]) for want in expected if want["problems"]]


@property_settings(40)
@given(batch=batches(excel=False))
def test_csv_batches_parse_as_row_parser(batch):
    """A CSV batch (String Series): per row the same fields, attributes, rejection and warning count as
    RowParser; the same problems in the same order; the same cells of every row with a problem."""
    assert_batch_parses_as_row_parser(*batch, excel=False)


@property_settings(40)
@given(batch=batches(excel=True))
def test_excel_batches_parse_as_row_parser(batch):
    """An Excel batch (lists of text, numbers, booleans, dates, None): the same as RowParser, cells shown as text."""
    assert_batch_parses_as_row_parser(*batch, excel=True)


def test_an_empty_batch():
    """No rows: no rows, no problems."""
    headers, mapping = ["Email", "Phone", "Vet"], {"Email": "email", "Phone": "phone", "Vet": "attribute:vet"}
    parsed = parse_batch(Batch(pl.Series([], dtype=pl.Int64), [as_series([])] * 3), Plan.of(headers, mapping),
                         ParseContext(today=TODAYS[0]))
    assert (len(parsed.rows), len(parsed.problems), parsed.problem_cells) == (0, 0, [])


def test_spanish_booleans_read_as_yes_and_no_column_wise():
    cells = pl.Series(["sí", "SÍ", "si", "si\u0301", "no", "NO", "sip"], dtype=pl.String)
    parsed, reasons = parse_column("bool", cells, ParseContext())
    assert parsed.to_list() == [True, True, True, True, False, False, None]
    assert reasons.to_list() == [None] * 6 + ["not a yes/no value"]
