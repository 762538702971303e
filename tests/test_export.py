"""Data out: the personas list, a search result and an audience as CSV and XLSX, from the pages and the CLI.

Every persona field under the label the auto-matcher maps back, the balance under a header it leaves alone,
consent with its stamps, one column per attribute, cells neutralized against formulas; streamed by chunks of
personas, so a million download in flat memory; re-imported, the file changes nothing.
"""
import csv
import datetime
import io
import tracemalloc

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from tests.engine_helpers import by_key, import_via_cli, invoke, write_csv
from webapp.importer.export import CHUNK, Selection, export_personas
from webapp.importer.export_files import csv_stream, xlsx_stream
from webapp.importer.fields import auto_match
from webapp.models import Audience, AudienceMember, Persona, PersonaAttribute

LINK = '=HYPERLINK("http://evil.example","click")'
HEADERS = ["Email", "Phone", "First Name", "Last Name", "Birthday", "Gender", "Address", "City", "State", "Zip",
           "Customer ID", "Loyalty", "Loyalty Signup Date", "Points", "Opt-in SMS", "Opt-in Email",
           "Explicit SMS Opt-out", "Explicit Email Opt-out", "Customer Type", "Veteran", "Locals"]
ROWS = [
    ["ann@example.com", "(415) 555-0101", LINK, "Lee", "04/20/1988", "Female", "1 Main St", "Boston", "MA", "02134",
     "C-1", "TRUE", "06/15/2021", "120", "TRUE", "FALSE", "FALSE", "TRUE", "Medical", "TRUE", "FALSE"],
    ["bob@example.com", "", "@Bob", "+Stone", "", "", "", "", "", "", "", "", "", "-20", "", "TRUE", "TRUE", "",
     "rec", "", "yes"],
]
# The export's header row: the catalogue's labels (what the auto-matcher maps back), the balance under a header
# it does not map (a re-import would add it again), the consent stamps, one column per attribute, the rest.
EXPORT_HEADERS = [
    "Email", "Phone", "First Name", "Last Name", "Birthday", "Gender", "Street Address", "City", "State",
    "Postal Code", "External ID", "Loyalty Member", "Loyalty Signup Date", "Points Balance", "Opt-in SMS",
    "Opt-in Email", "Explicit SMS Opt-out", "Explicit Email Opt-out", "Customer Type",
    "SMS Consent At (UTC)", "SMS Consent Import", "SMS Consent By", "SMS Consent Terms",
    "Email Consent At (UTC)", "Email Consent Import", "Email Consent By", "Email Consent Terms",
    "Attribute: locals", "Attribute: veteran", "Status", "Persona ID", "Created At (UTC)", "Updated At (UTC)"]


@pytest.fixture
def imported(runner, owner_a, tmp_path):
    """Ann and Bob, imported by owner A through the CLI, so their consent carries real stamps."""
    return import_via_cli(runner, write_csv(tmp_path, [HEADERS, *ROWS], "people.csv"))


def csv_rows(data: bytes) -> list[dict]:
    """A CSV export's rows as dicts by header; asserts the BOM Excel needs and the header row."""
    assert data.startswith(b"\xef\xbb\xbf")
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    names = sorted(h for h in reader.fieldnames if h.startswith("Attribute: "))  # those the personas have
    assert reader.fieldnames == EXPORT_HEADERS[:27] + names + EXPORT_HEADERS[-4:]
    return list(reader)


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def all_personas(account) -> list[dict]:
    """Every column of the account's personas, with their attributes, by id."""
    rows = list(Persona.select().where(Persona.account == account).order_by(Persona.id).dicts())
    for row in rows:
        names = PersonaAttribute.select(PersonaAttribute.name).where(PersonaAttribute.persona == row["id"])
        row["attributes"] = sorted(name for (name,) in names.tuples())
    return rows


# ---------------------------------------------------------------- what a file holds

