"""The import wizard in Chromium, as a marketer uses it: upload, recognized fields, mapping, review with
consent, import with progress, the result; then personas, history and revert.

Each test drives the live app (SQLite, in-process import thread) with role, label and text locators
and saves a full-page screenshot of every step to test-artifacts/screenshots/<test>-<nn>-<step>.png.
"""
import csv
import io
import re
import time
import zipfile

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import BAD_PHONE, HEADERS, Wizard, people_csv, people_xlsx, step_url  # noqa: E402
from tests.engine_helpers import tune  # noqa: E402
from webapp.db import db  # noqa: E402
from webapp.importer.fields import CONTACT_MESSAGE  # noqa: E402
from webapp.models import Import, Persona, PersonaAttribute, utcnow  # noqa: E402
from webapp.words import counted  # noqa: E402


@pytest.fixture
def wizard(page, shot):
    return Wizard(page, shot, expect)


def personas_of(live) -> list[Persona]:
    with db.connection_context():
        return list(Persona.select().where(Persona.account == live.account.id).order_by(Persona.email))


def import_row(import_id: int) -> Import:
    with db.connection_context():
        return Import.get_by_id(import_id)


def full_import(wizard, path, rows: int, recognized=("Email", "Phone", "First Name", "Last Name", "Points")):
    """Upload a people file with one bad phone (row 2) through the wizard to the finished result."""
    page = wizard.page
    wizard.open()
    # Step 1 lists the known headers, the file types and the four templates (CSV and Excel each).
    upload_step = wizard.step()
    for text in ("Email", "Phone", "First Name", "Customer Type", ".csv", ".xlsx", ".xls"):
        expect(upload_step).to_contain_text(text)
    expect(page.locator(".known-headers")).to_contain_text("E-mail")
    expect(page.locator(".template-list > li")).to_have_count(4)
    expect(page.locator(".template-list").get_by_role("link", name="CSV")).to_have_count(4)
    expect(page.locator(".template-list").get_by_role("link", name="Excel")).to_have_count(4)
    expect(page.get_by_text("Drag and drop your file here")).to_be_visible()
    wizard.snap("upload")

    # Step 2: a ✓ per recognized field, the name, the row count, the unknown header, Remove and Next.
    wizard.upload(path)
    assert sorted(wizard.found_fields()) == sorted(recognized)
    expect(page.locator("[data-row-count]")).to_have_text(f"{rows:,} customer rows")
    expect(page.locator(".unknown-headers li")).to_have_count(1)
    expect(page.locator(".unknown-headers")).to_contain_text("Veteran")
    expect(page.get_by_role("button", name="Remove")).to_be_visible()

    # Step 3: auto-matched selects; the unknown yes/no column becomes the custom attribute "Veteran".
    wizard.to_mapping()
    expected = {"Email": "email", "Phone": "phone", "First Name": "first_name", "Last Name": "last_name",
                "Points": "points"}
    for index, header in enumerate(HEADERS):
        select = page.locator(f"select[name='target-{index}']")
        if header in expected:
            expect(select).to_have_value(expected[header])
        expect(page.locator(f"input[name='attribute-{index}']")).to_be_attached()
    expect(page.get_by_role("row", name=re.compile("Email")).first).to_contain_text("customer000001@example.com")
    veteran = page.get_by_label("Persona field for “Veteran”")
    veteran.select_option(label="Custom attribute")
    expect(page.get_by_label("Attribute name").nth(5)).to_have_value(re.compile("^veteran$", re.I))
    # A reload keeps the wizard where it was (state on the server, URL per step).
    page.reload()
    expect(wizard.step()).to_have_attribute("data-step", "mapping")
    page.get_by_label("Persona field for “Veteran”").select_option(label="Custom attribute")

    # Step 4: the dry run's counts, the bad phone as a warning, the report, consent and terms.
    wizard.submit_mapping()
    counts = wizard.counts("review")
    assert counts["will create"] == rows and counts["will be rejected"] == 0 and counts["warning"] == 1, counts
    problems = page.locator(".problems-table tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text(BAD_PHONE)
    expect(problems.first).to_contain_text("not a valid phone number")
    expect(problems.first.locator("td").first).to_have_text("3")  # line 3 of the file: header + row 2
    group = page.locator(".problem-group")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("1 row: not a valid phone number")
    expect(group.locator(".problem-fix")).to_contain_text("Check these numbers have all their digits")
    expect(problems.first.locator("td.who")).to_have_text("customer000002@example.com")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the problem report").click()
    report = download.value.path().read_text(encoding="utf-8-sig")
    assert BAD_PHONE in report and "customer000002@example.com" in report, report
    expect(page.locator("#terms")).to_contain_text("Consent terms")
    # "I accept" is required: without it the browser does not submit.
    page.get_by_role("button", name="Import Personas").click()
    expect(page).to_have_url(step_url("review"))
    assert page.get_by_label("I accept").evaluate("box => !box.validity.valid")

    # Step 5: queued at once, the progress bar, then the result.
    wizard.import_personas(sms=True)
    wizard.wait_finished()
    counts = wizard.counts("result")
    assert (counts["created"], counts["updated"], counts["unchanged"], counts["rejected"]) == (rows, 0, 0, 0), counts
    assert counts["warning"] == 1, counts
    # Not green: a row had a warning.
    expect(page.locator(".alert-warning[data-result=problems]")).to_contain_text(
        f"{counted(rows, 'row')} imported, 0 rejected, 1 warning")
    audience = page.locator(".result-links").get_by_role("link").first
    expect(audience).to_contain_text(path.name)
    expect(page.get_by_role("link", name="Download the problem report")).to_be_visible()
    return wizard.import_id()


def check_personas_page(wizard, live, rows: int):
    page = wizard.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Personas").click()
    expect(page).to_have_url(re.compile(r"/personas$"))
    for i in (1, 2, rows):
        expect(page.get_by_role("link", name=f"customer{i:06d}@example.com")).to_be_visible()
    expect(page.get_by_text(f"First{rows} Last{rows}")).to_be_visible()
    wizard.snap("personas")

    saved = personas_of(live)
    assert len(saved) == rows
    by_email = {p.email: p for p in saved}
    assert by_email["customer000001@example.com"].phone == "+14152000001"
    assert by_email["customer000002@example.com"].phone is None  # the bad phone was skipped, the row kept
    assert all(p.sms_opt_in for p in saved)  # "Opt in all personas in this file to SMS"
    assert not any(p.email_opt_in for p in saved)


def test_whole_wizard_with_csv(wizard, live, tmp_path):
    path = people_csv(tmp_path / "spring-customers.csv", 6, bad_phone_row=2)
    import_id = full_import(wizard, path, 6)
    # The audience link leads to the generated audience with the six people.
    wizard.page.locator(".result-links").get_by_role("link").first.click()
    expect(wizard.page.get_by_text("customer000006@example.com")).to_be_visible()
    wizard.snap("audience")
    check_personas_page(wizard, live, 6)
    assert import_row(import_id).status == "completed"


def test_whole_wizard_with_xlsx(wizard, live, tmp_path):
    path = people_xlsx(tmp_path / "store-export.xlsx", 5, bad_phone_row=2)
    full_import(wizard, path, 5)
    check_personas_page(wizard, live, 5)
    with db.connection_context():
        veterans = sorted(p.email for p in Persona.select().join(PersonaAttribute)
                          .where(PersonaAttribute.name == "veteran"))
    assert veterans == ["customer000003@example.com"]


def test_bad_files_show_their_message_and_remove_discards(wizard, tmp_path):
    page = wizard.page
    wizard.open()
    pdf = tmp_path / "customers.csv"
    pdf.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    page.get_by_label("Upload File").set_input_files(pdf)
    alert = wizard.step().locator(".alert-error")
    expect(alert).to_contain_text("This is a PDF document, not a spreadsheet.")
    expect(alert).to_contain_text("customers.csv")
    expect(alert).to_have_attribute("role", "alert")
    expect(page).to_have_url(re.compile(r"/imports/new$"))
    wizard.snap("pdf-refused")

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    page.get_by_label("Upload File").set_input_files(empty)
    expect(wizard.step().locator(".alert-error")).to_contain_text("empty")
    expect(wizard.step().locator(".alert-error")).to_contain_text("empty.csv")
    wizard.snap("empty-refused")

    header_only = tmp_path / "header-only.csv"
    header_only.write_text("Email,Phone\n")
    page.get_by_label("Upload File").set_input_files(header_only)
    expect(wizard.step().locator(".alert-error")).to_contain_text("no customer rows")
    wizard.snap("header-only-refused")

    # A good file after the refusals goes through; Remove discards it and returns to step 1.
    wizard.upload(people_csv(tmp_path / "fine.csv", 2))
    page.get_by_role("button", name="Remove").click()
    expect(page).to_have_url(re.compile(r"/imports/new$"))
    expect(wizard.step()).to_have_attribute("data-step", "upload")
    wizard.snap("removed")
    with db.connection_context():
        assert Import.select().count() == 0


def test_mapping_errors_inline(wizard, tmp_path):
    page = wizard.page
    wizard.open()
    # Dropped on the drop zone (not on the file input inside it): upload.js hands the file to the input.
    text = people_csv(tmp_path / "mapping.csv", 3).read_text()
    dropped = page.evaluate_handle(
        """([name, text]) => {
             const data = new DataTransfer();
             data.items.add(new File([text], name, {type: "text/csv"}));
             return data;
           }""", ["dropped.csv", text])
    page.locator("[data-dropzone]").dispatch_event("dragenter", {"dataTransfer": dropped})
    expect(page.locator("[data-dropzone]")).to_have_class(re.compile("is-dragover"))
    page.locator("[data-dropzone]").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page).to_have_url(step_url("uploaded"))
    expect(page.locator(".file-name")).to_have_text("dropped.csv")
    expect(page.locator("[data-row-count]")).to_have_text("3 customer rows")
    wizard.snap("dropped")
    wizard.to_mapping()

    # Two columns to one field: the message inline, both selects marked invalid, choices kept.
    page.get_by_label("Persona field for “Phone”").select_option(label="Email")
    page.get_by_role("button", name="Next").click()
    alert = page.locator(".alert-error[role=alert]")
    expect(alert).to_contain_text("Email is mapped from two columns: Email, Phone")
    expect(page).to_have_url(step_url("mapping"))
    expect(page.get_by_label("Persona field for “Phone”")).to_have_value("email")
    expect(page.get_by_label("Persona field for “Phone”")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Persona field for “Email”")).to_have_attribute("aria-invalid", "true")
    wizard.snap("two-columns-one-field")

    # Everything ignored: neither email nor phone.
    for index in range(len(HEADERS)):
        page.locator(f"select[name='target-{index}']").select_option("ignore")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".alert-error[role=alert]")).to_have_text(CONTACT_MESSAGE)
    wizard.snap("no-email-or-phone")

    # A custom attribute needs a name.
    page.locator("select[name='target-0']").select_option("email")
    page.get_by_label("Persona field for “Veteran”").select_option(label="Custom attribute")
    page.locator("input[name='attribute-5']").fill("")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".alert-error[role=alert]")).to_contain_text("custom attribute without a name")
    wizard.snap("attribute-without-name")

    # Fixed: on to the review.
    page.locator("input[name='attribute-5']").fill("Veteran")
    wizard.submit_mapping()
    assert wizard.counts("review")["will create"] == 3


