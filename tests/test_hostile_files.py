"""Hostile files, through the wizard's upload and through `personas import` alike.

Each file is refused with a message a marketer can act on, or imported safely. Never a 500, a stack
trace or a server path in what the user sees; a refused file leaves no import, stored file, persona
or audit entry behind; a client's file name is only ever shown (escaped), never used as a path; and
a file built to exhaust memory is refused before it is unpacked.
"""
import html
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import log_in
from tests.engine_helpers import invoke, personas
from tests.importer import corpus
from tests.test_wizard import HTMX, run_wizard, upload
from webapp import ROOT, cli_import
from webapp.accounts import create_account, create_user
from webapp.importer import flow
from webapp.models import (
    Audience,
    AuditEntry,
    Import,
    ImportProblem,
    Membership,
    Persona,
    ProblemRow,
    StagedChunk,
    UploadChunk,
)

EXPORT = "Export the customer list as CSV or Excel and upload that file."
DAMAGED = ("This workbook looks damaged and cannot be read. Open it in Excel, save it again as .xlsx "
           "(Excel Workbook), and upload the new file.")
BOMB = ("This file looks damaged or is not a real spreadsheet: it would unpack to far more data than any "
        "customer list holds. Open it in Excel, save it again as .xlsx, and upload the new file.")
PASSWORD = ("This workbook is password-protected. Remove the password in Excel (File > Info > Protect Workbook) "
            "and upload it again.")
SHEET = "xl/worksheets/sheet1.xml"
PEOPLE = [["Email", "First Name"], ["ann@example.com", "Ann"]]
PEOPLE_CSV = b"Email,First Name\r\nann@example.com,Ann\r\n"
ANN = ("ann@example.com", "Ann")


# ---------------------------------------------------------------- the corpus, built once per run

def _workbook(d: Path) -> Path:
    return corpus.xlsx_file(d / "ok.xlsx", {"Customers": PEOPLE})


def _old_workbook(d: Path) -> Path:
    return corpus.xls_file(d / "ok.xls", {"Customers": PEOPLE})


BUILDERS = {
    "word.docx": lambda d: corpus.docx_file(d / "word.docx"),
    "statement.csv": lambda d: corpus.write(d / "statement.csv", corpus.PDF),
    "photo.xlsx": lambda d: corpus.write(d / "photo.xlsx", corpus.PNG),
    "photo.csv": lambda d: corpus.write(d / "photo.csv", corpus.PNG),
    "web-export.xls": lambda d: corpus.write(d / "web-export.xls", corpus.HTML_TABLE),
    "cut.xls": lambda d: corpus.truncated(_old_workbook(d), d / "cut.xls", 2000),
    "cut.xlsx": lambda d: corpus.truncated(_workbook(d), d / "cut.xlsx", 1500),
    "bomb.xlsx": lambda d: corpus.zip_bomb(d / "bomb.xlsx", unpacked_mb=64),
    "overstated.xlsx": lambda d: corpus.lying_zip(d / "overstated.xlsx"),
    "understated.xlsx": lambda d: corpus.understated_zip(_workbook(d), d / "understated.xlsx", padding_mb=64),
    "laughs.xlsx": lambda d: corpus.entity_bomb(_workbook(d), d / "laughs.xlsx"),
    "xxe-sheet.xlsx": lambda d: corpus.xxe(_workbook(d), d / "xxe-sheet.xlsx"),
    "xxe-workbook.xlsx": lambda d: corpus.xxe(_workbook(d), d / "xxe-workbook.xlsx", member="xl/workbook.xml"),
    "locked.xlsx": lambda d: corpus.ole2_file(d / "locked.xlsx", {"EncryptionInfo": b"\x04\x00\x04\x00",
                                                                   "EncryptedPackage": b"\x01" * 5000}),
    "locked.xls": lambda d: corpus.encrypted_xls(_old_workbook(d), d / "locked.xls"),
    "huge-cell.csv": lambda d: corpus.write(d / "huge-cell.csv", PEOPLE_CSV + b"bob@example.com," + b"B" * 200_000),
    "shifted.csv": lambda d: corpus.write(d / "shifted.csv", b"Email,First Name,City\nann@example.com,Ann,Reno\n"
                                          b"bob@example.com,Bob,1 Main St, Apt 2,Portland\n"),
    "stray-quote.csv": lambda d: corpus.write(d / "stray-quote.csv", PEOPLE_CSV + b'bob@example.com,"Bob" Jr\n'),
    "open-quote.csv": lambda d: corpus.write(d / "open-quote.csv", PEOPLE_CSV + b'bob@example.com,"Bob\n'
                                             b"cy@example.com,Cy\n"),
    "mixed.csv": lambda d: corpus.write(d / "mixed.csv", "Email,First Name\nzoe@example.com,Zoé\n".encode()
                                        + "chloe@example.com,Chloé\n".encode("cp1252")),
    # Accepted: the content decides, and the stray bytes a reader can drop are dropped.
    "customers.pdf": lambda d: corpus.write(d / "customers.pdf", PEOPLE_CSV),
    "customers.txt": lambda d: corpus.write(d / "customers.txt", PEOPLE_CSV),
    "nul.csv": lambda d: corpus.write(d / "nul.csv", b"Email,First Name\x00\r\nann@exa\x00mple.com,A\x00nn\r\n"),
    "nul.xls": lambda d: corpus.xls_file(d / "nul.xls", {"Customers": [["Email", "First\x00 Name"],
                                                                        ["ann@example.com", "A\x00nn"]]}),
}


