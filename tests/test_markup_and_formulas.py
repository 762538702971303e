"""Hostile text in an imported file is data: escaped and inert in every page, neutralized in every file written.

SPEC section 3: names like `<script>` or `=HYPERLINK(...)` are stored and exported as given, shown
escaped in HTML, and neutralized (a leading ') in every CSV/XLSX file the app writes.
"""
import csv
import io
import re

import pytest
from markupsafe import escape
from openpyxl import load_workbook

from tests.test_imports_pages import revert_result_when_done
from tests.test_wizard import HTMX, csv_bytes, import_id_of, post, upload, wait_for
from webapp.importer.export import export_personas
from webapp.importer.safe_cells import PREFIX, TRIGGERS, unneutralize
from webapp.importer.templates import TEMPLATES, Template
from webapp.models import Audience, Persona, PersonaAttribute
from webapp.views.wizard import XLSX_TYPE

IMG = "<img src=x onerror=alert(1)>"
DIV = '<div hx-get="/personas" hx-trigger="load">x</div>'
SCRIPT = "<script>alert(1)</script>"
MARKUP = (IMG, DIV, SCRIPT)
LINK = '=HYPERLINK("http://evil.example","click")'
TAB, CR = "\t=1+2", "\r=3+4"
FORMULAS = (LINK, "+1+1", "-2+3", "@SUM(A1)", TAB, CR)

FILE_NAME = IMG + ".csv"
# Two yes/no columns whose headers (so also their custom attribute names) are hostile.
HEADERS = ["Email", "First Name", "Last Name", "City", IMG, LINK]
ROWS = [
    ["ann@example.com", IMG, DIV, SCRIPT, "TRUE", "yes"],             # line 2: created, both attributes
    ["bob@example.com", SCRIPT, IMG, DIV, IMG, DIV],                  # line 3: markup yes/no values: warnings
    ["cal@example.com", LINK, "+1+1", "-2+3", "@SUM(A1)", TAB],        # line 4: formula yes/no values: warnings
    ["", TAB, CR, LINK, "+1+1", "-2+3"],                              # line 5: no email: rejected whole
]
MAPPING = {"target-0": "email", "target-1": "first_name", "target-2": "last_name", "target-3": "city",
           "target-4": "attribute", "attribute-4": IMG, "target-5": "attribute", "attribute-5": LINK}
ATTRIBUTES = {IMG, LINK.lower()}  # names are stored lower-case

# Any <img> is injected (the app shows no images); the only scripts are the app's own files.
LIVE_MARKUP = (re.compile(r"<img\b", re.I), re.compile(r"<div[^>]*\bhx-get=\"/personas\"", re.I),
               re.compile(r"<script(?![^>]*\bsrc=\"/static/)", re.I))


def assert_inert(response, *shown):
    """The page holds no live hostile markup, and each text in shown is in it, escaped."""
    page = response.get_data(as_text=True)
    assert response.status_code in (200, 422), response.status_code
    assert response.mimetype == "text/html"
    for pattern in LIVE_MARKUP:
        assert not pattern.search(page), pattern.pattern
    for text in shown:
        assert str(escape(text)) in page, text
    return page


def hostile_import(client, csrf):
    """Upload the hostile file and map it; return its id once the dry run is over."""
    import_id = import_id_of(upload(client, csrf, csv_bytes([HEADERS, *ROWS]), FILE_NAME))
    response = post(client, csrf, f"/imports/{import_id}/mapping", MAPPING)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_for(import_id).status == "validated"
    return import_id


def finish(client, csrf, import_id: int):
    """Accept the terms and wait for the import to complete."""
    post(client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1"})
    row = wait_for(import_id, ("completed", "failed"))
    assert row.status == "completed", row.error_message
    return row


def cells_of(response) -> list[list[str]]:
    """The rows of a downloaded CSV (UTF-8 with or without BOM)."""
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))


def assert_cell_neutralized(cell: str, original: str):
    """A cell written for original starts with ' when original could run, and reads back as original."""
    if original.startswith(TRIGGERS):
        assert cell == PREFIX + original
    else:
        assert cell == original
    assert unneutralize(cell) == original


def assert_no_cell_can_run(rows):
    """No cell of a written file starts with a character a spreadsheet runs."""
    for row in rows:
        for cell in row:
            assert not str(cell).startswith(TRIGGERS), repr(cell)


# ---------------------------------------------------------------- HTML: escaped and inert everywhere