def test_progress_bar_advances_on_a_large_file(wizard, live, tmp_path, monkeypatch):
    # Small chunks: many checkpoints, so the bar moves between two polls (one a second), even on a machine
    # fast enough to apply 500-row chunks of 30,000 rows within two polls.
    tune(monkeypatch, IMPORT_CHUNK_ROWS=200)
    rows = 30_000
    page = wizard.page
    wizard.open()
    path = people_csv(tmp_path / "big-export.csv", rows)
    wizard.upload(path)
    wizard.to_mapping()
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(step_url("review"))
    expect(wizard.step()).to_have_attribute("data-status", "validated", timeout=120_000)
    wizard.snap("review")
    assert wizard.counts("review")["will create"] == rows

    page.get_by_label("I accept").check()
    page.get_by_role("button", name="Import Personas").click()
    expect(page).to_have_url(re.compile(r"/imports/\d+/progress$"))
    seen_values, seen_texts, started = [], [], time.monotonic()
    while time.monotonic() - started < 120:
        step = page.locator("#wizard-step")
        try:
            status = step.get_attribute("data-status", timeout=2000)
            if status in ("queued", "running"):
                bar = step.locator("progress")
                value, label = bar.get_attribute("value", timeout=1000), step.locator("[data-rows-done]").inner_text(
                    timeout=1000)
                if value is not None and value not in seen_values:
                    seen_values.append(value)
                    if len(seen_values) == 2:
                        wizard.snap("progress")
                if label not in seen_texts:
                    seen_texts.append(label)
            elif status is not None:
                break
        except Exception:  # noqa: BLE001 - the partial was swapped out between two reads: read again
            pass
        page.wait_for_timeout(150)
    wizard.wait_finished(timeout=120_000)
    assert wizard.counts("result")["created"] == rows
    elapsed = time.monotonic() - started
    print(f"import of {rows} rows: {elapsed:.1f}s; progress values {seen_values}; texts {seen_texts}")
    moving = [int(v) for v in seen_values if 0 < int(v) < rows]
    assert len(set(moving)) >= 2, f"the bar did not advance visibly: values {seen_values}, texts {seen_texts}"
    assert moving == sorted(moving), seen_values


