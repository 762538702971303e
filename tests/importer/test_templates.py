"""Downloadable templates: CSV and XLSX carry the declared headers and typed sample rows."""

import csv
import datetime
import io

import openpyxl
import phonenumbers
import pytest

from webapp.importer.templates import TEMPLATES, csv_text, template_csv, template_filename, template_xlsx

SLUGS = ["provider", "sms-consent", "points", "attributes"]


def strip(text: str) -> str:
    """The readers' contract: drop exactly one ' before =, +, -, @, tab or CR."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r") else text


def read_csv(slug):
    data = template_csv(slug)
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


def read_xlsx(slug):
    return openpyxl.load_workbook(io.BytesIO(template_xlsx(slug))).active


def column(template, header):
    i = template.headers.index(header)
    return [row[i] for row in template.rows]


def test_the_four_templates():
    assert list(TEMPLATES) == SLUGS
    assert TEMPLATES["sms-consent"].headers == ("Email", "Phone", "Opt-in SMS", "Explicit SMS Opt-out")
    assert TEMPLATES["points"].headers == ("Email", "Phone", "Points")
    assert TEMPLATES["attributes"].headers == (
        "Email", "Phone", "Customer Type", "Veteran", "Police", "Locals")
    assert len(TEMPLATES["provider"].headers) == 19
    for t in TEMPLATES.values():
        assert 3 <= len(t.rows) <= 4 and all(len(r) == len(t.headers) for r in t.rows)
        assert t.title and t.description.endswith(".")


@pytest.mark.parametrize("slug", SLUGS)
def test_csv_parses_to_headers_and_rows(slug):
    t = TEMPLATES[slug]
    head, *rows = read_csv(slug)
    assert head == list(t.headers)
    assert rows == [[csv_text(v) for v in row] for row in t.rows]


def test_csv_values_as_a_marketer_types_them():
    rows = read_csv("provider")[1:]
    assert rows[0][4] == "04/20/1988" and rows[0][11] == "TRUE" and rows[2][15] == "FALSE"
    assert "02134" in [r[9] for r in rows]
    points = [strip(r[2]) for r in read_csv("points")[1:]]
    assert "+50" in points and "-20" in points
    assert "'-20" in [r[2] for r in read_csv("points")[1:]]  # neutralized like every file the app writes


@pytest.mark.parametrize("slug", SLUGS)
def test_xlsx_headers_and_sheet(slug):
    t = TEMPLATES[slug]
    sheet = read_xlsx(slug)
    assert sheet.title == t.title[:31]
    assert [c.value for c in sheet[1]] == list(t.headers)
    assert all(c.font.bold for c in sheet[1])
    assert sheet.max_row == len(t.rows) + 1
    assert all(sheet.column_dimensions[c.column_letter].width >= len(c.value) for c in sheet[1])


@pytest.mark.parametrize("slug", SLUGS)
def test_xlsx_cells_are_typed(slug):
    t = TEMPLATES[slug]
    sheet = read_xlsx(slug)
    for row, cells in zip(t.rows, sheet.iter_rows(min_row=2)):
        for value, cell in zip(row, cells):
            if value in (None, ""):
                assert cell.value is None
            elif isinstance(value, bool):
                assert cell.value is value and cell.data_type == "b"
            elif isinstance(value, datetime.date):
                assert cell.is_date and cell.value.date() == value
            elif isinstance(value, int):
                assert cell.value == int(value) and cell.data_type == "n"
            else:
                assert cell.value == value and cell.data_type == "s"


def test_xlsx_zip_keeps_its_leading_zero():
    sheet = read_xlsx("provider")
    zips = [row[9] for row in sheet.iter_rows(min_row=2)]
    cell = next(c for c in zips if c.value == "02134")
    assert cell.data_type == "s" and cell.number_format == "@"


def test_xlsx_points_are_signed_numbers():
    sheet = read_xlsx("points")
    assert [r[2].value for r in sheet.iter_rows(min_row=2)] == [50, -20, 100]


@pytest.mark.parametrize("slug", SLUGS)
def test_sample_contacts_are_fictional_and_valid(slug):
    t = TEMPLATES[slug]
    phones = [p for p in column(t, "Phone") if p]
    emails = [e for e in column(t, "Email") if e]
    assert phones and emails
    for phone in phones:
        number = phonenumbers.parse(phone, "US")
        assert phonenumbers.is_valid_number_for_region(number, "US"), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[5:9] == "5550"
    for email in emails:
        domain = email.rsplit("@", 1)[1]
        assert domain == "example.com" or domain.endswith(".example.com"), email


def test_filenames_and_unknown_slug():
    assert template_filename("points", "csv") == "personas-template-points.csv"
    assert template_filename("sms-consent", ".xlsx") == "personas-template-sms-consent.xlsx"
    for call in (template_csv, template_xlsx, lambda s: template_filename(s, "csv")):
        with pytest.raises(KeyError):
            call("nope")
