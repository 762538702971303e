"""Personas read out by chunks of ids (keyset), with their attributes and consent stamps: the exports' source."""
import datetime
from collections.abc import Iterator
from dataclasses import dataclass

from webapp.importer import selection
from webapp.importer.fields import ATTRIBUTE_HEADER, CHANNELS, EXPORT_KEYS, FIELDS, STAMPS
from webapp.models import Persona, PersonaAttribute, User

CHUNK = 5000  # personas per query: a few set-based queries per chunk, never one per persona

# The points column holds the balance: under "Points" a re-import would add it again, so the matcher leaves it.
BALANCE_HEADER = "Points Balance"
STAMP_HEADERS = {"consent_at": "Consent At (UTC)", "consent_import": "Consent Import",
                 "consent_user": "Consent By", "consent_terms": "Consent Terms"}
STAMP_KEYS = tuple(f"{channel}_{stamp}" for channel in CHANNELS for stamp in STAMPS)
# Headers the auto-matcher maps to no field (nor, by their values, to an attribute): kept for people to read.
TAIL = {"archived": "Status", "id": "Persona ID", "created_at": "Created At (UTC)", "updated_at": "Updated At (UTC)"}


@dataclass(frozen=True)
class Selection:
    """Which personas to export: the account's, narrowed by a search, an audience or an import."""

    account_id: int
    q: str = ""
    audience_id: int | None = None
    import_id: int | None = None

    def query(self, *columns, after: int = 0):
        return selection.personas(self.account_id, self.q, self.audience_id, self.import_id, columns, after)


def attribute_names(chosen: Selection) -> list[str]:
    """Every attribute name any chosen persona has, sorted: one column each."""
    ids = chosen.query(Persona.id)
    query = (PersonaAttribute.select(PersonaAttribute.name).distinct()
             .where(PersonaAttribute.persona.in_(ids)).order_by(PersonaAttribute.name))
    return [name for (name,) in query.tuples()]


def headers(attributes: list[str]) -> list[str]:
    """The file's header row: catalogue labels (what the auto-matcher maps back), stamps, attributes, the rest."""
    fields = [BALANCE_HEADER if key == "points" else FIELDS[key].label for key in EXPORT_KEYS]
    stamps = [f"{CHANNELS[channel]} {STAMP_HEADERS[stamp]}" for channel in CHANNELS for stamp in STAMPS]
    return fields + stamps + [ATTRIBUTE_HEADER + name for name in attributes] + list(TAIL.values())


_COLUMNS = [getattr(Persona, key) for key in (*EXPORT_KEYS, *STAMP_KEYS, *TAIL)]


def _stamp_users(rows: list[dict], known: dict[int, str]) -> None:
    """Fill known with the emails of the users named by the rows' consent stamps, in one query."""
    wanted = {row[f"{c}_consent_user"] for row in rows for c in CHANNELS} - set(known) - {None}
    if wanted:
        known.update(User.select(User.id, User.email).where(User.id.in_(list(wanted))).tuples())


def chunks(chosen: Selection, size: int = CHUNK) -> Iterator[list[dict]]:
    """The chosen personas by id, size at a time, each with "attributes" (a set) and the stamp users' emails."""
    last, users = 0, {}
    while True:
        query = chosen.query(*_COLUMNS, after=last).order_by(Persona.id).limit(size)
        rows = list(query.dicts())
        if not rows:
            return
        ids = [row["id"] for row in rows]
        attributes: dict[int, set] = {}
        for persona_id, name in (PersonaAttribute.select(PersonaAttribute.persona, PersonaAttribute.name)
                                 .where(PersonaAttribute.persona.in_(ids)).tuples()):
            attributes.setdefault(persona_id, set()).add(name)
        _stamp_users(rows, users)
        for row in rows:
            row["attributes"] = attributes.get(row["id"], set())
            for channel in CHANNELS:
                user = row[f"{channel}_consent_user"]
                row[f"{channel}_consent_user"] = users.get(user, user)
        yield rows
        last = ids[-1]


def file_row(row: dict, attributes: list[str]) -> list:
    """One persona as the cells of a file, in the order of headers(attributes); typed, not yet written."""
    cells = [row[key] for key in (*EXPORT_KEYS, *STAMP_KEYS)]
    cells += [name in row["attributes"] for name in attributes]
    return cells + ["archived" if row["archived"] else "active", row["id"], row["created_at"], row["updated_at"]]


def export_personas(account_id: int, chosen: Selection | None = None) -> list[dict]:
    """The account's personas (or the chosen ones), by id, as JSON-ready dicts with attributes and archived flag."""
    result = []
    for rows in chunks(chosen or Selection(account_id)):
        for row in rows:
            record = {key: row[key].isoformat() if isinstance(row[key], datetime.date) else row[key]
                      for key in EXPORT_KEYS}
            result.append({**record, "attributes": sorted(row["attributes"]), "archived": bool(row["archived"])})
    return result