def test_revert_from_history(wizard, live, tmp_path):
    page = wizard.page
    wizard.open()
    wizard.upload(people_csv(tmp_path / "to-revert.csv", 4))
    wizard.to_mapping()
    wizard.submit_mapping()
    wizard.import_personas(email=True)
    wizard.wait_finished()
    import_id = wizard.import_id()
    assert len(personas_of(live)) == 4

    page.get_by_role("link", name="Import history").click()
    expect(page).to_have_url(re.compile(r"/imports$"))
    row = page.locator(f"#import-{import_id}")
    expect(row).to_contain_text("to-revert.csv")
    expect(row.locator("[data-status]")).to_have_text("Completed")
    expect(row).to_contain_text(live.email)
    wizard.snap("history")

    row.get_by_role("link", name="Revert", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/imports/{import_id}/revert$"))
    expect(page.get_by_role("heading", name=re.compile(r"Revert import #\d+: to-revert.csv\?"))).to_be_visible()
    expect(page.locator(".revert")).to_contain_text("remove 4 personas it created that nothing changed since")
    expect(page.locator(".revert")).to_contain_text("Everything this import did can be reverted.")
    wizard.snap("revert-confirm")
    page.get_by_role("button", name="Revert import").click()
    expect(page.get_by_role("heading", name=f"Import #{import_id} reverted")).to_be_visible()
    expect(page.locator("[data-reverted]")).to_have_text("4")
    wizard.snap("reverted")
    assert import_row(import_id).status == "reverted"
    assert [p for p in personas_of(live) if not p.archived] == []

    page.get_by_role("link", name="Back to the import history").click()
    row = page.locator(f"#import-{import_id}")
    expect(row.locator("[data-status]")).to_have_text("Reverted")
    expect(row.get_by_role("link", name="Revert", exact=True)).to_have_count(0)
    wizard.snap("history-after-revert")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Personas").click()
    expect(page.get_by_text("customer000001@example.com")).to_have_count(0)


TEMPLATE_SLUGS = ("provider", "sms-consent", "points", "attributes")


def test_the_four_templates_import_unaided(wizard, live, tmp_path):
    """The issue's done-criterion: someone who never saw the app downloads the four templates from
    step 1 and imports each one through the browser, accepting every default the wizard offers."""
    page = wizard.page
    wizard.open()
    files = {}
    for index in range(4):
        item = page.locator(".template-list > li").nth(index)
        for link, ext in (("CSV", "csv"), ("Excel", "xlsx")):
            with page.expect_download() as download:
                item.get_by_role("link", name=link).click()
            target = tmp_path / download.value.suggested_filename
            download.value.save_as(target)
            assert target.suffix == f".{ext}", target
            files[(index, ext)] = target
    assert len({path.name for path in files.values()}) == 8
    for (_index, ext), path in files.items():
        data = path.read_bytes()
        if ext == "xlsx":
            assert zipfile.is_zipfile(io.BytesIO(data)), path
        else:
            assert len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))) >= 2, path

    # Import the four templates, alternating CSV and Excel, with the wizard's defaults only.
    for index in range(4):
        ext = "csv" if index % 2 == 0 else "xlsx"
        path = files[(index, ext)]
        wizard.open()
        wizard.upload(path, name=f"template{index + 1}-uploaded")
        expect(page.get_by_role("link", name="Next")).to_be_visible()
        wizard.to_mapping(name=f"template{index + 1}-mapping")
        wizard.submit_mapping(name=f"template{index + 1}-review")
        counts = wizard.counts("review")
        assert counts["will be rejected"] == 0, (path.name, counts)
        wizard.import_personas(name=f"template{index + 1}-importing")
        wizard.wait_finished(name=f"template{index + 1}-finished")
        result = wizard.counts("result")
        assert result["rejected"] == 0 and result["created"] + result["updated"] + result["unchanged"] > 0, \
            (path.name, result)
    # What the four files did together: provider created three people, sms-consent added Dana and
    # an opt-out, points added and subtracted, attributes set types and custom attributes.
    people = {p.email: p for p in personas_of(live)}
    assert sorted(people) == ["dana.wells@example.com", "james.okafor@example.com", "maria.lopez@example.com",
                              "sam.chen@example.com"]
    maria, james, sam = (people[f"{n}@example.com"] for n in ("maria.lopez", "james.okafor", "sam.chen"))
    assert (maria.points, james.points, sam.points) == (170, 840, 100)
    assert maria.sms_opt_in and james.sms_opt_out and not james.sms_opt_in
    assert (maria.customer_type or "").lower() == "recreational" and (james.customer_type or "").lower() == "medical"
    with db.connection_context():
        attributes = sorted((a.persona.email, a.name) for a in PersonaAttribute.select().join(Persona))
    assert attributes == [("james.okafor@example.com", "locals"), ("james.okafor@example.com", "veteran"),
                          ("maria.lopez@example.com", "locals"), ("sam.chen@example.com", "police")], attributes
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Personas").click()
    expect(page.get_by_role("link", name="dana.wells@example.com")).to_be_visible()
    wizard.snap("personas")


