"""Counts as people read them, on every page: "1 persona", "1 warning", "50,021 personas" (one filter for all)."""
import html
import re

from tests.test_wizard import csv_bytes, form_mapping, import_id_of, post, upload, wait_for
from webapp.models import Audience, AudienceMember, Persona
from webapp.words import counted, noun, number


def text_of(page: str) -> str:
    """The page's words without its tags, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_counted_nouns_are_singular_for_one_and_numbers_are_thousands_separated():
    assert [counted(n, "persona") for n in (0, 1, 2, 50_021)] == [
        "0 personas", "1 persona", "2 personas", "50,021 personas"]
    assert counted(1, "change stays", "changes stay") == "1 change stays"
    assert counted(3, "change stays", "changes stay") == "3 changes stay"
    assert (noun(1, "warning"), noun(8_289, "warning"), number(41_613), number(None), number(1234.6)) == (
        "warning", "warnings", "41,613", "0", "1,235")


def add_personas(account, count: int) -> list[int]:
    Persona.insert_many([{"account": account.id, "email": f"p{n}@example.com", "points": 12_345}
                         for n in range(count)]).execute()
    return [p.id for p in Persona.select(Persona.id).where(Persona.account == account)]


def test_the_lists_count_personas_and_members_with_separators(owner_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com")
    assert "1–1 of 1 persona Export CSV" in text_of(owner_client.get("/personas").get_data(as_text=True))
    ids = add_personas(account_a, 1_233)
    page = text_of(owner_client.get("/personas").get_data(as_text=True))
    assert "1–50 of 1,234 personas" in page and "12,345" in page
    audience = Audience.create(account=account_a, name="Everyone")
    AudienceMember.insert_many([(audience.id, i) for i in ids],
                               fields=[AudienceMember.audience, AudienceMember.persona]).execute()
    assert "1–50 of 1,234 members" in text_of(owner_client.get(f"/audiences/{audience.id}").get_data(as_text=True))
    assert "Everyone 1,234" in text_of(owner_client.get("/audiences").get_data(as_text=True))
    one = Audience.create(account=account_a, name="Just Ann")
    AudienceMember.create(audience=one, persona=ids[0])
    assert "1–1 of 1 member Export" in text_of(owner_client.get(f"/audiences/{one.id}").get_data(as_text=True))


def test_a_one_row_import_says_row_warning_and_problem_in_the_singular(owner_client, csrf):
    response = upload(owner_client, csrf, csv_bytes([["Email", "Points"], ["ann@example.com", "lots"]]))
    import_id = import_id_of(response)
    uploaded = text_of(owner_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "1 customer row" in uploaded and "1 customer rows" not in uploaded
    page = owner_client.get(f"/imports/{import_id}/mapping").get_data(as_text=True)
    post(owner_client, csrf, f"/imports/{import_id}/mapping", form_mapping(page))
    wait_for(import_id)
    review = text_of(owner_client.get(f"/imports/{import_id}/review").get_data(as_text=True))
    assert "A full dry run of the file's one row" in review
    assert "1 warning" in review and "1 warnings" not in review and "1 problem in 1 row," in review
    post(owner_client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1"})
    wait_for(import_id, ("completed", "failed"))
    result = text_of(owner_client.get(f"/imports/{import_id}/progress").get_data(as_text=True))
    assert "1 row imported, 0 rejected, 1 warning" in result and "1 rows" not in result
    assert "1 warnings" not in result and "1 problem in 1 row," in result and "1 row: not a whole number" in result
    history = text_of(owner_client.get("/imports").get_data(as_text=True))
    assert "1 created" in history and "1 warning" in history and "1 warnings" not in history
