"""The personas list (search, filters, pages, empty state), a persona's page, and audiences."""
import datetime
import re

import pytest

from webapp.models import Audience, AudienceMember, AuditEntry, Import, PersonaAttribute

HTMX = {"HX-Request": "true"}


def rows_of(page: str) -> int:
    """How many persona rows a list page or partial shows."""
    return len(re.findall(r'href="/personas/\d', page))  # a persona's page, not the export links


def test_empty_state_for_a_new_account(owner_client, staff_client):
    page = owner_client.get("/personas").get_data(as_text=True)
    assert "No customers yet. Import your first file." in page
    assert 'class="btn btn-primary" href="/imports/new"' in page
    assert "An account owner can import" in staff_client.get("/personas").get_data(as_text=True)


def test_list_shows_personas_of_the_current_account_only(owner_client, account_a, account_b, make_persona):
    ann = make_persona(account_a, email="ann@example.com", phone="+14155550100", first_name="Ann", last_name="Lee",
                       points=120, sms_opt_in=True, customer_type="medical")
    PersonaAttribute.create(persona=ann, name="veteran")
    make_persona(account_b, email="bob@beta.example")
    page = owner_client.get("/personas").get_data(as_text=True)
    assert "ann@example.com" in page and "+14155550100" in page and "Ann Lee" in page
    assert ">120<" in page and "medical" in page and "veteran" in page and "✓</span> SMS" in page
    assert "bob@beta.example" not in page
    assert "1–1 of 1 persona<" in page


