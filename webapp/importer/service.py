"""One function per use case of an import, for the wizard, the CLI and the tests alike.

Each makes one state change in one transaction (states.py), then, where the use case starts background
work, hands the import to `enqueue(kind, import_id) -> bool` (kind "describe", "validate", "import" or "revert"; False
when the queue is unreachable: the import then waits for the reaper). The caller passes that function in:
the app its queue's, the CLI one that reports a queue that is down, a test one that runs the job itself.
So the core never imports the worker, and nothing here imports Flask.
"""
from collections.abc import Callable

from webapp.config import Limits
from webapp.db import write_transaction
from webapp.importer import flow
from webapp.importer.errors import FileRefused
from webapp.importer.fields import FIELDS
from webapp.importer.revert import claim_revert
from webapp.importer.values import ParseContext, parse_email, parse_phone
from webapp.models import Account, AuditEntry, Import, Persona, User, utcnow

Enqueue = Callable[[str, int], bool]


def start_upload(account: Account, user: User, file_name: str, stream, limits: Limits,
                 enqueue: Enqueue | None = None) -> Import:
    """A new import of an uploaded file: stored, headers read, a small file counted (FileRefused leaves nothing).

    What the request leaves (a large workbook's reading, a large file's count) goes to the "describe" job.
    With no enqueue (the CLI, whose limits read any workbook now) only a large file's count is left: the
    dry run makes it, and refuses a file over the row limit there.
    """
    upload = flow.start_upload(account, user, file_name, stream, limits)
    _finish_later(upload, enqueue)
    return upload


def redescribe(upload: Import, limits: Limits, enqueue: Enqueue | None = None, *, sheet: str | None = None,
               header_line: int | None = None) -> Import:
    """Read the file again with another sheet or header line, back to draft (states.Changed, FileRefused)."""
    flow.redescribe(upload, limits, sheet=sheet, header_line=header_line)
    flow.count_rows_if_cheap(upload, limits)
    _finish_later(upload, enqueue)
    return upload


def _finish_later(upload: Import, enqueue: Enqueue | None) -> None:
    if enqueue is not None:
        flow.finish_later(upload, lambda later: enqueue("describe", later.id))


def confirm_mapping(upload: Import, mapping: dict[str, str], enqueue: Enqueue) -> list[str]:
    """Save and remember the mapping and queue the dry run, in one transaction; returns the mapping's errors."""
    errors = flow.set_mapping(upload, mapping, validate=True)
    if not errors:
        enqueue("validate", upload.id)
    return errors


def submit(upload: Import, user: User, ip: str | None, terms_version: str, opt_in_sms: bool, opt_in_email: bool,
           enqueue: Enqueue) -> bool:
    """Accept the terms and queue the import (states.Changed on a second click); False when the queue is down."""
    flow.submit(upload, user, ip, terms_version, opt_in_sms, opt_in_email)
    return enqueue("import", upload.id)


def discard(upload: Import) -> None:
    """Remove an import that was never submitted, with its file (the Uploaded step's Remove, a draft's discard)."""
    flow.discard(upload)


def delete_file(upload: Import) -> None:
    """Delete a finished import's file, kept rows and audience; persona changes stay (FileRefused)."""
    flow.delete_file(upload)


def resume(upload: Import, enqueue: Enqueue) -> bool:
    """Queue a halted or failed submitted import again from its checkpoint (FileRefused when it cannot be)."""
    flow.resume(upload)
    return enqueue("import", upload.id)


def request_revert(import_id: int, account_id: int, user_id: int, enqueue: Enqueue) -> bool:
    """Claim a finished import for reverting (one move to reverting) and queue the revert (FileRefused)."""
    claim_revert(import_id, account_id, user_id)
    return enqueue("revert", import_id)


def archive(account: Account, *, email: str | None = None, phone: str | None = None) -> dict:
    """Archive the persona with this email or phone (adding it archived when unknown): imports reject its rows.

    Returns {"persona_id", the key's field: its normalized value, "created"}; FileRefused for a bad key.
    """
    if bool(email) == bool(phone):
        raise FileRefused("Give exactly one of an email or a phone.")
    field = "email" if email else "phone"
    key, reason = (parse_email if email else parse_phone)(email or phone, ParseContext(region=account.phone_region))
    if reason:
        raise FileRefused(f"{FIELDS[field].label} {email or phone!r}: {reason}.")
    with write_transaction():
        column = getattr(Persona, field)
        persona = Persona.get_or_none((Persona.account == account) & (column == key))
        created = persona is None
        if created:
            # An unknown customer is added archived: the block list holds people not yet imported too.
            persona = Persona.create(account=account, **{field: key}, archived=True)
        elif not persona.archived:
            # updated_at is the persona's version on SQLite: an import validated before must see the change.
            persona.archived, persona.updated_at = True, utcnow()
            persona.save()
        AuditEntry.create(account=account, persona_id=persona.id, action="archived",
                          changes={"archived": [False if not created else None, True]})
    return {"persona_id": persona.id, field: key, "created": created}
