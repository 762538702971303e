"""Row-by-row merge semantics on in-memory personas: matching, values, points, consent, attributes.

The engine loads every persona a chunk can touch, runs these rules in file order, then writes the
result set-based; so a chunk gives exactly what applying its rows one at a time would give.
"""
from dataclasses import dataclass, field

from webapp.importer.errors import AMBIGUOUS_MATCH, ARCHIVED, BALANCE_BELOW_ZERO, OPT_OUT_LIFTED
from webapp.importer.fields import CHANNELS, PERSONA_COLUMNS, PLAIN_FIELDS, opt_fields
from webapp.importer.problems import ERROR, WARNING, Problem, problem

PLAIN_SET = frozenset(PLAIN_FIELDS)
CONSENT_CHANNELS = tuple(CHANNELS)
# channel -> its opt-in and opt-out fields, and its name in messages
CONSENT_NAMES = {channel: (*opt_fields(channel), label) for channel, label in CHANNELS.items()}


def _blank_template() -> dict:
    persona = {name: None for name in PERSONA_COLUMNS}
    persona.update(id=None, points=0, archived=False)
    for channel in CONSENT_CHANNELS:
        persona[f"{channel}_opt_in"] = persona[f"{channel}_opt_out"] = False
    return persona


_BLANK = _blank_template()


def blank_persona() -> dict:
    """A persona not yet in the database: no id, nothing set, zero points."""
    persona = _BLANK.copy()
    persona["attributes"] = set()
    return persona


def describe(persona: dict) -> str:
    """How a problem names a persona: its id and the key a marketer recognises."""
    key = persona.get("email") or persona.get("phone") or ""
    if persona.get("id") is None:
        return f"a customer created by row {persona['created_by_line']} ({key})"
    return f"customer #{persona['id']} ({key})"


