"""Parsing cell values into persona field values, and parsing whole rows."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import phonenumbers
from phonenumbers import PhoneMetadata

from .errors import (
    CUSTOMER_TYPE_UNKNOWN,
    EMAIL_INVALID,
    EMAIL_INVALID_NO_PHONE,
    IMPOSSIBLE_DATE,
    NO_KEY,
    NO_VALID_KEY,
    NOT_A_DATE,
    NOT_YES_NO,
    PHONE_DIGITS_LOST,
    PHONE_INVALID,
    PHONE_INVALID_NO_EMAIL,
    POINTS_NOT_WHOLE,
    POINTS_TOO_MANY,
)
from .fields import FIELDS, IGNORE, attribute_name
from .problems import ERROR, WARNING, problem


@dataclass(frozen=True)
class ParseContext:
    """Account settings that change how cells are read."""

    region: str = "US"
    day_first: bool = False
    today: date = field(default_factory=date.today)


def _ctx(ctx: ParseContext | None) -> ParseContext:
    return ctx if ctx is not None else ParseContext()


def _is_blank(raw) -> bool:
    # NaN is how some readers spell an empty numeric cell.
    if raw is None:
        return True
    if raw.__class__ is str:
        return not raw.strip()
    return raw.__class__ is float and math.isnan(raw)


def cell_text(raw) -> str:
    """A cell as the text a spreadsheet shows, for reports and problem values."""
    if raw is None:
        return ""
    if raw.__class__ is str:
        return raw
    if isinstance(raw, bool):
        return "TRUE" if raw else "FALSE"
    if isinstance(raw, float):
        if raw.is_integer():
            return str(int(raw))
        return repr(raw)
    if isinstance(raw, datetime):
        if raw.time() == datetime.min.time() and raw.tzinfo is None:
            return raw.date().isoformat()
        return raw.isoformat(sep=" ")
    if isinstance(raw, date):
        return raw.isoformat()
    return str(raw)


# --- text -----------------------------------------------------------------


def parse_text(raw, ctx: ParseContext | None = None):
    """Trimmed text, stored as given; Excel numbers without a spurious '.0'."""
    if raw.__class__ is str:
        value = raw.strip()
        return (value or None), None
    if _is_blank(raw):
        return None, None
    return cell_text(raw).strip() or None, None


_SHORT_ZIP = re.compile(r"\d{3,4}", re.ASCII)


def parse_postal_code(raw, ctx: ParseContext | None = None):
    """Postal code as text, leading zeros kept or restored for US ZIPs."""
    value, reason = parse_text(raw, ctx)
    # Excel stores 02134 as the number 2134 (and 00601 as 601), in the cell and in
    # any CSV saved from it; a US ZIP is never shorter than 5 digits, so pad it.
    if value and len(value) < 5 and _SHORT_ZIP.fullmatch(value) and (ctx is None or ctx.region == "US"):
        value = value.zfill(5)
    return value, reason


# --- booleans -------------------------------------------------------------

_BOOLEANS = {
    # Spanish sí/si (Mac keyboards may write the accent as a combining mark); "no" is the same word.
    **dict.fromkeys(("true", "t", "yes", "y", "1", "1.0", "x", "✓", "✔", "☑", "sí", "si", "si\u0301"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0", "0.0"), False),
}


def parse_bool(raw, ctx: ParseContext | None = None):
    """TRUE/yes/y/1/x/✓/sí or FALSE/no/n/0, any case; Excel booleans and 1/0 numbers."""
    if raw.__class__ is str:
        value = _BOOLEANS.get(raw.strip().lower())
        if value is not None:
            return value, None
        if not raw.strip():
            return None, None
        return None, NOT_YES_NO.text
    if isinstance(raw, bool):
        return raw, None
    if _is_blank(raw):
        return None, None
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return raw == 1, None
    return None, NOT_YES_NO.text


# --- dates ----------------------------------------------------------------

_TIME = r"(?:[T ]+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
_ISO_DATE = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME, re.ASCII)
_SLASHED_DATE = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})" + _TIME, re.ASCII)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_SERIAL_DATE = re.compile(r"\d{5}(?:\.\d+)?", re.ASCII)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
# Excel's "5-Jan-90" display format, and "January 5, 1990" as people type it.
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})[- ]([A-Za-z]{3,9})\.?[- ,]+(\d{4}|\d{2})", re.ASCII)
_MONTH_NAME_DAY = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? +(\d{4}|\d{2})", re.ASCII)

_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2958465  # 9999-12-31


def _excel_serial(serial: float):
    if not 1 <= serial < _EXCEL_MAX_SERIAL + 1:
        return None, NOT_A_DATE.text
    days = int(serial)
    # Excel's 1900 system counts a 29 February 1900 that never was (serial 60).
    if days == 60:
        return None, IMPOSSIBLE_DATE.text
    if days < 60:
        days += 1
    return _EXCEL_EPOCH + timedelta(days=days), None


def _make_date(year: int, month: int, day: int):
    try:
        return date(year, month, day), None
    except ValueError:
        return None, IMPOSSIBLE_DATE.text


def _two_digit_year(yy: int, month: int, day: int, today: date):
    # The most recent date with that year ending that is not after today.
    century = today.year - today.year % 100
    for year in (century + yy, century + yy - 100):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate, None
    return None, IMPOSSIBLE_DATE.text


def _ymd(year: str, month: int, day: int, ctx: ParseContext | None):
    if len(year) == 2:
        return _two_digit_year(int(year), month, day, _ctx(ctx).today)
    return _make_date(int(year), month, day)


def parse_date(raw, ctx: ParseContext | None = None):
    """ISO, US M/D/Y (D/M/Y when the account is day first), Excel dates and serials."""
    if raw.__class__ is str:
        text = raw.strip()
        if not text:
            return None, None
        m = _ISO_DATE.fullmatch(text)
        if m:
            return _make_date(int(m[1]), int(m[3]), int(m[4]))
        m = _SLASHED_DATE.fullmatch(text)
        if m:
            first, second = int(m[1]), int(m[3])
            if ctx is not None and ctx.day_first:
                first, second = second, first
            return _ymd(m[4], first, second, ctx)
        m = _COMPACT_DATE.fullmatch(text)
        if m:
            return _make_date(int(m[1]), int(m[2]), int(m[3]))
        if _SERIAL_DATE.fullmatch(text):
            return _excel_serial(float(text))
        m = _DAY_MONTH_NAME.fullmatch(text)
        if m and m[2].lower() in _MONTHS:
            return _ymd(m[3], _MONTHS[m[2].lower()], int(m[1]), ctx)
        m = _MONTH_NAME_DAY.fullmatch(text)
        if m and m[1].lower() in _MONTHS:
            return _ymd(m[3], _MONTHS[m[1].lower()], int(m[2]), ctx)
        return None, NOT_A_DATE.text
    if isinstance(raw, datetime):
        return raw.date(), None
    if isinstance(raw, date):
        return raw, None
    if isinstance(raw, bool):
        return None, NOT_A_DATE.text
    if _is_blank(raw):
        return None, None
    if isinstance(raw, int) and 10000101 <= raw <= 99991231:
        # A YYYYMMDD number: larger than any Excel serial, so never ambiguous.
        return _make_date(raw // 10000, raw // 100 % 100, raw % 100)
    if isinstance(raw, (int, float)) and not math.isinf(raw):
        return _excel_serial(raw)
    return None, NOT_A_DATE.text


# --- phones ---------------------------------------------------------------

# Clean NANP spellings: 4155550123, (415) 555-0123, +1 415.555.0123, 1-415-555-0123.
_NANP_FORM = re.compile(r"(?:\+?1[ .-]?)?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)[ .-]?)([2-9]\d\d)[ .-]?(\d{4})", re.ASCII)
_NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
_PHONE_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
    "personal_number", "voip", "pager", "uan", "voicemail",
)


def _nanp_validity_pattern() -> re.Pattern:
    # phonenumbers' own per-region patterns, compiled into one regex, so the fast
    # path agrees with phonenumbers.is_valid_number (a test checks it does).
    regions = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = PhoneMetadata.metadata_for_region(region)
        types = [getattr(meta, name) for name in _PHONE_TYPES]
        patterns = [f"(?:{t.national_number_pattern})" for t in types if t is not None and t.national_number_pattern]
        if patterns:
            regions.append(f"(?=(?:{meta.general_desc.national_number_pattern})$)(?:{'|'.join(patterns)})$")
    return re.compile("|".join(regions))


_NANP_VALID = _nanp_validity_pattern()
_FLOAT_DIGITS = re.compile(r"(\+?\d+)\.0+", re.ASCII)
_SCIENTIFIC = re.compile(r"(\d+)(?:[.,](\d*))?[eE]\+?(\d{1,3})", re.ASCII)


def _digits_from_scientific(text: str, m: re.Match, region: str):
    # "4.15556E+09" is what Excel writes for a long number in a General column:
    # only the mantissa's digits are real, the rest are zeros it made up.
    mantissa = (m[1] + (m[2] or "")).lstrip("0")
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None, PHONE_INVALID(region)
    if number != number.to_integral_value():
        return None, PHONE_INVALID(region)
    digits = str(int(number))
    if len(digits) > len(mantissa):
        return None, PHONE_DIGITS_LOST(text)
    return digits, None


def parse_phone(raw, ctx: ParseContext | None = None):
    """E.164 phone number, valid per phonenumbers for the account's region."""
    region = ctx.region if ctx is not None else "US"
    if raw.__class__ is str:
        text = raw.strip()
        if not text:
            return None, None
    elif raw is None:
        return None, None
    elif isinstance(raw, (bool, date)):
        return None, PHONE_INVALID(region)
    elif isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float):
        if math.isnan(raw):
            return None, None
        if not raw.is_integer():
            return None, PHONE_INVALID(region)
        text = str(int(raw))
    else:
        return None, PHONE_INVALID(region)
    result = _nanp_fast_path(text, region)
    if result is not None:
        return result
    m = _FLOAT_DIGITS.fullmatch(text)
    if m:
        text = m[1]
    else:
        m = _SCIENTIFIC.fullmatch(text)
        if m:
            text, reason = _digits_from_scientific(text, m, region)
            if reason:
                return None, reason
    return _nanp_fast_path(text, region) or _phone_by_phonenumbers(text, region)


