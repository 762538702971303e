"""The import wizard: one view per step and verb, each rendering its step's partial.

Every step is a URL carrying the import (/imports/<id>/mapping); the Import row is the wizard's
state. A step asked for in the wrong state sends the user to the step the import is at. Every form that
changes an import carries the version it was shown for: a post for an import removed or changed since
(another tab, a late second click) answers with the step as it now is, saying so, and does nothing.
"""
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, request, url_for
from flask_login import current_user

from webapp import hx
from webapp.config import upload_limits
from webapp.importer import drafts, flow, preview, remembered, same_file, service
from webapp.importer.errors import FileRefused
from webapp.importer.fields import (
    ATTRIBUTE_PREFIX,
    FIELDS,
    IGNORE,
    attribute_name,
    attribute_target,
    validate_mapping,
)
from webapp.importer.progress import progress as progress_of
from webapp.importer.states import EDITABLE, REVIEWING, UPLOADED, Changed, Status
from webapp.importer.templates import TEMPLATES, template_csv, template_filename, template_xlsx
from webapp.models import Import
from webapp.ratelimit import limited, per_user
from webapp.render import render, wants_partial
from webapp.views.auth import get_owned, get_owned_or_404, login_required, owner_required
from webapp.words import counted

bp = Blueprint("wizard", __name__, url_prefix="/imports")

PAGE = "imports/wizard.html"
ATTRIBUTE = "attribute"  # the select's value for "Custom attribute"; its name comes from attribute-<i>
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ACCEPT_TERMS = "Accept the consent terms to import."
REMOVED = "This upload was removed in another tab. Nothing was imported from that page."
CHANGED = "This import changed in another tab. Here it is as it is now; nothing was done from that page."


# The wizard's steps in their order: the key each step's partial names itself by, and the step bar's name.
STEPS = (("upload", "Upload"), ("uploaded", "Uploaded"), ("map", "Map"), ("review", "Review"), ("import", "Import"))


@bp.app_context_processor
def wizard_steps() -> dict:
    """The steps for the step bar (imports/_steps.html), numbered by their place here."""
    return {"wizard_steps": STEPS}


# ---------------------------------------------------------------- helpers

def limits() -> flow.Limits:
    """The upload limits from the app's settings."""
    return upload_limits(current_app.config)


def enqueue(kind: str, import_id: int) -> bool:
    """The app's enqueue function (create_app's), as the core's services take it."""
    return current_app.extensions["enqueue"](kind, import_id, current_app.config["REDIS_URL"], limits())


def step_endpoint(upload: Import) -> str:
    """The endpoint of the step this import is at."""
    if flow.is_submitted(upload):
        return "imports.progress"
    if upload.status in REVIEWING:
        return "wizard.review_get"
    return "wizard.uploaded_get"


def go_to(upload: Import | None, endpoint: str | None = None) -> Response:
    """Show a step: HTMX gets its partial with HX-Push-Url; a browser without script a 303 redirect."""
    if upload is None:
        endpoint, args = "wizard.upload_get", {}
    else:
        endpoint, args = endpoint or step_endpoint(upload), {"import_id": upload.id}
    url = url_for(endpoint, **args)
    if not wants_partial():
        return redirect(url, 303)
    return hx.push_url(current_app.view_functions[endpoint](**args), url)


def load(import_id: int, allowed: tuple[Status, ...]) -> tuple[Import, Response | None]:
    """The current account's import, and a response sending the user elsewhere when this step is not allowed."""
    upload = get_owned_or_404(Import, import_id)
    if flow.is_submitted(upload) or upload.status not in allowed:
        return upload, go_to(upload)
    return upload, None


def shown(import_id: int, allowed: tuple[Status, ...]) -> tuple[Import | None, Response | None]:
    """For a post: the import at the version its form was shown for, else the step it is at now, saying why."""
    upload = get_owned(Import, import_id)
    if upload is None or request.form.get("version", type=int) != upload.version:
        return upload, changed_elsewhere(import_id)
    if flow.is_submitted(upload) or upload.status not in allowed:
        return upload, go_to(upload)
    return upload, None


