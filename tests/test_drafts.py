"""Unfinished imports: discarded from the history or the Upload step's list (a CSRF post from the version shown),
and removed with their stored files once nobody touched them for 7 days."""
import datetime
import re

from tests.test_wizard import HTMX, csv_bytes, import_id_of, post, run_wizard, upload
from tests.test_words import text_of
from webapp.importer import drafts
from webapp.models import Import, UploadChunk, utcnow
from worker.queue import expire_drafts

FILE = csv_bytes([["Email", "Points"], ["ann@example.com", "5"]])


def new_draft(client, csrf, name: str = "unfinished.csv") -> int:
    return import_id_of(upload(client, csrf, FILE, name))


def chunks_of(import_id: int) -> int:
    return UploadChunk.select().where(UploadChunk.upload == import_id).count()


def test_a_draft_is_discarded_from_the_history_with_its_file(owner_client, csrf):
    import_id = new_draft(owner_client, csrf)
    done = run_wizard(owner_client, csrf, FILE, "finished.csv")
    history = owner_client.get("/imports").get_data(as_text=True)
    draft_row = re.search(r'<tr id="import-%d">.*?</tr>' % import_id, history, re.S).group(0)
    done_row = re.search(r'<tr id="import-%d">.*?</tr>' % done.id, history, re.S).group(0)
    assert f'action="/imports/{import_id}/discard"' in draft_row and 'name="back" value="history"' in draft_row
    version = Import.get_by_id(import_id).version
    assert 'name="csrf_token"' in draft_row and f'name="version" value="{version}"' in draft_row
    assert "hx-confirm=\"Remove the unfinished import “unfinished.csv”" in draft_row
    assert "/discard" not in done_row  # a submitted import is never discarded, only its file deleted

    assert chunks_of(import_id) == 1
    response = post(owner_client, csrf, f"/imports/{import_id}/discard", {"back": "history"}, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="imports-history"' in page and "<html" not in page
    assert response.headers["HX-Push-Url"] == "/imports"
    assert "“unfinished.csv” was removed with its stored file. Nothing was imported from it." in page
    assert f'id="import-{import_id}"' not in page and f'id="import-{done.id}"' in page
    assert Import.get_or_none(Import.id == import_id) is None and chunks_of(import_id) == 0
    assert Import.get_by_id(done.id).status == "completed"


def test_a_draft_is_discarded_from_the_upload_steps_list(owner_client, csrf):
    import_id = new_draft(owner_client, csrf)
    page = owner_client.get("/imports/new").get_data(as_text=True)
    assert "You have imports you did not finish. Unfinished imports untouched for 7 days are removed." in text_of(page)
    assert f'action="/imports/{import_id}/discard"' in page and 'name="back" value="upload"' in page

    response = post(owner_client, csrf, f"/imports/{import_id}/discard", {"back": "upload"})
    assert response.status_code == 303 and response.headers["Location"] == "/imports/new"
    page = owner_client.get("/imports/new").get_data(as_text=True)
    assert "“unfinished.csv” was removed with its stored file." in page and "did not finish" not in page
    assert Import.select().count() == 0


def test_a_discard_from_a_page_shown_before_a_change_does_nothing(owner_client, csrf):
    import_id = new_draft(owner_client, csrf)
    shown = Import.get_by_id(import_id).version
    post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "1"})  # another tab moved it
    response = post(owner_client, csrf, f"/imports/{import_id}/discard", {"back": "history", "version": shown},
                    headers=HTMX)
    assert response.status_code == 409 and 'id="imports-history"' in response.get_data(as_text=True)
    assert "it was not removed" in response.get_data(as_text=True)
    assert Import.get_or_none(Import.id == import_id) is not None and chunks_of(import_id) == 1

    # Discarded in one tab, then again from another: said, nothing else happens.
    post(owner_client, csrf, f"/imports/{import_id}/discard", {"back": "upload"})
    response = post(owner_client, csrf, f"/imports/{import_id}/discard", {"back": "upload", "version": 2})
    assert response.status_code == 404 and "This import was already removed." in response.get_data(as_text=True)


def test_a_submitted_import_cannot_be_discarded(owner_client, csrf):
    done = run_wizard(owner_client, csrf, FILE)
    response = post(owner_client, csrf, f"/imports/{done.id}/discard", {"back": "history"}, headers=HTMX)
    assert response.status_code == 409 and "it can no longer be removed" in response.get_data(as_text=True)
    assert Import.get_by_id(done.id).status == "completed" and chunks_of(done.id) == 1


def test_remove_on_the_uploaded_step_confirms_what_it_did(owner_client, csrf):
    import_id = new_draft(owner_client, csrf, "oops.csv")
    response = post(owner_client, csrf, f"/imports/{import_id}/remove", headers=HTMX)
    page = response.get_data(as_text=True)
    assert 'data-step="upload"' in page and "“oops.csv” was removed with its stored file." in page


def age(import_id: int, days: float) -> None:
    """Make the import look untouched for days."""
    then = utcnow() - datetime.timedelta(days=days)
    Import.update(created_at=then, touched_at=then).where(Import.id == import_id).execute()


def test_drafts_untouched_for_7_days_are_removed_with_their_files(owner_client, csrf):
    old = new_draft(owner_client, csrf, "old.csv")
    recent = new_draft(owner_client, csrf, "recent.csv")
    submitted = run_wizard(owner_client, csrf, FILE, "submitted.csv")
    age(old, 7.1)
    age(recent, 6)
    age(submitted.id, 30)
    assert [chunks_of(i) for i in (old, recent, submitted.id)] == [1, 1, 1]

    assert expire_drafts() == [old]
    assert Import.get_or_none(Import.id == old) is None and chunks_of(old) == 0
    assert Import.get_by_id(recent).status == "draft" and chunks_of(recent) == 1
    assert Import.get_by_id(submitted.id).status == "completed" and chunks_of(submitted.id) == 1
    assert expire_drafts() == []


def test_a_move_touches_a_draft_so_an_old_upload_mapped_lately_is_kept(owner_client, csrf):
    import_id = new_draft(owner_client, csrf)
    age(import_id, 10)
    post(owner_client, csrf, f"/imports/{import_id}/header", {"header_line": "1"})  # a move: touched now
    assert drafts.expire() == []
    assert drafts.expire(now=utcnow() + datetime.timedelta(days=7, minutes=1)) == [import_id]


def test_the_cli_expires_drafts(owner_client, csrf, runner):
    old = new_draft(owner_client, csrf)
    age(old, 3)
    assert runner.invoke(args=["expire-drafts"]).output.strip() == "Removed 0 unfinished imports."
    result = runner.invoke(args=["expire-drafts", "--days", "2"])
    assert result.exit_code == 0 and result.output.strip() == f"Removed 1 unfinished import: #{old}."
    assert Import.select().count() == 0


def test_the_upload_step_offers_one_way_to_upload(owner_client):
    page = owner_client.get("/imports/new").get_data(as_text=True)
    outside_noscript = re.sub(r"<noscript>.*?</noscript>", "", page, flags=re.S)
    # With script a chosen file uploads by itself (upload.js shows the hint): no second "Upload" button.
    assert re.findall(r"<button[^>]*>\s*Upload\s*</button>", outside_noscript) == []
    hint = "The upload starts by itself once you choose or drop a file."
    assert f'<p class="hint" data-auto-upload hidden>{hint}</p>' in page
    # Without script the browser shows the noscript button, the only way to send the chosen file.
    assert '<noscript><div class="actions"><button type="submit" class="btn">Upload</button></div></noscript>' in page
