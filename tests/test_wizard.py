"""The import wizard through the Flask client: upload, uploaded, map, review, import, on each database.

The in-process runner thread does the validation and the import, as `make run` does; tests poll the
Import row until the job is over.
"""
import csv
import html
import io
import re
import time

import pytest
from openpyxl import Workbook, load_workbook

from tests.importer import corpus
from webapp.importer import flow
from webapp.importer.fields import CONTACT_MESSAGE, FIELDS
from webapp.importer.header_row import NO_HEADER
from webapp.importer.templates import TEMPLATES
from webapp.models import (
    Audience,
    AudienceMember,
    Import,
    Persona,
    PersonaAttribute,
    RememberedMapping,
    StagedChunk,
    UploadChunk,
)

HTMX = {"HX-Request": "true"}
DONE = ("validated", "completed", "failed")

HEADERS = ["Email", "Phone", "First Name", "Points", "Veteran", "Favorite Strain"]
ROWS = [
    ["ann@example.com", "(415) 555-0101", "Ann", "10", "TRUE", "Blue Dream"],
    ["bob@example.com", "", "Bob", "5", "FALSE", "OG Kush"],
    ["", "", "Nobody", "1", "", ""],  # line 4: neither email nor phone: rejected
    ["cara@example.com", "4155550103", "=HYPERLINK(\"http://x\")", "lots", "yes", ""],  # line 5: points warning
    ["old@example.com", "", "Olga", "+20", "", "Sour Diesel"],  # updates an existing persona
]


# ---------------------------------------------------------------- helpers (also used by test_imports_pages)

def csv_bytes(rows) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(sheets: dict) -> bytes:
    """A workbook with one sheet per item: {title: rows}."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(client, csrf, data: bytes, name: str = "people.csv", headers=None):
    """POST the upload form with a file."""
    return client.post("/imports/new", data={"file": (io.BytesIO(data), name), "csrf_token": csrf(client)},
                       content_type="multipart/form-data", headers=headers or {})


def post(client, csrf, url: str, data=None, headers=None):
    """POST a form with the session's CSRF token and, to an import, the version its page shows now."""
    data = {**(data or {}), "csrf_token": csrf(client)}
    shown = re.match(r"/imports/(\d+)/", url)
    if shown and "version" not in data:
        upload = Import.get_or_none(Import.id == int(shown.group(1)))
        data["version"] = upload.version if upload else 1
    return client.post(url, data=data, headers=headers or {})


def import_id_of(response) -> int:
    location = response.headers.get("Location") or response.headers.get("HX-Push-Url")
    return int(re.search(r"/imports/(\d+)/", location).group(1))


def wait_for(import_id: int, statuses=DONE, timeout: float = 30) -> Import:
    """Poll the Import row until the background job puts it in one of statuses."""
    deadline = time.monotonic() + timeout
    while True:
        row = Import.get_by_id(import_id)
        if row.status in statuses:
            return row
        assert time.monotonic() < deadline, f"import {import_id} still {row.status} after {timeout}s"
        time.sleep(0.05)


