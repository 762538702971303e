"""Numbers, counted nouns and dates as people read them: "1 persona", "50,021 personas", "12 Nov" (one way for all)."""
import datetime


def number(value) -> str:
    """A count with thousands separators, rounded to a whole number: 50021 -> "50,021"; None as 0."""
    return f"{round(value or 0):,}"


def noun(count, one: str, many: str | None = None) -> str:
    """The noun for count alone (where the number is shown apart): "warning" for 1, else "warnings"."""
    return one if int(count or 0) == 1 else (many or one + "s")


def counted(count, one: str, many: str | None = None) -> str:
    """count and its noun, singular for exactly 1: counted(1, "row") == "1 row", counted(2, "row") == "2 rows"."""
    return f"{number(count)} {noun(count, one, many)}"


def day_month(value, today: datetime.date | None = None) -> str:
    """A date (or its ISO text) briefly: "12 Nov" this year, "12 Nov 2025" another year."""
    day = datetime.date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if isinstance(day, datetime.datetime):
        day = day.date()
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    return f"{day.day} {day:%b}" + ("" if day.year == today.year else f" {day.year}")
