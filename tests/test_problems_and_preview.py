"""Issue 15: problems a marketer can act on (grouped, with a fix and example rows), a preview of the changes
at the Review step, and a result page that says when rows were rejected."""
import re

from tests.test_imports_pages import revert_result_when_done
from tests.test_wizard import csv_bytes, post, run_wizard, wait_for
from tests.test_words import text_of
from webapp.importer import problem_groups
from webapp.importer.errors import PROBLEM_BY_CODE, PROBLEMS
from webapp.models import Account, ImportProblem, Persona

HEADERS = ["Email", "Phone", "First Name", "Birthday", "Points"]


def review_page(client, csrf, rows, **kwargs) -> tuple[int, str]:
    upload = run_wizard(client, csrf, csv_bytes([HEADERS, *rows]), accept=False, **kwargs)
    return upload.id, client.get(f"/imports/{upload.id}/review").get_data(as_text=True)


def groups_of(page: str) -> dict[str, str]:
    """Each problem group of the page by its code: its words, tags removed."""
    found = re.findall(r'<li class="problem-group [^"]*" data-problem="([^"]+)">(.*?)</li>'
                       r'\s*(?=<li class="problem-group|</ul>)', page, re.S)
    return {code: text_of(body) for code, body in found}


def problem_file() -> list[list[str]]:
    """Four bad points, two impossible dates, one row with no key (line numbers: header on 1)."""
    return [
        ["p1@example.com", "", "Pat", "", "lots"],  # 2
        ["p2@example.com", "", "Pia", "", "many"],  # 3
        ["", "", "Nobody", "", "5"],  # 4: rejected
        ["p3@example.com", "", "Pim", "02/30/1990", "ten"],  # 5
        ["p4@example.com", "", "Poe", "", "1.5"],  # 6
        ["p5@example.com", "", "Pru", "13/01/1990", ""],  # 7
        ["ok@example.com", "", "Oki", "01/13/1990", "5"],  # 8
    ]


def test_review_groups_problems_by_kind_with_a_count_the_fix_and_example_rows(owner_client, csrf):
    import_id, page = review_page(owner_client, csrf, problem_file())
    groups = groups_of(page)
    assert list(groups) == ["no_key", "points_not_whole", "impossible_date"]  # rejections first, then the largest
    points = groups["points_not_whole"]
    assert points.startswith("warning 4 rows: not a whole number of points in “Points”")
    assert "How to fix: Write points as whole numbers, with a sign where they subtract: 50, +50, -20." in points
    # The first three rows, each with its line, its email and its value; the rest are counted.
    assert "2 p1@example.com lots" in points and "3 p2@example.com many" in points and "5 p3@example.com ten" in points
    assert "p4@example.com" not in points and "and 1 more row: every one is in the problem report." in points
    dates = groups["impossible_date"]
    assert dates.startswith("warning 2 rows: an impossible date in “Birthday”")
    assert "Dates are read month first (03/31/2024)." in dates and "read dates day first" in dates
    assert "more row" not in dates
    # A row without email shows its name.
    assert groups["no_key"].startswith("rejected 1 row: no email or phone") and "4 Nobody" in groups["no_key"]
    assert "Every row needs a valid email or phone" in groups["no_key"]
    assert "7 problems in 6 rows, by kind." in text_of(page) and "The first" not in page
    assert f'href="/imports/{import_id}/report.csv"' in page  # the full list stays in the report


def test_the_date_fix_follows_how_the_account_reads_dates(owner_client, csrf, account_a):
    Account.update(day_first=True).where(Account.id == account_a.id).execute()
    _, page = review_page(owner_client, csrf, [["ann@example.com", "", "Ann", "31/02/1990", ""]])
    dates = groups_of(page)["impossible_date"]
    assert "Dates are read day first (31/03/2024) for this account" in dates and "month first" not in dates