def test_a_csv_export_holds_every_field_consent_stamps_attributes_and_neutralized_cells(
        owner_client, account_a, owner_a, imported, app):
    response = owner_client.get("/personas/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="personas-{datetime.date.today().isoformat()}.csv"')
    ann_row, bob_row = csv_rows(response.get_data())
    ann = Persona.get(Persona.email == "ann@example.com")
    bob = Persona.get(Persona.email == "bob@example.com")
    terms = app.config["TERMS_VERSION"]
    assert ann_row == {
        "Email": "ann@example.com", "Phone": "'+14155550101", "First Name": "'" + LINK, "Last Name": "Lee",
        "Birthday": "1988-04-20", "Gender": "Female", "Street Address": "1 Main St", "City": "Boston",
        "State": "MA", "Postal Code": "02134", "External ID": "C-1", "Loyalty Member": "TRUE",
        "Loyalty Signup Date": "2021-06-15", "Points Balance": "120", "Opt-in SMS": "TRUE", "Opt-in Email": "FALSE",
        "Explicit SMS Opt-out": "FALSE", "Explicit Email Opt-out": "TRUE", "Customer Type": "medical",
        "SMS Consent At (UTC)": stamp(ann.sms_consent_at), "SMS Consent Import": str(imported["import_id"]),
        "SMS Consent By": owner_a.email, "SMS Consent Terms": terms,
        "Email Consent At (UTC)": stamp(ann.email_consent_at), "Email Consent Import": str(imported["import_id"]),
        "Email Consent By": owner_a.email, "Email Consent Terms": terms,
        "Attribute: locals": "FALSE", "Attribute: veteran": "TRUE", "Status": "active", "Persona ID": str(ann.id),
        "Created At (UTC)": stamp(ann.created_at), "Updated At (UTC)": stamp(ann.updated_at)}
    # Text a spreadsheet would run (=, +, -, @) gets a leading ', a negative balance too; blanks stay blank.
    assert (bob_row["First Name"], bob_row["Last Name"], bob_row["Points Balance"]) == ("'@Bob", "'+Stone", "'-20")
    assert (bob_row["Phone"], bob_row["Birthday"], bob_row["Loyalty Member"]) == ("", "", "")
    assert (bob_row["Opt-in SMS"], bob_row["Explicit SMS Opt-out"]) == ("FALSE", "TRUE")
    assert bob_row["Opt-in Email"] == "TRUE"
    assert (bob_row["Attribute: locals"], bob_row["Attribute: veteran"]) == ("TRUE", "FALSE")
    assert bob_row["SMS Consent At (UTC)"] == stamp(bob.sms_consent_at) and bob_row["SMS Consent By"] == owner_a.email


def test_an_xlsx_export_has_typed_cells_and_text_that_never_runs(owner_client, account_a, imported):
    response = owner_client.get("/personas/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    header, ann, bob = ([cell for cell in row] for row in sheet.iter_rows())
    assert [cell.value for cell in header] == EXPORT_HEADERS and all(cell.font.b for cell in header)
    ann_cells = dict(zip(EXPORT_HEADERS, ann))
    bob_cells = dict(zip(EXPORT_HEADERS, bob))
    assert ann_cells["First Name"].value == "'" + LINK and ann_cells["First Name"].data_type == "s"
    assert ann_cells["Phone"].value == "'+14155550101" and ann_cells["Postal Code"].value == "02134"
    assert ann_cells["Birthday"].value == datetime.datetime(1988, 4, 20) and ann_cells["Birthday"].is_date
    assert ann_cells["Points Balance"].value == 120 and bob_cells["Points Balance"].value == -20
    assert ann_cells["Loyalty Member"].value is True and ann_cells["Opt-in SMS"].value is True
    assert ann_cells["Attribute: veteran"].value is True and ann_cells["Attribute: locals"].value is False
    assert ann_cells["SMS Consent Import"].value == imported["import_id"]
    assert ann_cells["SMS Consent By"].value == "owner-a@example.com"
    assert bob_cells["Last Name"].value == "'+Stone" and bob_cells["Birthday"].value is None
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)


def test_attribute_headers_map_back_to_their_attribute_whatever_the_name():
    headers = ["Email", "Attribute: Veteran", "attribute:city", "Status", "Persona ID", "Points Balance"]
    assert auto_match(headers) == {"Email": "email", "Attribute: Veteran": "attribute:veteran",
                                   "attribute:city": "attribute:city", "Status": "ignore", "Persona ID": "ignore",
                                   "Points Balance": "ignore"}


def test_xlsx_text_comes_back_exactly_as_stored_whatever_it_holds(owner_client, account_a, make_persona):
    odd = {"first_name": "  two\r\nlines & <b>tags</b>  ", "last_name": "_x000D_ is text", "city": "bell\x07"}
    make_persona(account_a, email="ann@example.com", **odd)
    data = owner_client.get("/personas/export.xlsx").get_data()
    # Read as Excel and calamine (the importer's reader) read it: "_x000D_" is Excel's escape for a CR, so a
    # text holding those letters is written escaped itself ("_x005F_x000D_"), and read back as stored.
    header, ann = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    cells = dict(zip(header, ann))
    assert cells["First Name"] == odd["first_name"] and cells["Last Name"] == odd["last_name"]
    assert cells["City"] == "bell"  # XML cannot hold a control character: the one thing left out


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_an_export_imported_again_changes_nothing(owner_client, runner, account_a, imported, tmp_path, ext):
    before = all_personas(account_a)
    path = tmp_path / f"export.{ext}"
    path.write_bytes(owner_client.get(f"/personas/export.{ext}").get_data())
    again = import_via_cli(runner, path)
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 2, 0)
    assert all_personas(account_a) == before  # not a value, stamp or balance moved


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_an_export_imported_into_an_empty_account_gives_the_same_personas(
        owner_client, runner, account_a, account_b, owner_b, imported, tmp_path, ext):
    path = tmp_path / f"export.{ext}"
    path.write_bytes(owner_client.get(f"/personas/export.{ext}").get_data())
    # The balance column maps only when asked: into an empty account, the balance is the points to add.
    result = import_via_cli(runner, path, "--map", "Points Balance=points", account="Beta", user=owner_b.email)
    assert (result["created"], result["rejected"]) == (2, 0)
    assert by_key(export_personas(account_b.id)) == by_key(export_personas(account_a.id))