def wait_until(predicate, timeout: float = 30):
    """Poll predicate() (a background job's result) until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the background job did not finish"
        time.sleep(0.05)


def form_mapping(page: str) -> dict:
    """The mapping form as a browser would post it: each select's selected option, each attribute name."""
    data = {}
    for match in re.finditer(r'<select id="(target-\d+)" name="target-\d+".*?</select>', page, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', match.group(0))
        data[match.group(1)] = selected.group(1) if selected else "ignore"
    for match in re.finditer(r'name="(attribute-\d+)"\s+value="([^"]*)"', page):
        data[match.group(1)] = match.group(2)
    return data


def selected(page: str, index: int) -> str:
    return form_mapping(page)[f"target-{index}"]


def run_wizard(client, csrf, data: bytes, name: str = "people.csv", *, mapping=None, accept=True, **options) -> Import:
    """Drive every step without HTMX to the end (completed or failed) and return the Import."""
    response = upload(client, csrf, data, name)
    assert response.status_code == 303, response.get_data(as_text=True)
    import_id = import_id_of(response)
    page = client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    response = post(client, csrf, f"/imports/{import_id}/mapping", {**form_mapping(page), **(mapping or {})})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_for(import_id).status == "validated"
    if not accept:
        return Import.get_by_id(import_id)
    response = post(client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1", **options})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/imports/{import_id}/progress")
    return wait_for(import_id, ("completed", "failed"))


# ---------------------------------------------------------------- step 1: upload

def test_upload_page_lists_headers_types_and_templates(owner_client):
    response = owner_client.get("/imports/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert 'name="file"' in page and 'id="file"' in page and '<label for="file" class="btn btn-primary">Upload File</label>' in page
    assert 'hx-encoding="multipart/form-data"' in page and "data-dropzone" in page and "js/upload.js" in page
    for field in FIELDS.values():
        assert f"<th scope=\"row\">{field.label}</th>" in page, field.label
    assert "Date of Birth" in page and "Loyalty Join Date" in page and "Custom attribute" in page
    for ext in (".csv", ".xlsx", ".xls"):
        assert f"<strong>{ext}</strong>" in page
    for slug in TEMPLATES:
        assert f'href="/imports/templates/{slug}.csv"' in page and f'href="/imports/templates/{slug}.xlsx"' in page
    assert page.count(">CSV</a>") == 4 and page.count(">Excel</a>") == 4
    assert 'aria-current="step"' in page and 'hx-history="false"' in page


def test_templates_download_as_csv_and_excel(owner_client):
    response = owner_client.get("/imports/templates/points.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="personas-template-points.csv"' in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbfEmail,Phone,Points")
    response = owner_client.get("/imports/templates/attributes.xlsx")
    assert response.status_code == 200 and "spreadsheetml" in response.mimetype
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert [c.value for c in sheet[1]] == ["Email", "Phone", "Customer Type", "Veteran", "Police", "Locals"]
    assert owner_client.get("/imports/templates/nope.csv").status_code == 404
    assert owner_client.get("/imports/templates/points.pdf").status_code == 404


@pytest.mark.parametrize("data, name, message", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "customers.pdf", "This is a PDF document, not a spreadsheet."),
    (b"", "empty.csv", "The file is empty"),
    (b"Email,Phone\r\n", "header-only.csv", "header row but no customer rows"),
    (b"Email,Email\r\na@example.com,b@example.com\r\n", "dupes.csv", "Email"),
])
def test_a_bad_file_shows_its_message_and_leaves_nothing(owner_client, csrf, data, name, message):
    response = upload(owner_client, csrf, data, name)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in page
    alert = re.search(r'<div class="alert alert-error" role="alert">(.*?)</div>', page, re.S).group(1)
    assert message in alert and name in alert
    assert "Traceback" not in page and Import.select().count() == 0 and UploadChunk.select().count() == 0


def test_no_file_chosen(owner_client, csrf):
    response = post(owner_client, csrf, "/imports/new", headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in page
    assert "Choose a CSV or Excel file to upload." in page and 'role="alert"' in page


def test_htmx_upload_answers_with_the_uploaded_partial_and_its_url(owner_client, csrf):
    response = upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), headers=HTMX)
    page = response.get_data(as_text=True)
    upload_row = Import.get()
    assert response.status_code == 200 and "<html" not in page
    assert response.headers["HX-Push-Url"] == f"/imports/{upload_row.id}/uploaded"
    assert "HX-Request" in response.headers["Vary"]
    assert 'data-step="uploaded"' in page and 'id="wizard-step"' in page and "people.csv" in page


# ---------------------------------------------------------------- step 2: uploaded

