"""Undo an import from its audit entries, restoring only what no later change touched."""
from collections import defaultdict
from datetime import timedelta
from itertools import islice

from peewee import Tuple

from webapp.db import write_transaction
from webapp.importer import bulk
from webapp.importer.cascade import delete_audiences, delete_personas
from webapp.importer.errors import FileRefused
from webapp.importer.merge import CONSENT_CHANNELS, PersonaIndex
from webapp.importer.personas_io import load_by_ids, write_personas
from webapp.importer.states import REVERTED, REVERTING, move
from webapp.models import Audience, AuditEntry, Import, Persona, PersonaAttribute, utcnow

PERSONAS_PER_CHUNK = 1000
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
    persona_ids = (AuditEntry.select(AuditEntry.persona_id).where(AuditEntry.import_id == import_id)
                   .distinct().order_by(AuditEntry.persona_id).tuples())
    ids = iter([pid for (pid,) in persona_ids])
    while chunk := list(islice(ids, PERSONAS_PER_CHUNK)):
        with write_transaction():
            _revert_chunk(upload, upload.reverted_by, chunk, result)
            Import.update(reverted_at=utcnow(), revert_result=result).where(
                (Import.id == import_id) & (Import.status == REVERTING)).execute()
    with write_transaction():
        delete_audiences(Audience.select(Audience.id).where(Audience.source_import == import_id))
        move(import_id, "reverted", reverted_at=utcnow(), audience_id=None, revert_result=result)
    return result


def _revert_chunk(upload: Import, user_id: int, persona_ids: list[int], result: dict) -> None:
    entries = defaultdict(list)
    for entry in (AuditEntry.select().where(AuditEntry.persona_id.in_(persona_ids))
                  .order_by(AuditEntry.id)):
        entries[entry.persona_id].append(entry)
    index = PersonaIndex()
    load_by_ids(index, upload.account_id, persona_ids)
    now, changed, deleted, audit, removed_attributes = utcnow(), [], [], [], []
    notes = {_note(upload.id), _note(upload.id, removed=True)}
    for persona_id in persona_ids:
        if any(e.action == "reverted" and e.note in notes for e in entries[persona_id]):
            continue  # reverted already by an earlier run of this revert that stopped mid-way
        mine = [e for e in entries[persona_id] if e.import_id == upload.id]
        later = [e for e in entries[persona_id] if e.import_id != upload.id and e.id > mine[0].id]
        persona = index.by_id.get(persona_id)
        label = _key(persona) if persona else _label(mine)
        if persona is None:
            result["not_reverted"].append({"persona": label, "reason": "this customer no longer exists"})
            continue
        if mine[0].action == "created" and not later:
            deleted.append(persona_id)
            audit.append(_entry(upload, persona, user_id, now, {}, _note(upload.id, removed=True)))
            result["reverted"] += 1
            continue
        if mine[0].action == "created":
            result["not_reverted"].append({"persona": label, "reason": (
                f"created by this import and changed since ({_who(later[-1])}): the customer was kept, "
                "with what this import set undone where nothing changed it since")})
        # A created persona that is kept keeps its email and phone: they are what identify it now.
        restored, skipped = _restore(persona, mine, later, keep_keys=mine[0].action == "created")
        result["not_reverted"].extend({"persona": label, "reason": reason} for reason in skipped)
        if restored:
            before, after = restored.get("attributes", ([], []))
            removed_attributes += [(persona_id, name) for name in set(before) - set(after)]
            _stamp_consent(persona, restored, upload.id, user_id, now)
            changed.append(persona)
            audit.append(_entry(upload, persona, user_id, now, restored, _note(upload.id)))
            result["reverted"] += 1
    _free_conflicting_keys(upload.account_id, changed, result)
    write_personas(upload.account_id, changed, [], now)
    if removed_attributes:
        PersonaAttribute.delete().where(
            Tuple(PersonaAttribute.persona, PersonaAttribute.name).in_(removed_attributes)).execute()
    delete_personas(deleted)
    bulk.insert_rows(AuditEntry._meta.table_name,
                     ["account_id", "persona_id", "import_id", "row", "user_id", "created_at", "action",
                      "changes", "note"], audit)


def _restore(persona: dict, mine: list, later: list, keep_keys: bool) -> tuple[dict, list[str]]:
    """Put back what the import changed where nothing later touched it; returns changes and refusals."""
    first_old, last_new = {}, {}
    for entry in mine:
        for name, (old, new) in entry.changes.items():
            if keep_keys and name in ("email", "phone"):
                continue
            first_old.setdefault(name, old)
            last_new[name] = new
    touched_later = {name: entry for entry in later for name in entry.changes}
    restored, skipped = {}, []
    for name, old in first_old.items():
        if name == "points":
            # Points are a delta: subtract what the import added, whatever happened since.
            delta = last_new[name] - old
            restored[name] = [persona["points"], persona["points"] - delta]
            persona["points"] -= delta
        elif name == "attributes":
            added = set(last_new[name]) - set(old)
            keep = persona["attributes"] - added if name not in touched_later else persona["attributes"]
            if name in touched_later:
                skipped.append(f"attributes were changed later ({_who(touched_later[name])})")
            elif keep != persona["attributes"]:
                restored[name] = [sorted(persona["attributes"]), sorted(keep)]
                persona["attributes"] = keep
        elif name in touched_later:
            skipped.append(f"{name} was changed later ({_who(touched_later[name])})")
        elif persona.get(name) != last_new[name]:
            skipped.append(f"{name} no longer has the imported value")
        else:
            restored[name] = [persona[name], old]
            persona[name] = old
    return restored, skipped


def _stamp_consent(persona: dict, restored: dict, import_id: int, user_id: int, now) -> None:
    for channel in CONSENT_CHANNELS:
        if f"{channel}_opt_in" in restored or f"{channel}_opt_out" in restored:
            persona.update({f"{channel}_consent_at": now, f"{channel}_consent_import": import_id,
                            f"{channel}_consent_user": user_id})


def _free_conflicting_keys(account_id: int, changed: list[dict], result: dict) -> None:
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
                result["not_reverted"].append({"persona": _key(persona), "reason": (
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


def _who(entry) -> str:
    if entry.import_id:
        return f"by import #{entry.import_id}"
    return entry.note or f"on {entry.created_at:%Y-%m-%d}"