@bp.errorhandler(Changed)
def changed(error: Changed) -> Response:
    """A move that found the import no longer as its form was shown for (states.advance): nothing was done."""
    return changed_elsewhere(error.import_id)


def changed_elsewhere(import_id: int) -> Response:
    """The step the import is at now with why the post did nothing: 409, or 404 with step 1 when it is gone."""
    upload = get_owned(Import, import_id)
    flash(CHANGED if upload else REMOVED, "warning")
    endpoint, args = (step_endpoint(upload), {"import_id": upload.id}) if upload else ("wizard.upload_get", {})
    response = current_app.view_functions[endpoint](**args)
    response.status_code = 409 if upload else 404
    if wants_partial():
        hx.push_url(response, url_for(endpoint, **args))
    return response


def step(partial: str, title: str, status: int = 200, **context) -> Response:
    """Render a wizard step: its partial for HTMX, else the wizard page around it."""
    return render(PAGE, f"imports/steps/{partial}", status=status, title=title, **context)


# ---------------------------------------------------------------- step 1: upload

def upload_context() -> dict:
    """What the Upload step lists: known fields, templates, and this user's unfinished imports."""
    unfinished = (Import.select()
                  .where((Import.account == g.account) & (Import.user == current_user) & drafts.unfinished_where())
                  .order_by(Import.created_at.desc(), Import.id.desc()).limit(5))
    return {"fields": FIELDS.values(), "templates": TEMPLATES.values(), "drafts": list(unfinished),
            "max_mb": current_app.config["MAX_UPLOAD_MB"], "step_of": step_endpoint,
            "discardable": drafts.discardable, "draft_days": drafts.DRAFT_DAYS}


@bp.get("/new")
@owner_required
def upload_get():
    """Step 1: the known headers, the templates, and the file drop zone."""
    return step("_upload.html", "Upload a file", **upload_context())


def too_many_uploads(wait: int) -> Response:
    """Step 1 again, saying when the next upload will be accepted (the upload rate limit's answer)."""
    error = (f"You have uploaded many files in a short time. Wait {counted(wait, 'second')}, "
             "then upload your file again.")
    return step("_upload.html", "Upload a file", status=429, error=error, **upload_context())


@bp.post("/new")
@owner_required
@limited("UPLOAD_RATE_LIMIT", per_user, too_many_uploads)
def upload_post():
    """Store the uploaded file as a new import and show what was found in it."""
    file = request.files.get("file")
    if file is None or not file.filename:
        return step("_upload.html", "Upload a file", status=422, error="Choose a CSV or Excel file to upload.",
                    **upload_context())
    try:
        upload = service.start_upload(g.account, current_user, file.filename, file.stream, limits(), enqueue)
    except FileRefused as refused:
        return step("_upload.html", "Upload a file", status=422, error=refused.message, file_name=file.filename,
                    **upload_context())
    return go_to(upload, "wizard.uploaded_get")


@bp.get("/templates/<slug>.<any(csv, xlsx):ext>")
@login_required
def template_download(slug: str, ext: str):
    """A template file (CSV or Excel) with example rows."""
    if slug not in TEMPLATES:
        abort(404)
    body, mimetype = (template_csv(slug), "text/csv") if ext == "csv" else (template_xlsx(slug), XLSX_TYPE)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{template_filename(slug, ext)}"'
    return response


# ---------------------------------------------------------------- step 2: uploaded

WAITING = ("describing", "counting")  # what the Uploaded step polls for (flow.waiting)


