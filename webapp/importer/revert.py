"""Undo an import from its audit entries, restoring only what no later change touched."""
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from peewee import Tuple

from webapp.db import write_transaction
from webapp.importer import bulk
from webapp.importer.cascade import delete_audiences, delete_personas
from webapp.importer.errors import FileRefused
from webapp.importer.fields import FIELDS, opt_fields
from webapp.importer.merge import CONSENT_CHANNELS, PersonaIndex
from webapp.importer.personas_io import load_by_ids, write_personas
from webapp.importer.reasserted import Later, label
from webapp.importer.revert_restore import restore, who
from webapp.importer.states import REVERTED, REVERTING, move
from webapp.models import Audience, AuditEntry, Import, Persona, PersonaAttribute, utcnow

PERSONAS_PER_CHUNK = 1000
PREVIEW_PERSONAS = 5000
# A revert that has not finished a chunk for this long died: another may resume it.
REVERT_STALE = timedelta(minutes=10)


def revert(import_id: int, account_id: int, user_id: int) -> dict:
    """Revert an import now; returns {"reverted": N, "not_reverted": [{"persona", "reason"}]}."""
    claim_revert(import_id, account_id, user_id)
    return run_revert(import_id)


def claim_revert(import_id: int, account_id: int, user_id: int) -> None:
    """Mark the import as reverting, as one move from a finished state, so two reverts never subtract points twice."""
    now = utcnow()
    # Or taking over a revert whose run died (it stamps reverted_at at each chunk).
    not_running = (Import.status != REVERTING) | (Import.reverted_at < now - REVERT_STALE)
    if move(import_id, "revert", where=(Import.account == account_id) & not_running, reverted_at=now,
            reverted_by=user_id):
        return
    upload = Import.get_or_none((Import.id == import_id) & (Import.account == account_id))
    if upload is None:
        raise FileRefused(f"There is no import #{import_id} in this account.")
    if upload.status == REVERTED:
        raise FileRefused(f"Import #{import_id} was already reverted.")
    if upload.status == REVERTING:
        raise FileRefused(f"Import #{import_id} is being reverted right now.")
    raise FileRefused(f"Import #{import_id} is {upload.status}; only finished imports can be reverted.")


def run_revert(import_id: int) -> dict:
    """Revert a claimed import chunk by chunk (resuming where a stopped run left off); returns the result."""
    upload = Import.get_by_id(import_id)
    if upload.status != REVERTING:
        return upload.revert_result or {}
    result = upload.revert_result or {"reverted": 0, "not_reverted": []}
    later = Later(upload)
    for chunk in _chunks(import_id):
        with write_transaction():
            plan = _plan(upload, upload.reverted_by, chunk, later)
            _write(upload, plan)
            result["reverted"] += plan.reverted
            result["not_reverted"] += plan.not_reverted
            Import.update(reverted_at=utcnow(), revert_result=result).where(
                (Import.id == import_id) & (Import.status == REVERTING)).execute()
    with write_transaction():
        delete_audiences(Audience.select(Audience.id).where(Audience.source_import == import_id))
        move(import_id, "reverted", reverted_at=utcnow(), audience_id=None, revert_result=result)
    return result


def preview(upload: Import, sample: int = 10, limit: int | None = None) -> dict:
    """What reverting would do now, computed without changing anything: counts and a sample of what stays.

    It looks at the first `limit` personas the import changed ("covered" of "personas"): a page must answer
    in seconds, and a million-persona plan took minutes. The revert itself counts them all.
    """
    changed = _persona_ids(upload.id)
    looked = changed[:limit or PREVIEW_PERSONAS]
    totals = {"remove": 0, "restore": 0, "fields": Counter(), "points": 0, "points_personas": 0, "consent": 0,
              "not_reverted": 0, "sample": [], "covered": len(looked), "personas": len(changed)}
    later = Later(upload, only=looked)
    for start in range(0, len(looked), PERSONAS_PER_CHUNK):
        chunk = looked[start:start + PERSONAS_PER_CHUNK]
        plan = _plan(upload, None, chunk, later)
        totals["remove"] += len(plan.deleted)
        totals["restore"] += len(plan.changed)
        for changes in plan.restored:
            totals["fields"].update(label(name) for name in changes
                                    if (name in FIELDS and FIELDS[name].merge == "replace") or name == "attributes")
            if "points" in changes:
                totals["points"] += changes["points"][0] - changes["points"][1]
                totals["points_personas"] += 1
            totals["consent"] += sum(opt_fields(channel)[0] in changes or opt_fields(channel)[1] in changes
                                     for channel in CONSENT_CHANNELS)
        totals["not_reverted"] += len(plan.not_reverted)
        totals["sample"] += plan.not_reverted[:sample - len(totals["sample"])]
    totals["fields"] = dict(totals["fields"].most_common())
    return totals


def _persona_ids(import_id: int) -> list[int]:
    """The ids of the personas the import changed, in order."""
    return [pid for (pid,) in AuditEntry.select(AuditEntry.persona_id).where(AuditEntry.import_id == import_id)
            .distinct().order_by(AuditEntry.persona_id).tuples()]


def _chunks(import_id: int):
    """The ids of the personas the import changed, a chunk at a time."""
    ids = iter(_persona_ids(import_id))
    while chunk := list(islice(ids, PERSONAS_PER_CHUNK)):
        yield chunk


