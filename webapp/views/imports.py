"""Import history, progress, results, reports, file deletion and revert."""
from flask import Blueprint, Response, flash, g, redirect, request, url_for
from flask_login import current_user
from peewee import JOIN

from webapp import hx
from webapp.importer import drafts, flow, service
from webapp.importer.errors import FileRefused
from webapp.importer.progress import progress as progress_of
from webapp.importer.revert import preview as revert_preview
from webapp.importer.states import REVERTIBLE, WORKING, Status, resumable
from webapp.models import Audience, Import, User
from webapp.render import render
from webapp.templating import Page
from webapp.views.auth import get_owned_or_404, login_required, owner_required
from webapp.views.wizard import enqueue

bp = Blueprint("imports", __name__, url_prefix="/imports")

WIZARD_PAGE = "imports/wizard.html"
PROGRESS = "imports/steps/_progress.html"


def progress_context(upload: Import) -> dict:
    """What the progress partial shows, from the Import row alone (it outlives any queue job)."""
    audience = Audience.get_or_none((Audience.id == upload.audience_id) & (Audience.account == g.account)) \
        if upload.audience_id else None
    # The grouped problems only once it ended: the running import's partial polls every second.
    finished = upload.status not in ("queued", "running")
    return {"upload": upload, "progress": progress_of(upload), "audience": audience,
            "counts": upload.counts or {}, "problem_counts": flow.problem_counts(upload),
            "groups": flow.problem_groups_of(upload) if finished else []}


@bp.get("/<int:import_id>/progress")
@login_required
def progress(import_id: int):
    """Step 5: the progress bar while the import runs (polling), then its result (no polling)."""
    upload = get_owned_or_404(Import, import_id)
    if not flow.is_submitted(upload):
        from webapp.views.wizard import go_to  # the wizard decides which of its steps the import is at

        return go_to(upload)
    return render(WIZARD_PAGE, PROGRESS, title="Import", **progress_context(upload))


@bp.get("/<int:import_id>")
@login_required
def detail(import_id: int):
    """One import: its file, who ran it and when, the consent accepted, and its progress or result."""
    upload = get_owned_or_404(Import, import_id)
    context = progress_context(upload) if flow.is_submitted(upload) else {"upload": upload}
    terms_user = User.get_or_none(User.id == upload.terms_accepted_by_id) if upload.terms_accepted_by_id else None
    from webapp.views.wizard import step_endpoint

    return render("imports/detail.html", "imports/_detail.html", terms_user=terms_user,
                  submitted=flow.is_submitted(upload), step_of=step_endpoint, **context)


def history_query():
    """The current account's imports, newest first, with who ran them."""
    reverter = User.alias()
    return (Import.select(Import, User.email.alias("user_email"), reverter.email.alias("reverted_by_email"))
            .join(User, JOIN.LEFT_OUTER, on=(Import.user == User.id))
            .join_from(Import, reverter, JOIN.LEFT_OUTER, on=(Import.reverted_by == reverter.id))
            .where(Import.account == g.account)
            .order_by(Import.created_at.desc(), Import.id.desc()))


@bp.get("")
@login_required
def history():
    """Every import of the account: file, status, who, when, counts, and what can be done with it."""
    page = Page(history_query().objects(), request.args.get("page", 1, type=int))
    from webapp.views.wizard import step_endpoint

    return render("imports/history.html", "imports/_history.html", listing=page, step_of=step_endpoint,
                  submitted=flow.is_submitted, revertible=REVERTIBLE, working=WORKING, resumable=resumable,
                  discardable=drafts.discardable)


@bp.get("/<int:import_id>/report.csv")
@login_required
def report(import_id: int):
    """The problem report: rejected rows and cell problems with the rows' original cells."""
    upload = get_owned_or_404(Import, import_id)
    stem = (upload.file_name or "import").rsplit(".", 1)[0]
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_ ") else "_" for ch in stem).strip() or "import"
    response = Response(flow.problem_report(upload), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="problems-{upload.id}-{safe}.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:import_id>/delete-file")
@owner_required
def delete_file(import_id: int):
    """Delete the import's stored file, staged rows and audience; the persona changes stay."""
    upload = get_owned_or_404(Import, import_id)
    try:
        service.delete_file(upload)
    except FileRefused as refused:
        flash(refused.message, "error")
    else:
        flash(f"The file of import #{upload.id} ({upload.file_name}) and its audience were deleted. "
              "The changes it made to personas stay.", "success")
    return _to_history()


@bp.post("/<int:import_id>/resume")
@owner_required
def resume(import_id: int):
    """Queue a halted import again from where it stopped (rows already applied are never applied again)."""
    upload = get_owned_or_404(Import, import_id)
    try:
        service.resume(upload, enqueue)
    except FileRefused as refused:
        flash(refused.message, "error")
    else:
        flash(f"Import #{upload.id} ({upload.file_name}) resumes where it stopped.", "success")
    return _to_history()


def _to_history():
    """Back to the history, where the flashed message shows (both the history and an import's page post here)."""
    if request.htmx:
        return hx.redirect(url_for("imports.history"))
    return redirect(url_for("imports.history"), 303)


@bp.get("/<int:import_id>/revert")
@owner_required
def revert_get(import_id: int):
    """Ask before reverting: say what will be undone and what will not."""
    upload = get_owned_or_404(Import, import_id)
    error = None
    if upload.status not in REVERTIBLE:
        error = ("This import was already reverted." if upload.status == Status.REVERTED
                 else "Only a finished import can be reverted.")
    return render("imports/revert_confirm.html", "imports/_revert_confirm.html", status=409 if error else 200,
                  upload=upload, preview=None if error else revert_preview(upload), error=error)


@bp.post("/<int:import_id>/revert")
@owner_required
def revert_post(import_id: int):
    """Start reverting the import in the background (a large one takes longer than a request may)."""
    upload = get_owned_or_404(Import, import_id)
    try:
        service.request_revert(upload.id, g.account.id, current_user.id, enqueue)
    except FileRefused as refused:
        return render("imports/revert_confirm.html", "imports/_revert_confirm.html", status=409, upload=upload,
                      preview=None, error=refused.message)
    return revert_result(import_id)


@bp.get("/<int:import_id>/revert/result")
@login_required
def revert_result(import_id: int):
    """The revert's progress while it runs, then what was and was not reverted."""
    upload = get_owned_or_404(Import, import_id)
    return render("imports/revert_result.html", "imports/_revert_result.html", upload=upload,
                  result=upload.revert_result or {"reverted": 0, "not_reverted": []})