def test_every_problem_the_importer_reports_belongs_to_a_known_kind(owner_client, csrf, account_a, make_persona):
    make_persona(account_a, email="low@example.com", points=5)
    make_persona(account_a, email="out@example.com", sms_opt_out=True)
    make_persona(account_a, email="ann@example.com")
    make_persona(account_a, phone="+14155550101")
    make_persona(account_a, email="gone@example.com", archived=True)
    rows = [["Email", "Phone", "Birthday", "Points", "Loyalty Member", "Customer Type", "SMS Opt In"],
            ["x@example.com", "12345", "not a day", "lots", "maybe", "tourist", ""],
            ["y@example.com", "4.15556E+09", "02/30/1990", "99999999999", "", "", ""],
            ["not-an-email", "", "", "", "", "", ""],
            ["", "", "", "5", "", "", ""],
            ["bad@", "55", "", "", "", "", ""],
            ["", "123", "", "", "", "", ""],
            ["low@example.com", "", "", "-10", "", "", ""],
            ["out@example.com", "", "", "", "", "", "TRUE"],
            ["ann@example.com", "(415) 555-0101", "", "", "", "", ""],
            ["gone@example.com", "", "", "", "", "", ""],
            ["z@example.com", "", "", "1", "", "", "", "extra", "cells"]]
    upload = run_wizard(owner_client, csrf, csv_bytes(rows), accept=False)
    found = {group.code for group in problem_groups.groups(upload, ("parse", "review"))}
    assert "other" not in found, [p.reason for p in ImportProblem.select()]
    assert found == set(PROBLEM_BY_CODE), set(PROBLEM_BY_CODE) - found
    assert all(problem.fix for problem in PROBLEMS)


def test_review_previews_the_dry_runs_own_changes_old_to_new(owner_client, csrf, account_a, make_persona):
    olga = make_persona(account_a, email="olga@example.com", first_name="Olga", points=100)
    make_persona(account_a, email="twice@example.com", first_name="Tam", points=10)
    rows = [["olga@example.com", "", "Olivia", "", "-30"],  # 2: alone: merged column-wise
            ["new@example.com", "(415) 555-0123", "Nia", "1990-05-17", "15"],  # 3: created
            ["twice@example.com", "", "", "", "+5"],  # 4 and 5: one persona twice: the Merger's
            ["twice@example.com", "", "Tamsin", "", "+7"]]
    import_id, _ = review_page(owner_client, csrf, rows)
    # The preview is what the dry run kept: a persona changed since does not change it.
    Persona.update(first_name="Someone else").where(Persona.id == olga.id).execute()
    page = owner_client.get(f"/imports/{import_id}/review").get_data(as_text=True)
    start = page.index('class="card change-preview"')
    preview = page[start:page.index("</section>", start)]
    items = {int(line): text_of(body) for line, body in
             re.findall(r'<li class="preview-item" data-line="(\d+)">(.*?)</ul>\s*</li>', preview, re.S)}
    assert items[2] == (f"olga@example.com row 2 · customer #{olga.id} "
                        "First Name : Olga → Olivia Points balance : 100 → 70")
    assert items[4].endswith("Points balance : 10 → 15") and "First Name" not in items[4]
    assert items[5].endswith("First Name : Tam → Tamsin Points balance : 15 → 22")
    assert items[3] == ("new@example.com row 3 Email : new@example.com Phone : +14155550123 First Name : Nia "
                        "Birthday : 1990-05-17 Points balance : 15")
    assert "3 personas it will update" in text_of(preview) and "1 persona it will create" in text_of(preview)
    assert ('<span class="preview-field">First Name</span>: <span class="preview-old">Olga</span> → '
            '<span class="preview-new">Olivia</span>') in preview

    # Importing does what the preview said.
    Persona.update(first_name="Olga").where(Persona.id == olga.id).execute()
    post(owner_client, csrf, f"/imports/{import_id}/review", {"accept_terms": "1"})
    assert wait_for(import_id, ("completed", "failed")).status == "completed"
    people = {p.email: (p.first_name, p.points) for p in Persona.select()}
    assert people["olga@example.com"] == ("Olivia", 70) and people["twice@example.com"] == ("Tamsin", 22)
    assert people["new@example.com"] == ("Nia", 15)


def test_the_preview_shows_the_first_ten_updates_and_five_creations_of_many(owner_client, csrf, account_a,
                                                                             make_persona):
    for n in range(12):
        make_persona(account_a, email=f"u{n:02}@example.com", points=1)
    rows = [[f"u{n:02}@example.com", "", "", "", "1"] for n in range(12)]
    rows += [[f"c{n:02}@example.com", "", "", "", ""] for n in range(7)]
    _, page = review_page(owner_client, csrf, rows)
    start = page.index('class="card change-preview"')
    preview = text_of(page[start:page.index("</section>", start)])
    assert "10 personas it will update, of 12" in preview and "5 personas it will create, of 7" in preview
    assert "u09@example.com" in preview and "u10@example.com" not in preview
    assert "c04@example.com" in preview and "c05@example.com" not in preview