def uploaded_context(upload: Import) -> dict:
    """The recognized fields (with the header that matched each), the unknown headers, and what is still read."""
    found = {target: header for header, target in upload.mapping.items() if target in FIELDS}
    unknown = [h for h in upload.headers if upload.mapping.get(h) not in FIELDS]
    return {"upload": upload, "fields": FIELDS.values(), "found": found, "unknown": unknown,
            "duplicate": same_file.warning(same_file.earlier_import(upload)), "waiting": flow.waiting(upload),
            "late_message": flow.LATE, "preselected": flow.largest_sheet(upload)}


def uploaded_step(upload: Import, status: int = 200, **context) -> Response:
    """Render step 2 for this import."""
    return step("_uploaded.html", "Uploaded", status=status, **uploaded_context(upload), **context)


@bp.get("/<int:import_id>/uploaded")
@owner_required
def uploaded_get(import_id: int):
    """Step 2: the file's name, row count, recognized fields and unknown headers."""
    upload, elsewhere = load(import_id, UPLOADED)
    return elsewhere or uploaded_step(upload)


@bp.get("/<int:import_id>/uploaded/facts")
@owner_required
def uploaded_facts_get(import_id: int):
    """The Uploaded step's row counts and sheet picker, polled while the background job reads or counts the file."""
    upload = get_owned_or_404(Import, import_id)
    if request.args.get("version", type=int) != upload.version or flow.waiting(upload) not in WAITING:
        # Read, counted, refused or moved on since the step was shown: the whole step as it is now.
        response = go_to(upload)
        if wants_partial():
            hx.retarget(response, "#wizard-step", "outerHTML")
        return response
    return render(PAGE, "imports/steps/_uploaded_facts.html", title="Uploaded", **uploaded_context(upload))


def _redescribe(upload: Import, **choice) -> Response:
    """Read the file again with the user's sheet or header line; the file's message inline when refused."""
    choice.setdefault("sheet", upload.sheet)
    try:
        service.redescribe(upload, limits(), enqueue, **choice)
    except FileRefused as refused:
        current = get_owned(Import, upload.id)
        return uploaded_step(current, status=422, error=refused.message) if current else changed_elsewhere(upload.id)
    return go_to(upload, "wizard.uploaded_get")


@bp.post("/<int:import_id>/sheet")
@owner_required
def sheet_post(import_id: int):
    """Use another sheet of the workbook."""
    upload, elsewhere = shown(import_id, EDITABLE)
    if elsewhere:
        return elsewhere
    sheet = request.form.get("sheet", "")
    if not sheet:
        return uploaded_step(upload, status=422, error="Choose the sheet to import.")
    return _redescribe(upload, sheet=sheet)


@bp.post("/<int:import_id>/header")
@owner_required
def header_post(import_id: int):
    """Read the header row from the line the user names."""
    upload, elsewhere = shown(import_id, EDITABLE)
    if elsewhere:
        return elsewhere
    line = request.form.get("header_line", type=int)
    if line is None or line < 1:
        return uploaded_step(upload, status=422, error="Enter the line number of the header row (1 or more).")
    return _redescribe(upload, header_line=line)


@bp.post("/<int:import_id>/remove")
@owner_required
def remove_post(import_id: int):
    """Discard the upload and start again."""
    upload, elsewhere = shown(import_id, UPLOADED)
    if elsewhere:
        return elsewhere
    service.discard(upload)
    flash(drafts.removed_message(upload), "success")
    return go_to(None)


# Where a discard from a list goes back to: the list it was pressed in.
DISCARD_BACK = {"history": "imports.history", "upload": "wizard.upload_get"}
NOT_DISCARDED = "This import changed in another tab since this page was shown, so it was not removed."
GONE = "This import was already removed."


@bp.post("/<int:import_id>/discard")
@owner_required
def discard_post(import_id: int):
    """Remove an unfinished import with its file, from the history or the Upload step's list; back to that list."""
    back = DISCARD_BACK.get(request.form.get("back", ""), "wizard.upload_get")
    upload = get_owned(Import, import_id)
    if upload is None:
        flash(GONE, "warning")
        return back_to(back, 404)
    if request.form.get("version", type=int) != upload.version:
        flash(NOT_DISCARDED, "warning")
        return back_to(back, 409)
    try:
        service.discard(upload)
    except FileRefused as refused:
        flash(refused.message, "error")
        return back_to(back, 409)
    except Changed:
        flash(NOT_DISCARDED, "warning")
        return back_to(back, 409)
    flash(drafts.removed_message(upload), "success")
    return back_to(back)