@dataclass
class Stamp:
    """Who, when and under which terms this import changes consent."""

    import_id: int
    user_id: int
    at: object
    terms_version: str | None
    opt_in_all: dict = field(default_factory=dict)  # channel -> bool (the wizard's boxes)
    # channel -> {"ids": personas an opt-out row of the file reaches, "lines": rows creating such personas}
    opted_out: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What one row did."""

    line: int
    action: str  # created | updated | unchanged | rejected
    persona: dict | None = None
    changes: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    reached: list = field(default_factory=list)  # the personas the row matched (two when ambiguous)


class PersonaIndex:
    """Personas by id, email and phone, kept current as rows change keys."""

    def __init__(self):
        self.by_id, self.by_email, self.by_phone = {}, {}, {}
        self.new = []

    def add_loaded(self, persona: dict) -> None:
        """Index a persona read from the database unless a newer in-memory copy exists."""
        if persona["id"] in self.by_id:
            return
        self.by_id[persona["id"]] = persona
        self._index(persona)

    def add_new(self, persona: dict) -> None:
        """Index a persona this import creates."""
        self.new.append(persona)
        self._index(persona)

    def forget(self, persona_id: int) -> None:
        """Drop a loaded persona (the dry run holds a newer copy of it elsewhere)."""
        persona = self.by_id.pop(persona_id)
        for keys, key in ((self.by_email, persona["email"]), (self.by_phone, persona["phone"])):
            if key is not None and keys.get(key) is persona:
                del keys[key]

    def _index(self, persona: dict) -> None:
        if persona["email"]:
            self.by_email[persona["email"]] = persona
        if persona["phone"]:
            self.by_phone[persona["phone"]] = persona

    def rekey(self, persona: dict, name: str, old, new) -> None:
        """Move persona from its old email/phone to the new one."""
        keys = self.by_email if name == "email" else self.by_phone
        if old is not None and keys.get(old) is persona:
            del keys[old]
        keys[new] = persona


class Merger:
    """Apply parsed rows to an index of personas, one at a time, in file order."""

    def __init__(self, index: PersonaIndex, stamp: Stamp):
        self.index, self.stamp = index, stamp

    def apply(self, row: dict) -> Outcome:
        """Apply one parsed row and say what it did."""
        line = row["line"]
        if row.get("error"):
            return Outcome(line, "rejected")
        values = row["fields"]
        email, phone = values.get("email"), values.get("phone")
        by_email = self.index.by_email.get(email) if email else None
        by_phone = self.index.by_phone.get(phone) if phone else None
        if by_email is not None and by_phone is not None and by_email is not by_phone:
            reason = AMBIGUOUS_MATCH(describe(by_email), describe(by_phone))
            return Outcome(line, "rejected", problems=[_error(line, "", "", reason)], reached=[by_email, by_phone])
        persona = by_email or by_phone
        if persona is not None and persona["archived"]:
            reason = ARCHIVED(describe(persona))
            return Outcome(line, "rejected", problems=[_error(line, "", "", reason)])
        outcome = Outcome(line, "updated")
        if persona is None:
            persona = blank_persona()
            persona["created_by_line"] = line
            outcome.action = "created"
        outcome.persona, outcome.reached = persona, [persona]
        self._set_fields(persona, values, outcome)
        self._add_points(persona, values.get("points"), outcome)
        for channel in CONSENT_CHANNELS:
            self._consent(persona, channel, values, outcome)
        self._add_attributes(persona, row.get("attributes") or (), outcome)
        if outcome.action == "created":
            self.index.add_new(persona)
        elif not outcome.changes:
            outcome.action = "unchanged"
        return outcome

    def _set_fields(self, persona: dict, values: dict, outcome: Outcome) -> None:
        changes = outcome.changes
        if outcome.action == "created":
            # A blank persona: every value is new, and the index learns its keys once it is added.
            for name, new in values.items():
                if new is not None and name in PLAIN_SET:
                    changes[name] = [None, new]
                    persona[name] = new
            return
        for name, new in values.items():
            if new is None or name not in PLAIN_SET:
                continue
            old = persona[name]
            if new == old:
                continue
            if name == "email" or name == "phone":
                self.index.rekey(persona, name, old, new)
            changes[name] = [old, new]
            persona[name] = new

    def _add_points(self, persona: dict, delta, outcome: Outcome) -> None:
        if not delta:
            return
        old = persona["points"]
        persona["points"] = old + delta
        outcome.changes["points"] = [old, persona["points"]]
        if persona["points"] < 0:
            outcome.problems.append(_warning(
                outcome.line, "points", str(delta), BALANCE_BELOW_ZERO(persona['points'])))

    def _consent(self, persona: dict, channel: str, values: dict, outcome: Outcome) -> None:
        opt_in, opt_out, label = CONSENT_NAMES[channel]
        if values.get(opt_out) is True:
            target = (False, True)
        elif values.get(opt_in) is True:
            target = (True, False)
            if persona[opt_out]:
                outcome.problems.append(_warning(
                    outcome.line, opt_in, "TRUE",
                    OPT_OUT_LIFTED(label, label)))
        elif self.stamp.opt_in_all.get(channel) and not persona[opt_out] and not self._opted_out_in_file(
                persona, channel):
            target = (True, False)
        else:
            return
        if (persona[opt_in], persona[opt_out]) == target:
            return
        for name, new in zip((opt_in, opt_out), target):
            if persona[name] != new:
                outcome.changes[name] = [persona[name], new]
                persona[name] = new
        persona.update({
            f"{channel}_consent_at": self.stamp.at, f"{channel}_consent_import": self.stamp.import_id,
            f"{channel}_consent_user": self.stamp.user_id, f"{channel}_consent_terms": self.stamp.terms_version,
        })

    def _opted_out_in_file(self, persona: dict, channel: str) -> bool:
        opted_out = self.stamp.opted_out.get(channel) or {}
        return persona["id"] in opted_out.get("ids", ()) or persona.get("created_by_line") in opted_out.get(
            "lines", ())

    def _add_attributes(self, persona: dict, names, outcome: Outcome) -> None:
        added = [name for name in names if name not in persona["attributes"]]
        if added:
            outcome.changes["attributes"] = [sorted(persona["attributes"]), sorted(persona["attributes"] | set(added))]
            persona["attributes"] |= set(added)


def _error(line, column, value, reason) -> Problem:
    return problem(line, column, value, reason, ERROR)


def _warning(line, column, value, reason) -> Problem:
    return problem(line, column, value, reason, WARNING)
