"""Formula-injection neutralization for every CSV/XLSX cell the app writes."""

# A spreadsheet may run a cell starting with one of these as a formula (or DDE).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # a tuple: "" is never "in" it
PREFIX = "'"


def neutralize(value) -> str:
    """Return the cell as text, with a leading ' if a spreadsheet could run it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return PREFIX + text if text.startswith(TRIGGERS) else text


def unneutralize(text: str) -> str:
    """Strip exactly one ' before a trigger character: the readers' side of the contract."""
    # So unneutralize(neutralize(t)) == t for every t the readers can produce: none starts with ' + trigger.
    if text[:1] == PREFIX and text[1:2] in TRIGGERS:
        return text[1:]
    return text
