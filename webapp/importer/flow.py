"""The steps of one import, shared by the wizard, the CLI and the jobs: upload, map, accept, submit."""
from webapp.db import write_transaction
from webapp.importer.engine import import_table
from webapp.importer.errors import FileRefused
from webapp.importer.fields import auto_match, normalize_header, validate_mapping
from webapp.importer.storage import store_file
from webapp.models import Import, ImportProblem, RememberedMapping, StagedRow, utcnow


class Limits:
    """The size limits uploads are held to."""

    def __init__(self, max_bytes: int, max_rows: int):
        self.max_bytes, self.max_rows = max_bytes, max_rows


def start_upload(account, user, file_name: str, stream, limits: Limits) -> Import:
    """Store an uploaded file as a new import and read its headers; FileRefused leaves nothing behind."""
    with write_transaction():
        upload = Import.create(account=account, user=user, file_name=file_name or "upload")
        try:
            store_file(upload, stream, limits.max_bytes)
            describe(upload, limits)
        except FileRefused:
            upload.delete_instance(recursive=True)
            raise
    return upload


def describe(upload: Import, limits: Limits, sheet: str | None = None, header_line: int | None = None) -> Import:
    """(Re)read the file's sheets, header row and samples, and pre-fill the mapping."""
    upload.sheet, upload.header_line = sheet, header_line
    try:
        with import_table(upload, limits.max_rows, limits.max_bytes) as table:
            upload.kind, upload.sheet_names = table.kind, table.sheet_names
            upload.sheet, upload.header_line, upload.headers = table.sheet, table.header_line, table.headers
            upload.samples = table.sample(3)
    except FileRefused as refused:
        if "several sheets" not in refused.message or sheet is not None:
            raise
        # A multi-sheet workbook waits for the user's choice instead of being refused outright.
        upload.file_error = refused.message
        upload.status = "draft"
        upload.save()
        return upload
    upload.file_error = None
    upload.mapping = auto_match(upload.headers, remembered_mappings(upload.account_id), upload.samples)
    _unstage(upload)
    upload.save()
    return upload


def remembered_mappings(account_id: int) -> dict:
    """The targets this account confirmed before, by normalized header."""
    query = RememberedMapping.select().where(RememberedMapping.account == account_id)
    return {m.header_key: m.target for m in query}


def set_mapping(upload: Import, mapping: dict[str, str]) -> list[str]:
    """Check and save the user's mapping, remembering it for the account; returns the errors."""
    errors = validate_mapping(mapping)
    if errors:
        return errors
    with write_transaction():
        upload.mapping = mapping
        _unstage(upload)
        upload.save()
        rows = [{"account": upload.account_id, "header_key": normalize_header(h), "target": t}
                for h, t in mapping.items()]
        RememberedMapping.insert_many(rows).on_conflict(
            conflict_target=[RememberedMapping.account, RememberedMapping.header_key],
            preserve=[RememberedMapping.target]).execute()
    return []


def _unstage(upload: Import) -> None:
    """Forget an earlier validation: the rows must be parsed again with the new mapping."""
    if upload.staged or upload.status in ("validated", "validating"):
        StagedRow.delete().where(StagedRow.upload == upload).execute()
        ImportProblem.delete().where(ImportProblem.upload == upload).execute()
    upload.staged, upload.review, upload.status = False, {}, "draft"


def accept_terms(upload: Import, user, ip: str | None, terms_version: str, opt_in_sms: bool, opt_in_email: bool):
    """Record the terms acceptance (user, time, IP, version) and the opt-in-all choices."""
    upload.terms_version, upload.terms_accepted_at = terms_version, utcnow()
    upload.terms_accepted_by, upload.terms_ip = user, ip
    upload.options = {"opt_in_sms": bool(opt_in_sms), "opt_in_email": bool(opt_in_email)}
    upload.save()


def mark_queued(upload: Import, status: str) -> None:
    """Put the import (or its validation) in the queue's hands."""
    if status == "queued" and not (upload.terms_accepted_at and upload.staged):
        raise FileRefused("Accept the consent terms on the Review step before importing.")
    upload.status, upload.queued_at, upload.error_message = status, utcnow(), None
    upload.save()