@dataclass
class Plan:
    """What reverting a chunk of personas does: computed first (the preview stops there), then written."""

    changed: list = field(default_factory=list)
    restored: list = field(default_factory=list)
    deleted: list = field(default_factory=list)
    audit: list = field(default_factory=list)
    removed_attributes: list = field(default_factory=list)
    not_reverted: list = field(default_factory=list)
    reverted: int = 0


def _plan(upload: Import, user_id: int | None, persona_ids: list[int], later: Later) -> Plan:
    entries = defaultdict(list)
    for entry in (AuditEntry.select().where(AuditEntry.persona_id.in_(persona_ids))
                  .order_by(AuditEntry.id)):
        entries[entry.persona_id].append(entry)
    index = PersonaIndex()
    load_by_ids(index, upload.account_id, persona_ids)
    again = later.reasserted(index.by_id)
    terms = dict(Import.select(Import.id, Import.terms_version).where(Import.id.in_(
        list({e.import_id for found in entries.values() for e in found if e.import_id}))).tuples())
    now, plan = utcnow(), Plan()
    notes = {_note(upload.id), _note(upload.id, removed=True)}
    for persona_id in persona_ids:
        if any(e.action == "reverted" and e.note in notes for e in entries[persona_id]):
            continue  # reverted already by an earlier run of this revert that stopped mid-way
        mine = [e for e in entries[persona_id] if e.import_id == upload.id]
        later_entries = [e for e in entries[persona_id] if e.import_id != upload.id and e.id > mine[0].id]
        persona = index.by_id.get(persona_id)
        label_ = _key(persona) if persona else _label(mine)
        if persona is None:
            plan.not_reverted.append({"persona": label_, "reason": "this customer no longer exists"})
            continue
        if mine[0].action == "created" and not later_entries and not again.get(persona_id):
            plan.deleted.append(persona_id)
            plan.audit.append(_entry(upload, persona, user_id, now, {}, _note(upload.id, removed=True)))
            plan.reverted += 1
            continue
        if mine[0].action == "created":
            since = (f"changed since ({who(later_entries[-1])})" if later_entries else
                     f"reached since by import #{min(i.id for i in again[persona_id].values())}")
            plan.not_reverted.append({"persona": label_, "reason": (
                f"created by this import and {since}: the customer was kept, "
                "with what this import set undone where nothing changed it since")})
        before = [e for e in entries[persona_id] if e.id < mine[0].id]
        # A created persona that is kept keeps its email and phone: they are what identify it now.
        restored, skipped = restore(persona, mine, later_entries, again.get(persona_id, {}), before, terms,
                                    keep_keys=mine[0].action == "created")
        plan.not_reverted.extend({"persona": label_, "reason": reason} for reason in skipped)
        if restored:
            old, new = restored.get("attributes", ([], []))
            plan.removed_attributes += [(persona_id, name) for name in set(old) - set(new)]
            plan.changed.append(persona)
            plan.restored.append(restored)
            plan.audit.append(_entry(upload, persona, user_id, now, restored, _note(upload.id)))
            plan.reverted += 1
    _free_conflicting_keys(upload.account_id, plan.changed, plan.not_reverted)
    return plan


def _write(upload: Import, plan: Plan) -> None:
    now = utcnow()
    write_personas(upload.account_id, plan.changed, [], now)
    if plan.removed_attributes:
        PersonaAttribute.delete().where(
            Tuple(PersonaAttribute.persona, PersonaAttribute.name).in_(plan.removed_attributes)).execute()
    delete_personas(plan.deleted)
    bulk.insert_rows(AuditEntry._meta.table_name,
                     ["account_id", "persona_id", "import_id", "row", "user_id", "created_at", "action",
                      "changes", "note"], plan.audit)


def _free_conflicting_keys(account_id: int, changed: list[dict], not_reverted: list) -> None:
    """Keep a key the import replaced when another customer has taken it since."""
    for name in ("email", "phone"):
        wanted = {p[name]: p for p in changed if p[name] and p[name] != p[f"loaded_{name}"]}
        if not wanted:
            continue
        column = getattr(Persona, name)
        for taken, holder in (Persona.select(column, Persona.id)
                              .where((Persona.account == account_id) & column.in_(list(wanted))).tuples()):
            persona = wanted[taken]
            if holder != persona["id"]:
                persona[name] = persona[f"loaded_{name}"]
                not_reverted.append({"persona": _key(persona), "reason": (
                    f"{name} {taken} now belongs to customer #{holder}; kept {persona[name]}")})


def _entry(upload: Import, persona: dict, user_id: int, now, changes: dict, note: str) -> tuple:
    return (upload.account_id, persona["id"], None, None, user_id, now, "reverted",
            bulk.to_json(changes), note)


def _note(import_id: int, removed: bool = False) -> str:
    """The audit note of a revert's change: also how a resumed revert knows what is done."""
    return f"Revert of import #{import_id}" + (": removed, created by it" if removed else "")


def _label(entries: list) -> str:
    for entry in entries:
        for name in ("email", "phone"):
            if name in entry.changes and entry.changes[name][1]:
                return entry.changes[name][1]
    return f"customer #{entries[0].persona_id}"


def _key(persona: dict) -> str:
    return persona.get("loaded_email") or persona.get("loaded_phone") or f"customer #{persona['id']}"