def test_back_button_second_tab_and_expired_session(wizard, live, page, tmp_path):
    """Back, a second tab and a lost session never lose or mix up a wizard (SPEC section 1)."""
    wizard.open()
    wizard.upload(people_csv(tmp_path / "first-tab.csv", 2))
    wizard.to_mapping()
    first_url = page.url

    # A second tab runs its own wizard; neither sees the other's file.
    other = page.context.new_page()
    other.goto("/imports/new")
    other.get_by_label("Upload File").set_input_files(people_csv(tmp_path / "second-tab.csv", 3))
    expect(other.get_by_role("heading", name="Uploaded: second-tab.csv")).to_be_visible()
    assert other.url != first_url
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Review first-tab.csv")).to_be_visible()
    other.get_by_role("link", name="Next").click()
    expect(other.get_by_role("heading", name="Map the columns of second-tab.csv")).to_be_visible()
    wizard.snap("second-tab-mapping", other)
    other.close()

    # Back from the review returns to the mapping (a full page: htmx keeps no snapshots), Forward to the review.
    page.go_back()
    expect(page).to_have_url(step_url("mapping"))
    expect(page.get_by_role("heading", name="Map the columns of first-tab.csv")).to_be_visible()
    page.go_forward()
    expect(page.get_by_role("heading", name="Review first-tab.csv")).to_be_visible()
    # No customer data in browser storage (no htmx history cache).
    stored = page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert "example.com" not in stored, stored

    # The session is lost mid-wizard (expired, signed out elsewhere): the post queues nothing and goes
    # to the sign-in page, and signing in returns to the same step of the same import.
    review_url = page.url
    import_id = wizard.import_id()
    page.context.clear_cookies()
    page.get_by_label("I accept").check()
    page.get_by_role("button", name="Import Personas").click()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    wizard.snap("session-lost-mid-wizard")
    assert import_row(import_id).status == "validated"  # nothing was queued
    page.get_by_label("Email").fill(live.email)
    page.get_by_label("Password").fill(live.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(review_url)
    expect(page.get_by_role("heading", name="Review first-tab.csv")).to_be_visible()
    wizard.import_personas()
    wizard.wait_finished()
    # Back after the import: the wizard's earlier steps now lead to the result, never to a second import.
    page.go_back()
    expect(wizard.step()).to_have_attribute("data-step", "progress")
    expect(page.get_by_role("heading", name=re.compile("^Import complete: first-tab.csv"))).to_be_visible()
    page.goto(first_url)  # the mapping step of a finished import
    expect(page).to_have_url(re.compile(r"/imports/\d+/progress$"))
    wizard.snap("old-step-after-import")


def test_sheet_picker_for_a_workbook_with_several_sheets(wizard, tmp_path):
    page = wizard.page
    path = tmp_path / "two-sheets.xlsx"
    people_xlsx(path, 3)
    from openpyxl import load_workbook

    workbook = load_workbook(path)
    stores = workbook.create_sheet("Stores", 0)  # first: the reader must not just take it
    stores.append(["Store", "City"])
    stores.append(["Downtown", "Denver"])
    workbook.save(path)

    wizard.open()
    page.get_by_label("Upload File").set_input_files(path)
    expect(page).to_have_url(step_url("uploaded"))
    picker = page.get_by_label("Sheet to import")
    expect(picker).to_be_visible()
    # Each sheet's rows, and the sheet with the most of them preselected (not the first).
    assert picker.locator("option").all_inner_texts() == ["Stores (1 row)", "Customers (3 rows)"]
    expect(picker).to_have_value("Customers")
    expect(page.get_by_role("link", name="Next")).to_have_count(0)  # no Next before a sheet is chosen
    wizard.snap("choose-sheet")
    picker.select_option("Customers")
    page.get_by_role("button", name="Use this sheet").click()
    expect(page.locator(".file-facts")).to_contain_text("Customers")
    expect(page.locator("[data-row-count]")).to_have_text("3 customer rows")
    assert "Email" in wizard.found_fields()
    wizard.snap("sheet-chosen")
    wizard.to_mapping()
    wizard.submit_mapping()
    assert wizard.counts("review")["will create"] == 3


def test_a_large_workbook_is_described_while_the_step_waits_then_fills_in(wizard, live, tmp_path, monkeypatch):
    import threading

    from tests.workbooks import write_workbook
    from webapp.importer import flow

    live.app.config["READ_NOW_MB"] = 0.01  # so a small test file is a "large" workbook, read in the background
    gate, real = threading.Event(), flow.finish_description
    monkeypatch.setattr(flow, "finish_description", lambda *args: (gate.wait(30), real(*args)))
    path = write_workbook(tmp_path / "big-book.xlsx", {"Stores": 1, "Customers": 30}, note_bytes=400)
    page = wizard.page
    wizard.open()
    page.get_by_label("Upload File").set_input_files(path)
    expect(page).to_have_url(step_url("uploaded"))
    expect(page.locator("[data-row-count]")).to_contain_text("describing your file…")
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    wizard.snap("describing")
    gate.set()  # the job reads it; the step's poll brings the sheets in
    picker = page.get_by_label("Sheet to import")
    expect(picker).to_be_visible()
    assert picker.locator("option").all_inner_texts() == ["Stores (1 row)", "Customers (30 rows)"]
    expect(picker).to_have_value("Customers")
    wizard.snap("sheets-counted")
    page.get_by_role("button", name="Use this sheet").click()
    expect(page.locator("[data-row-count]")).to_have_text("30 customer rows")
    expect(page.get_by_role("link", name="Next")).to_be_visible()
    assert "Email" in wizard.found_fields()
    wizard.snap("sheet-read")


# ---------------------------------------------------------------------------------------------- layout checks

def test_history_actions_visible_without_scrolling(page, live):
    with db.connection_context():
        Import.create(account=live.account.id, user=live.owner.id, file_name="march-export.csv", kind="csv",
                      status="completed", terms_accepted_at=utcnow(), rows_total=120, row_count=120,
                      counts={"created": 100, "updated": 15, "unchanged": 3, "rejected": 2, "warnings": 4})
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/imports")
    wrap = page.locator(".table-wrap")
    expect(wrap).to_be_visible()
    scroll_width, client_width = wrap.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll_width <= client_width, f"the table needs {scroll_width} px, its box is {client_width} px"


def test_multi_sheet_workbook_shows_its_type(wizard, tmp_path):
    from openpyxl import Workbook

    path = tmp_path / "two-sheets.xlsx"
    workbook = Workbook()
    workbook.active.append(["Store"])
    workbook.active.append(["Downtown"])
    people = workbook.create_sheet("Customers")
    people.append(["Email"])
    people.append(["a@example.com"])
    workbook.save(path)
    wizard.open()
    wizard.page.get_by_label("Upload File").set_input_files(path)
    expect(wizard.page.get_by_label("Sheet to import")).to_be_visible()
    expect(wizard.page.locator(".file-facts")).to_contain_text("XLSX", timeout=2000)
