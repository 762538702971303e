"""Downloadable CSV and XLSX templates with example.com sample rows (SPEC section 6)."""

import csv
import datetime
import io
import re
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from webapp.importer.fields import FIELDS
from webapp.importer.safe_cells import neutralize


class Signed(int):
    """A points delta shown with its sign ("+50") in CSV, a plain number in XLSX."""

    def __str__(self) -> str:
        return f"{int(self):+d}"


@dataclass(frozen=True)
class Template:
    """One downloadable template: sample rows hold str, int, bool, date or None."""

    slug: str
    title: str
    description: str
    headers: tuple[str, ...]
    rows: tuple[tuple, ...]


TEMPLATES: dict[str, Template] = {
    t.slug: t
    for t in (
        Template(
            "provider",
            "Import from a previous provider",
            "Import customers from a previous loyalty or marketing provider, with every field.",
            tuple(f.synonyms[0] for f in FIELDS.values()),
            tuple(zip(*(f.samples for f in FIELDS.values()))),
        ),
        Template(
            "sms-consent",
            "SMS opt-in and opt-out",
            "Set SMS opt-in and explicit opt-out statuses; an opt-out wins over an opt-in.",
            ("Email", "Phone", "Opt-in SMS", "Explicit SMS Opt-out"),
            (
                ("maria.lopez@example.com", "(415) 555-0134", True, False),
                ("james.okafor@example.com", "(617) 555-0199", False, True),
                ("", "(303) 555-0101", True, False),
                ("dana.wells@example.com", "", False, False),
            ),
        ),
        Template(
            "points",
            "Add or subtract loyalty points",
            "Add points to or subtract points from each customer's balance; negative numbers subtract.",
            ("Email", "Phone", "Points"),
            (
                ("maria.lopez@example.com", "(415) 555-0134", Signed(50)),
                ("james.okafor@example.com", "(617) 555-0199", -20),
                ("", "(303) 555-0101", 100),
            ),
        ),
        Template(
            "attributes",
            "Customer type and attributes",
            "Set each customer's type (medical or recreational) and add custom attributes set to TRUE.",
            ("Email", "Phone", "Customer Type", "Veteran", "Police", "Locals"),
            (
                ("maria.lopez@example.com", "(415) 555-0134", "Recreational", False, False, True),
                ("james.okafor@example.com", "(617) 555-0199", "Medical", True, False, True),
                ("sam.chen@example.com", "(303) 555-0101", "Medical", False, True, False),
            ),
        ),
    )
}

US_DATE = "mm/dd/yyyy"


def csv_text(value) -> str:
    """A sample value as the CSV shows it: US dates, TRUE/FALSE, neutralized text."""
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.date):
        return value.strftime("%m/%d/%Y")
    return neutralize(value)


def template_csv(slug: str) -> bytes:
    """The template as CSV: UTF-8 with a BOM (for Excel), CRLF line ends."""
    template = TEMPLATES[slug]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(h) for h in template.headers])
    writer.writerows([csv_text(v) for v in row] for row in template.rows)
    return buffer.getvalue().encode("utf-8-sig")


def _sheet_title(title: str) -> str:
    """Excel's sheet-name rules: at most 31 characters, none of []:*?/\\."""
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip() or "Template"


def template_xlsx(slug: str) -> bytes:
    """The template as XLSX: bold headers, typed cells, text that can never run as a formula."""
    template = TEMPLATES[slug]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _sheet_title(template.title)
    sheet.append([neutralize(h) for h in template.headers])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(template.rows, start=2):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c)
            if isinstance(value, (bool, datetime.date)):
                cell.value = value
                if not isinstance(value, bool):
                    cell.number_format = US_DATE
            elif isinstance(value, int):
                cell.value = int(value)  # a plain number: Signed's "+" is for CSV only
            elif value not in (None, ""):
                # Text stays text (zip 02134 keeps its zero); openpyxl would store "=..." as a formula.
                cell.value = neutralize(value)
                cell.data_type = "s"
                cell.number_format = "@"
    for c, header in enumerate(template.headers, start=1):
        longest = max([len(header)] + [len(csv_text(row[c - 1])) for row in template.rows])
        sheet.column_dimensions[get_column_letter(c)].width = min(longest + 3, 40)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def template_filename(slug: str, ext: str) -> str:
    """The download name, e.g. personas-template-points.csv; unknown slug raises KeyError."""
    TEMPLATES[slug]
    return f"personas-template-{slug}.{ext.lstrip('.')}"