@pytest.fixture(autouse=True)
def _quick_cli_polling(monkeypatch):
    """The CLI waits for its jobs by polling the import row: poll often, the jobs here take milliseconds."""
    monkeypatch.setattr(cli_import, "POLL_SECONDS", 0.01)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """hostile(name) -> the path of that corpus file, built on first use (the bombs take a moment)."""
    folder = tmp_path_factory.mktemp("hostile")
    built = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = BUILDERS[name](folder)
        return built[name]

    return get


@pytest.fixture
def unpacked(monkeypatch):
    """Bytes read out of each zip member during the test: what the readers really decompressed."""
    counts = defaultdict(int)
    real_open = zipfile.ZipFile.open

    def counting_open(self, name, mode="r", *args, **kwargs):
        member = real_open(self, name, mode, *args, **kwargs)
        if mode == "r":
            key = getattr(name, "filename", name)
            counts[key] += 0  # opened, even if its first read fails
            for method in ("read", "read1"):
                def read(n=-1, _real=getattr(member, method)):  # noqa: B008 - bound now, once per member
                    data = _real(n)
                    counts[key] += len(data)
                    return data
                setattr(member, method, read)
        return member

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    return counts


# ---------------------------------------------------------------- what the user sees

def assert_no_internals(text: str, app) -> None:
    """No stack trace and no server path in what a user is shown."""
    for leak in ("Traceback", 'File "', "site-packages", "/work", "/tmp", "/root", app.instance_path, str(ROOT)):
        assert leak not in text, (leak, text[:2000])


def assert_nothing_written() -> None:
    """A refused file leaves no import, stored bytes, kept rows, problem, persona, audience or audit entry."""
    for model in (Import, UploadChunk, StagedChunk, ProblemRow, ImportProblem, Persona, Audience, AuditEntry):
        assert model.select().count() == 0, model.__name__


def web_refusal(client, csrf, app, path: Path, name: str | None = None) -> str:
    """Upload through the wizard (as its HTMX form does); assert a 422 Upload step; return the alert's message."""
    name = name or path.name
    response = upload(client, csrf, path.read_bytes(), name, headers=HTMX)
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page[:2000]
    assert "<html" not in page and 'data-step="upload"' in page
    assert_no_internals(page, app)
    alert = re.search(r'<div class="alert alert-error" role="alert">\s*<strong>(.*?)</strong>: (.*?)</div>', page, re.S)
    assert alert.group(1) == html.escape(name)
    return html.unescape(alert.group(2))