def _nanp_fast_path(text: str, region: str):
    # A regex and one pattern match instead of phonenumbers.parse: ~10x faster on
    # the clean US numbers that make up nearly every file. None means "not sure".
    if region not in _NANP_REGIONS:
        return None
    m = _NANP_FORM.fullmatch(text)
    if m is None:
        return None
    national = (m[1] or m[2]) + m[3] + m[4]
    if _NANP_VALID.match(national):
        return "+1" + national, None
    return None, PHONE_INVALID(region)


def _phone_by_phonenumbers(text: str, region: str):
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, PHONE_INVALID(region)
    if not phonenumbers.is_valid_number(number):
        return None, PHONE_INVALID(region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


# --- email ----------------------------------------------------------------

# A flat pattern is twice as fast as one per dot-atom and label; the dot and
# hyphen placement it lets through is refused by _BAD_DOTS.
_EMAIL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9.-]{1,252}\.(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_BAD_DOTS = re.compile(r"^\.|\.\.|\.@|@[.-]|(?:-\.|\.-)(?=[^@]*$)")


def parse_email(raw, ctx: ParseContext | None = None):
    """Trimmed, lower-cased, syntax-checked email address (no DNS lookups)."""
    if raw.__class__ is not str:
        if _is_blank(raw):
            return None, None
        return None, EMAIL_INVALID.text
    text = raw.strip().lower()
    if not text:
        return None, None
    if len(text) <= 254 and _EMAIL.fullmatch(text) and not _BAD_DOTS.search(text):
        return text, None
    return None, EMAIL_INVALID.text


# --- points ---------------------------------------------------------------

_POINTS = re.compile(r"([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?", re.ASCII)
MAX_POINTS = 1_000_000_000  # keeps balances inside a 32-bit-safe range


def _points_in_range(value: int):
    if abs(value) > MAX_POINTS:
        return None, POINTS_TOO_MANY.text
    return value, None


def parse_points(raw, ctx: ParseContext | None = None):
    """Signed whole number of points to add ("+50", "-20", "50.0", "1,000")."""
    if raw.__class__ is str:
        text = raw.strip().replace("\u2212", "-")
        if text.isdecimal() and text.isascii():
            return _points_in_range(int(text))
        if not text:
            return None, None
        m = _POINTS.fullmatch(text)
        if not m:
            return None, POINTS_NOT_WHOLE.text
        value = int(m[2].replace(",", ""))
        return _points_in_range(-value if m[1] == "-" else value)
    if isinstance(raw, bool):
        return None, POINTS_NOT_WHOLE.text
    if isinstance(raw, int):
        return _points_in_range(raw)
    if isinstance(raw, float):
        if math.isnan(raw):
            return None, None
        if raw.is_integer():
            return _points_in_range(int(raw))
        return None, POINTS_NOT_WHOLE.text
    if raw is None:
        return None, None
    return None, POINTS_NOT_WHOLE.text


# --- customer type --------------------------------------------------------

_CUSTOMER_TYPES = {
    **dict.fromkeys(("medical", "med", "mmj", "medical patient"), "medical"),
    **dict.fromkeys(("recreational", "rec", "adult use"), "recreational"),
}
_SEPARATORS = re.compile(r"[\s_-]+")


def parse_customer_type(raw, ctx: ParseContext | None = None):
    """'medical' or 'recreational', from the spellings dispensaries use."""
    if raw.__class__ is not str:
        if _is_blank(raw):
            return None, None
        return None, CUSTOMER_TYPE_UNKNOWN.text
    text = _SEPARATORS.sub(" ", raw.strip().lower())
    if not text:
        return None, None
    value = _CUSTOMER_TYPES.get(text)
    if value is None:
        return None, CUSTOMER_TYPE_UNKNOWN.text
    return value, None


PARSERS = {
    "email": parse_email,
    "phone": parse_phone,
    "text": parse_text,
    "date": parse_date,
    "bool": parse_bool,
    "points": parse_points,
    "customer_type": parse_customer_type,
    "postal_code": parse_postal_code,
}


def parse_value(kind: str, raw, ctx: ParseContext | None = None):
    """Parse one cell for a field kind: (value, None) or (None, reason)."""
    return PARSERS[kind](raw, ctx)


# --- rows -----------------------------------------------------------------

_FIELD, _ATTRIBUTE = 0, 1
_MEMO_LIMIT = 100_000


class RowParser:
    """Parses rows of one file: the mapping is resolved once, rows are parsed many times."""

    def __init__(self, headers: list[str], mapping: dict[str, str], ctx: ParseContext | None = None):
        self.ctx = _ctx(ctx)
        self.columns = []
        for index, header in enumerate(headers):
            target = mapping.get(header, IGNORE)
            if target == IGNORE:
                continue
            name = attribute_name(target)
            if name is not None:
                if not name:
                    raise ValueError(f"custom attribute without a name for column {header!r}")
                self.columns.append((index, header, name, parse_bool, _ATTRIBUTE, None))
                continue
            spec = FIELDS.get(target)
            if spec is None:
                raise ValueError(f"unknown target {target!r} for column {header!r}")
            # Dates repeat a lot (birthdays, signup days) and are slow to read, so
            # each date column remembers its parsed text cells (as ISO text, as output).
            # Only text: True == 1 == 1.0 as dict keys, but they are different dates.
            if spec.kind == "date":
                self.columns.append((index, header, target, _date_as_iso, _FIELD, {}))
            else:
                self.columns.append((index, header, target, PARSERS[spec.kind], _FIELD, None))
        self.width = max((c[0] for c in self.columns), default=-1) + 1

    def __call__(self, line: int, cells: list) -> dict:
        ctx = self.ctx
        fields = {}
        attributes = []
        problems = []
        bad_contact = []
        row = cells if len(cells) >= self.width else [*cells, *[None] * (self.width - len(cells))]
        for index, header, name, parser, tag, memo in self.columns:
            raw = row[index]
            if raw is None or raw == "":
                continue
            if memo is not None and raw.__class__ is str:
                parsed = memo.get(raw)
                if parsed is None:
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    parsed = memo[raw] = parser(raw, ctx)
                value, reason = parsed
            else:
                value, reason = parser(raw, ctx)
            if reason is not None:
                problems.append(problem(line, header, cell_text(raw), reason, WARNING))
                if name == "email" or name == "phone":
                    bad_contact.append(name)
            elif value is None:
                continue
            elif tag == _FIELD:
                fields[name] = value
            elif value and name not in attributes:
                attributes.append(name)
        error = None
        if "email" not in fields and "phone" not in fields:
            error = _rejection(bad_contact)
            problems.append(problem(line, "", "", error, ERROR))
        if len(attributes) > 1:
            attributes.sort()
        try:
            # join() checks in C that every cell is already text, the common CSV case.
            "".join(cells)
            texts = list(cells)
        except TypeError:
            texts = [c if c.__class__ is str else cell_text(c) for c in cells]
        return {
            "line": line,
            "fields": fields,
            "attributes": attributes,
            "problems": problems,
            "error": error,
            "cells": texts,
        }


def _date_as_iso(raw, ctx: ParseContext):
    value, reason = parse_date(raw, ctx)
    return (value.isoformat() if value is not None else None), reason


def _rejection(bad_contact: list[str]) -> str:
    if "email" in bad_contact and "phone" in bad_contact:
        return NO_VALID_KEY.text
    if "email" in bad_contact:
        return EMAIL_INVALID_NO_PHONE.text
    if "phone" in bad_contact:
        return PHONE_INVALID_NO_EMAIL.text
    return NO_KEY.text


def parse_row(
    line: int, cells: list, headers: list[str], mapping: dict[str, str], ctx: ParseContext | None = None
) -> dict:
    """Parse one row; for many rows build a RowParser once instead."""
    return RowParser(headers, mapping, ctx)(line, cells)
