"""A form open in another tab never acts on an import that was removed or changed since (issue 13.1).

Every form that changes an import carries its id (in the URL) and the version it was shown for. A post
for an import removed since answers with the Upload step and "This upload was removed in another tab"; one
for an import changed since answers with the step it is at now and "This import changed in another tab".
Neither does anything. (Chromium plays the whole two-tab story in tests/browser/test_stale_tab_browser.py.)
"""
import html
import re

import pytest

from tests.jobs_helpers import row_of
from tests.test_wizard import (
    HEADERS,
    HTMX,
    ROWS,
    csv_bytes,
    form_mapping,
    import_id_of,
    post,
    run_wizard,
    upload,
    wait_for,
)
from webapp.models import Import, Persona, UploadChunk
from webapp.views.wizard import CHANGED, REMOVED

OTHER = [["Email", "Phone"], ["zed@example.com", "(415) 555-0199"], ["yan@example.com", "(415) 555-0198"]]


def shown_version(page: str, action: str) -> str:
    """The version the form posting to action carries, as the page shows it."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"no form posting to {action}"
    return re.search(r'<input type="hidden" name="version" value="(\d+)">', form.group(0)).group(1)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_import_personas_from_a_tab_whose_upload_was_removed_imports_nothing(owner_client, csrf, headers):
    # Tab A takes a file to Review.
    first = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), "march.csv", accept=False)
    tab_a = owner_client.get(f"/imports/{first.id}/review").get_data(as_text=True)
    version_a = shown_version(tab_a, f"/imports/{first.id}/review")
    # Tab B removes it, uploads another file and takes it to Review.
    page_b = owner_client.get(f"/imports/{first.id}/uploaded").get_data(as_text=True)
    post(owner_client, csrf, f"/imports/{first.id}/remove",
         {"version": shown_version(page_b, f"/imports/{first.id}/remove")})
    second = run_wizard(owner_client, csrf, csv_bytes(OTHER), "april.csv", accept=False)
    assert second.id != first.id

    # Tab A ticks "Opt in all personas in this file to SMS": the counts say the page is out of date.
    counts = owner_client.get(f"/imports/{first.id}/review/counts?opt_in_sms=1&version={version_a}", headers=HTMX)
    assert counts.status_code == 404 and text(counts) == f'<div id="review-counts" class="alert alert-warning" ' \
        f'role="alert">{REMOVED}</div>'
    # It accepts the terms and clicks Import Personas.
    response = post(owner_client, csrf, f"/imports/{first.id}/review",
                    {"version": version_a, "opt_in_sms": "1", "accept_terms": "1"}, headers=headers)
    assert response.status_code == 404
    page = text(response)
    assert REMOVED in page and 'data-step="upload"' in page
    assert ("<html" in page) == (not headers)
    if headers:
        assert response.headers["HX-Push-Url"] == "/imports/new"
    assert Persona.select().count() == 0
    other = Import.get_by_id(second.id)
    assert (other.status, other.terms_accepted_at, other.options) == ("validated", None, {})
    assert "april.csv" in page  # the upload step still offers to continue the other file


def test_a_tab_still_on_the_uploaded_step_cannot_act_after_another_tab_mapped(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    tab_a = owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    version_a = shown_version(tab_a, f"/imports/{import_id}/remove")
    assert shown_version(tab_a, f"/imports/{import_id}/header") == version_a
    # Tab B maps and validates.
    mapping = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    post(owner_client, csrf, f"/imports/{import_id}/mapping",
         {**form_mapping(mapping), "version": shown_version(mapping, f"/imports/{import_id}/mapping")})
    wait_for(import_id, ("validated",))
    before = row_of(import_id)

    for action, form in (("header", {"header_line": "2"}), ("remove", {}), ("mapping", form_mapping(mapping))):
        response = post(owner_client, csrf, f"/imports/{import_id}/{action}", {**form, "version": version_a},
                        headers=HTMX)
        page = text(response)
        assert response.status_code == 409, action
        assert CHANGED in page and 'data-step="review"' in page and 'data-status="validated"' in page
        assert response.headers["HX-Push-Url"] == f"/imports/{import_id}/review"
    assert row_of(import_id) == before
    assert UploadChunk.select().where(UploadChunk.upload == import_id).count() == 1


def test_a_form_without_the_version_it_was_shown_for_does_nothing(owner_client, csrf):
    row = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), accept=False)
    response = owner_client.post(f"/imports/{row.id}/review", data={"accept_terms": "1", "csrf_token": csrf(owner_client)})
    assert response.status_code == 409 and CHANGED in text(response) and "<html" in text(response)
    assert Import.get_by_id(row.id).status == "validated"


def test_a_second_click_on_import_personas_shows_the_progress_without_a_second_submit(owner_client, csrf):
    row = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), accept=False)
    version = shown_version(owner_client.get(f"/imports/{row.id}/review").get_data(as_text=True),
                            f"/imports/{row.id}/review")
    first = post(owner_client, csrf, f"/imports/{row.id}/review", {"version": version, "accept_terms": "1"},
                 headers=HTMX)
    assert first.status_code == 200 and 'data-step="progress"' in text(first)
    again = post(owner_client, csrf, f"/imports/{row.id}/review",
                 {"version": version, "accept_terms": "1", "opt_in_sms": "1"}, headers=HTMX)
    assert again.status_code == 409 and CHANGED in text(again) and 'data-step="progress"' in text(again)
    done = wait_for(row.id, ("completed",))
    assert done.options == {"opt_in_sms": False, "opt_in_email": False} and done.attempt == 1
    assert not any(p.sms_opt_in for p in Persona.select())


def test_every_form_that_changes_an_import_carries_its_version(owner_client, csrf):
    workbook_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    version = str(Import.get_by_id(workbook_id).version)
    page = owner_client.get(f"/imports/{workbook_id}/uploaded").get_data(as_text=True)
    for action in ("header", "remove"):
        assert shown_version(page, f"/imports/{workbook_id}/{action}") == version
    page = owner_client.get(f"/imports/{workbook_id}/mapping").get_data(as_text=True)
    assert shown_version(page, f"/imports/{workbook_id}/mapping") == version
    row = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), accept=False)
    page = owner_client.get(f"/imports/{row.id}/review").get_data(as_text=True)
    assert shown_version(page, f"/imports/{row.id}/review") == str(Import.get_by_id(row.id).version)
    # Each move went up one version: upload and read, map, queue the dry run, its run, its end.
    assert Import.get_by_id(row.id).version == 6
