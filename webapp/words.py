"""Numbers and counted nouns as people read them: "1 persona", "50,021 personas" (every template's one way)."""


def number(value) -> str:
    """A count with thousands separators, rounded to a whole number: 50021 -> "50,021"; None as 0."""
    return f"{round(value or 0):,}"


def noun(count, one: str, many: str | None = None) -> str:
    """The noun for count alone (where the number is shown apart): "warning" for 1, else "warnings"."""
    return one if int(count or 0) == 1 else (many or one + "s")


def counted(count, one: str, many: str | None = None) -> str:
    """count and its noun, singular for exactly 1: counted(1, "row") == "1 row", counted(2, "row") == "2 rows"."""
    return f"{number(count)} {noun(count, one, many)}"


def init_app(app) -> None:
    """Make number, noun and counted filters of every template."""
    app.add_template_filter(number)
    app.add_template_filter(noun)
    app.add_template_filter(counted)
