"""Remembered mappings: the target an account confirmed per header, and the columns a new file got from them."""
from webapp.importer.fields import auto_match, normalize_header
from webapp.models import Import, RememberedMapping, utcnow

MAX_KEY = 200  # a header longer than any real one is not worth remembering (and would not fit the index)


def prefill(account_id: int, headers: list[str], samples: dict, upload_id: int | None = None) -> tuple[dict, dict]:
    """The pre-filled mapping of a file, and a note per column a remembered choice changed from the automatic match.

    A note: {"target", "automatic", "import_id", "file_name", "on" (ISO date or None)}. Columns where the memory
    agrees with the automatic match get none: there is nothing to explain or reset.
    """
    memory = {m.header_key: m for m in RememberedMapping.select().where(RememberedMapping.account == account_id)}
    mapping = auto_match(headers, {key: m.target for key, m in memory.items()}, samples)
    automatic = auto_match(headers, None, samples)
    notes = {}
    for header in headers:
        remembered = memory.get(normalize_header(header))
        if remembered is None or mapping[header] == automatic[header] or mapping[header] != remembered.target:
            continue
        # The file's own earlier confirmation (another sheet or header row chosen since) names no other import.
        earlier = remembered.import_id if remembered.import_id != upload_id else None
        notes[header] = {"target": mapping[header], "automatic": automatic[header], "import_id": earlier,
                         "on": remembered.remembered_at.date().isoformat() if earlier and remembered.remembered_at
                         else None}
    names = dict(Import.select(Import.id, Import.file_name).where(
        Import.id.in_({n["import_id"] for n in notes.values() if n["import_id"]})).tuples()) if notes else {}
    for note in notes.values():
        note["file_name"] = names.get(note["import_id"])
    return mapping, notes


def remember(upload: Import, mapping: dict[str, str]) -> None:
    """Remember the confirmed mapping for the account, header by header, with the import it was confirmed for."""
    now = utcnow()
    rows = [{"account": upload.account_id, "header_key": normalize_header(header), "target": target,
             "import_id": upload.id, "remembered_at": now}
            for header, target in mapping.items() if len(normalize_header(header)) <= MAX_KEY]
    if rows:
        RememberedMapping.insert_many(rows).on_conflict(
            conflict_target=[RememberedMapping.account, RememberedMapping.header_key],
            preserve=[RememberedMapping.target, RememberedMapping.import_id, RememberedMapping.remembered_at],
        ).execute()


def automatic(upload: Import, header: str) -> str:
    """The target the automatic match (no remembered choices) gives this column of the file."""
    note = (upload.prefilled or {}).get(header)
    return note["automatic"] if note else auto_match(upload.headers, None, upload.samples)[header]
