"""The Map step: a column pre-filled from an earlier import says so and resets in one click; errors are
re-checked as a select changes (HTMX on change), without saving anything."""
import datetime
import re

from tests.test_wizard import HTMX, csv_bytes, form_mapping, import_id_of, post, run_wizard, selected, upload, wait_for
from tests.test_words import text_of
from webapp.importer.fields import CONTACT_MESSAGE
from webapp.models import Import, RememberedMapping
from webapp.words import day_month

FILE = csv_bytes([["Contact", "Email", "Cell"], ["ann@example.com", "ann.work@example.com", "4155550101"]])


def map_once(client, csrf, mapping: dict) -> Import:
    """A first import of FILE with the user's own choices, confirmed (and so remembered)."""
    return run_wizard(client, csrf, FILE, "first.csv", mapping=mapping, accept=False)


def test_a_column_prefilled_from_an_earlier_import_says_so_and_resets_to_the_automatic_match(owner_client, csrf):
    first = map_once(owner_client, csrf, {"target-0": "email", "target-1": "ignore"})
    assert first.mapping == {"Contact": "email", "Email": "ignore", "Cell": "phone"}
    when = RememberedMapping.get(RememberedMapping.header_key == "contact").remembered_at
    assert RememberedMapping.get(RememberedMapping.header_key == "contact").import_id == first.id

    import_id = import_id_of(upload(owner_client, csrf, FILE, "second.csv"))
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    assert [selected(page, i) for i in range(3)] == ["email", "ignore", "phone"]
    notes = re.findall(r'<p class="prefill-note hint" id="note-(\d+)"', page)
    # Contact and Email differ from what the automatic match would choose; Cell is phone either way.
    assert notes == ["0", "1"]
    words = text_of(page)
    assert f"As in your import of {day_month(when)}. Reset to the automatic match (Ignore)" in words
    assert f"As in your import of {day_month(when)}. Reset to the automatic match (Email)" in words
    assert 'title="From first.csv"' in page and 'aria-describedby="note-1"' in page

    # One click: the column gets the automatic match back (its select focused), the others keep the memory.
    version = Import.get_by_id(import_id).version
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping/check",
                    {**form_mapping(page), "reset": "1"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page and 'data-step="mapping"' in page
    assert [selected(page, i) for i in range(3)] == ["email", "email", "phone"]
    assert re.search(r'<select id="target-1" name="target-1"[^>]*autofocus', page)
    assert re.findall(r'id="note-(\d+)"', page) == ["0"]  # the reset column's note is gone
    # Two columns now fill Email: said at once, nothing saved, nothing moved.
    assert "Email is mapped from two columns: Contact, Email" in page and page.count('aria-invalid="true"') == 2
    row = Import.get_by_id(import_id)
    assert (row.mapping["Email"], row.version, row.status) == ("ignore", version, "draft")

    # Without script the reset button posts the whole form to the check too: the page, not a partial.
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping/check", {**form_mapping(page), "reset": "0"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert [selected(page, i) for i in range(3)] == ["ignore", "email", "phone"] and "prefill-note" not in page


def test_no_note_where_the_memory_agrees_with_the_automatic_match_or_no_import_was_before(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, FILE))
    assert "prefill-note" not in owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    map_once(owner_client, csrf, {})  # the automatic match confirmed as it was
    again = import_id_of(upload(owner_client, csrf, FILE, "again.csv"))
    assert Import.get_by_id(again).prefilled == {}
    assert "prefill-note" not in owner_client.get(f"/imports/{again}/mapping").get_data(as_text=True)


def test_a_changed_note_choice_drops_the_note_and_an_older_memory_has_no_date(owner_client, csrf):
    map_once(owner_client, csrf, {"target-0": "email", "target-1": "ignore"})
    RememberedMapping.update(import_id=None, remembered_at=None).execute()  # remembered before imports were named
    import_id = import_id_of(upload(owner_client, csrf, FILE, "second.csv"))
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    assert "As in an earlier import. Reset to the automatic match (Ignore)" in text_of(page)
    changed = {**form_mapping(page), "target-0": "first_name"}
    page = post(owner_client, csrf, f"/imports/{import_id}/mapping/check", changed, headers=HTMX).get_data(as_text=True)
    assert re.findall(r'id="note-(\d+)"', page) == ["1"]


def test_mapping_errors_are_checked_as_a_select_changes(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, FILE))
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    # The table re-asks on every change, inside the form (so with every choice, the CSRF token and the version).
    assert re.search(r'<div class="table-wrap" hx-post="/imports/%d/mapping/check" hx-trigger="change"' % import_id,
                     page)
    none = {**form_mapping(page), "target-0": "ignore", "target-1": "ignore", "target-2": "ignore"}
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping/check", none, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and CONTACT_MESSAGE in page and 'id="mapping-errors"' in page
    assert [selected(page, i) for i in range(3)] == ["ignore", "ignore", "ignore"]  # the choices as made
    fixed = {**none, "target-2": "phone"}
    page = post(owner_client, csrf, f"/imports/{import_id}/mapping/check", fixed, headers=HTMX).get_data(as_text=True)
    assert "mapping-errors" not in page and CONTACT_MESSAGE not in page
    assert Import.get_by_id(import_id).mapping == {"Contact": "ignore", "Email": "email", "Cell": "phone"}


def test_a_check_from_a_page_shown_before_a_change_says_so(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, FILE))
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    stale = Import.get_by_id(import_id).version
    post(owner_client, csrf, f"/imports/{import_id}/mapping", form_mapping(page))  # another tab: Next
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping/check",
                    {**form_mapping(page), "version": stale}, headers=HTMX)
    assert response.status_code == 409 and "changed in another tab" in response.get_data(as_text=True)
    assert wait_for(import_id).status == "validated"  # the other tab's dry run ends before the database does


def test_day_month_names_the_year_only_when_it_is_not_this_one():
    today = datetime.date(2026, 12, 4)
    assert day_month("2026-11-12", today) == "12 Nov"
    assert day_month(datetime.datetime(2025, 1, 3, 10, 0), today) == "3 Jan 2025"