def back_to(endpoint: str, status: int = 200) -> Response:
    """A list page after a post: a 303 to it when all went well without HTMX, else the list itself with status."""
    url = url_for(endpoint)
    if status == 200 and not wants_partial():
        return redirect(url, 303)
    response = current_app.view_functions[endpoint]()
    response.status_code = status
    if wants_partial():
        hx.push_url(response, url)
    return response


# ---------------------------------------------------------------- step 3: map

def mapping_rows(upload: Import, mapping: dict) -> list[dict]:
    """One row per file column: index, header, samples, the chosen target and attribute name, and the note
    saying the choice came from an earlier import (while it is still the choice)."""
    rows = []
    for index, header in enumerate(upload.headers):
        target = mapping.get(header, IGNORE)
        name = attribute_name(target)
        note = (upload.prefilled or {}).get(header)
        rows.append({"index": index, "header": header, "samples": (upload.samples.get(header) or [])[:3],
                     "target": ATTRIBUTE if name is not None else target,
                     "attribute": name if name is not None else header,
                     "note": note if note and note["target"] == target else None})
    return rows


def conflicting(mapping: dict) -> set[str]:
    """Headers mapped to a target another column also has."""
    columns: dict[str, list[str]] = {}
    for header, target in mapping.items():
        if target != IGNORE:
            name = attribute_name(target)
            columns.setdefault(target if name is None else ATTRIBUTE_PREFIX + name, []).append(header)
    return {h for headers in columns.values() if len(headers) > 1 for h in headers}


def mapping_step(upload: Import, mapping: dict, status: int = 200, errors=(), focus: int | None = None) -> Response:
    """Render step 3 with this mapping (the saved one, or the user's choices and their errors); focus: a column."""
    return step("_mapping.html", "Map the columns", status=status, upload=upload, fields=FIELDS.values(),
                rows=mapping_rows(upload, mapping), errors=list(errors),
                conflicts=conflicting(mapping) if errors else set(), focus=focus)


@bp.get("/<int:import_id>/mapping")
@owner_required
def mapping_get(import_id: int):
    """Step 3: one line per column with samples and a persona field to fill."""
    upload, elsewhere = load_mappable(import_id)
    return elsewhere or mapping_step(upload, upload.mapping)


def load_mappable(import_id: int, loader=load) -> tuple[Import, Response | None]:
    """Like load() (or shown()), and back to step 2 while the file has no headers to map (a sheet to choose)."""
    upload, elsewhere = loader(import_id, EDITABLE)
    if not elsewhere and (upload.file_error or not upload.headers):
        elsewhere = go_to(upload, "wizard.uploaded_get")
    return upload, elsewhere


def parse_mapping(upload: Import, form) -> dict:
    """The mapping from the form: target-<i> per column; attribute-<i> names a custom attribute."""
    mapping = {}
    for index, header in enumerate(upload.headers):
        target = form.get(f"target-{index}", IGNORE)
        if target == ATTRIBUTE:
            target = attribute_target(form.get(f"attribute-{index}", ""))
        mapping[header] = target
    return mapping


def posted_mapping(import_id: int) -> tuple[Import | None, dict | None, Response | None]:
    """The import the Map step was shown for and the mapping its form posts, or the answer when it changed."""
    upload, elsewhere = load_mappable(import_id, shown)
    return upload, None if elsewhere else parse_mapping(upload, request.form), elsewhere


