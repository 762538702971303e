"""What reverting one persona puts back: each value the import changed unless something later touched or set
it again, consent never turned back on, consent stamps with the values, points always subtracted."""
from webapp.importer.fields import CHANNELS, FIELDS, STAMPS, opt_fields
from webapp.importer.reasserted import label, why

NEVER_OPT_IN = "opt-outs are never undone by a revert; collect consent again"


def restore(persona: dict, mine: list, later: list, again: dict, before: list, terms: dict,
            keep_keys: bool) -> tuple[dict, list[str]]:
    """Put back what the import changed where nothing later touched it; returns the changes and the refusals.

    mine, later, before: the persona's audit entries of this import, after its first, before its first.
    again: field -> the later import that set its value again. terms: import id -> its terms version.
    """
    first_old, last_new = {}, {}
    for entry in mine:
        for name, (old, new) in entry.changes.items():
            if keep_keys and name in ("email", "phone"):
                continue
            first_old.setdefault(name, old)
            last_new[name] = new
    touched = {name: entry for entry in later for name in entry.changes}
    restored, skipped = {}, []
    for name, old in first_old.items():
        if name == "points":
            # Points are a delta: subtract what the import added, whatever happened since.
            delta = last_new[name] - old
            restored[name] = [persona["points"], persona["points"] - delta]
            persona["points"] -= delta
        elif name == "attributes":
            _attributes(persona, set(last_new[name]) - set(old), touched, again, restored, skipped)
        elif FIELDS.get(name) is None or FIELDS[name].merge != "consent":
            reason = _changed_since(name, persona, last_new, touched) or (name in again and why(name, again[name]))
            if reason:
                skipped.append(reason)
            else:
                restored[name] = [persona[name], old]
                persona[name] = old
    for channel in CHANNELS:
        _consent(channel, persona, first_old, last_new, touched, again, restored, skipped,
                 lambda channel=channel: prior_stamps(before, channel, terms))
    return restored, skipped


def _changed_since(name: str, persona: dict, last_new: dict, touched: dict) -> str | None:
    if name in touched:
        return f"{label(name)} was changed later ({who(touched[name])})"
    if persona.get(name) != last_new[name]:
        return f"{label(name)} no longer has the imported value"
    return None


def _attributes(persona: dict, added: set, touched: dict, again: dict, restored: dict, skipped: list) -> None:
    if "attributes" in touched:
        skipped.append(f"attributes were changed later ({who(touched['attributes'])})")
        return
    kept = {name for name in added if f"attribute:{name}" in again}
    skipped.extend(why(f"attribute:{name}", again[f"attribute:{name}"]) for name in sorted(kept))
    keep = persona["attributes"] - (added - kept)
    if keep != persona["attributes"]:
        restored["attributes"] = [sorted(persona["attributes"]), sorted(keep)]
        persona["attributes"] = keep


def _consent(channel, persona, first_old, last_new, touched, again, restored, skipped, stamps_before) -> None:
    """Restore a channel's opt-in and opt-out together, never opting in, with the stamps they had."""
    names = [name for name in opt_fields(channel) if name in first_old]
    if not names:
        return
    for name in names:
        if reason := _changed_since(name, persona, last_new, touched):
            skipped.append(reason)
            return
    opt_in, opt_out = opt_fields(channel)
    after = {opt_in: persona[opt_in], opt_out: persona[opt_out], **{name: first_old[name] for name in names}}
    if (after[opt_in] and not persona[opt_in]) or (persona[opt_out] and not after[opt_out]):
        skipped.append(f"{CHANNELS[channel]} opt-out kept: {NEVER_OPT_IN}")
        return
    if reasons := [why(name, again[name]) for name in names if name in again]:
        skipped.extend(reasons)
        return
    for name, value in {**after, **stamps_before()}.items():
        # Stamps come back as text from SQLite and from a revert's JSON, as datetimes elsewhere.
        if (persona[name] is None) != (value is None) or str(persona[name]) != str(value):
            restored[name] = [persona[name], value]
            persona[name] = value


def prior_stamps(before: list, channel: str, terms: dict) -> dict:
    """The channel's consent stamps as they were before these entries' last change of its consent (None: never)."""
    names = [f"{channel}_{part}" for part in STAMPS]
    found: dict = {}
    for entry in reversed(before):
        if not any(name in entry.changes for name in opt_fields(channel)) and not any(
                name in entry.changes for name in names):
            continue
        if entry.action == "reverted":
            # A revert records the stamps it changed; the others it left as the entry before it set them.
            for name in names:
                if name in entry.changes and name not in found:
                    found[name] = entry.changes[name][1]
            continue
        stamp = (entry.created_at, entry.import_id, entry.user_id, terms.get(entry.import_id))
        for name, value in zip(names, stamp):
            found.setdefault(name, value)
        break
    return {name: found.get(name) for name in names}


def who(entry) -> str:
    """Which later change touched a value: an import, or a revert's note, or a date."""
    if entry.import_id:
        return f"by import #{entry.import_id}"
    return entry.note or f"on {entry.created_at:%Y-%m-%d}"