def test_search_filters_rows(owner_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com", phone="+14155550100", first_name="Ann", last_name="Lee")
    make_persona(account_a, email="bob@example.com", phone="+14155550199", first_name="Bob", last_name="Stone")
    make_persona(account_a, email="carla@example.com", first_name="Carla", last_name="Lee")

    def search(q):
        response = owner_client.get("/personas", query_string={"q": q}, headers=HTMX)
        assert "<html" not in response.get_data(as_text=True)
        return response.get_data(as_text=True)

    assert rows_of(search("lee")) == 2
    assert rows_of(search("ANN")) == 1 and "ann@example.com" in search("ANN")
    assert rows_of(search("Carla Lee")) == 1
    assert rows_of(search("(415) 555-0199")) == 1 and "bob@example.com" in search("(415) 555-0199")
    assert rows_of(search("bob@example")) == 1
    nothing = search("zzz")
    assert rows_of(nothing) == 0 and "No personas match “zzz”." in nothing


def test_search_page_keeps_the_query_in_the_box(owner_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com")
    page = owner_client.get("/personas?q=ann").get_data(as_text=True)
    assert 'name="q" value="ann"' in page
    assert 'hx-trigger="input changed delay:300ms, search"' in page


def test_pages_of_fifty(owner_client, account_a, make_persona):
    for n in range(120):
        make_persona(account_a, email=f"p{n:03}@example.com", last_name=f"L{n:03}")
    first = owner_client.get("/personas").get_data(as_text=True)
    assert rows_of(first) == 50 and "1–50 of 120 personas" in first and "Page 1 of 3" in first
    last = owner_client.get("/personas?page=3", headers=HTMX).get_data(as_text=True)
    assert rows_of(last) == 20 and "101–120 of 120" in last
    assert "p000@example.com" in last and "p119@example.com" not in last  # newest first
    assert 'href="/personas?page=2"' in last and "Next" not in last


def test_filter_by_audience(owner_client, account_a, account_b, make_persona):
    ann = make_persona(account_a, email="ann@example.com")
    make_persona(account_a, email="bob@example.com")
    audience = Audience.create(account=account_a, name="VIPs")
    AudienceMember.create(audience=audience, persona=ann)
    page = owner_client.get(f"/personas?audience={audience.id}").get_data(as_text=True)
    assert "ann@example.com" in page and "bob@example.com" not in page and "VIPs" in page
    other = Audience.create(account=account_b, name="Theirs")
    assert owner_client.get(f"/personas?audience={other.id}").status_code == 404


def test_filter_by_import(owner_client, owner_a, account_a, account_b, owner_b, make_persona):
    ann = make_persona(account_a, email="ann@example.com")
    make_persona(account_a, email="bob@example.com")
    upload = Import.create(account=account_a, user=owner_a, file_name="march.csv")
    AuditEntry.create(account=account_a, persona_id=ann.id, import_id=upload.id, row=2, action="created")
    page = owner_client.get(f"/personas?import={upload.id}").get_data(as_text=True)
    assert "ann@example.com" in page and "bob@example.com" not in page and "march.csv" in page
    theirs = Import.create(account=account_b, user=owner_b, file_name="beta.csv")
    assert owner_client.get(f"/personas?import={theirs.id}").status_code == 404


def test_add_menu_only_for_owners(owner_client, staff_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com")
    owner_page = owner_client.get("/personas").get_data(as_text=True)
    staff_page = staff_client.get("/personas").get_data(as_text=True)
    assert "ann@example.com" in staff_page
    assert "Bulk Import Personas" not in staff_page
    assert '<details class="menu">' in owner_page and 'href="/imports/new">Bulk Import Personas' in owner_page


def test_persona_page_shows_fields_consent_and_history(owner_client, owner_a, account_a, make_persona):
    persona = make_persona(
        account_a, email="ann@example.com", phone="+14155550100", first_name="Ann", last_name="Lee",
        birthday=datetime.date(1990, 2, 28), postal_code="02134", city="Boston", points=150,
        sms_opt_in=True, sms_consent_at=datetime.datetime(2026, 3, 1, 12, 30), sms_consent_import=7,
        sms_consent_terms="2026-11", email_opt_out=True, customer_type="recreational",
    )
    PersonaAttribute.create(persona=persona, name="police")
    AuditEntry.create(account=account_a, persona_id=persona.id, import_id=7, row=2, action="created",
                      created_at=datetime.datetime(2026, 3, 1, 12, 30), changes={"first_name": [None, "Ann"]})
    AuditEntry.create(account=account_a, persona_id=persona.id, import_id=8, row=5, action="updated",
                      created_at=datetime.datetime(2026, 3, 2, 9, 0),
                      changes={"points": [100, 150], "city": ["Salem", "Boston"]})
    page = owner_client.get(f"/personas/{persona.id}").get_data(as_text=True)
    for text in ("ann@example.com", "+14155550100", "1990-02-28", "02134", "Boston", "recreational", "police",
                 "2026-03-01 12:30 UTC", "terms version 2026-11", "Email opted out", 'href="/imports/7">import #7'):
        assert text in page, text
    assert page.count("Email opted out") == 1 and page.count("✓</span> SMS") == 1  # one badge per channel
    history = page[page.index('id="history-h"'):]
    assert history.index("2026-03-02 09:00") < history.index("2026-03-01 12:30")  # newest first
    assert "100 <span aria-label=\"changed to\">→</span> 150" in history
    assert "Salem" in history and "row 5" in history
    assert 'hx-history="false"' in page


def test_persona_page_history_is_of_this_persona_only(owner_client, account_a, make_persona):
    ann = make_persona(account_a, email="ann@example.com")
    bob = make_persona(account_a, email="bob@example.com")
    AuditEntry.create(account=account_a, persona_id=bob.id, action="updated", changes={"city": ["X", "Bobtown"]})
    page = owner_client.get(f"/personas/{ann.id}").get_data(as_text=True)
    assert "Bobtown" not in page and "No recorded changes." in page


def test_audiences_list_and_members(owner_client, owner_a, account_a, account_b, make_persona):
    upload = Import.create(account=account_a, user=owner_a, file_name="march.csv")
    audience = Audience.create(account=account_a, name="Import: march.csv 2026-03-01", source_import=upload.id)
    Audience.create(account=account_a, name="Empty one")
    for n in range(3):
        AudienceMember.create(audience=audience, persona=make_persona(account_a, email=f"m{n}@example.com"))
    make_persona(account_a, email="outsider@example.com")
    theirs = Audience.create(account=account_b, name="Beta audience")

    listing = owner_client.get("/audiences").get_data(as_text=True)
    assert "Import: march.csv 2026-03-01" in listing and "Empty one" in listing
    assert re.search(r'<td class="num"[^>]*>3</td>', listing) and re.search(r'<td class="num"[^>]*>0</td>', listing)
    assert "Beta audience" not in listing and f"import #{upload.id}" in listing

    members = owner_client.get(f"/audiences/{audience.id}").get_data(as_text=True)
    assert rows_of(members) == 3 and "outsider@example.com" not in members
    assert owner_client.get(f"/audiences/{theirs.id}").status_code == 404


@pytest.mark.sqlite_only
def test_nav_and_embedded_layout(owner_client):
    page = owner_client.get("/personas").get_data(as_text=True)
    assert 'aria-label="Main"' in page and "Audiences" in page
    assert 'class="site-header"' in page
    # Embedded: not the app's header (the dashboard around has its own), a compact bar to the Customers pages.
    embedded = owner_client.get("/personas", headers={"Sec-Fetch-Dest": "iframe"}).get_data(as_text=True)
    assert "<html" in embedded and 'class="site-header"' not in embedded and "layout-embed" in embedded
    assert 'class="embed-nav" aria-label="Main"' in embedded
    for link in ('href="/personas" aria-current="page">Personas', 'href="/audiences">Audiences', 'href="/imports">Imports'):
        assert link in embedded, link
    owner_client.get("/personas?embed=1")
    audiences = owner_client.get("/audiences").get_data(as_text=True)
    assert 'class="site-header"' not in audiences and 'href="/audiences" aria-current="page">Audiences' in audiences
    owner_client.get("/personas?embed=0")
    assert 'class="site-header"' in owner_client.get("/audiences").get_data(as_text=True)


def test_phones_show_in_the_accounts_national_format_and_foreign_ones_internationally(
        owner_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com", phone="+14155550100")
    make_persona(account_a, email="nigel@example.co.uk", phone="+442079460958")
    page = owner_client.get("/personas").get_data(as_text=True)
    assert '<span title="+14155550100">(415) 555-0100</span>' in page
    assert '<span title="+442079460958">+44 20 7946 0958</span>' in page


def test_the_audit_trail_names_fields_by_their_labels_and_badges_say_what_they_mean(owner_client, account_a,
                                                                                     make_persona):
    persona = make_persona(account_a, email="bo@example.com", email_opt_in=True)
    AuditEntry.create(account=account_a, persona_id=persona.id, import_id=9, row=3, action="updated",
                      changes={"sms_opt_in": [False, True], "external_id": ["A1", "B2"],
                               "attributes": [[], ["veteran"]], "email_opt_out": [True, False]})
    page = owner_client.get(f"/personas/{persona.id}").get_data(as_text=True)
    history = page[page.index('id="history-h"'):]
    names = re.findall(r'<span class="field-name">([^<]+)</span>', history)
    assert names == ["Custom attributes", "Explicit Email Opt-out", "External ID", "Opt-in SMS"]  # sorted by column
    assert "sms opt in" not in history and "external id" not in history
    # Neither opted in nor out: said in words, not with a dash.
    assert "SMS not opted in</span>" in page and "SMS –" not in page
    assert 'title="SMS: neither opted in nor opted out"' in page
    listing = owner_client.get("/personas").get_data(as_text=True)
    assert "SMS not opted in" in listing and "✓</span> Email" in listing