def test_wizard_steps_show_hostile_headers_samples_and_problems_escaped(owner_client, csrf):
    import_id = import_id_of(upload(owner_client, csrf, csv_bytes([HEADERS, *ROWS]), FILE_NAME))
    assert_inert(owner_client.get(f"/imports/{import_id}/uploaded"), FILE_NAME, IMG, LINK)

    # Mapping: headers, the attribute names they default to, and sample values of each column.
    for headers in ({}, HTMX):
        page = assert_inert(owner_client.get(f"/imports/{import_id}/mapping", headers=headers),
                            FILE_NAME, IMG, DIV, SCRIPT, LINK)
        assert re.search(r'name="attribute-4"\s+value="' + re.escape(str(escape(IMG))) + '"', page)

    # An inline mapping error names the hostile headers and attribute: still text.
    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", {**MAPPING, "attribute-5": IMG})
    page = assert_inert(response, IMG, LINK)
    assert response.status_code == 422 and "is mapped from two columns" in page

    response = post(owner_client, csrf, f"/imports/{import_id}/mapping", MAPPING)
    assert response.status_code == 303 and wait_for(import_id).status == "validated"

    # Review: the problems table shows the hostile column names and values of the warnings.
    page = assert_inert(owner_client.get(f"/imports/{import_id}/review"), FILE_NAME, IMG, DIV, LINK, "@SUM(A1)")
    # (grouped by kind of problem, so the rows come in each group's order)
    assert sorted(re.findall(r'<td class="num"[^>]*>(\d+)</td>', page)) == ["3", "3", "4", "4", "5", "5", "5"]
    assert_inert(owner_client.get(f"/imports/{import_id}/review", headers=HTMX), IMG, DIV)


def test_imported_hostile_text_is_stored_as_given_and_shown_escaped(owner_client, csrf, account_a):
    import_id = hostile_import(owner_client, csrf)
    finish(owner_client, csrf, import_id)
    people = {p.email: p for p in Persona.select()}
    ann, bob = people["ann@example.com"], people["bob@example.com"]
    assert (ann.first_name, ann.last_name, ann.city) == (IMG, DIV, SCRIPT)
    assert (people["cal@example.com"].first_name, people["cal@example.com"].last_name) == (LINK, "+1+1")
    assert {a.name for a in PersonaAttribute.select().where(PersonaAttribute.persona == ann)} == ATTRIBUTES
    # The export is JSON of the values exactly as stored: no markup escaping, no formula prefix.
    exported = {p["email"]: p for p in export_personas(account_a.id)}
    assert exported["ann@example.com"]["first_name"] == IMG and exported["cal@example.com"]["city"] == "-2+3"
    assert sorted(exported["ann@example.com"]["attributes"]) == sorted(ATTRIBUTES)

    # A second import changes Ann's hostile values into other hostile values: her history shows both.
    second = import_id_of(upload(owner_client, csrf, csv_bytes([["Email", "First Name", "Last Name", "City"],
                                                                ["ann@example.com", DIV, LINK, IMG]])))
    post(owner_client, csrf, f"/imports/{second}/mapping",
         {"target-0": "email", "target-1": "first_name", "target-2": "last_name", "target-3": "city"})
    assert wait_for(second).status == "validated"
    finish(owner_client, csrf, second)

    audience = Audience.get(Audience.source_import == import_id)
    assert audience.name.startswith(f"Import: {FILE_NAME} ")
    for url in ("/personas", f"/personas?import={import_id}", f"/personas?audience={audience.id}",
                "/personas?q=example"):
        for headers in ({}, HTMX):
            assert_inert(owner_client.get(url, headers=headers), IMG, DIV, SCRIPT, LINK, "+1+1")
    # The search box echoes the query back: a hostile query is text too.
    page = assert_inert(owner_client.get("/personas", query_string={"q": IMG}))
    assert f'value="{escape(IMG)}"' in page

    page = assert_inert(owner_client.get(f"/personas/{ann.id}"), SCRIPT, LINK, IMG, DIV)
    history = page[page.index('id="history-h"'):]
    assert history.count("<tr>") == 3  # header, created, updated
    for old, new in ((IMG, DIV), (DIV, LINK), (SCRIPT, IMG)):
        assert f'{escape(old)} <span aria-label="changed to">→</span> {escape(new)}' in history
    assert str(escape(IMG)) in page[page.index("<dt>Attributes</dt>"):page.index("<dt>Created</dt>")]
    assert_inert(owner_client.get(f"/personas/{bob.id}", headers=HTMX), SCRIPT, IMG, DIV)

    assert_inert(owner_client.get("/audiences"), audience.name)
    assert_inert(owner_client.get(f"/audiences/{audience.id}"), audience.name, SCRIPT, DIV)
    page = assert_inert(owner_client.get("/imports"), FILE_NAME)
    assert f'hx-confirm="Delete the stored file of “{escape(FILE_NAME)}”' in page
    page = assert_inert(owner_client.get(f"/imports/{import_id}"), FILE_NAME, audience.name)
    assert f"{escape(IMG)} → Custom attribute “{escape(IMG)}”" in page
    assert f"{escape(LINK)} → Custom attribute “{escape(LINK.lower())}”" in page
    assert_inert(owner_client.get(f"/imports/{import_id}/progress", headers=HTMX), FILE_NAME, audience.name)

    assert_inert(owner_client.get(f"/imports/{import_id}/revert"), FILE_NAME)

    # Reverting the second import records Ann's hostile values coming back: her history stays text.
    post(owner_client, csrf, f"/imports/{second}/revert")
    assert "1</span> persona reverted" in revert_result_when_done(owner_client, second)
    assert_inert(owner_client.get(f"/imports/{second}/revert/result"))
    history = assert_inert(owner_client.get(f"/personas/{ann.id}"), IMG, DIV, SCRIPT)
    assert history[history.index('id="history-h"'):].count("<tr>") == 4
    for old, new in ((DIV, IMG), (LINK, DIV), (IMG, SCRIPT)):
        assert f'{escape(old)} <span aria-label="changed to">→</span> {escape(new)}' in history

    # The message after deleting the file names it: as text.
    post(owner_client, csrf, f"/imports/{import_id}/delete-file")
    page = assert_inert(owner_client.get("/imports"), FILE_NAME)
    assert "and its audience were deleted" in page


