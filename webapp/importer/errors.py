"""Errors the core raises with a message a marketer can read, and the kinds of problem a row can have."""
from dataclasses import dataclass


class FileRefused(ValueError):
    """The file cannot be imported at all; str(exc) is the message shown to the user."""

    def __init__(self, message: str, sheets: list[str] | None = None, header_kind: str | None = None):
        super().__init__(message)
        self.message = message
        # Set when the only problem is that a workbook has several sheets: the names to choose from.
        self.sheets = sheets
        # Set when the only problem is that no row looks like a header row: the file's kind ("csv", "xlsx"…).
        self.header_kind = header_kind


@dataclass(frozen=True)
class Problem:
    """One kind of problem a row can have: its reason's text, its name in a group of them, the plain fix.

    text: the reason as stored and reported, "{}" where it names a value (filled by str.format or
    polars' pl.format); the same text, with % for each value, is the SQL LIKE pattern that groups them.
    """

    code: str
    text: str
    title: str
    severity: str  # warning: the cell is skipped, the row imported | error: the row is rejected
    fix: str | None = None
    fix_day_first: str | None = None  # the fix for an account that reads slashed dates day first

    def __post_init__(self):
        if "%" in self.text or "_" in self.text:
            raise ValueError(f"{self.code}: LIKE would read % and _ in its text as wildcards")

    def __call__(self, *values) -> str:
        """The reason naming these values."""
        return self.text.format(*values)

    @property
    def match(self) -> str:
        """An SQL LIKE pattern every reason of this kind matches."""
        return self.text.replace("{}", "%")

    def fix_for(self, day_first: bool) -> str | None:
        """The fix as it applies to an account (the date fixes depend on how it reads dates)."""
        return self.fix_day_first if day_first and self.fix_day_first else self.fix


_NO_KEY_FIX = "Every row needs a valid email or phone to find its customer: fill one in, or correct it."

NOT_YES_NO = Problem("not_yes_no", "not a yes/no value", "not a yes/no value", "warning",
                     "Write TRUE or FALSE (yes/no, y/n, 1/0 and x work too).")
NOT_A_DATE = Problem("not_a_date", "not a date", "not a date", "warning",
                     "Write dates as 2024-03-31 or 03/31/2024, or format the column as dates in your spreadsheet.")
IMPOSSIBLE_DATE = Problem(
    "impossible_date", "impossible date", "an impossible date", "warning",
    "Dates are read month first (03/31/2024). If this file writes the day first, ask an administrator to set the "
    "account to read dates day first, then check the file again.",
    fix_day_first="Dates are read day first (31/03/2024) for this account: check these dates were written that "
                  "way, or write them as 2024-03-31.")
PHONE_DIGITS_LOST = Problem(
    "phone_digits_lost", "digits lost: Excel shortened this number ({}); format the column as text and export again",
    "phone digits lost by Excel", "warning",
    "Excel shortened these numbers (4.15556E+09): format the phone column as text in Excel and export the file "
    "again.")
PHONE_INVALID = Problem("phone_invalid", "not a valid phone number for {}", "not a valid phone number", "warning",
                        "Check these numbers have all their digits; write a number from another country with its "
                        "country code (+44 …).")
EMAIL_INVALID = Problem("email_invalid", "not a valid email address", "not a valid email address", "warning",
                        "Check these emails for typos, spaces or a missing @.")
POINTS_TOO_MANY = Problem("points_too_many", "too many points in one row (more than 1,000,000,000)",
                          "too many points in one row", "warning",
                          "A row adds at most 1,000,000,000 points: check the column holds points, not ids or phone "
                          "numbers.")
POINTS_NOT_WHOLE = Problem("points_not_whole", "not a whole number of points", "not a whole number of points",
                           "warning", "Write points as whole numbers, with a sign where they subtract: 50, +50, -20.")
CUSTOMER_TYPE_UNKNOWN = Problem("customer_type_unknown", "unknown customer type (use medical or recreational)",
                                "unknown customer type", "warning",
                                "Write medical or recreational (med and rec work too).")
BALANCE_BELOW_ZERO = Problem("balance_below_zero", "the points balance goes below zero ({})",
                             "the points balance goes below zero", "warning",
                             "The points are applied. If these customers should not owe points, check the sign of "
                             "their points in the file.")
OPT_OUT_LIFTED = Problem("opt_out_lifted", "this row's {} opt-in lifts the customer's recorded {} opt-out",
                         "an opt-in lifts a recorded opt-out", "warning",
                         "The customer's own opt-in is applied. Clear these cells if the customers did not opt in "
                         "again.")
NO_VALID_KEY = Problem("no_valid_key", "neither email nor phone is valid", "neither email nor phone is valid", "error",
                       _NO_KEY_FIX)
EMAIL_INVALID_NO_PHONE = Problem("email_invalid_no_phone", "email not valid and no phone",
                                 "email not valid and no phone", "error", _NO_KEY_FIX)
PHONE_INVALID_NO_EMAIL = Problem("phone_invalid_no_email", "phone not valid and no email",
                                 "phone not valid and no email", "error", _NO_KEY_FIX)
NO_KEY = Problem("no_key", "no email or phone", "no email or phone", "error", _NO_KEY_FIX)
SHIFTED_CELLS = Problem(
    "shifted_cells", "line {} has more cells ({}) than the header row has columns ({}), so its values have shifted "
    "into the wrong columns: a value holds a comma (or the file's separator) without quotes around it. Fix that "
    "line and import it again", "more cells than the header row has columns", "error",
    "Put quotes around the values that hold a comma (or the file's separator), or export the file again from your "
    "spreadsheet, which quotes them.")
AMBIGUOUS_MATCH = Problem("ambiguous_match",
                          "ambiguous match: the email matches {} and the phone matches {}; nothing was merged",
                          "the email and the phone match two different customers", "error",
                          "Correct the email or the phone of these rows, so that both belong to one customer.")
ARCHIVED = Problem("archived", "archived persona: {} is archived and is not re-activated by imports",
                   "the customer is archived", "error",
                   "Archived customers stay archived: remove these rows from the file.")

PROBLEMS = (NOT_YES_NO, NOT_A_DATE, IMPOSSIBLE_DATE, PHONE_DIGITS_LOST, PHONE_INVALID, EMAIL_INVALID, POINTS_TOO_MANY,
            POINTS_NOT_WHOLE, CUSTOMER_TYPE_UNKNOWN, BALANCE_BELOW_ZERO, OPT_OUT_LIFTED, NO_VALID_KEY,
            EMAIL_INVALID_NO_PHONE, PHONE_INVALID_NO_EMAIL, NO_KEY, SHIFTED_CELLS, AMBIGUOUS_MATCH, ARCHIVED)
PROBLEM_BY_CODE = {problem.code: problem for problem in PROBLEMS}
