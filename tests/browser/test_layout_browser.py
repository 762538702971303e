"""Every page at a phone's width (390 px) and a desktop's (1280 px): no sideways scroll, every key control
reachable, and where the user is shown by the navigation and the breadcrumbs; the embed layout navigates too.

A tour drives the live app through every page (sign-in, the wizard's steps with a CSV and a workbook's sheet
picker, the result, history, import page, revert, personas, a persona with its changes, audiences, an
audience) and saves a full-page screenshot of each, per width, to $LAYOUT_SCREENSHOTS (default: the test's
tmp dir): look at them when the layout changes. Beside it: the header of a user of two accounts, long
unbroken names on a phone, the embedded layout's navigation, the favicon, and an error swap under the CSP.
"""
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import expect

from tests.browser.conftest import OWNER_EMAIL, sign_in  # noqa: E402
from tests.browser.helpers import BAD_PHONE, HEADERS, people_csv, people_rows, people_xlsx, step_url  # noqa: E402
from webapp.accounts import create_account, create_user  # noqa: E402
from webapp.db import db  # noqa: E402
from webapp.models import Membership  # noqa: E402

OTHER_ACCOUNT = "Zephyr Collective of Northern California Dispensaries"  # a long name, after the first by name
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}
WIDTHS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])


@pytest.fixture
def shots_dir(tmp_path) -> Path:
    """Where the tour's screenshots go: $LAYOUT_SCREENSHOTS, else the test's tmp dir."""
    path = Path(os.environ.get("LAYOUT_SCREENSHOTS") or tmp_path / "layout")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Tour:
    """One browser page at one width: fits() checks a page and saves its screenshot."""

    def __init__(self, page, width: int, shots_dir: Path):
        self.page, self.width, self.shots_dir = page, width, shots_dir
        self.taken = []

    def fits(self, name: str) -> None:
        """The page does not scroll sideways; a full-page screenshot <width>-<nn>-<name>.png is saved."""
        page = self.page
        page.wait_for_load_state("load")
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        path = self.shots_dir / f"{self.width}-{len(self.taken) + 1:02d}-{name}.png"
        # caret="initial": hiding the caret injects a <style> the CSP (rightly) refuses.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        self.taken.append(path)
        assert scroll_width <= inner_width, f"{name}: the page is {scroll_width} px wide in a {inner_width} px window"
        # A table scrolling inside its box hides columns as surely as the page would.
        clipped = page.eval_on_selector_all(".table-wrap", "boxes => boxes.filter(b => b.scrollWidth > b.clientWidth)"
                                            ".map(b => [b.querySelector('table').className, b.scrollWidth, b.clientWidth])")
        assert not clipped, f"{name}: tables wider than their box: {clipped}"

    def reachable(self, locator) -> None:
        """The control is visible, inside the window's width once scrolled to, and takes a click."""
        for attempt in range(3):  # an htmx swap (a live check, a poll) may replace the element meanwhile
            expect(locator).to_be_visible()
            try:
                locator.scroll_into_view_if_needed()
                break
            except PlaywrightError:
                if attempt == 2:
                    raise
        box = locator.bounding_box()
        left, right = box["x"], box["x"] + box["width"]
        inner_width = self.page.evaluate("window.innerWidth")
        assert left >= 0 and right <= inner_width + 0.5, f"{locator} spans x={left:.0f}..{right:.0f} of {inner_width} px"
        locator.click(trial=True)  # actionable: enabled, not covered by another element

    def nav_link(self, name: str):
        return self.page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)

    def current_nav(self) -> list[str]:
        """The Main navigation's links marked aria-current."""
        return self.page.get_by_role("navigation", name="Main").locator("[aria-current]").all_inner_texts()

    def breadcrumbs(self) -> list[str]:
        """The breadcrumb trail's items, in order (the current page last)."""
        trail = self.page.get_by_role("navigation", name="Breadcrumb")
        return [text.strip() for text in trail.get_by_role("listitem").all_inner_texts()]