# ---------------------------------------------------------------- files: every cell that could run is neutralized

def test_problem_report_neutralizes_every_cell_that_could_run(owner_client, csrf):
    import_id = hostile_import(owner_client, csrf)
    response = owner_client.get(f"/imports/{import_id}/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert not re.search(r"[<>]", disposition) and disposition.count('"') == 2
    lines = cells_of(response)
    assert_no_cell_can_run(lines)

    header = lines[0][5:]
    for cell, original in zip(header, HEADERS, strict=True):
        assert_cell_neutralized(cell, original)
    by_line = {line[0]: line for line in lines[1:]}
    assert set(by_line) == {"3", "4", "5"}
    # The rejected row keeps every original cell; a row with warnings its email and its skipped cells.
    for cell, original in zip(by_line["5"][5:], ROWS[3], strict=True):
        assert_cell_neutralized(cell, original)
    for cell, original in zip(by_line["4"][5:], ["cal@example.com", "", "", "", "@SUM(A1)", TAB], strict=True):
        assert_cell_neutralized(cell, original)
    assert by_line["3"][5:] == ["bob@example.com", "", "", "", IMG, DIV]  # markup is not a formula: as given
    # The problem values are joined into one cell: it is neutralized by its first character.
    assert by_line["4"][3] == PREFIX + f"@SUM(A1) | {TAB}"
    assert by_line["5"][2].startswith(IMG)


def test_the_fixed_report_reimports_to_the_values_as_given(owner_client, csrf):
    import_id = hostile_import(owner_client, csrf)
    report = owner_client.get(f"/imports/{import_id}/report.csv").data
    fixed = [line for line in csv.reader(io.StringIO(report.decode("utf-8-sig"), newline=""))]
    fixed[-1][5] = "dee@example.com"  # the rejected line 5, given an email
    again = import_id_of(upload(owner_client, csrf, csv_bytes(fixed), "fixed.csv"))
    post(owner_client, csrf, f"/imports/{again}/mapping",
         {"target-5": "email", "target-6": "first_name", "target-7": "last_name", "target-8": "city"})
    assert wait_for(again).status == "validated"
    finish(owner_client, csrf, again)
    dee = Persona.get(Persona.email == "dee@example.com")
    # The readers strip exactly the report's prefix; text is stored trimmed, as any cell is.
    assert (dee.first_name, dee.last_name, dee.city) == (TAB.strip(), CR.strip(), LINK)


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_template_files_have_no_cell_that_could_run(owner_client, slug):
    rows = cells_of(owner_client.get(f"/imports/templates/{slug}.csv"))
    assert rows[0] and len(rows) == len(TEMPLATES[slug].rows) + 1
    assert_no_cell_can_run(rows)
    sheet = load_workbook(io.BytesIO(owner_client.get(f"/imports/templates/{slug}.xlsx").data)).active
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert cells and all(cell.data_type != "f" for cell in cells)
    assert_no_cell_can_run([[cell.value for cell in cells if cell.data_type == "s"]])


def test_a_template_with_hostile_text_is_written_neutralized(owner_client, monkeypatch):
    texts = (*FORMULAS, *MARKUP)
    monkeypatch.setitem(TEMPLATES, "hostile", Template("hostile", "Hostile", "Hostile text.", texts, (texts,)))
    header, row = cells_of(owner_client.get("/imports/templates/hostile.csv"))
    for cells in (header, row):
        for cell, original in zip(cells, texts, strict=True):
            assert_cell_neutralized(cell, original)

    response = owner_client.get("/imports/templates/hostile.xlsx")
    assert response.status_code == 200 and response.mimetype == XLSX_TYPE
    sheet = load_workbook(io.BytesIO(response.data)).active
    for sheet_row in sheet.iter_rows(min_row=1, max_row=2):
        for cell, original in zip(sheet_row, texts, strict=True):
            assert cell.data_type == "s", (cell.coordinate, cell.value)
            expected = PREFIX + original if original.startswith(TRIGGERS) else original
            assert cell.value == expected.replace("\r", "\n")  # XML reads a bare CR back as LF
