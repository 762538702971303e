"""The CLI contract other tools drive the product through: import, export, revert, archive, worker."""
import json
import os
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.config import upload_limits
from webapp.importer import flow, same_file, service
from webapp.importer.errors import FileRefused
from webapp.importer.export import Selection, export_personas
from webapp.importer.export_files import FORMATS, export_stream
from webapp.importer.header_row import NO_HEADER
from webapp.importer.problems import Problem, of_record
from webapp.importer.revert import run_revert
from webapp.importer.states import Status
from webapp.models import Account, Audience, AudienceMember, Import, ImportProblem, Membership, Persona, User

POLL_SECONDS = 0.2


def _print(payload) -> None:
    click.echo(json.dumps(payload, default=str))


def _refuse(message: str):
    _print({"status": "refused", "error": message})
    sys.exit(2)


def _owner(account_name: str, user_email: str) -> tuple[Account, User]:
    account = Account.get_or_none(Account.name == account_name)
    if account is None:
        _refuse(f"There is no account named {account_name!r}.")
    user = User.get_or_none(User.email == user_email.strip().lower())
    membership = user and Membership.get_or_none(Membership.user == user, Membership.account == account)
    if not membership or membership.role != Membership.OWNER:
        _refuse(f"{user_email} is not an owner of {account_name}; only owners may import and revert.")
    return account, user


def _limits() -> flow.Limits:
    limits = upload_limits(current_app.config)
    # No request to keep short: the command reads every workbook itself, whatever its size.
    return flow.Limits(limits.max_bytes, limits.max_rows, read_now_bytes=2 ** 62)


def _enqueue(kind: str, import_id: int) -> bool:
    """Start job kind for an import through the app's enqueue function; False when the queue is unreachable."""
    return current_app.extensions["enqueue"](kind, import_id, current_app.config["REDIS_URL"], _limits())


def _enqueue_or_exit(kind: str, import_id: int) -> bool:
    """The enqueue function the CLI hands the services: a queue that is down ends the command, saying so."""
    if not _enqueue(kind, import_id):
        upload = Import.get_by_id(import_id)
        _print({"import_id": import_id, "status": upload.status, "message": upload.error_message})
        sys.exit(1)
    return True


def _wait(upload: Import, done: tuple[Status, ...]) -> Import:
    """The import once its row says its job ended (a status in done)."""
    while (upload := Import.get_by_id(upload.id)).status not in done:
        time.sleep(POLL_SECONDS)
    return upload


def _run_job(kind: str, upload: Import, done: tuple[Status, ...]) -> Import:
    """Start a job for an import already in its queued state, and wait for the row to say it ended."""
    _enqueue_or_exit(kind, upload.id)
    return _wait(upload, done)


def _apply_overrides(upload: Import, overrides: tuple[str, ...]) -> dict:
    mapping = dict(upload.mapping)
    for override in overrides:
        header, sep, target = override.rpartition("=")
        if not sep or not header:
            _refuse(f"--map takes 'Header=field', got {override!r}.")
        if header not in mapping:
            _refuse(f"--map names a column the file does not have: {header!r}. Its columns: {', '.join(upload.headers)}.")
        mapping[header] = target.strip()
    return mapping


