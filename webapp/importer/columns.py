"""Parsing whole columns of cells at once: a few vectorized steps per field kind.

values.py parses one cell at a time and stays the reference: a property test shows that these steps
give the same value and the same problem for every cell. Cells that are not text (Excel numbers, dates
and booleans) and the text cells no step settles (phones outside the clean North American forms) go
through values.py one by one.

Each kind is a function from a frame holding `text` (the stripped cell) to one with `value` and
`reason` added. Steps are separate `with_columns` calls so that each regular expression runs once.
"""
from datetime import date

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata

from webapp.importer import values
from webapp.importer.errors import (
    CUSTOMER_TYPE_UNKNOWN,
    EMAIL_INVALID,
    IMPOSSIBLE_DATE,
    NOT_A_DATE,
    NOT_YES_NO,
    PHONE_INVALID,
    POINTS_NOT_WHOLE,
    POINTS_TOO_MANY,
)
from webapp.importer.values import ParseContext

# Python's str.isspace() characters, which str.strip() removes (Rust's whitespace lacks \x1c-\x1f).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
WHITESPACE_CLASS = "".join(f"\\x{{{ord(ch):x}}}" for ch in WHITESPACE)  # for a regex character class
# re.ASCII's \s and \d, for the patterns values.py compiles with it (Rust's are Unicode).
_SPACE = r"[ \t\n\r\f\v]"
_D = "[0-9]"

# Fewer distinct new cells than this are parsed by values.py: each vectorized step has a fixed cost.
FEW = 2000
VALUE_TYPES = {
    "email": pl.String, "phone": pl.String, "text": pl.String, "postal_code": pl.String,
    "customer_type": pl.String, "date": pl.Date, "bool": pl.Boolean, "points": pl.Int64,
}


class Memo:
    """One column's distinct cells parsed so far in a file: dates, flags and types repeat across batches."""

    LIMIT = 200_000  # distinct cells kept; a column with more is not the repeating kind

    def __init__(self):
        self.parsed = None  # raw, value, reason
        self.off = False  # the column's cells hardly repeat (emails, phones): parsed batch by batch

    def useful(self, distinct: int, cells: int) -> bool:
        """Whether remembering pays for a batch of cells with this many distinct ones."""
        if distinct * 10 > cells * 9:
            self.off = True
        return not self.off

    def lookup(self, kind: str, distinct: pl.Series, ctx: ParseContext) -> pl.DataFrame:
        """raw, value, reason for these distinct cells, parsing only the ones not seen before."""
        known = self.parsed
        fresh = distinct if known is None else distinct.filter(~distinct.is_in(known["raw"].implode()))
        if known is not None and fresh.is_empty():
            return known
        if len(fresh) <= FEW:
            # A few new cells: the reference parser settles them faster than the steps start up.
            results = [values.PARSERS[kind](cell, ctx) for cell in fresh.to_list()]
            parsed = pl.DataFrame({"raw": fresh, "value": pl.Series([v for v, _ in results], dtype=VALUE_TYPES[kind]),
                                   "reason": pl.Series([r for _, r in results], dtype=pl.String)})
        else:
            parsed = _parse_distinct(kind, fresh, ctx)
        table = parsed if known is None else pl.concat([known, parsed])
        if len(table) <= self.LIMIT:
            self.parsed = table
        return table


def parse_column(kind: str, cells, ctx: ParseContext, memo: Memo | None = None) -> tuple[pl.Series, pl.Series]:
    """(values, reasons) for a column of cells: a String Series, or a list of cells of any type."""
    if isinstance(cells, pl.Series):
        return _parse_text(kind, cells.cast(pl.String), ctx, memo)
    text = pl.Series([c if c.__class__ is str else None for c in cells], dtype=pl.String)
    parsed, reasons = _parse_text(kind, text, ctx, memo)
    others = [i for i, c in enumerate(cells) if c.__class__ is not str and c is not None]
    return _scatter_reference(kind, parsed, reasons, others, [cells[i] for i in others], ctx)


