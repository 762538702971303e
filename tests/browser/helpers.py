"""Files for the browser tests (real CSV and XLSX written here) and a driver for the wizard's steps."""
import csv
import re
from pathlib import Path

from openpyxl import Workbook

HEADERS = ["Email", "Phone", "First Name", "Last Name", "Points", "Veteran"]
BAD_PHONE = "555-CALL-NOW"


def person(i: int) -> list:
    """Row i of a clean file: a unique email and a unique valid US phone, (415) 2xx-xxxx."""
    return [f"customer{i:06d}@example.com", f"(415) {200 + i // 10000:03d}-{i % 10000:04d}", f"First{i}", f"Last{i}",
            i % 500, "TRUE" if i % 3 == 0 else "FALSE"]


def people_rows(n: int, bad_phone_row: int | None = None) -> list[list]:
    """n people; row bad_phone_row (1-based data row) gets an invalid phone (a warning, the email still matches)."""
    rows = [person(i) for i in range(1, n + 1)]
    if bad_phone_row:
        rows[bad_phone_row - 1][1] = BAD_PHONE
    return rows


def people_csv(path: Path, n: int, bad_phone_row: int | None = None, headers=HEADERS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows(people_rows(n, bad_phone_row))
    return path


def people_xlsx(path: Path, n: int, bad_phone_row: int | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Customers"
    sheet.append(HEADERS)
    for row in people_rows(n, bad_phone_row):
        row[5] = row[5] == "TRUE"  # real Excel booleans
        sheet.append(row)
    workbook.save(path)
    return path


def step_url(kind: str):
    return re.compile(rf"/imports/\d+/{kind}$")


# ---------------------------------------------------------------------------------------------- the wizard

class Wizard:
    """Drives the wizard like a user: role, label and text locators only; a screenshot at every step."""

    def __init__(self, page, shot, expect):
        self.page, self.shot, self.expect = page, shot, expect
        self.shots = 0

    def snap(self, name: str, page=None):
        """A full-page screenshot, numbered in the order of the test's steps (of page, default the wizard's)."""
        self.shots += 1
        return self.shot(page or self.page, f"{self.shots:02d}-{name}")

    def step(self):
        return self.page.locator("#wizard-step")

    def open(self):
        """Step 1 the way SPEC section 1 enters it: Customers > Personas > Add (+) > Bulk Import Personas."""
        page, expect = self.page, self.expect
        page.goto("/imports")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Personas").click()
        menu = page.locator("details.menu", has=page.locator("summary", has_text="Add"))
        menu.locator("summary").click()
        menu.get_by_role("link", name="Bulk Import Personas").click()
        expect(page).to_have_url(re.compile(r"/imports/new$"))
        expect(page.get_by_role("heading", name="Bulk Import Personas")).to_be_visible()
        expect(self.step()).to_have_attribute("data-step", "upload")

    def upload(self, path: Path, name: str = "uploaded"):
        """Choose the file: the upload starts by itself; step 2 shows the file's name."""
        page, expect = self.page, self.expect
        page.get_by_label("Upload File").set_input_files(path)
        expect(page).to_have_url(step_url("uploaded"))
        expect(page.get_by_role("heading", name=f"Uploaded: {path.name}")).to_be_visible()
        expect(page.locator(".file-name")).to_have_text(path.name)
        self.snap(name)

    def found_fields(self) -> list[str]:
        """The field labels with a ✓ on step 2."""
        items = self.page.locator("li.field-found")
        return [re.sub(r"\s+", " ", t).replace("✓", "").replace("Found:", "").split(" from ")[0].strip()
                for t in items.all_inner_texts()]

    def to_mapping(self, name: str = "mapping"):
        page, expect = self.page, self.expect
        page.get_by_role("link", name="Next").click()
        expect(page).to_have_url(step_url("mapping"))
        expect(self.step()).to_have_attribute("data-step", "mapping")
        self.snap(name)

    def submit_mapping(self, name: str = "review"):
        """Next on step 3; wait for the dry run to end on step 4 (Review)."""
        page, expect = self.page, self.expect
        page.get_by_role("button", name="Next").click()
        expect(page).to_have_url(step_url("review"))
        expect(self.step()).to_have_attribute("data-status", "validated", timeout=60_000)
        expect(page.get_by_role("button", name="Import Personas")).to_be_visible()
        self.snap(name)

    def counts(self, which: str) -> dict[str, int]:
        """The stat boxes of step 4 ("review") or step 5 ("result"): {"will create": 3, ...}."""
        stats = self.page.locator(f".{which}-counts .stat")
        values = {}
        for i in range(stats.count()):
            stat = stats.nth(i)
            values[stat.locator(".stat-label").inner_text().strip()] = int(
                stat.locator(".stat-value").inner_text().replace(",", ""))
        return values

    def import_personas(self, sms: bool = False, email: bool = False, name: str = "importing"):
        """Step 4: the opt-in boxes, "I accept", then Import Personas; returns when step 5 is shown."""
        page, expect = self.page, self.expect
        if sms:
            page.get_by_label("Opt in all personas in this file to SMS").check()
        if email:
            page.get_by_label("Opt in all personas in this file to Email").check()
        page.get_by_label("I accept").check()
        page.get_by_role("button", name="Import Personas").click()
        expect(page).to_have_url(re.compile(r"/imports/\d+/progress$"))
        self.snap(name)

    def wait_finished(self, name: str = "finished", timeout: int = 90_000):
        page, expect = self.page, self.expect
        expect(self.step()).to_have_attribute("data-status", "completed", timeout=timeout)
        expect(page.get_by_role("heading", name=re.compile("^Import complete"))).to_be_visible()
        self.snap(name)

    def import_id(self) -> int:
        return int(re.search(r"/imports/(\d+)/", self.page.url).group(1))