def test_uploaded_step_shows_found_fields_unknown_headers_and_row_count(owner_client, csrf):
    response = upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS]))
    assert response.status_code == 303
    import_id = import_id_of(response)
    assert response.headers["Location"] == f"/imports/{import_id}/uploaded"
    row = Import.get_by_id(import_id)
    assert row.row_count == 5 and row.headers == HEADERS and row.status == "draft"

    page = owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    assert "<html" in page and "people.csv" in page and "5 customer rows" in page
    found = re.findall(r'<li class="field-found"><span class="check" aria-hidden="true">✓</span>'
                       r'<span class="visually-hidden">Found: </span>\s*(.*?) <span', page)
    assert found == ["Email", "Phone", "First Name", "Points"]
    assert page.count('class="field-missing"') == len(FIELDS) - 4
    unknown = page[page.index('id="unknown-h"'):]
    assert "Veteran" in unknown and "Favorite Strain" in unknown and "custom attribute" in unknown
    assert f'action="/imports/{import_id}/remove"' in page and f'href="/imports/{import_id}/mapping"' in page
    assert 'name="sheet"' not in page  # a CSV has no sheets

    partial = owner_client.get(f"/imports/{import_id}/uploaded", headers=HTMX)
    assert "<html" not in partial.get_data(as_text=True) and "HX-Request" in partial.headers["Vary"]


def test_header_row_override(owner_client, csrf):
    data = csv_bytes([["Customer export, March"], ["Email", "Phone"], ["ann@example.com", "4155550101"],
                      ["bob@example.com", "4155550102"]])
    import_id = import_id_of(upload(owner_client, csrf, data, "titled.csv"))
    assert Import.get_by_id(import_id).header_line == 2
    response = post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "3"})
    assert response.status_code == 303
    row = Import.get_by_id(import_id)
    assert row.header_line == 3 and row.headers == ["ann@example.com", "4155550101"] and row.row_count == 1
    response = post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "0"}, headers=HTMX)
    assert response.status_code == 422 and "Enter the line number of the header row" in response.get_data(as_text=True)
    response = post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "2"})
    assert Import.get_by_id(import_id).headers == ["Email", "Phone"]


def test_multi_sheet_workbook_asks_for_the_sheet(owner_client, csrf):
    data = xlsx_bytes({"Notes": [["Note"], ["exported from the old system"]],
                       "Customers": [["Email", "Phone", "Police"], ["ann@example.com", "4155550101", True],
                                     ["bob@example.com", "4155550102", False]]})
    response = upload(owner_client, csrf, data, "book.xlsx")
    assert response.status_code == 303
    import_id = import_id_of(response)
    row = Import.get_by_id(import_id)
    assert row.file_error and row.sheet_names == ["Notes", "Customers"] and row.headers == []

    page = owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    assert "several sheets with data: Notes, Customers" in page
    assert '<select id="sheet" name="sheet">' in page and "Use this sheet" in page
    assert '<option value="Customers"' in page and f'href="/imports/{import_id}/mapping"' not in page
    response = owner_client.get(f"/imports/{import_id}/mapping")
    assert response.status_code == 303 and response.headers["Location"].endswith("/uploaded")

    response = post(owner_client, csrf, f"/imports/{import_id}/sheet", {"sheet": "Customers"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    row = Import.get_by_id(import_id)
    assert row.sheet == "Customers" and row.headers == ["Email", "Phone", "Police"] and row.file_error is None
    assert row.row_count == 2 and "2 customer rows" in page
    assert '<option value="Customers" selected>' in page  # the picker stays to switch sheets
    assert row.mapping == {"Email": "email", "Phone": "phone", "Police": "attribute:police"}

    response = post(owner_client, csrf, f"/imports/{import_id}/sheet", {"sheet": "Nope"})
    assert response.status_code == 422 and 'no sheet named "Nope"' in html.unescape(response.get_data(as_text=True))


def test_an_ods_with_several_sheets_gets_the_same_sheet_picker(owner_client, csrf, tmp_path):
    path = corpus.ods_file(tmp_path / "book.ods", {"Stores": [["Email"], ["ann@example.com"]],
                                                   "Online": [["Email", "Phone"], ["bob@example.com", "4155550102"]]})
    import_id = import_id_of(upload(owner_client, csrf, path.read_bytes(), "book.ods"))
    row = Import.get_by_id(import_id)
    assert (row.kind, row.sheet_names, row.headers) == ("ods", ["Stores", "Online"], [])
    page = owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    assert '<select id="sheet" name="sheet">' in page and "ODS" in page
    post(owner_client, csrf, f"/imports/{import_id}/sheet", {"sheet": "Online"})
    row = Import.get_by_id(import_id)
    assert (row.kind, row.sheet, row.headers, row.row_count) == ("ods", "Online", ["Email", "Phone"], 1)


def test_a_file_without_a_header_row_waits_for_the_line_to_be_chosen(owner_client, csrf):
    data = b"ann@example.com,4155550101\nbob@example.com,4155550102\n"
    import_id = import_id_of(upload(owner_client, csrf, data, "no-header.csv"))
    row = Import.get_by_id(import_id)
    assert (row.file_error, row.kind, row.headers) == (NO_HEADER, "csv", [])
    page = html.unescape(owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True))
    assert NO_HEADER in page and "The header row is line" in page and "Use this line" in page
    assert '<select id="sheet"' not in page and f'href="/imports/{import_id}/mapping"' not in page

    response = post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "1"}, headers=HTMX)
    assert response.status_code == 200
    row = Import.get_by_id(import_id)
    assert (row.file_error, row.header_line, row.headers) == (None, 1, ["ann@example.com", "4155550101"])


