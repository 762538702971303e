"""The persona fields a file can fill, and matching file headers to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Field:
    """One persona field a file can fill: the one place its name, label, parsing, merging and samples live."""

    name: str
    label: str
    kind: str  # how its cells parse: email, phone, text, date, bool, points, customer_type, postal_code
    synonyms: tuple[str, ...]  # headers that auto-match it; the first is the templates' header
    group: str  # where the persona page shows it: profile, loyalty or consent
    samples: tuple  # the provider template's three example values (None: a blank cell)
    merge: str = "replace"  # replace: a file value replaces the stored one; add: points; consent: opt-in/out
    channel: str | None = None  # consent fields: sms or email


def _field(name, label, kind, synonyms, group, samples, merge="replace", channel=None) -> Field:
    return Field(name, label, kind, tuple(synonyms), group, tuple(samples), merge, channel)


D = date
FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        _field("email", "Email", "email",
               ("Email", "E-mail", "Email Address", "E-mail Address", "Customer Email"), "profile",
               ("maria.lopez@example.com", "james.okafor@example.com", "sam.chen@example.com")),
        _field("phone", "Phone", "phone",
               ("Phone", "Phone Number", "Phone #", "Mobile", "Mobile Phone", "Mobile Number", "Cell",
                "Cell Phone", "Cell Number", "Telephone", "Customer Phone"), "profile",
               ("(415) 555-0134", "(617) 555-0199", "(303) 555-0101")),
        _field("first_name", "First Name", "text", ("First Name", "First", "Given Name"), "profile",
               ("Maria", "James", "Sam")),
        _field("last_name", "Last Name", "text", ("Last Name", "Last", "Surname", "Family Name"), "profile",
               ("Lopez", "Okafor", "Chen")),
        _field("birthday", "Birthday", "date", ("Birthday", "Birth Date", "DOB", "Date of Birth"), "profile",
               (D(1988, 4, 20), D(1975, 11, 2), D(1995, 1, 31))),
        _field("gender", "Gender", "text", ("Gender",), "profile", ("Female", "Male", None)),
        _field("street", "Street Address", "text",
               ("Address", "Street", "Street Address", "Address 1", "Address Line 1"), "profile",
               ("1200 Market St", "45 Beacon St", "789 Colfax Ave")),
        _field("city", "City", "text", ("City",), "profile", ("San Francisco", "Boston", "Denver")),
        _field("state", "State", "text", ("State", "Province", "State/Province"), "profile", ("CA", "MA", "CO")),
        _field("postal_code", "Postal Code", "postal_code", ("Zip", "Zip Code", "Postal Code", "Postcode"),
               "profile", ("94102", "02134", "80203")),
        _field("external_id", "External ID", "text",
               ("Customer ID", "External ID", "Member ID", "Customer Number", "Member Number"), "profile",
               ("C-1001", "C-1002", "C-1003")),
        _field("loyalty_member", "Loyalty Member", "bool", ("Loyalty Member", "Loyalty"), "loyalty",
               (True, True, False)),
        _field("loyalty_signup_date", "Loyalty Signup Date", "date",
               ("Loyalty Signup Date", "Loyalty Join Date", "Loyalty Enrollment Date"), "loyalty",
               (D(2021, 6, 15), D(2019, 3, 1), None)),
        # Points are added to the balance, so a "Points Balance" column must not match.
        _field("points", "Points", "points", ("Points", "Loyalty Points"), "loyalty", (120, 860, 0), merge="add"),
        _field("sms_opt_in", "Opt-in SMS", "bool", ("Opt-in SMS", "SMS Opt In", "Accepts SMS Marketing"),
               "consent", (True, False, True), merge="consent", channel="sms"),
        _field("email_opt_in", "Opt-in Email", "bool",
               ("Opt-in Email", "Email Opt In", "Accepts Email Marketing"), "consent", (True, True, False),
               merge="consent", channel="email"),
        _field("sms_opt_out", "Explicit SMS Opt-out", "bool", ("Explicit SMS Opt-out", "SMS Opt Out", "Opt-out SMS"),
               "consent", (False, True, False), merge="consent", channel="sms"),
        _field("email_opt_out", "Explicit Email Opt-out", "bool",
               ("Explicit Email Opt-out", "Email Opt Out", "Opt-out Email"), "consent", (False, False, True),
               merge="consent", channel="email"),
        _field("customer_type", "Customer Type", "customer_type",
               ("Customer Type", "Medical/Recreational", "Med/Rec"), "profile",
               ("Recreational", "Medical", "Recreational")),
    )
}

# Fields a file value replaces, in catalogue order (blank cells never reach the merge).
PLAIN_FIELDS = tuple(name for name, f in FIELDS.items() if f.merge == "replace")
KEYS = ("email", "phone")  # the match keys
# channel -> the name messages use; each has <channel>_opt_in and <channel>_opt_out fields.
CHANNELS = {"sms": "SMS", "email": "Email"}
STAMPS = ("consent_at", "consent_import", "consent_user", "consent_terms")  # who and when, per channel
# Every persona column an import reads or writes, derived from the catalogue.
PERSONA_COLUMNS = PLAIN_FIELDS + ("points",) + tuple(
    f"{channel}_{part}" for channel in CHANNELS for part in ("opt_in", "opt_out", *STAMPS)) + ("archived",)
# Columns by type, where a database hands back something else (dates as date objects, booleans as 0/1).
DATE_COLUMNS = tuple(name for name in PERSONA_COLUMNS if name in FIELDS and FIELDS[name].kind == "date")
BOOL_COLUMNS = tuple(name for name in PERSONA_COLUMNS
                     if (name in FIELDS and FIELDS[name].kind == "bool") or name == "archived")
# What an export holds of each persona, beside its attributes and archived flag.
EXPORT_KEYS = tuple(FIELDS)


def opt_fields(channel: str) -> tuple[str, str]:
    """The opt-in and opt-out field names of a consent channel."""
    return f"{channel}_opt_in", f"{channel}_opt_out"


IGNORE = "ignore"
ATTRIBUTE_PREFIX = "attribute:"
# A header "Attribute: veteran" auto-matches the custom attribute "veteran" (the exports write them so).
ATTRIBUTE_HEADER = "Attribute: "
CONTACT_MESSAGE = "Map an Email or Phone column: personas are matched on phone or email"


def normalize_header(header) -> str:
    """A header reduced to lower-case letters and digits: 'E-mail ' == 'email'."""
    if header is None:
        return ""
    return "".join(ch for ch in str(header).lower() if ch.isalnum())


def _synonym_index() -> dict[str, str]:
    index = {}
    for f in FIELDS.values():
        for synonym in f.synonyms:
            key = normalize_header(synonym)
            # Two fields claiming one header would make auto-matching order-dependent.
            assert index.get(key, f.name) == f.name, f"{synonym!r} is a synonym of two fields"
            index[key] = f.name
    return index


SYNONYMS: dict[str, str] = _synonym_index()


def attribute_target(name: str) -> str:
    """The mapping target for a custom attribute: 'attribute:<name, trimmed, lower-case>'."""
    return ATTRIBUTE_PREFIX + " ".join(str(name).split()).lower()


def attribute_name(target: str) -> str | None:
    """The attribute name of an 'attribute:…' target, None for any other target."""
    if target.startswith(ATTRIBUTE_PREFIX):
        return " ".join(target[len(ATTRIBUTE_PREFIX):].split()).lower()
    return None


def _looks_boolean(values) -> bool:
    from .values import parse_bool  # values imports this module

    seen_word = False
    for value in values:
        parsed, reason = parse_bool(value)
        if reason is not None:
            return False
        if parsed is None:
            continue
        # 1/0 alone is too weak a sign: ids and counts look the same in 3 samples.
        if isinstance(value, bool) or (isinstance(value, str) and not value.strip().replace(".", "").isdigit()):
            seen_word = True
    return seen_word


def auto_match(
    headers: list[str],
    remembered: dict[str, str] | None = None,
    samples: dict[str, list] | None = None,
) -> dict[str, str]:
    """Suggest a target for every header: a field, 'attribute:<name>' or 'ignore'."""
    remembered = {normalize_header(k): v for k, v in (remembered or {}).items()}
    samples = samples or {}
    mapping: dict[str, str] = {}
    taken: set[str] = set()

    def claim(header: str, target: str) -> bool:
        name = attribute_name(target)
        if name:
            target = ATTRIBUTE_PREFIX + name
        if target in taken:
            return False
        if target != IGNORE:
            taken.add(target)
        mapping[header] = target
        return True

    # Remembered choices come first so a synonym column further left cannot take their field.
    for header in headers:
        target = remembered.get(normalize_header(header))
        if target is not None and _known_target(target):
            if not claim(header, target):
                mapping[header] = IGNORE
    for header in headers:
        if header in mapping:
            continue
        named = _attribute_header(header)
        if named and claim(header, attribute_target(named)):
            continue
        field_name = SYNONYMS.get(normalize_header(header))
        if field_name and claim(header, field_name):
            continue
        if field_name is None and normalize_header(header) and _looks_boolean(samples.get(header) or ()):
            if claim(header, attribute_target(header)):
                continue
        mapping[header] = IGNORE
    return {header: mapping[header] for header in headers}


# What audit entries name beside the catalogue's fields and custom attributes.
OTHER_LABELS = {"attributes": "Custom attributes", "archived": "Archived", IGNORE: "Ignore"}


def label(name: str) -> str:
    """A field, mapping target or audited column as a marketer reads it: "Opt-in SMS", "Custom attribute “vip”"."""
    attribute = attribute_name(name)
    if attribute is not None:
        return f"Custom attribute “{attribute}”"
    if name in FIELDS:
        return FIELDS[name].label
    return OTHER_LABELS.get(name) or name.replace("_", " ").capitalize()


def _attribute_header(header) -> str | None:
    """The attribute an "Attribute: <name>" header names, else None."""
    text = str(header or "").strip()
    prefix = ATTRIBUTE_HEADER.strip()
    if text[:len(prefix)].lower() == prefix.lower() and text[len(prefix):].strip():
        return text[len(prefix):].strip()
    return None


def _known_target(target: str) -> bool:
    return target == IGNORE or target in FIELDS or bool(attribute_name(target))


MAX_ATTRIBUTE_NAME = 100


def validate_mapping(mapping: dict[str, str]) -> list[str]:
    """Messages for a mapping the user cannot import with; empty when it is fine."""
    messages = []
    columns_of: dict[str, list[str]] = {}
    for header, target in mapping.items():
        if target == IGNORE:
            continue
        name = attribute_name(target)
        if name == "":
            messages.append(f'Column "{header}" is mapped to a custom attribute without a name')
        elif name is not None and len(name) > MAX_ATTRIBUTE_NAME:
            messages.append(f'The custom attribute name for column "{header[:60]}" is too long: '
                            f"use at most {MAX_ATTRIBUTE_NAME} characters")
        elif name is None and target not in FIELDS:
            messages.append(f'Column "{header}" is mapped to an unknown field "{target}"')
        else:
            key = target if name is None else ATTRIBUTE_PREFIX + name
            columns_of.setdefault(key, []).append(header)
    for target, headers in columns_of.items():
        if len(headers) > 1:
            name = attribute_name(target)
            what = FIELDS[target].label if name is None else f'Custom attribute "{name}"'
            count = "two" if len(headers) == 2 else str(len(headers))
            messages.append(f"{what} is mapped from {count} columns: {', '.join(headers)}")
    if "email" not in columns_of and "phone" not in columns_of:
        messages.append(CONTACT_MESSAGE)
    return messages