def _scatter_reference(kind: str, parsed: pl.Series, reasons: pl.Series, indices: list[int], cells: list,
                       ctx: ParseContext) -> tuple[pl.Series, pl.Series]:
    """Cells parsed one by one by values.py, put in their places."""
    if not indices:
        return parsed, reasons
    parser = values.PARSERS[kind]
    results = [parser(cell, ctx) for cell in cells]
    parsed = parsed.scatter(indices, pl.Series([v for v, _ in results], dtype=VALUE_TYPES[kind]))
    reasons = reasons.scatter(indices, pl.Series([r for _, r in results], dtype=pl.String))
    return parsed, reasons


def _parse_text(kind: str, cells: pl.Series, ctx: ParseContext, memo: Memo | None) -> tuple[pl.Series, pl.Series]:
    cells = cells.fill_null("")  # a missing cell is a blank one
    distinct = cells.unique()
    if memo is not None and memo.useful(len(distinct), len(cells)):
        # Dates, flags and types repeat a few values: parse each once per file and look the others up.
        parsed = memo.lookup(kind, distinct, ctx)
    elif len(distinct) * 2 <= len(cells):
        parsed = _parse_distinct(kind, distinct, ctx)
    else:
        out = _parse_distinct(kind, cells, ctx)
        return out["value"].rename("value"), out["reason"].rename("reason")
    out = pl.DataFrame({"raw": cells}).join(parsed, on="raw", how="left", nulls_equal=True, maintain_order="left")
    return out["value"].rename("value"), out["reason"].rename("reason")


def _parse_distinct(kind: str, cells: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """A frame of raw, value and reason, one row per cell."""
    frame = pl.DataFrame({"raw": cells}).with_columns(text=pl.col("raw").str.strip_chars(WHITESPACE))
    frame = _KINDS[kind](frame, ctx)
    value = frame["value"].cast(VALUE_TYPES[kind])
    reason = frame["reason"].cast(pl.String)
    if "unsettled" in frame.columns:
        # Phones the regular expression could not settle: phonenumbers decides, cell by cell.
        indices = frame["unsettled"].arg_true().to_list()
        value, reason = _scatter_reference(kind, value, reason, indices, cells.gather(indices).to_list(), ctx)
    return pl.DataFrame({"raw": cells, "value": value, "reason": reason})


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text != "").then(text)


def _reason_when(condition: pl.Expr, reason: str) -> pl.Expr:
    return pl.when(condition).then(pl.lit(reason))


_TEXT = pl.col("text")
_NO_REASON = pl.lit(None, dtype=pl.String)


# --- text, postal codes, booleans, customer types ----------------------------------------------------


