"""The Map step's live checks and remembered-mapping notes, and unfinished imports discarded, in Chromium."""
import re

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import Wizard, people_csv, step_url  # noqa: E402
from webapp.db import db  # noqa: E402
from webapp.importer.fields import CONTACT_MESSAGE  # noqa: E402
from webapp.models import Import  # noqa: E402


@pytest.fixture
def wizard(page, shot):
    # Counts htmx's settled swaps: a new step's controls answer only once htmx has processed them.
    page.add_init_script("document.addEventListener('htmx:afterSettle', () => {"
                         " window.settles = (window.settles || 0) + 1; })")
    return Wizard(page, shot, expect)


def choose(page, select, label: str) -> None:
    """Change a select as a user does (focused first), and wait for the checked step to settle in its place."""
    before = page.evaluate("window.settles || 0")
    select.focus()
    select.select_option(label=label)
    page.wait_for_function("n => (window.settles || 0) > n", arg=before)


def test_mapping_errors_show_as_a_select_changes_and_a_remembered_column_resets(wizard, tmp_path):
    page = wizard.page
    wizard.open()
    # Only one way to upload where the upload starts by itself: no second "Upload" button, the hint instead.
    expect(page.get_by_text("The upload starts by itself once you choose or drop a file.")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_have_count(0)

    wizard.upload(people_csv(tmp_path / "first.csv", 3))
    wizard.to_mapping()
    # Two columns to one field: said as soon as the select changes, before Next; nothing saved.
    choose(page, page.get_by_label("Persona field for “Phone”"), "Email")
    alert = page.locator(".alert-error[role=alert]")
    expect(alert).to_contain_text("Email is mapped from two columns: Email, Phone")
    expect(page.get_by_label("Persona field for “Phone”")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Persona field for “Phone”")).to_be_focused()  # the swap kept the user's place
    expect(page).to_have_url(step_url("mapping"))
    wizard.snap("checked-on-change")
    choose(page, page.get_by_label("Persona field for “Phone”"), "Ignore")
    expect(alert).to_have_count(0)
    choose(page, page.get_by_label("Persona field for “Email”"), "Ignore")
    expect(alert).to_have_text(CONTACT_MESSAGE)
    choose(page, page.get_by_label("Persona field for “Email”"), "Email")
    expect(alert).to_have_count(0)
    wizard.submit_mapping()  # Email only, Phone ignored: remembered for the next file

    wizard.open()
    wizard.upload(people_csv(tmp_path / "second.csv", 3))
    wizard.to_mapping()
    phone = page.get_by_label("Persona field for “Phone”")
    expect(phone).to_have_value("ignore")
    note = page.locator(".prefill-note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text(re.compile(r"As in your import of \d{1,2} [A-Z][a-z]{2}\."))
    wizard.snap("remembered-note")
    before = page.evaluate("window.settles || 0")
    note.get_by_role("button", name=re.compile("Reset “Phone” to the automatic match: Phone")).click()
    page.wait_for_function("n => (window.settles || 0) > n", arg=before)
    expect(phone).to_have_value("phone")
    expect(phone).to_be_focused()
    expect(page.locator(".prefill-note")).to_have_count(0)
    # Back to the remembered choice: the note is back. Enter in a text box is Next, never a reset further up.
    choose(page, phone, "Ignore")
    expect(page.locator(".prefill-note")).to_have_count(1)
    choose(page, page.get_by_label("Persona field for “Veteran”"), "Custom attribute")
    page.locator("input[name='attribute-5']").press("Enter")
    expect(page).to_have_url(step_url("review"))
    with db.connection_context():
        assert Import.get_by_id(wizard.import_id()).mapping["Phone"] == "ignore"


def test_an_unfinished_import_is_discarded_from_the_upload_step_and_the_history(wizard, live, tmp_path):
    page = wizard.page
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
    wizard.open()
    wizard.upload(people_csv(tmp_path / "left-behind.csv", 2))
    wizard.open()
    drafts = page.locator(".draft-item")
    expect(drafts).to_have_count(1)
    drafts.get_by_role("button", name="Discard the unfinished import left-behind.csv").click()
    expect(page.get_by_text("“left-behind.csv” was removed with its stored file.")).to_be_visible()
    expect(page.locator(".draft-item")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/imports/new$"))

    wizard.upload(people_csv(tmp_path / "from-history.csv", 2))
    page.goto("/imports")
    page.get_by_role("button", name="Discard the unfinished import from-history.csv").click()
    expect(page.get_by_text("“from-history.csv” was removed with its stored file.")).to_be_visible()
    expect(page.get_by_text("No imports yet.")).to_be_visible()
    wizard.snap("discarded-from-history")
    with db.connection_context():
        assert Import.select().count() == 0