def test_a_result_with_rejected_rows_is_a_warning_with_the_grouped_problems_and_fix_and_reupload(
        owner_client, csrf, account_a, make_persona):
    make_persona(account_a, email="low@example.com", points=3)
    rows = [["ann@example.com", "", "Ann", "", "5"], ["bob@example.com", "", "Bob", "", "lots"],
            ["", "", "Nobody", "", ""], ["cy@example.com", "", "Cy", "", ""], ["low@example.com", "", "", "", "-5"]]
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, *rows]))
    page = owner_client.get(f"/imports/{done.id}/progress").get_data(as_text=True)
    alert = re.search(r'<div class="alert ([^"]+)" role="status" data-result="([^"]+)">(.*?)</div>', page, re.S)
    assert alert.group(1) == "alert-warning" and alert.group(2) == "problems"
    assert text_of(alert.group(3)).startswith("4 rows imported, 1 rejected, 2 warnings")
    assert "alert-success" not in page
    groups = groups_of(page)
    assert groups["no_key"].startswith("rejected 1 row: no email or phone") and "4 Nobody" in groups["no_key"]
    assert groups["points_not_whole"].startswith("warning 1 row: not a whole number of points")
    assert "3 bob@example.com lots" in groups["points_not_whole"]
    # Found by the apply itself, with the balance the persona was left with.
    below = groups["balance_below_zero"]
    assert below.startswith("warning 1 row: the points balance goes below zero in “Points”")
    assert "6 low@example.com -5 the points balance goes below zero (-2)" in below and "How to fix: The points" in below
    assert "Fix and re-upload" in page and 'href="/imports/new">Upload the fixed report</a>' in page
    assert page.count(f'href="/imports/{done.id}/report.csv"') == 1
    # The import's own page shows the same; the history offers its report.
    detail = owner_client.get(f"/imports/{done.id}").get_data(as_text=True)
    assert 'data-result="problems"' in detail and 'data-problem="no_key"' in detail
    assert f'href="/imports/{done.id}/report.csv"' in owner_client.get("/imports").get_data(as_text=True)


def test_a_clean_result_is_green_and_offers_no_report(owner_client, csrf):
    done = run_wizard(owner_client, csrf, csv_bytes([HEADERS, ["ann@example.com", "", "Ann", "", "5"]]))
    page = owner_client.get(f"/imports/{done.id}/progress").get_data(as_text=True)
    assert 'class="alert alert-success" role="status" data-result="clean"' in page and "alert-warning" not in page
    assert "No problems were found." in page and "report.csv" not in page and "Fix and re-upload" not in page
    assert "report.csv" not in owner_client.get("/imports").get_data(as_text=True)


def test_a_revert_that_left_changes_is_not_green(owner_client, csrf):
    first = run_wizard(owner_client, csrf, csv_bytes([["Email", "City"], ["ann@example.com", "Boston"]]), "a.csv")
    run_wizard(owner_client, csrf, csv_bytes([["Email", "City"], ["ann@example.com", "Salem"]]), "b.csv")
    post(owner_client, csrf, f"/imports/{first.id}/revert")
    page = revert_result_when_done(owner_client, first.id)
    alert = re.search(r'<div class="alert ([^"]+)" role="status"\s+data-result="([^"]+)">(.*?)</div>', page, re.S)
    assert (alert.group(1), alert.group(2)) == ("alert-warning", "partial")
    assert "could not be reverted (below): they stay as the import left them." in text_of(alert.group(3))


def test_a_revert_that_undid_everything_is_green(owner_client, csrf):
    done = run_wizard(owner_client, csrf, csv_bytes([["Email", "City"], ["ann@example.com", "Boston"]]))
    post(owner_client, csrf, f"/imports/{done.id}/revert")
    page = revert_result_when_done(owner_client, done.id)
    assert re.search(r'class="alert alert-success" role="status"\s+data-result="clean"', page)
    assert "1 persona reverted." in text_of(page) and "alert-warning" not in page