def cli(runner, app, path, *args, account="Alpha", user="owner-a@example.com") -> tuple[int, dict]:
    """`personas import PATH --accept-terms ...`: (exit code, its JSON); asserts the output is only that JSON."""
    code, data, result = invoke(runner, "import", path, "--account", account, "--user", user, "--accept-terms", *args)
    assert data is not None, result.output
    assert_no_internals(result.output, app)
    return code, data


def cli_refusal(runner, app, path) -> str:
    """The CLI's refusal message (exit status 2)."""
    code, data = cli(runner, app, path)
    assert code == 2 and set(data) == {"status", "error"} and data["status"] == "refused", data
    return data["error"]


# ---------------------------------------------------------------- refused files

REFUSED = [
    pytest.param("word.docx", f"This is a Word document, not a spreadsheet. {EXPORT}", id="docx"),
    pytest.param("statement.csv", f"This is a PDF document, not a spreadsheet. {EXPORT}", id="pdf-named-csv"),
    pytest.param("photo.xlsx", f"This is an image, not a spreadsheet. {EXPORT}", id="png-named-xlsx"),
    pytest.param("photo.csv", f"This is an image, not a spreadsheet. {EXPORT}", id="png-named-csv"),
    pytest.param("web-export.xls", "This file is a web page (HTML) saved with a spreadsheet name, not a real "
                 "spreadsheet. Open it in Excel, save it as .xlsx (Excel Workbook) or CSV, and upload that file.",
                 id="html-table-named-xls"),
    pytest.param("cut.xls", DAMAGED, id="truncated-xls"),
    pytest.param("cut.xlsx", DAMAGED, id="truncated-xlsx"),
    pytest.param("bomb.xlsx", BOMB, id="zip-bomb"),
    pytest.param("overstated.xlsx", BOMB, id="zip-overstating-its-sizes"),
    pytest.param("understated.xlsx", DAMAGED, id="zip-understating-its-sizes"),
    pytest.param("laughs.xlsx", DAMAGED, id="billion-laughs"),
    pytest.param("xxe-sheet.xlsx", DAMAGED, id="xxe-in-sheet"),
    pytest.param("xxe-workbook.xlsx", DAMAGED, id="xxe-in-workbook"),
    pytest.param("locked.xlsx", PASSWORD, id="encrypted-xlsx"),
    pytest.param("locked.xls", PASSWORD, id="encrypted-xls"),
    pytest.param("huge-cell.csv", "Line 3 has a cell longer than 128 KB, far more than any customer field holds. "
                 'This usually means a quote (") is not closed; check that line.', id="200kb-cell"),
    pytest.param("stray-quote.csv", 'Line 3 has a quote (") in the middle of a cell. Put the whole cell in quotes '
                 'and double the quote inside it (""), or remove it, and upload the file again.', id="stray-quote"),
    pytest.param("open-quote.csv", 'Line 3 has a quote (") that is never closed, so the rest of the file would be '
                 "read as one cell. Fix or remove the quote in line 3 and upload the file again.", id="open-quote"),
    pytest.param("mixed.csv", "The file mixes two text encodings (UTF-8 and Windows-1252), so some letters would "
                 "come out garbled; line 3 is the first that is not UTF-8. Save the file from Excel as "
                 '"CSV UTF-8 (Comma delimited)" and upload it again.', id="mixed-encodings"),
]


@pytest.mark.parametrize("name, message", REFUSED)
def test_a_hostile_file_is_refused_with_its_message_on_the_web_and_in_the_cli(
        name, message, hostile, app, owner_client, csrf, runner):
    path = hostile(name)
    assert web_refusal(owner_client, csrf, app, path) == message
    assert_nothing_written()
    assert cli_refusal(runner, app, path) == message
    assert_nothing_written()


def test_an_external_entity_is_never_resolved_into_a_page(hostile, app, owner_client, csrf):
    response = upload(owner_client, csrf, hostile("xxe-sheet.xlsx").read_bytes(), "xxe.xlsx")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "looks damaged" in page
    assert "root:" not in page and "/bin/" not in page