@bp.post("/<int:import_id>/mapping")
@owner_required
def mapping_post(import_id: int):
    """Save the mapping and start the dry run; errors inline with the user's choices kept."""
    upload, mapping, elsewhere = posted_mapping(import_id)
    if elsewhere:
        return elsewhere
    errors = service.confirm_mapping(upload, mapping, enqueue)
    if errors:
        return mapping_step(upload, mapping, status=422, errors=errors)
    return go_to(upload, "wizard.review_get")


@bp.post("/<int:import_id>/mapping/check")
@owner_required
def mapping_check_post(import_id: int):
    """Step 3 again for the choices as they stand (a select changed, or a column reset): its errors, nothing saved."""
    upload, mapping, elsewhere = posted_mapping(import_id)
    if elsewhere:
        return elsewhere
    reset = request.form.get("reset", type=int)
    if reset is not None and 0 <= reset < len(upload.headers):
        header = upload.headers[reset]
        mapping[header] = remembered.automatic(upload, header)
    else:
        reset = None
    return mapping_step(upload, mapping, errors=validate_mapping(mapping), focus=reset)


# ---------------------------------------------------------------- step 4: review

def review_step(upload: Import, status: int = 200, **context) -> Response:
    """Render step 4: the dry run's progress, its failure, or its counts with the consent form."""
    validated = upload.status == Status.VALIDATED
    groups = flow.problem_groups_of(upload) if validated else []
    counts = flow.problem_counts(upload) if validated else {}
    context.setdefault("opt_in_sms", upload.options.get("opt_in_sms", False))
    context.setdefault("opt_in_email", upload.options.get("opt_in_email", False))
    review = flow.review_counts(upload, context["opt_in_sms"], context["opt_in_email"])
    return step("_review.html", "Review", status=status, upload=upload, groups=groups, problem_counts=counts,
                review=review, changes=preview.lines(upload.review) if validated else {}, progress=progress_of(upload),
                terms_version=current_app.config["TERMS_VERSION"],
                duplicate=same_file.warning(same_file.earlier_import(upload)), **context)


@bp.get("/<int:import_id>/review/counts")
@owner_required
def review_counts_get(import_id: int):
    """The Review step's counts for the opt-in-all boxes as ticked (refreshed as they change)."""
    upload = get_owned(Import, import_id)
    if upload is None or request.args.get("version", type=int) != upload.version:
        # In place of the counts: the page is out of date, and Import Personas will do nothing from it.
        return render(PAGE, "imports/steps/_review_counts.html", status=409 if upload else 404, title="Review",
                      notice=CHANGED if upload else REMOVED)
    opt_in_sms, opt_in_email = bool(request.args.get("opt_in_sms")), bool(request.args.get("opt_in_email"))
    return render(PAGE, "imports/steps/_review_counts.html", title="Review", upload=upload,
                  review=flow.review_counts(upload, opt_in_sms, opt_in_email))


@bp.get("/<int:import_id>/review")
@owner_required
def review_get(import_id: int):
    """Step 4: the dry run's progress, then its counts, grouped problems, a preview, opt-in boxes and the terms."""
    upload, elsewhere = load(import_id, REVIEWING)
    return elsewhere or review_step(upload)


@bp.post("/<int:import_id>/review")
@owner_required
def review_post(import_id: int):
    """Accept the terms and queue the import (step 5)."""
    upload, elsewhere = shown(import_id, (Status.VALIDATED,))
    if elsewhere:
        return elsewhere
    opt_in_sms, opt_in_email = bool(request.form.get("opt_in_sms")), bool(request.form.get("opt_in_email"))
    if not request.form.get("accept_terms"):
        return review_step(upload, status=422, error=ACCEPT_TERMS, opt_in_sms=opt_in_sms, opt_in_email=opt_in_email)
    try:
        service.submit(upload, current_user, request.remote_addr, current_app.config["TERMS_VERSION"], opt_in_sms,
                       opt_in_email, enqueue)
    except FileRefused as refused:
        return review_step(upload, status=422, error=refused.message)
    return go_to(upload, "imports.progress")