# ---------------------------------------------------------------- a search, an audience

def test_a_search_exports_what_it_shows_and_the_page_links_keep_it(owner_client, account_a, make_persona):
    make_persona(account_a, email="ann@example.com", last_name="Lee")
    make_persona(account_a, email="bob@example.com", last_name="Stone")
    make_persona(account_a, email="cara@example.com", last_name="Lee")
    page = owner_client.get("/personas", query_string={"q": "lee"}).get_data(as_text=True)
    assert 'href="/personas/export.csv?q=lee"' in page and 'href="/personas/export.xlsx?q=lee"' in page
    assert ">Export CSV<" in page and ">Export XLSX<" in page
    response = owner_client.get("/personas/export.csv?q=lee")
    assert [row["Email"] for row in csv_rows(response.get_data())] == ["ann@example.com", "cara@example.com"]
    assert "personas-search-" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(owner_client.get("/personas/export.xlsx?q=stone").get_data()))
    assert [row[0] for row in workbook.active.iter_rows(min_row=2, values_only=True)] == ["bob@example.com"]


def test_an_audience_exports_its_members_only(owner_client, account_a, make_persona):
    ann, bob = make_persona(account_a, email="ann@example.com"), make_persona(account_a, email="bob@example.com")
    make_persona(account_a, email="cara@example.com")
    audience = Audience.create(account=account_a, name="VIPs")
    AudienceMember.insert_many([(audience.id, bob.id), (audience.id, ann.id)],
                               fields=[AudienceMember.audience, AudienceMember.persona]).execute()
    page = owner_client.get(f"/audiences/{audience.id}").get_data(as_text=True)
    assert f'href="/audiences/{audience.id}/export.csv"' in page and ">Export XLSX<" in page
    response = owner_client.get(f"/audiences/{audience.id}/export.csv")
    assert [row["Email"] for row in csv_rows(response.get_data())] == ["ann@example.com", "bob@example.com"]
    assert f"audience-{audience.id}-" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(owner_client.get(f"/audiences/{audience.id}/export.xlsx").get_data()))
    assert [row[0] for row in workbook.active.iter_rows(min_row=2, values_only=True)] == [
        "ann@example.com", "bob@example.com"]


def test_another_accounts_audience_and_an_unknown_format_are_not_found(owner_client, staff_client, account_b,
                                                                        make_persona, account_a):
    theirs = Audience.create(account=account_b, name="Beta secret")
    AudienceMember.create(audience=theirs, persona=make_persona(account_b, email="secret@beta.example"))
    for url in (f"/audiences/{theirs.id}/export.csv", f"/personas/export.xlsx?audience={theirs.id}"):
        response = owner_client.get(url)
        assert response.status_code == 404 and "secret@beta.example" not in response.get_data(as_text=True)
    assert owner_client.get("/personas/export.pdf").status_code == 404
    # Staff of the account may export as owners may.
    make_persona(account_a, email="ann@example.com")
    assert [row["Email"] for row in csv_rows(staff_client.get("/personas/export.csv").get_data())] == [
        "ann@example.com"]


# ---------------------------------------------------------------- the CLI