def test_remove_deletes_the_import_and_returns_to_step_one(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    assert UploadChunk.select().where(UploadChunk.upload == import_id).count() == 1
    response = post(owner_client, csrf, f"/imports/{import_id}/remove", headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-step="upload"' in page and "<html" not in page
    assert response.headers["HX-Push-Url"] == "/imports/new"
    assert Import.get_or_none(Import.id == import_id) is None and UploadChunk.select().count() == 0
    assert owner_client.get(f"/imports/{import_id}/uploaded").status_code == 404

    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    response = post(owner_client, csrf, f"/imports/{import_id}/remove")
    assert response.status_code == 303 and response.headers["Location"] == "/imports/new"
    assert Import.select().count() == 0


# ---------------------------------------------------------------- step 3: map

def test_mapping_is_prefilled_and_errors_are_inline(owner_client, csrf):
    data = csv_bytes([["Email", "E-mail Address", "Mobile", "Veteran", "Notes"],
                      ["ann@example.com", "ann2@example.com", "4155550101", "yes", "likes edibles"]])
    import_id = import_id_of(upload(owner_client, csrf, data))
    response = owner_client.get(f"/imports/{import_id}/mapping")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert [selected(page, i) for i in range(5)] == ["email", "ignore", "phone", "attribute", "ignore"]
    assert 'name="attribute-3"\n                       value="veteran"' in page
    assert "ann2@example.com" in page and "likes edibles" in page  # sample values
    options = re.search(r'<select id="target-0".*?</select>', page, re.S).group(0)
    assert ">Ignore</option>" in options and ">Custom attribute</option>" in options
    for field in FIELDS.values():
        assert f">{field.label}</option>" in options

    two = {**form_mapping(page), "target-1": "email"}
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", two, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in page and 'data-step="mapping"' in page
    assert "Email is mapped from two columns: Email, E-mail Address" in page
    assert selected(page, 1) == "email" and page.count('aria-invalid="true"') == 2  # the user's choice is kept
    assert Import.get_by_id(import_id).status == "draft"

    none = {**form_mapping(page), "target-0": "ignore", "target-1": "ignore", "target-2": "ignore"}
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", none)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in page and CONTACT_MESSAGE in page
    assert re.search(r'<div class="alert alert-error" role="alert" id="mapping-errors">', page)

    unnamed = {**form_mapping(page), "target-0": "email", "target-3": "attribute", "attribute-3": "  "}
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", unnamed)
    assert response.status_code == 422 and "custom attribute without a name" in response.get_data(as_text=True)


def test_confirmed_mapping_is_remembered_for_the_next_file(owner_client, csrf, app):
    data = csv_bytes([["Contact", "Cell", "Club"], ["ann@example.com", "4155550101", "yes"]])
    first = run_wizard(owner_client, csrf, data, mapping={"target-0": "email", "target-2": "attribute",
                                                          "attribute-2": "VIP Club"})
    assert first.status == "completed"
    assert first.mapping == {"Contact": "email", "Cell": "phone", "Club": "attribute:vip club"}
    assert RememberedMapping.select().count() == 3
    import_id = import_id_of(upload(owner_client, csrf, data, "again.csv"))
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    assert [selected(page, i) for i in range(3)] == ["email", "phone", "attribute"]
    assert 'value="vip club"' in page


# ---------------------------------------------------------------- steps 4 and 5: review, import

def test_whole_wizard_with_a_csv(owner_client, csrf, account_a, owner_a, make_persona):
    make_persona(account_a, email="old@example.com", first_name="Olga", points=100)
    response = upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS]))
    import_id = import_id_of(response)
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", form_mapping(page))
    assert response.status_code == 303 and response.headers["Location"] == f"/imports/{import_id}/review"

    # The review polls itself while the dry run goes on, then shows its counts and problems.
    page = owner_client.get(f"/imports/{import_id}/review", headers=HTMX).get_data(as_text=True)
    if 'data-status="validating"' in page:
        assert 'hx-trigger="load delay:1s"' in page and "rows checked" in page
    row = wait_for(import_id)
    assert row.status == "validated" and row.review["created"] == 3 and row.review["updated"] == 1
    page = owner_client.get(f"/imports/{import_id}/review").get_data(as_text=True)
    assert "<html" in page and 'hx-trigger="load' not in page  # done: it no longer polls
    counts = dict((label, int(value)) for value, label in re.findall(
        r'<span class="stat-value">(\d+)</span> <span class="stat-label">([^<]+)</span>', page))
    assert counts == {"will create": 3, "will update": 1, "unchanged": 0, "will be rejected": 1, "warning": 1}
    # Ticking a box asks for the counts with it; the boxes' fieldset re-asks on every change.
    assert re.search(r'hx-get="/imports/%d/review/counts"\s+hx-trigger="change"' % import_id, page)
    version = Import.get_by_id(import_id).version  # the fieldset sends the version the page was shown for
    partial = owner_client.get(f"/imports/{import_id}/review/counts?opt_in_sms=1&version={version}",
                               headers=HTMX).get_data(as_text=True)
    assert partial.startswith('<ul id="review-counts"') and "<html" not in partial
    problems = re.findall(r'<td class="num"[^>]*>(\d+)</td>', page)
    assert problems == ["4", "5"]
    assert "lots" in page and "Blue Dream" not in page  # problem values, not whole rows
    assert f'href="/imports/{import_id}/report.csv"' in page and "Download the problem report" in page
    assert 'name="opt_in_sms"' in page and "Opt in all personas in this file to SMS" in page
    assert 'name="opt_in_email"' in page and "Opt in all personas in this file to Email" in page
    assert 'name="accept_terms" value="1" required' in page and "I accept" in page
    assert "version 2026-11" in page and "Telephone" in page and "Import Personas" in page
    assert Persona.select().count() == 1  # the dry run wrote nothing

    # Terms are required.
    response = post(owner_client, csrf, f"/imports/{import_id}/review", {"opt_in_sms": "1"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in page
    assert "Accept the consent terms to import." in page and 'name="opt_in_sms" value="1" checked' in page
    assert Import.get_by_id(import_id).status == "validated"

    response = post(owner_client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1", "opt_in_sms": "1"},
                    headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page and 'data-step="progress"' in page
    assert response.headers["HX-Push-Url"] == f"/imports/{import_id}/progress"
    row = wait_for(import_id, ("completed", "failed"))
    assert row.status == "completed", row.error_message
    assert row.terms_version == "2026-11" and row.terms_accepted_by_id == owner_a.id and row.terms_ip == "127.0.0.1"
    assert row.options == {"opt_in_sms": True, "opt_in_email": False}

    response = owner_client.get(f"/imports/{import_id}/progress", headers=HTMX)
    page = response.get_data(as_text=True)
    assert "<html" not in page and "hx-trigger" not in page and "hx-get" not in page
    assert "HX-Request" in response.headers["Vary"]
    counts = dict((label, int(value)) for value, label in re.findall(
        r'<span class="stat-value">(\d+)</span> <span class="stat-label">([^<]+)</span>', page))
    assert counts == {"created": 3, "updated": 1, "unchanged": 0, "rejected": 1, "warning": 1}
    audience = Audience.get(Audience.source_import == import_id)
    assert f'href="/audiences/{audience.id}"' in page and audience.name in page
    assert f'href="/personas?import={import_id}"' in page and "View imported personas" in page
    assert f'href="/imports/{import_id}/report.csv"' in page
    assert AudienceMember.select().where(AudienceMember.audience == audience).count() == 4

    people = {p.email: p for p in Persona.select()}
    assert set(people) == {"ann@example.com", "bob@example.com", "cara@example.com", "old@example.com"}
    assert people["ann@example.com"].phone == "+14155550101" and people["ann@example.com"].points == 10
    assert people["cara@example.com"].first_name == '=HYPERLINK("http://x")' and people["cara@example.com"].points == 0
    assert people["old@example.com"].points == 120 and people["old@example.com"].first_name == "Olga"
    assert all(p.sms_opt_in for p in people.values())
    attributes = {(a.persona.email, a.name) for a in PersonaAttribute.select()}
    assert attributes == {("ann@example.com", "veteran"), ("cara@example.com", "veteran")}

    # The full page at the step URL; the personas list filtered by the import.
    full = owner_client.get(f"/imports/{import_id}/progress").get_data(as_text=True)
    assert "<html" in full and "Import complete" in full
    listing = owner_client.get(f"/personas?import={import_id}").get_data(as_text=True)
    assert "ann@example.com" in listing and "old@example.com" in listing


def test_whole_wizard_with_an_xlsx(owner_client, csrf):
    data = xlsx_bytes({"Customers": [["E-mail", "Cell", "Last Name", "Loyalty Points", "Customer Type"],
                                     ["ann@example.com", 4155550101, "Lee", 50, "med"],
                                     ["bob@example.com", 4155550102, "Stone", -5, "rec"]]})
    import_id = import_id_of(upload(owner_client, csrf, data, "customers.xlsx"))
    page = owner_client.get(f"/imports/{import_id}/uploaded").get_data(as_text=True)
    assert "customers.xlsx" in page and "2 customer rows" in page and "XLSX" in page
    assert page.count('class="field-found"') == 5
    row = run_wizard(owner_client, csrf, data, "customers.xlsx", opt_in_email="1")
    assert row.status == "completed" and row.counts["created"] == 2
    people = {p.email: p for p in Persona.select()}
    assert people["ann@example.com"].customer_type == "medical" and people["bob@example.com"].points == -5
    assert people["bob@example.com"].last_name == "Stone" and people["ann@example.com"].email_opt_in


def test_step_urls_lead_to_the_step_the_import_is_at(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    for step in ("review", "progress"):
        response = owner_client.get(f"/imports/{import_id}/{step}")
        assert response.status_code == 303 and response.headers["Location"] == f"/imports/{import_id}/uploaded"
    assert owner_client.get(f"/imports/{import_id}/mapping").status_code == 200  # a draft may go back and forth

    row = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), "second.csv")
    for step in ("uploaded", "mapping", "review"):
        response = owner_client.get(f"/imports/{row.id}/{step}")
        assert response.status_code == 303 and response.headers["Location"] == f"/imports/{row.id}/progress"
    # A second tab posting an old step gets the import's real state, not a second import.
    response = post(owner_client, csrf, f"/imports/{row.id}/review", {"accept_terms": "1"}, headers=HTMX)
    assert response.headers["HX-Push-Url"] == f"/imports/{row.id}/progress" and 'data-step="progress"' in response.get_data(as_text=True)
    response = post(owner_client, csrf, f"/imports/{row.id}/mapping", {"target-0": "email"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/progress")
    response = post(owner_client, csrf, f"/imports/{row.id}/remove")
    assert response.status_code == 303 and Import.get_or_none(Import.id == row.id) is not None


def test_going_back_to_mapping_after_review_revalidates(owner_client, csrf):
    row = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), accept=False)
    assert row.status == "validated" and StagedChunk.select().where(StagedChunk.upload == row.id).exists()
    page = owner_client.get(f"/imports/{row.id}/mapping").get_data(as_text=True)
    assert 'data-step="mapping"' in page
    response = post(owner_client, csrf, f"/imports/{row.id}/mapping", {**form_mapping(page), "target-3": "ignore"})
    assert response.status_code == 303
    row = wait_for(row.id)
    assert row.status == "validated" and row.review["warnings"] == 0 and "Points" not in row.mapping.values()


def test_a_failed_validation_shows_its_message(owner_client, csrf, app, monkeypatch):
    # A large file is not read to its end at upload: the background job counts it.
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    rows = [["Email", "Points"]] + [[f"p{n}@example.com", str(n)] for n in range(6)]
    response = upload(owner_client, csrf, csv_bytes(rows))
    import_id = import_id_of(response)
    wait_until(lambda: Import.get_by_id(import_id).row_count == 6)
    app.config["MAX_ROWS"] = 4  # lowered after the count: only the validation meets it
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    post(owner_client, csrf, f"/imports/{import_id}/mapping", form_mapping(page))
    row = wait_for(import_id)
    assert row.status == "failed"
    page = owner_client.get(f"/imports/{import_id}/review").get_data(as_text=True)
    assert "more than 4 customer rows" in page and 'href="/imports/new"' in page and "hx-trigger" not in page


# ---------------------------------------------------------------- who may do what

def test_staff_cannot_use_the_wizard(staff_client, owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    response = staff_client.get("/imports/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "Only account owners can run imports and reverts." in page and "<html" in page
    assert upload(staff_client, csrf, csv_bytes([HEADERS, *ROWS])).status_code == 403
    for step in ("uploaded", "mapping", "review"):
        assert staff_client.get(f"/imports/{import_id}/{step}").status_code == 403
    assert post(staff_client, csrf, f"/imports/{import_id}/mapping", {"target-0": "email"}).status_code == 403
    assert post(staff_client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1"}).status_code == 403
    assert post(staff_client, csrf, f"/imports/{import_id}/remove").status_code == 403
    assert Import.select().count() == 1
    assert staff_client.get("/imports/templates/points.csv").status_code == 200


def test_another_accounts_import_is_not_found(app, owner_client, csrf, owner_b, login):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS])))
    other = app.test_client()
    login(other, owner_b.email, owner_b.password)
    for step in ("uploaded", "mapping", "review", "progress", "report.csv", "revert"):
        assert other.get(f"/imports/{import_id}/{step}").status_code == 404, step
    assert other.get(f"/imports/{import_id}").status_code == 404
    for step in ("mapping", "review", "remove", "sheet", "header", "delete-file", "revert"):
        assert post(other, csrf, f"/imports/{import_id}/{step}", {"accept_terms": "1"}).status_code == 404, step
    assert Import.get_by_id(import_id).status == "draft"


def test_signed_out_users_go_to_the_login_page(client):
    response = client.get("/imports/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.get("/imports/new", headers=HTMX)
    assert response.status_code == 401 and "/login" in response.headers["HX-Redirect"]


def test_upload_without_csrf_token_is_refused(owner_client):
    response = owner_client.post("/imports/new", data={"file": (io.BytesIO(b"Email\na@example.com\n"), "a.csv")},
                                 content_type="multipart/form-data")
    assert response.status_code == 400 and Import.select().count() == 0


def test_the_same_file_again_is_named_at_the_uploaded_and_review_steps(owner_client, csrf):
    data = csv_bytes([HEADERS, *ROWS])
    first = run_wizard(owner_client, csrf, data, "march.csv")
    assert first.status == "completed"
    said = (f"This file was already imported on {first.finished_at:%Y-%m-%d} (import #{first.id}). "
            "Importing it again adds its points again.")
    again = run_wizard(owner_client, csrf, data, "march-copy.csv", accept=False)  # another name, the same bytes
    uploaded = owner_client.get(f"/imports/{again.id}/uploaded").get_data(as_text=True)
    review = owner_client.get(f"/imports/{again.id}/review").get_data(as_text=True)
    for page in (uploaded, review):
        assert f'<div class="alert alert-warning" role="status" data-duplicate>{said}</div>' in page
    assert 'name="accept_terms"' in review  # the user may go on

    other = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *ROWS[:2]]), "april.csv", accept=False)
    assert "data-duplicate" not in owner_client.get(f"/imports/{other.id}/uploaded").get_data(as_text=True)
    from webapp.importer.revert import revert

    revert(first.id, first.account_id, first.user_id)  # a reverted import no longer counts
    assert "data-duplicate" not in owner_client.get(f"/imports/{again.id}/review").get_data(as_text=True)