def _text(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    return frame.with_columns(value=_blank_to_null(_TEXT), reason=_NO_REASON)


def _postal_code(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = _text(frame, ctx)
    if ctx.region != "US":
        return frame
    # Excel drops the leading zero of 02134; a US ZIP is never shorter than five digits.
    value = pl.col("value")
    return frame.with_columns(value=pl.when(value.str.contains(r"^[0-9]{3,4}$")).then(value.str.zfill(5))
                              .otherwise(value))


def _bool(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = frame.with_columns(value=_TEXT.str.to_lowercase().replace_strict(
        values._BOOLEANS, default=None, return_dtype=pl.Boolean))
    return frame.with_columns(reason=_reason_when(pl.col("value").is_null() & (_TEXT != ""), NOT_YES_NO.text))


def _customer_type(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = frame.with_columns(words=_TEXT.str.to_lowercase().str.replace_all(f"[{WHITESPACE_CLASS}_-]+", " "))
    frame = frame.with_columns(value=pl.col("words").replace_strict(
        values._CUSTOMER_TYPES, default=None, return_dtype=pl.String))
    return frame.with_columns(reason=_reason_when(pl.col("value").is_null() & (pl.col("words") != ""),
                                                  CUSTOMER_TYPE_UNKNOWN.text))


# --- email ---------------------------------------------------------------------------------------------

_EMAIL = r"^[a-z0-9!#$%\&'*+/=?^_`{|}\~.\-]{1,64}@[a-z0-9.\-]{1,252}\.(?:[a-z]{2,63}|xn--[a-z0-9\-]{1,59})$"
# values._BAD_DOTS with its lookahead spelled out: an address _EMAIL accepts has exactly one @, so "a
# '-.' or '.-' that no @ follows" is "a '-.' or '.-' after the @".
_BAD_DOTS = r"^\.|\.\.|\.@|@[.\-]|@[^@]*(?:-\.|\.-)"


def _email(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = frame.with_columns(lower=_TEXT.str.to_lowercase())
    lower = pl.col("lower")
    frame = frame.with_columns(valid=(lower.str.len_chars() <= 254) & lower.str.contains(_EMAIL)
                               & ~lower.str.contains(_BAD_DOTS))
    valid = pl.col("valid")
    return frame.with_columns(value=pl.when(valid).then(lower),
                              reason=_reason_when(~valid & (lower != ""), EMAIL_INVALID.text))


# --- points --------------------------------------------------------------------------------------------

_POINTS = r"^([+-]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0*)?$"


def _points(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = frame.with_columns(minus=_TEXT.str.replace_all("\u2212", "-", literal=True))
    frame = frame.with_columns(groups=pl.col("minus").str.extract_groups(_POINTS))
    frame = frame.with_columns(
        sign=pl.col("groups").struct.field("1"),
        digits=pl.col("groups").struct.field("2").str.replace_all(",", "", literal=True).str.strip_chars_start("0"))
    digits = pl.col("digits")
    # More than ten digits is past the limit whatever they are, and would overflow a 64-bit cast.
    frame = frame.with_columns(number=pl.when(digits == "").then(0)
                               .when(digits.str.len_chars() <= 10).then(digits.cast(pl.Int64, strict=False)))
    number, matched = pl.col("number"), digits.is_not_null()
    too_many = number.is_null() | (number > values.MAX_POINTS)
    return frame.with_columns(
        value=pl.when(matched & ~too_many).then(pl.when(pl.col("sign") == "-").then(-number).otherwise(number)),
        reason=pl.when(pl.col("minus") == "").then(None)
        .when(~matched).then(pl.lit(POINTS_NOT_WHOLE.text))
        .when(too_many).then(pl.lit(POINTS_TOO_MANY.text)))


# --- dates ---------------------------------------------------------------------------------------------

_TIME = (rf"(?:[T ]+{_D}{{1,2}}:{_D}{{2}}(?::{_D}{{2}}(?:[.,]{_D}+)?)?{_SPACE}*"
         rf"(?:[AaPp]\.?[Mm]\.?)?{_SPACE}*(?:Z|[+-]{_D}{{2}}:?{_D}{{2}})?)?")
# values.py's patterns, tried in its order. Its ISO and slashed patterns repeat the first separator with a
# backreference; here both separators are captured and compared.
_PATTERNS = {
    "iso": rf"^({_D}{{4}})([-/.])({_D}{{1,2}})([-/.])({_D}{{1,2}}){_TIME}$",
    "slashed": rf"^({_D}{{1,2}})([-/.])({_D}{{1,2}})([-/.])({_D}{{4}}|{_D}{{2}}){_TIME}$",
    "compact": rf"^({_D}{{4}})({_D}{{2}})({_D}{{2}})$",
    "serial": rf"^({_D}{{5}}(?:\.{_D}+)?)$",
    "day_month": rf"^({_D}{{1,2}})[- ]([A-Za-z]{{3,9}})\.?[- ,]+({_D}{{4}}|{_D}{{2}})$",
    "month_day": rf"^([A-Za-z]{{3,9}})\.? ({_D}{{1,2}})(?:st|nd|rd|th)?,? +({_D}{{4}}|{_D}{{2}})$",
}
_UNIX_EPOCH = date(1970, 1, 1)


def _group(pattern: str, n: int) -> pl.Expr:
    return pl.col(pattern).struct.field(str(n))


def _number(pattern: str, n: int) -> pl.Expr:
    return _group(pattern, n).cast(pl.Int64, strict=False)


def _month_number(pattern: str, n: int) -> pl.Expr:
    return _group(pattern, n).str.to_lowercase().replace_strict(values._MONTHS, default=None, return_dtype=pl.Int64)


def _is_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """True where (year, month, day) is a day Python's date() accepts."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (pl.when(month == 2).then(pl.when(leap).then(29).otherwise(28))
                     .when(month.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    return ((year >= 1) & (year <= 9999) & (month >= 1) & (month <= 12) & (day >= 1)
            & (day <= days_in_month)).fill_null(False)


def _days(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """Days since 1970-01-01 of (year, month, day), in integer arithmetic (Hinnant's days_from_civil)."""
    y = year - (month <= 2).cast(pl.Int64)
    era = pl.when(y >= 0).then(y).otherwise(y - 399) // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _ymd(frame: pl.DataFrame, year_text: pl.Expr, month: pl.Expr, day: pl.Expr, today: date) -> pl.DataFrame:
    """Columns days and bad for a date whose year has four digits or two (the most recent such year not after
    today); bad means impossible."""
    frame = frame.with_columns(y=year_text.cast(pl.Int64, strict=False), m=month, d=day,
                               four=year_text.str.len_chars() == 4)
    y, m, d = pl.col("y"), pl.col("m"), pl.col("d")
    century = today.year - today.year % 100
    today_days = (today - _UNIX_EPOCH).days
    first, second = century + y, century + y - 100
    frame = frame.with_columns(
        full=pl.when(_is_date(y, m, d)).then(_days(y, m, d)),
        first=pl.when(_is_date(first, m, d)).then(_days(first, m, d)),
        second=pl.when(_is_date(second, m, d)).then(_days(second, m, d)))
    short = (pl.when(pl.col("first") <= today_days).then(pl.col("first"))
             .when(pl.col("second") <= today_days).then(pl.col("second")))
    frame = frame.with_columns(days=pl.when(pl.col("four")).then(pl.col("full")).otherwise(short))
    return frame.with_columns(bad=pl.col("days").is_null())


def _date(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    frame = frame.with_columns(**{name: _TEXT.str.extract_groups(pattern) for name, pattern in _PATTERNS.items()})
    first, second = _number("slashed", 1), _number("slashed", 3)
    month, day = (second, first) if ctx.day_first else (first, second)
    today = ctx.today
    # Each form's date as days and whether it is impossible; four-digit years use _ymd's "full" branch.
    forms = {
        "iso": (_group("iso", 1).is_not_null() & (_group("iso", 2) == _group("iso", 4)),
                (_group("iso", 1), _number("iso", 3), _number("iso", 5))),
        "slashed": (_group("slashed", 1).is_not_null() & (_group("slashed", 2) == _group("slashed", 4)),
                    (_group("slashed", 5), month, day)),
        "compact": (_group("compact", 1).is_not_null(),
                    (_group("compact", 1), _number("compact", 2), _number("compact", 3))),
        "day_month": (_month_number("day_month", 2).is_not_null(),
                      (_group("day_month", 3), _month_number("day_month", 2), _number("day_month", 1))),
        "month_day": (_month_number("month_day", 1).is_not_null(),
                      (_group("month_day", 3), _month_number("month_day", 1), _number("month_day", 2))),
    }
    found = {}
    for name, (matched, (year_text, m, d)) in forms.items():
        part = _ymd(frame.select("text", matched=matched, year_text=year_text, m0=m, d0=d),
                    pl.col("year_text"), pl.col("m0"), pl.col("d0"), today)
        found[name] = (part["matched"], part["days"], part["bad"])
    # Five digits, as values._excel_serial reads them. Leading zeros reach the small serials: below 1 is not a
    # date (unmatched here, no later form takes digits alone), 60 is Excel's 29 February 1900 that never was,
    # and the days before it are one off.
    serial = frame.select(matched=_group("serial", 1).is_not_null(),
                          whole=_group("serial", 1).cast(pl.Float64, strict=False).floor().cast(pl.Int64))
    whole = pl.col("whole")
    serial = serial.select(matched=pl.col("matched") & (whole >= 1), bad=whole == 60,
                           days=whole + (whole < 60).cast(pl.Int64) + (values._EXCEL_EPOCH - _UNIX_EPOCH).days)
    found["serial"] = (serial["matched"], serial["days"], serial["bad"])
    order = ("iso", "slashed", "compact", "serial", "day_month", "month_day")
    parts = pl.DataFrame({f"{name}_{field}": series for name in order
                          for field, series in zip(("matched", "days", "bad"), found[name])})
    days = reason = None
    for name in order:
        matched = pl.col(f"{name}_matched").fill_null(False)
        when_days = pl.when(pl.col(f"{name}_bad")).then(None).otherwise(pl.col(f"{name}_days"))
        when_reason = _reason_when(pl.col(f"{name}_bad"), IMPOSSIBLE_DATE.text)
        days = pl.when(matched).then(when_days) if days is None else days.when(matched).then(when_days)
        reason = pl.when(matched).then(when_reason) if reason is None else reason.when(matched).then(when_reason)
    reason = reason.when(pl.col("text") != "").then(pl.lit(NOT_A_DATE.text))
    parts = parts.with_columns(text=frame["text"])
    return frame.with_columns(parts.select(value=days.cast(pl.Int32).cast(pl.Date), reason=reason))


# --- phones --------------------------------------------------------------------------------------------

_NANP_FORM = (r"^(?:\+?1[ .\-]?)?(?:\(([2-9][0-9][0-9])\) ?|([2-9][0-9][0-9])[ .\-]?)([2-9][0-9][0-9])[ .\-]?"
              r"([0-9]{4})$")


def _nanp_region_patterns() -> list[tuple[str, str]]:
    """(general pattern, any-type pattern) per NANP region: values._NANP_VALID without its lookaheads."""
    found = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = PhoneMetadata.metadata_for_region(region)
        types = [getattr(meta, name) for name in values._PHONE_TYPES]
        patterns = [f"(?:{t.national_number_pattern})" for t in types if t is not None and t.national_number_pattern]
        if patterns:
            found.append((f"^(?:{meta.general_desc.national_number_pattern})$", f"^(?:{'|'.join(patterns)})$"))
    return found


_NANP_PATTERNS = _nanp_region_patterns()


def _nanp_valid(national: pl.Series) -> pl.Series:
    """values._NANP_VALID: some region's general pattern and one of its number types; regions tried in turn
    on the numbers the earlier ones did not take (the first, the US, takes nearly all)."""
    valid = pl.Series([False] * len(national), dtype=pl.Boolean)  # typed even when empty
    todo = national.is_not_null()
    for general, typed in _NANP_PATTERNS:
        indices = todo.arg_true()
        if not len(indices):
            break
        candidates = national.gather(indices)
        hits = candidates.str.contains(general) & candidates.str.contains(typed)
        valid = valid.scatter(indices.filter(hits), True)
        todo = todo.scatter(indices.filter(hits), False)
    return valid


def _phone(frame: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    if ctx.region not in values._NANP_REGIONS:
        return frame.with_columns(value=pl.lit(None, dtype=pl.String), reason=_NO_REASON, unsettled=_TEXT != "")
    frame = frame.with_columns(groups=_TEXT.str.extract_groups(_NANP_FORM))
    groups = pl.col("groups")
    frame = frame.with_columns(national=pl.concat_str([
        pl.coalesce(groups.struct.field("1"), groups.struct.field("2")), groups.struct.field("3"),
        groups.struct.field("4")]))
    frame = frame.with_columns(valid=_nanp_valid(frame["national"]))
    matched, valid = pl.col("national").is_not_null(), pl.col("valid")
    return frame.with_columns(
        value=pl.when(matched & valid).then(pl.lit("+1") + pl.col("national")),
        reason=_reason_when(matched & ~valid, PHONE_INVALID(ctx.region)),
        unsettled=(_TEXT != "") & ~matched)


_KINDS = {
    "email": _email, "phone": _phone, "text": _text, "date": _date, "bool": _bool,
    "points": _points, "customer_type": _customer_type, "postal_code": _postal_code,
}