def test_the_cli_exports_csv_and_xlsx_to_a_file_or_standard_output(runner, account_a, imported, tmp_path,
                                                                    owner_client):
    path = tmp_path / "out.csv"
    code, data, _ = invoke(runner, "export", "--account", "Alpha", "--format", "csv", "--output", path)
    assert code == 0 and data == {"file": str(path), "format": "csv", "personas": 2}
    # The same bytes as the page's download.
    assert csv_rows(path.read_bytes()) == csv_rows(owner_client.get("/personas/export.csv").get_data())
    result = runner.invoke(args=["export", "--account", "Alpha", "--format", "xlsx", "--query", "bob"])
    assert result.exit_code == 0
    rows = list(load_workbook(io.BytesIO(result.stdout_bytes)).active.iter_rows(values_only=True))
    assert rows[0][0] == "Email" and [row[0] for row in rows[1:]] == ["bob@example.com"]
    code, data, _ = invoke(runner, "export", "--account", "Alpha")  # JSON stays the default, for tools
    assert code == 0 and [p["email"] for p in data] == ["ann@example.com", "bob@example.com"]


def test_the_cli_exports_an_audience_of_its_account_only(runner, account_a, account_b, make_persona, tmp_path):
    ours, theirs = Audience.create(account=account_a, name="Ours"), Audience.create(account=account_b, name="Theirs")
    AudienceMember.create(audience=ours, persona=make_persona(account_a, email="ann@example.com"))
    make_persona(account_a, email="bob@example.com")
    path = tmp_path / "ours.csv"
    code, data, _ = invoke(runner, "export", "--account", "Alpha", "--format", "csv", "--audience", ours.id,
                           "--output", path)
    assert code == 0 and data["personas"] == 1
    assert [row["Email"] for row in csv_rows(path.read_bytes())] == ["ann@example.com"]
    code, data, _ = invoke(runner, "export", "--account", "Alpha", "--format", "csv", "--audience", theirs.id)
    assert code == 2 and data == {"status": "refused", "error": f"Alpha has no audience {theirs.id}."}


# ---------------------------------------------------------------- streamed, in flat memory

def add_personas(account, count: int, start: int = 0) -> None:
    """count personas with an email and a name each, written a thousand at a time."""
    for first in range(start, start + count, 1000):
        Persona.insert_many([{"account": account.id, "email": f"p{n:06d}@example.com", "first_name": f"P{n}"}
                             for n in range(first, min(first + 1000, start + count))]).execute()


def test_a_large_export_is_streamed_chunk_by_chunk_as_it_is_sent(owner_client, account_a):
    add_personas(account_a, 20_000)
    response = owner_client.get("/personas/export.csv", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    pieces = iter(response.response)
    header, first_chunk = next(pieces), next(pieces)
    assert header.startswith(b"\xef\xbb\xbfEmail,") and first_chunk.count(b"\r\n") == CHUNK
    # The download has begun and the last chunk is not read yet: a persona added now is in it.
    Persona.create(account=account_a, email="late@example.com")
    rest = list(pieces)
    response.close()
    assert len(rest) == 20_001 // CHUNK  # one piece per chunk of personas, the last one short
    assert b"late@example.com" in rest[-1]
    assert sum(piece.count(b"\r\n") for piece in [first_chunk, *rest]) == 20_001


def test_a_large_xlsx_goes_out_as_it_is_written(owner_client, account_a):
    add_personas(account_a, 20_000)
    response = owner_client.get("/personas/export.xlsx", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    pieces = iter(response.response)
    first = next(pieces)  # the workbook's start and its first chunk of personas, deflated
    assert first.startswith(b"PK")
    Persona.create(account=account_a, email="late@example.com")
    rest = list(pieces)
    response.close()
    assert len(rest) == 20_001 // CHUNK + 1  # one piece per further chunk, then the zip's directory
    rows = CalamineWorkbook.from_filelike(io.BytesIO(first + b"".join(rest))).get_sheet_by_index(0).to_python()
    assert len(rows) == 1 + 20_001 and rows[1][0] == "p000000@example.com" and rows[-1][0] == "late@example.com"


def peak_memory(stream) -> int:
    """The most memory Python held while the stream was read to its end (its pieces dropped as read)."""
    tracemalloc.start()
    try:
        for _ in stream:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("writer", [csv_stream, xlsx_stream], ids=["csv", "xlsx"])
def test_memory_stays_flat_however_many_personas_are_exported(app, account_a, writer):
    add_personas(account_a, 2_000)
    small = peak_memory(writer(Selection(account_a.id), size=500))
    add_personas(account_a, 6_000, start=2_000)
    large = peak_memory(writer(Selection(account_a.id), size=500))
    assert large < small * 1.5, (small, large)  # four times the personas, not more memory