# ---------------------------------------------------------------- memory stays flat

def test_a_zip_bomb_is_refused_from_its_stated_sizes_without_unpacking_anything(
        hostile, app, owner_client, csrf, runner, unpacked):
    for name in ("bomb.xlsx", "overstated.xlsx"):
        assert web_refusal(owner_client, csrf, app, hostile(name)) == BOMB
        assert cli_refusal(runner, app, hostile(name)) == BOMB
    assert dict(unpacked) == {}


def test_a_zip_understating_its_sizes_is_unpacked_only_as_far_as_it_states(
        hostile, app, owner_client, csrf, runner, unpacked):
    path = hostile("understated.xlsx")
    with zipfile.ZipFile(path) as zf:
        stated = zf.getinfo(SHEET).file_size
    assert stated < 1024  # while the sheet really unpacks to 64 MB
    assert web_refusal(owner_client, csrf, app, path) == DAMAGED
    assert cli_refusal(runner, app, path) == DAMAGED
    assert SHEET in unpacked and unpacked[SHEET] <= stated  # opened, and stopped (bad CRC) at its stated size


MEASURE = """
import resource, sys
from webapp.importer.errors import FileRefused
from webapp.importer.readers import count_rows, open_table

def read(path):
    try:
        with open_table(path) as table:
            return f"{count_rows(table)} rows"
    except FileRefused as refused:
        return refused.message

print(read(sys.argv[1]))  # a valid workbook first: imports and caches are not the bombs' doing
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
answers = [read(path) for path in sys.argv[2:]]
grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown_kb)
print("\\n".join(answers))
"""