def one_line(locator) -> bool:
    """The inline text does not wrap: one box, no taller than a line."""
    return locator.evaluate("e => { const boxes = e.getClientRects();"
                            " return boxes.length === 1 && boxes[0].height < 1.5 * parseFloat(getComputedStyle(e).lineHeight); }")


def wait_done(page, status: str):
    expect(page.locator("#wizard-step")).to_have_attribute("data-status", status, timeout=90_000)


def update_csv(path: Path) -> Path:
    """The first two people again, with new names and points and a long phone: updates with recorded changes."""
    rows = people_rows(2)
    for row in rows:
        row[2], row[3], row[4] = row[2] + "-renamed", row[3] + "-Hyphenated-Family-Name", 250
    rows[0][1] = "+1 (415) 200-0001"
    with open(path, "w", encoding="utf-8") as out:
        out.write(",".join(HEADERS) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


def two_sheet_workbook(path: Path) -> Path:
    from openpyxl import load_workbook

    people_xlsx(path, 3)
    workbook = load_workbook(path)
    stores = workbook.create_sheet("Stores", 0)
    stores.append(["Store", "City"])
    stores.append(["Downtown", "Denver"])
    workbook.save(path)
    return path


@WIDTHS
def test_every_page_fits_the_window_and_shows_where_the_user_is(live, new_context, shots_dir, tmp_path, viewport):
    _context, page, _problems = new_context(base_url=live.url)
    page.set_viewport_size(viewport)
    tour = Tour(page, viewport["width"], shots_dir)

    # Sign-in.
    page.goto("/login")
    tour.fits("sign-in")
    tour.reachable(page.get_by_role("button", name="Sign in"))
    sign_in(page, live.email, live.password)
    page.wait_for_url(re.compile(r"/personas"))

    # The header: brand, "Customers" (a link), the three sections, the user, Sign out; the current one marked.
    tour.fits("personas-empty")
    for name in ("Personas", "Audiences", "Imports"):
        tour.reachable(tour.nav_link(name))
    tour.reachable(page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers"))
    tour.reachable(page.get_by_role("button", name="Sign out"))
    assert tour.current_nav() == ["Personas"]
    header_height = page.locator(".site-header").bounding_box()["height"]
    assert header_height <= viewport["height"] * 0.15, f"the header takes {header_height:.0f} px"

    # Step 1, from Personas > Add (+).
    tour.reachable(page.locator("summary", has_text="Add"))
    page.locator("summary", has_text="Add").click()
    page.locator(".menu-list").get_by_role("link", name="Bulk Import Personas").click()
    expect(page).to_have_url(re.compile(r"/imports/new$"))
    tour.fits("upload")
    assert tour.breadcrumbs() == ["Customers", "Personas", "Bulk import"]
    assert tour.current_nav() == ["Personas"]
    tour.reachable(page.get_by_label("Upload File"))  # the file input covers the drop zone and its button
    tour.reachable(page.locator(".template-list").get_by_role("link", name="Excel").first)

    # Step 2, a workbook with two sheets: the sheet picker.
    page.get_by_label("Upload File").set_input_files(two_sheet_workbook(tmp_path / "two-sheets.xlsx"))
    expect(page).to_have_url(step_url("uploaded"))
    expect(page.get_by_label("Sheet to import")).to_be_visible()
    tour.fits("uploaded-sheet-picker")
    tour.reachable(page.get_by_label("Sheet to import"))
    tour.reachable(page.get_by_role("button", name="Use this sheet"))
    tour.reachable(page.get_by_role("button", name="Remove"))
    page.get_by_role("button", name="Remove").click()
    expect(page).to_have_url(re.compile(r"/imports/new$"))

    # Step 2, a CSV with a bad phone on row 2.
    page.get_by_label("Upload File").set_input_files(people_csv(tmp_path / "spring-customers.csv", 4, bad_phone_row=2))
    expect(page).to_have_url(step_url("uploaded"))
    expect(page.locator("li.field-found").first).to_be_visible()
    tour.fits("uploaded-csv")
    source = page.locator("li.field-found", has_text="First Name").locator(".muted")
    assert one_line(source), "“from “First Name”” wraps"
    tour.reachable(page.get_by_role("link", name="Next"))

    # Step 3: every column's "Persona field" select is on screen.
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(step_url("mapping"))
    tour.fits("map")
    for header in HEADERS:
        tour.reachable(page.get_by_label(f"Persona field for “{header}”"))
    page.get_by_label("Persona field for “Veteran”").select_option(label="Custom attribute")
    tour.reachable(page.get_by_label("Attribute name").nth(5))
    tour.reachable(page.get_by_role("button", name="Next"))

    # Step 4: counts, the problem (its text on screen), consent, terms, Import Personas.
    page.get_by_role("button", name="Next").click()
    wait_done(page, "validated")
    tour.fits("review")
    problem = page.locator(".problems-table tbody tr").first
    expect(problem).to_contain_text(BAD_PHONE)
    tour.reachable(problem.get_by_text("not a valid phone number"))
    tour.reachable(page.get_by_role("link", name="Download the problem report"))
    tour.reachable(page.get_by_label("Opt in all personas in this file to SMS"))
    tour.reachable(page.get_by_label("I accept"))
    tour.reachable(page.get_by_role("button", name="Import Personas"))
    page.get_by_label("I accept").check()
    page.get_by_role("button", name="Import Personas").click()

    # Step 5: the result.
    wait_done(page, "completed")
    tour.fits("result")
    assert tour.current_nav() == ["Personas"] and tour.breadcrumbs() == ["Customers", "Personas", "Bulk import"]
    tour.reachable(page.get_by_role("link", name="View imported personas"))
    tour.reachable(page.get_by_role("link", name="Import another file"))

    # A second import updates two personas: their pages get recorded changes.
    page.get_by_role("link", name="Import another file").click()
    page.get_by_label("Upload File").set_input_files(update_csv(tmp_path / "spring-update.csv"))
    page.get_by_role("link", name="Next").click()
    page.get_by_role("button", name="Next").click()
    wait_done(page, "validated")
    page.get_by_label("I accept").check()
    page.get_by_role("button", name="Import Personas").click()
    wait_done(page, "completed")
    update_id = int(re.search(r"/imports/(\d+)/", page.url).group(1))

    # History: every row's Result and actions on screen; "Delete file" on one line.
    tour.nav_link("Imports").click()
    expect(page).to_have_url(re.compile(r"/imports$"))
    tour.fits("history")
    assert tour.current_nav() == ["Imports"]
    row = page.locator(f"#import-{update_id}")
    tour.reachable(row.locator(".history-result"))
    for name in ("View", "Revert", "Delete file"):
        control = row.get_by_role("link", name=name, exact=True).or_(row.get_by_role("button", name=name, exact=True))
        tour.reachable(control)
    expect(row.get_by_role("link", name="Report", exact=True)).to_have_count(0)  # a clean import has no report
    height, line = row.get_by_role("button", name="Delete file").evaluate(
        "e => [e.offsetHeight, parseFloat(getComputedStyle(e).lineHeight)]")
    assert height < 2 * line, f"“Delete file” wraps: {height:.0f} px high, its lines {line:.0f} px"

    # The import page.
    row.get_by_role("link", name="View", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/imports/{update_id}$"))
    tour.fits("import-detail")
    assert tour.breadcrumbs() == ["Customers", "Imports", f"Import #{update_id}"]
    assert tour.current_nav() == ["Imports"]
    tour.reachable(page.locator(".import-detail").get_by_role("link", name="Revert"))

    # A persona page with its changes (the phone on one line).
    tour.nav_link("Personas").click()
    page.get_by_role("link", name="customer000001@example.com").click()
    expect(page).to_have_url(re.compile(r"/personas/\d+$"))
    tour.fits("persona")
    assert tour.current_nav() == ["Personas"]
    assert tour.breadcrumbs()[:2] == ["Customers", "Personas"]
    changes = page.locator(".changes").first
    tour.reachable(changes)
    tour.reachable(page.locator(".changes li", has_text="last name").first)
    phone = page.locator("dl.fields .phone span").first
    expect(phone).to_contain_text("(415)")
    assert one_line(phone), "the phone number wraps"

    # The personas list.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Personas").click()
    expect(page).to_have_url(re.compile(r"/personas$"))
    tour.fits("personas")
    tour.reachable(page.get_by_label("Search"))
    tour.reachable(page.get_by_role("link", name="Export CSV"))
    tour.reachable(page.get_by_role("link", name="customer000004@example.com"))

    # Audiences and an audience.
    tour.nav_link("Audiences").click()
    expect(page).to_have_url(re.compile(r"/audiences$"))
    tour.fits("audiences")
    assert tour.current_nav() == ["Audiences"]
    audience = page.get_by_role("link", name=re.compile("spring-customers"))
    tour.reachable(audience)
    audience.click()
    expect(page).to_have_url(re.compile(r"/audiences/\d+$"))
    tour.fits("audience")
    assert tour.breadcrumbs()[:2] == ["Customers", "Audiences"]
    tour.reachable(page.get_by_role("link", name="customer000001@example.com"))

    # Revert the update: the confirmation, then the result.
    page.goto(f"/imports/{update_id}/revert")
    expect(page.get_by_role("button", name="Revert import")).to_be_visible()
    tour.fits("revert-confirm")
    assert tour.breadcrumbs() == ["Customers", "Imports", f"Import #{update_id}", "Revert"]
    tour.reachable(page.get_by_role("button", name="Revert import"))
    tour.reachable(page.get_by_role("link", name="Cancel"))
    page.get_by_role("button", name="Revert import").click()
    expect(page.get_by_role("heading", name=f"Import #{update_id} reverted")).to_be_visible()
    tour.fits("revert-result")
    tour.reachable(page.get_by_role("link", name="Back to the import history"))

    assert len(tour.taken) == 16 and all(path.stat().st_size for path in tour.taken)


@WIDTHS
def test_no_dangling_separator_and_a_favicon(page, live, viewport):
    """The breadcrumb separators sit between items, never after the last; every page links an SVG favicon."""
    page.set_viewport_size(viewport)
    for path in ("/imports/new", "/imports", "/audiences"):
        page.goto(path)
        icon = page.locator("link[rel='icon']")
        expect(icon).to_have_attribute("type", "image/svg+xml")
        response = page.request.get(icon.get_attribute("href"))
        assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in response.text()
        trail = page.get_by_role("navigation", name="Breadcrumb")
        if trail.count():
            text = re.sub(r"\s+", " ", trail.inner_text()).strip()
            assert not text.endswith("›") and not text.startswith("›"), text


def test_an_error_swap_shows_its_message_without_a_csp_violation(page, live, tmp_path, new_context):
    """An HTMX request that fails (its import removed in another tab) shows its alert; the CSP is not violated."""
    page.goto("/imports/new")
    page.get_by_label("Upload File").set_input_files(people_csv(tmp_path / "gone.csv", 2))
    expect(page).to_have_url(step_url("uploaded"))
    import_id = int(re.search(r"/imports/(\d+)/", page.url).group(1))
    # Another tab removes the upload; this tab's Next then answers 404, swapped into the messages area.
    other = page.context.new_page()
    other.goto(f"/imports/{import_id}/uploaded")
    other.get_by_role("button", name="Remove").click()
    expect(other).to_have_url(re.compile(r"/imports/new$"))
    other.close()
    page.get_by_role("link", name="Next").click()
    expect(page.locator("#messages .alert-error")).to_be_visible()
    page.wait_for_timeout(300)  # a violation is reported on the console after the swap
    # new_context's teardown fails the test on any Content-Security-Policy violation.


@WIDTHS
def test_embedded_layout_navigates_to_personas_audiences_and_imports(live_factory, parent_site, new_context,
                                                                   shots_dir, viewport):
    live = live_factory(FRAME_ANCESTORS=["'self'", parent_site.origin], EMBEDDING=True)
    parent_site.app_url = live.url
    _context, page, _problems = new_context()
    page.set_viewport_size(viewport)
    page.goto(parent_site.origin + "/?path=/imports")
    frame = page.frame_locator("iframe#personas")
    sign_in(page, live.email, live.password, frame=frame)
    nav = frame.get_by_role("navigation", name="Main")
    expect(frame.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
    expect(nav.locator("[aria-current='page']")).to_have_text("Imports")
    expect(frame.locator(".site-header")).to_have_count(0)  # the compact bar, not the app's header

    nav.get_by_role("link", name="Personas", exact=True).click()
    expect(frame.get_by_role("heading", name="Personas", exact=True)).to_be_visible()
    expect(nav.locator("[aria-current='page']")).to_have_text("Personas")
    expect(frame.locator("body.layout-embed")).to_have_count(1)

    nav.get_by_role("link", name="Audiences", exact=True).click()
    expect(frame.get_by_role("heading", name="Audiences", exact=True)).to_be_visible()
    expect(nav.locator("[aria-current='page']")).to_have_text("Audiences")

    # The frame as wide as the window allows (the parent page sets 1200 px): its page fits in it.
    page.eval_on_selector("iframe#personas", "(frame, width) => { frame.style.width = width + 'px'; }",
                          viewport["width"] - 40)
    app = next(f for f in page.frames if f.url.startswith(live.url))
    expect(frame.get_by_role("heading", name="Audiences", exact=True)).to_be_visible()
    scroll_width, inner_width = app.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    page.screenshot(path=str(shots_dir / f"{viewport['width']}-embedded-audiences.png"), full_page=True, caret="initial")
    assert scroll_width <= inner_width, f"the embedded page is {scroll_width} px wide in a {inner_width} px frame"


def test_long_unbroken_names_and_values_fit_a_phone(page, live, shots_dir, tmp_path):
    """A file name, a header and a cell with no space to break at wrap inside the phone's width."""
    page.set_viewport_size(PHONE)
    tour = Tour(page, PHONE["width"], shots_dir)
    path = tmp_path / ("march_" + "all_stores_" * 6 + "export.csv")
    header = "Preferred_Store_Location_" + "Downtown" * 5
    path.write_text(f"Email,{header}\ncustomer_with_a_very_long_mailbox_name_{'x' * 30}@example.com,"
                    f"{'Z' * 80}\n", encoding="utf-8")
    page.goto("/imports/new")
    page.get_by_label("Upload File").set_input_files(path)
    expect(page).to_have_url(step_url("uploaded"))
    expect(page.locator(".unknown-headers")).to_contain_text(header)
    tour.fits("long-uploaded")
    tour.reachable(page.get_by_role("link", name="Next"))
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(step_url("mapping"))
    tour.fits("long-map")
    tour.reachable(page.get_by_label(f"Persona field for “{header}”"))
    tour.reachable(page.get_by_role("button", name="Next"))


@WIDTHS
def test_the_header_with_an_account_switcher_fits(live, new_context, shots_dir, viewport):
    """A user of two accounts: the switcher, Switch and Sign out are reachable and the header stays short."""
    create_user(OWNER_EMAIL, "", create_account(OTHER_ACCOUNT), Membership.STAFF)
    if not db.is_closed():
        db.close()
    _context, page, _problems = new_context(base_url=live.url)
    page.set_viewport_size(viewport)
    tour = Tour(page, viewport["width"], shots_dir)
    page.goto("/login")
    sign_in(page, live.email, live.password)
    page.wait_for_url(re.compile(r"/personas"))
    tour.fits("header-with-switcher")
    for control in (page.get_by_label("Account"), page.get_by_role("button", name="Switch"),
                    page.get_by_role("button", name="Sign out"), tour.nav_link("Imports")):
        tour.reachable(control)
    header_height = page.locator(".site-header").bounding_box()["height"]
    assert header_height <= viewport["height"] * 0.15, f"the header takes {header_height:.0f} px"
    page.get_by_label("Account").select_option(label=OTHER_ACCOUNT)
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Account")).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_label("Account").locator("option:checked")).to_have_text(re.compile("^Zephyr"))
    tour.fits("header-switched")
