"""The oracle: SPEC sections 4-5 applied one row at a time to plain dicts, written without merge.py.

Input: the account's personas before the import (dicts in the export's shape plus "id"), the
parsed rows of the file (what values.RowParser returns: line, fields, attributes, problems,
error) and the wizard's "opt in all" boxes. Output: the personas after the import (export shape,
ordered like the export: existing by id, then created ones in file order), the counts, the
rejected line numbers and, per line, what the row did.
"""
import copy

FIELDS = ("email", "phone", "first_name", "last_name", "birthday", "gender", "street", "city", "state",
          "postal_code", "external_id", "loyalty_member", "loyalty_signup_date", "customer_type")
EXPORT_KEYS = FIELDS[:13] + ("points", "sms_opt_in", "sms_opt_out", "email_opt_in", "email_opt_out",
                             "customer_type", "attributes", "archived")
CHANNELS = ("sms", "email")


def new_persona(persona_id) -> dict:
    persona = {key: None for key in FIELDS}
    persona.update(id=persona_id, points=0, sms_opt_in=False, sms_opt_out=False, email_opt_in=False,
                   email_opt_out=False, attributes=set(), archived=False)
    return persona


def find(personas: dict, key: str, value):
    """The persona (of this account) whose key equals value, or None."""
    if value is None:
        return None
    for persona in personas.values():
        if persona[key] == value:
            return persona
    return None


def match(personas: dict, row: dict):
    """("rejected", [matched personas]) | ("created", None) | ("updated", persona)."""
    by_email = find(personas, "email", row["fields"].get("email"))
    by_phone = find(personas, "phone", row["fields"].get("phone"))
    if by_email and by_phone and by_email is not by_phone:
        return "ambiguous", [by_email, by_phone]
    persona = by_email or by_phone
    if persona is None:
        return "new", None
    if persona["archived"]:
        return "archived", [persona]
    return "found", persona


def run_rows(personas: dict, rows: list, boxes: dict, no_bulk: dict, stamp_log: list):  # noqa: C901 - the rules, spelled out
    """Apply rows in file order; returns per-row (line, action, persona id, changes, merge warnings)."""
    outcomes = []
    new_ids = iter(range(1, 10**9))
    for row in rows:
        line = row["line"]
        if row["error"]:
            outcomes.append((line, "rejected", None, {}, 0))
            continue
        kind, found = match(personas, row)
        if kind in ("ambiguous", "archived"):
            outcomes.append((line, "rejected", [p["id"] for p in found], {}, 0))
            continue
        if kind == "new":
            persona = new_persona(("new", next(new_ids)))
            personas[persona["id"]] = persona
            action = "created"
        else:
            persona, action = found, "updated"
        values, changes, warnings = row["fields"], {}, 0
        for name in FIELDS:
            if values.get(name) is not None and values[name] != persona[name]:
                changes[name] = [persona[name], values[name]]
                persona[name] = values[name]
        if values.get("points"):
            old = persona["points"]
            persona["points"] = old + values["points"]
            changes["points"] = [old, persona["points"]]
            if persona["points"] < 0:
                warnings += 1
        for channel in CHANNELS:
            opt_in, opt_out = f"{channel}_opt_in", f"{channel}_opt_out"
            if values.get(opt_out) is True:
                wanted = (False, True)
            elif values.get(opt_in) is True:
                wanted = (True, False)
                if persona[opt_out]:
                    warnings += 1  # the row lifts a recorded opt-out
            elif boxes.get(channel) and not persona[opt_out] and persona["id"] not in no_bulk[channel]:
                wanted = (True, False)
            else:
                continue
            if (persona[opt_in], persona[opt_out]) != wanted:
                for name, new in zip((opt_in, opt_out), wanted):
                    if persona[name] != new:
                        changes[name] = [persona[name], new]
                        persona[name] = new
                stamp_log.append((persona["id"], channel, line))
        added = set(row["attributes"]) - persona["attributes"]
        if added:
            changes["attributes"] = [sorted(persona["attributes"]), sorted(persona["attributes"] | added)]
            persona["attributes"] = persona["attributes"] | added
        if action == "updated" and not changes:
            action = "unchanged"
        outcomes.append((line, action, persona["id"], changes, warnings))
    return outcomes


def opted_out_in_file(before: dict, rows: list) -> dict:
    """Per channel, the personas an explicit opt-out row of the file reaches (matched or created)."""
    personas = copy.deepcopy(before)
    outcomes = run_rows(personas, rows, {}, {"sms": set(), "email": set()}, [])
    result = {channel: set() for channel in CHANNELS}
    for row, (_, _, reached, _, _) in zip(rows, outcomes):
        for channel in CHANNELS:
            if row["fields"].get(f"{channel}_opt_out") is True and reached is not None:
                result[channel].update(reached if isinstance(reached, list) else [reached])
    return result


def reference_import(existing: list[dict], rows: list[dict], boxes: dict | None = None) -> dict:
    """Run the file through the rules; returns personas (export shape), counts, rejected, outcomes."""
    boxes = boxes or {}
    before = {}
    for persona in sorted(existing, key=lambda p: p["id"]):
        before[persona["id"]] = {**new_persona(persona["id"]), **copy.deepcopy(persona),
                                 "attributes": set(persona.get("attributes") or ())}
    # Which personas have an opt-out row anywhere in the file (even a later one): matching does not
    # depend on consent, so a first pass without the boxes finds each row's persona.
    no_bulk = opted_out_in_file(before, rows)
    personas = copy.deepcopy(before)
    stamps = []
    outcomes = run_rows(personas, rows, boxes, no_bulk, stamps)
    counts = {key: 0 for key in ("created", "updated", "unchanged", "rejected", "warnings")}
    for row, (_, action, _, _, merge_warnings) in zip(rows, outcomes):
        counts[action] += 1
        counts["warnings"] += merge_warnings + sum(1 for p in row["problems"] if p["severity"] == "warning")
    exported = [{**{key: p[key] for key in EXPORT_KEYS}, "attributes": sorted(p["attributes"])}
                for p in personas.values()]
    return {
        "personas": exported,
        "counts": counts,
        "rejected": {line for line, action, *_ in outcomes if action == "rejected"},
        "outcomes": outcomes,
        "stamps": stamps,
    }