@pytest.mark.sqlite_only
def test_reading_the_bombs_keeps_worker_memory_flat(hostile, tmp_path):
    # Each unpacks to 64 MB or more (the laughs to gigabytes): peak memory must not grow anywhere near that.
    bombs = [hostile(name) for name in ("bomb.xlsx", "understated.xlsx", "laughs.xlsx")]
    valid = _workbook(tmp_path)
    result = subprocess.run([sys.executable, "-c", MEASURE, str(valid), *map(str, bombs)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    first, grown_kb, *answers = result.stdout.splitlines()
    assert first == "1 rows"
    assert answers == [BOMB, DAMAGED, DAMAGED]
    assert int(grown_kb) < 24 * 1024, f"peak memory grew by {int(grown_kb) // 1024} MB"


# ---------------------------------------------------------------- files the readers take anyway

def _import_on_the_web_then_in_the_cli(client, csrf, runner, app, path: Path) -> tuple[Import, dict]:
    """Run the wizard to the end on the file, then `personas import` on the same file."""
    done = run_wizard(client, csrf, path.read_bytes(), path.name)
    assert done.status == "completed", done.error_message
    code, result = cli(runner, app, path)
    assert code == 0 and result["status"] == "completed", result
    return done, result


@pytest.mark.parametrize("name", ["customers.pdf", "customers.txt", "nul.csv", "nul.xls"],
                         ids=["csv-named-pdf", "csv-named-txt", "nul-bytes-in-csv", "nul-characters-in-xls"])
def test_a_file_read_by_its_content_imports_its_customers(name, hostile, app, owner_client, csrf, runner,
                                                          account_a):
    done, again = _import_on_the_web_then_in_the_cli(owner_client, csrf, runner, app, hostile(name))
    assert done.file_name == name and done.headers == ["Email", "First Name"]
    assert (done.counts["created"], again["unchanged"]) == (1, 1)  # both read the very same values
    assert [(p["email"], p["first_name"]) for p in personas(account_a)] == [ANN]


def test_rows_with_too_few_cells_leave_the_missing_fields_unchanged(tmp_path, app, owner_client, csrf, runner,
                                                                    account_a, make_persona):
    make_persona(account_a, email="ann@example.com", first_name="Ann", points=5)
    path = corpus.write(tmp_path / "short.csv", b"Email,First Name,Points\nann@example.com\nbob@example.com,Bob\n")
    done, again = _import_on_the_web_then_in_the_cli(owner_client, csrf, runner, app, path)
    assert (done.counts["created"], done.counts["unchanged"], done.counts.get("rejected", 0)) == (1, 1, 0)
    assert (again["unchanged"], again["problems"]) == (2, [])
    assert [(p["email"], p["first_name"], p["points"]) for p in personas(account_a)] == [
        ("ann@example.com", "Ann", 5), ("bob@example.com", "Bob", 0)]


SHIFTED = ("line 3 has more cells (5) than the header row has columns (3), so its values have shifted into the "
           "wrong columns: a value holds a comma (or the file's separator) without quotes around it. Fix that "
           "line and import it again")


def test_a_shifted_row_is_rejected_naming_its_line_and_the_others_are_imported(
        hostile, app, owner_client, csrf, runner, account_a):
    done, again = _import_on_the_web_then_in_the_cli(owner_client, csrf, runner, app, hostile("shifted.csv"))
    assert (done.counts["created"], done.counts["rejected"]) == (1, 1)
    assert [(p["email"], p["first_name"]) for p in personas(account_a)] == [ANN]
    assert again["problems"] == [{"row": 3, "column": "", "value": "", "reason": SHIFTED, "severity": "error"}]
    report = flow.problem_report(done).decode("utf-8-sig").splitlines()
    assert report[1] == ('3,error,,,"' + SHIFTED.replace('"', '""') + '",bob@example.com,Bob,1 Main St, Apt 2,Portland')


# ---------------------------------------------------------------- size and row limits

@pytest.fixture
def small(app_factory):
    """An app with a 1 MB upload limit and a 3-row limit, and owner-a of Alpha signed in: (app, client)."""
    app = app_factory(MAX_UPLOAD_MB=1, MAX_ROWS=3)
    create_user("owner-a@example.com", "pw-owner-a", create_account("Alpha"), Membership.OWNER)
    client = app.test_client()
    assert log_in(client, "owner-a@example.com", "pw-owner-a").status_code == 302
    return app, client


class UnreadBody(io.RawIOBase):
    """A request body that counts every attempt to read it."""

    reads = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        self.reads += 1
        return 0


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_a_request_over_the_upload_limit_is_answered_413_before_its_body_is_read(small, csrf, headers):
    app, client = small
    body = UnreadBody()
    response = client.post("/imports/new", content_type="multipart/form-data; boundary=x",
                           headers={"X-CSRFToken": csrf(client), **headers},
                           environ_overrides={"wsgi.input": body,
                                              "CONTENT_LENGTH": str(1024 * 1024 + 64 * 1024 + 1)})
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and body.reads == 0
    assert "This file is larger than the upload limit of 1 MB." in page
    assert ("<html" in page) is (not headers)
    if headers:
        assert response.headers["HX-Retarget"] == "#messages"
    assert_no_internals(page, app)
    assert_nothing_written()


def test_one_byte_over_the_file_limit_is_refused_and_the_limit_itself_is_taken(small, csrf, tmp_path):
    app, client = small
    runner = app.test_cli_runner()
    over = corpus.padded_csv(tmp_path / "over.csv", 1024 * 1024 + 1)
    message = ("This file is larger than the upload limit of 1 MB. "
               "Split it into smaller files and import them one after the other.")
    assert web_refusal(client, csrf, app, over) == message
    assert cli_refusal(runner, app, over) == message
    assert_nothing_written()

    at_limit = corpus.padded_csv(tmp_path / "at-limit.csv", 1024 * 1024)
    assert upload(client, csrf, at_limit.read_bytes(), at_limit.name).status_code == 303
    code, result = cli(runner, app, at_limit)
    assert code == 0 and (result["created"], result["rows"]) == (1, 1)


def _rows(path: Path, n: int) -> Path:
    return corpus.write(path, b"Email\n" + b"".join(b"u%d@example.com\n" % i for i in range(n)))


def test_one_row_over_the_row_limit_is_refused_at_the_upload(small, csrf, tmp_path):
    app, client = small
    runner = app.test_cli_runner()
    over = _rows(tmp_path / "four.csv", 4)
    message = ("The file has more than 3 customer rows, the most one import takes. "
               "Split it into smaller files and import them one at a time.")
    assert web_refusal(client, csrf, app, over) == message
    assert cli_refusal(runner, app, over) == message
    assert_nothing_written()

    at_limit = _rows(tmp_path / "three.csv", 3)
    response = upload(client, csrf, at_limit.read_bytes(), at_limit.name)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "3 customer rows" in page


def test_a_large_file_over_the_row_limit_fails_its_check_with_the_message(small, csrf, tmp_path, monkeypatch):
    app, _ = small
    # Files too large to count at upload are counted by the validation pass.
    monkeypatch.setattr(flow, "CHEAP_COUNT_BYTES", {})
    message = cli_refusal(app.test_cli_runner(), app, _rows(tmp_path / "four.csv", 4))
    assert message.startswith("The file has more than 3 customer rows")
    [failed] = Import.select()
    assert (failed.status, failed.error_message) == ("failed", message)  # the history tells the truth
    assert Persona.select().count() == 0 and AuditEntry.select().count() == 0


# ---------------------------------------------------------------- file names are text, never paths

def _files_under(folder: Path) -> set[str]:
    """Every file and folder under folder, except SQLite's own (its write-ahead log comes and goes)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.startswith("test.db")}


@pytest.mark.parametrize("sent, shown", [
    ("../../etc/passwd.csv", "passwd.csv"),
    ("CON", "CON"),
    ("NUL.csv", "NUL.csv"),
    ("<img src=x onerror=alert(1)>.csv", "<img src=x onerror=alert(1)>.csv"),
    ("ann\x00.csv", "ann .csv"),
    ("x" * 296 + ".csv", "x" * 250 + "….csv"),
], ids=["dot-dot-slash", "windows-con", "windows-nul", "markup", "nul-character", "300-characters"])
def test_an_uploaded_file_name_is_shown_escaped_and_the_file_kept_under_the_import_id(
        sent, shown, app, owner_client, csrf, tmp_path):
    on_disk = _files_under(tmp_path)
    response = upload(owner_client, csrf, PEOPLE_CSV, sent)
    assert response.status_code == 303
    [row] = Import.select()
    assert row.file_name == shown
    chunks = UploadChunk.select().where(UploadChunk.upload == row.id).order_by(UploadChunk.seq)
    assert b"".join(bytes(c.data) for c in chunks) == PEOPLE_CSV  # stored under the import's id, in the database
    assert _files_under(tmp_path) == on_disk  # nothing written to disk, under any name
    for url in (f"/imports/{row.id}/uploaded", f"/imports/{row.id}/mapping", "/imports"):
        page = owner_client.get(url).get_data(as_text=True)
        assert html.escape(shown, quote=False) in page and "<img src=x" not in page and "../" not in page
        assert_no_internals(page, app)


@pytest.mark.parametrize("name", ["CON", "NUL.csv", "<img src=x onerror=alert(1)>.csv", "x" * 251 + ".csv"],
                         ids=["windows-con", "windows-nul", "markup", "longest-name-linux-allows"])
def test_the_cli_imports_a_file_under_its_own_name(name, app, runner, owner_a, tmp_path):
    path = corpus.write(tmp_path / name, PEOPLE_CSV)
    code, result = cli(runner, app, path)
    assert code == 0 and result["created"] == 1
    assert Import.get_by_id(result["import_id"]).file_name == name
    assert result["audience"].startswith(f"Import: {name} ")


def test_the_cli_names_a_file_reached_through_dot_dot_by_its_own_name(app, runner, owner_a, tmp_path):
    corpus.write(tmp_path / "people.csv", PEOPLE_CSV)
    (tmp_path / "sub").mkdir()
    code, result = cli(runner, app, f"{tmp_path}/sub/../people.csv")
    assert code == 0 and Import.get_by_id(result["import_id"]).file_name == "people.csv"
    assert json.dumps(result).count("..") == 0