def _display_name(path: str) -> str:
    """The file's name as text: bytes that are not UTF-8 (an old filesystem's name) become U+FFFD."""
    return os.path.basename(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _problems(import_id: int, sources: tuple[str, ...]) -> list[Problem]:
    query = (ImportProblem.select().where((ImportProblem.upload == import_id) & ImportProblem.source.in_(sources))
             .order_by(ImportProblem.line, ImportProblem.id))
    return [of_record(p) for p in query]


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--account", "account_name", required=True)
@click.option("--user", "user_email", required=True)
@click.option("--accept-terms", is_flag=True, help="Accept the consent terms (required unless --dry-run).")
@click.option("--sheet", default=None, help="The sheet to import from a workbook with several.")
@click.option("--header-line", type=click.IntRange(min=1), default=None,
              help="The line of the header row, where no row looks like one.")
@click.option("--map", "overrides", multiple=True, help="'Header=field' (or ignore, attribute:NAME); repeatable.")
@click.option("--opt-in-sms", is_flag=True, help="Opt in every persona of the file to SMS.")
@click.option("--opt-in-email", is_flag=True, help="Opt in every persona of the file to email.")
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing to personas.")
@with_appcontext
def import_command(file, account_name, user_email, accept_terms, sheet, header_line, overrides, opt_in_sms,
                   opt_in_email, dry_run):
    """Import a CSV/XLSX/XLS file of personas, wait for the end and print the result as JSON."""
    account, user = _owner(account_name, user_email)
    if not accept_terms and not dry_run:
        _refuse("The consent terms were not accepted: pass --accept-terms.")
    try:
        with open(file, "rb") as stream:
            upload = service.start_upload(account, user, _display_name(file), stream, _limits())
        if sheet is not None or header_line is not None:
            service.redescribe(upload, _limits(), sheet=sheet, header_line=header_line)
        if upload.file_error:
            hint = " Choose it with --header-line N." if upload.file_error == NO_HEADER else ""
            raise FileRefused(upload.file_error + hint)
        errors = service.confirm_mapping(upload, _apply_overrides(upload, overrides), _enqueue_or_exit)
        if errors:
            raise FileRefused(" ".join(errors))
    except FileRefused as refused:
        _refuse(refused.message)
    upload = _wait(upload, (Status.VALIDATED, Status.FAILED))
    earlier = same_file.earlier_import(upload)
    duplicate = earlier.id if earlier else None
    if upload.status == Status.FAILED:
        _refuse(upload.error_message)
    if dry_run:
        # The counts for the opt-in-all flags given, as the Review step shows them for its boxes.
        review = flow.review_counts(upload, opt_in_sms, opt_in_email)
        _print({"import_id": upload.id, "status": "dry_run", **review, "audience": None, "audience_members": 0,
                "duplicate_of": duplicate, "problems": _problems(upload.id, ("parse", "review"))})
        return
    service.submit(upload, user, None, current_app.config["TERMS_VERSION"], opt_in_sms, opt_in_email,
                   _enqueue_or_exit)
    upload = _wait(upload, (Status.COMPLETED, Status.FAILED))
    if upload.status == Status.FAILED:
        _print({"import_id": upload.id, "status": Status.FAILED, "error": upload.error_message})
        sys.exit(1)
    audience = Audience.get_or_none(Audience.id == upload.audience_id)
    counts = upload.counts
    _print({"import_id": upload.id, "status": Status.COMPLETED, "rows": upload.rows_total,
            **{k: counts.get(k, 0) for k in ("created", "updated", "unchanged", "rejected", "warnings")},
            "audience": audience.name if audience else None, "audience_members": _members(audience),
            "duplicate_of": duplicate, "problems": _problems(upload.id, ("parse", "apply"))})


def _members(audience: Audience | None) -> int:
    return AudienceMember.select().where(AudienceMember.audience == audience).count() if audience else 0


@click.command("export")
@click.option("--account", "account_name", required=True)
@click.option("--format", "kind", type=click.Choice(("json", *FORMATS)), default="json", show_default=True,
              help="json: an array for tools; csv or xlsx: every field, re-importable.")
@click.option("--audience", "audience_id", type=int, default=None, help="Only this audience's members.")
@click.option("--query", "q", default="", help="Only personas the Personas page's search finds.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file (default: standard output).")
@with_appcontext
def export_command(account_name, kind, audience_id, q, output):
    """Export the account's personas (or an audience's, or a search's), ordered by id, as JSON, CSV or XLSX."""
    account = Account.get_or_none(Account.name == account_name)
    if account is None:
        _refuse(f"There is no account named {account_name!r}.")
    if audience_id is not None and not Audience.get_or_none(Audience.id == audience_id, Audience.account == account):
        _refuse(f"{account_name} has no audience {audience_id}.")
    chosen = Selection(account.id, q.strip(), audience_id)
    pieces = ((json.dumps(export_personas(account.id, chosen), default=str) + "\n").encode(),) if kind == "json" \
        else export_stream(chosen, kind)
    if output is None:
        stream = sys.stdout.buffer
        for piece in pieces:
            stream.write(piece)
        stream.flush()
        return
    with open(output, "wb") as stream:
        for piece in pieces:
            stream.write(piece)
    _print({"file": output, "format": kind, "personas": chosen.query(Persona.id).count()})


def _revert_now(_kind: str, import_id: int) -> bool:
    """The enqueue function `personas revert` hands the service: the claimed revert runs here and now."""
    run_revert(import_id)
    return True


@click.command("revert")
@click.argument("import_id", type=int)
@click.option("--account", "account_name", required=True)
@click.option("--user", "user_email", required=True)
@with_appcontext
def revert_command(import_id, account_name, user_email):
    """Undo an import; print what was reverted and what could not be."""
    account, user = _owner(account_name, user_email)
    try:
        service.request_revert(import_id, account.id, user.id, _revert_now)
        _print(Import.get_by_id(import_id).revert_result)
    except FileRefused as refused:
        _refuse(refused.message)


@click.command("archive")
@click.option("--account", "account_name", required=True)
@click.option("--email", default=None)
@click.option("--phone", default=None)
@with_appcontext
def archive_command(account_name, email, phone):
    """Archive a persona: imports reject rows matching it and never re-activate it."""
    account = Account.get_or_none(Account.name == account_name)
    if account is None:
        _refuse(f"There is no account named {account_name!r}.")
    if bool(email) == bool(phone):
        _refuse("Give exactly one of --email or --phone.")
    try:
        _print({"archived": True, **service.archive(account, email=email, phone=phone)})
    except FileRefused as refused:
        _refuse(refused.message)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker_command(burst):
    """Run an RQ worker for imports (needs REDIS_URL), recovering imports whose worker died."""
    from worker.runner import run_worker

    redis_url = current_app.config["REDIS_URL"]
    if not redis_url:
        raise click.UsageError("Set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run a worker.")
    run_worker(redis_url, burst=burst)


@click.command("requeue")
@click.argument("import_id", type=int, required=False)
@with_appcontext
def requeue_command(import_id):
    """Queue again the imports no live worker is running; with IMPORT_ID, also resume that halted import."""
    from worker.queue import requeue_stale, stale_imports

    redis_url = current_app.config["REDIS_URL"]
    if import_id is None:
        _print({"requeued": requeue_stale(redis_url)})
        return
    upload = Import.get_or_none(Import.id == import_id)
    if upload is None:
        _refuse(f"There is no import #{import_id}.")
    kind = dict((found, kind) for found, kind, _retrying in stale_imports()).get(import_id)
    if kind is None:  # not a run whose worker died: a halted or failed import, resumed from its checkpoint
        try:
            flow.resume(upload)
        except FileRefused as refused:
            _refuse(refused.message)
        kind = "import"
    if not redis_url:  # the in-process runner: this command runs the job and waits for it
        upload = _run_job(kind, upload, done=(Status.COMPLETED, Status.FAILED, Status.REVERTED))
        _print({"requeued": [import_id], "status": upload.status})
        return
    if not _enqueue(kind, import_id):
        _print({"requeued": [], "import_id": import_id, "message": Import.get_by_id(import_id).error_message})
        sys.exit(1)
    _print({"requeued": [import_id]})


COMMANDS = [import_command, export_command, revert_command, archive_command, worker_command, requeue_command]
