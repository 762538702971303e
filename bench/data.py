"""Deterministic persona files for the import benchmark: CSV, XLSX and XLS with realistic noise.

Persona i always has the same email, phone, names and birthday, so a second file can match the
personas a first one created. Two plans:

- fresh: personas 0, 1, 2, ... in order; every 50th row repeats an earlier persona of the file.
- update: 75% of rows are personas of the fresh file of the same size (a tenth of those carry only
  the phone, no email: a phone-only match), 25% are new personas; the same repeats.

In both, every 100th row carries a broken value (email, phone, date, points or customer type).
`python bench/data.py fresh 1000000 csv` writes one file (bench.py does it for you).
"""
import argparse
import csv
import random
import sys
import time
import unicodedata
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_bench import AREA_CODES, FIRST, LAST  # noqa: E402

# Bump when a file's content changes, so cached files of the old layout are not reused.
VERSION = 2
SEED = 7
OUT = Path(__file__).resolve().parent / "out"

# Every header is one the auto-matcher maps by itself (webapp/importer/fields.py); Veteran and
# Local are yes/no columns it offers as custom attributes.
HEADERS = ["First Name", "Last Name", "Email", "Phone", "Birthday", "Loyalty Signup Date", "Points",
           "SMS Opt In", "Email Opt Out", "Customer Type", "Veteran", "Local"]
EMAIL, PHONE, BIRTHDAY, POINTS, CUSTOMER_TYPE = 2, 3, 4, 6, 9
DOMAINS = ["example.com", "example.org", "example.net"]
CUSTOMER_TYPES = ["medical", "recreational", "Rec", "MED", "Recreational", ""]
DUPLICATE_EVERY = 50  # 2% of rows repeat an earlier persona of the file (its points are added again)
BAD_EVERY = 100  # 1% of rows carry a broken value
EXISTING_SHARE = 0.75
PHONE_ONLY_SHARE = 0.10


def ascii_name(first: str, last: str) -> str:
    """'chloe.obrien': names keep their accents, addresses do not (a provider would refuse them)."""
    text = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    return text.replace("'", "").lower()


def phone_of(pid: int, rng: random.Random) -> str:
    """Persona pid's own number (unique for pid < 160M), in one of the five formats people type."""
    area, rest = AREA_CODES[pid % len(AREA_CODES)], pid // len(AREA_CODES)
    # Spread the last four digits: unique (mid, last) pairs for rest < 8M, and no run of "0000".
    mid, last = 200 + rest % 800, (rest // 800 + 7919 * (rest % 800)) % 10000
    return rng.choice([
        f"({area}) {mid}-{last:04d}", f"{area}-{mid}-{last:04d}", f"{area}.{mid}.{last:04d}",
        f"{area}{mid}{last:04d}", f"+1 {area} {mid} {last:04d}"])


def email_of(pid: int, rng: random.Random) -> str:
    """Persona pid's address with the usual case and whitespace noise."""
    email = f"{ascii_name(FIRST[pid % 10], LAST[pid // 10 % 10])}.{pid}@{DOMAINS[pid % 3]}"
    return rng.choice([email, email, email.title(), f"  {email} ", email.upper()])


def persona_row(pid: int, rng: random.Random, with_email: bool = True) -> list:
    """One row for persona pid: stable identity, fresh points and flags; dates as date objects."""
    birthday = date(1950 + pid % 55, 1 + pid // 55 % 12, 1 + pid // 660 % 28)
    signup = date(2015 + pid % 10, 1 + pid // 10 % 12, 1 + pid // 120 % 28)
    points = rng.randint(1, 5000) if rng.random() < 0.9 else ""
    return [
        FIRST[pid % 10], LAST[pid // 10 % 10], email_of(pid, rng) if with_email else "", phone_of(pid, rng),
        birthday, signup, points,
        rng.choice(["Yes", "No", "", "Y"]), "Yes" if rng.random() < 0.03 else "",
        CUSTOMER_TYPES[pid % len(CUSTOMER_TYPES)],
        rng.choice(["Yes", "No", "No", "No"]), rng.choice(["Y", "N", "Yes", "No"]),
    ]


BROKEN = [
    {EMAIL: "not-an-email"},
    {PHONE: "12345"},
    {EMAIL: "nobody@", PHONE: "555-01"},  # no valid contact at all: the row is rejected
    {BIRTHDAY: "13/45/2020"},
    {POINTS: "lots"},
    {CUSTOMER_TYPE: "wholesale"},
]


def break_row(row: list, rng: random.Random) -> list:
    """The row with one of the usual mistakes in it."""
    for column, value in rng.choice(BROKEN).items():
        row[column] = value
    return row


def distinct_personas(rows: int) -> int:
    """How many personas the fresh file of this size holds (the rest of its rows repeat them)."""
    return rows - rows // DUPLICATE_EVERY


def fresh_ids(rows: int, rng: random.Random):
    """(persona id, with email) per row of the fresh plan."""
    next_id = 0
    for j in range(rows):
        if j % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
            yield rng.randrange(next_id), True
        else:
            yield next_id, True
            next_id += 1


def update_ids(rows: int, rng: random.Random):
    """(persona id, with email) per row of the update plan: 75% existing personas, 25% new ones."""
    existing = distinct_personas(rows)
    # A sample, not random picks: picks would repeat personas far more often than the planned 2%.
    old = iter(rng.sample(range(existing), min(existing, rows)))
    next_new, seen = existing, []
    for j in range(rows):
        if j % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 and seen:
            yield rng.choice(seen), True
            continue
        pid = next(old, None) if rng.random() < EXISTING_SHARE else None
        if pid is None:
            pid, next_new = next_new, next_new + 1
            seen.append(pid)
            yield pid, True
        else:
            seen.append(pid)
            yield pid, rng.random() >= PHONE_ONLY_SHARE


PLANS = {"fresh": fresh_ids, "update": update_ids}


def rows_of(plan: str, rows: int, seed: int = SEED):
    """The file's data rows, deterministic for (plan, rows, seed)."""
    rng = random.Random(f"{plan}-{rows}-{seed}")
    for j, (pid, with_email) in enumerate(PLANS[plan](rows, rng)):
        row = persona_row(pid, rng, with_email)
        yield break_row(row, rng) if j % BAD_EVERY == BAD_EVERY // 3 else row


def as_text(row: list, rng: random.Random) -> list:
    """CSV cells: dates as ISO or as US M/D/YYYY (three in ten), the way exports mix them."""
    return [_date_text(v, rng) if isinstance(v, date) else v for v in row]


def _date_text(value: date, rng: random.Random) -> str:
    """The date as people type it in a CSV."""
    return f"{value.month}/{value.day}/{value.year}" if rng.random() < 0.3 else value.isoformat()


def write_csv(path: Path, plan: str, rows: int, seed: int = SEED, max_bytes: int | None = None) -> int:
    """Write the plan's rows as UTF-8 CSV (stopping before max_bytes when given); returns the row count."""
    rng = random.Random(seed)
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADERS)
        for row in rows_of(plan, rows, seed):
            if max_bytes is not None and f.tell() > max_bytes - 200:
                break
            writer.writerow(as_text(row, rng))
            written += 1
    return written


def write_xlsx(path: Path, plan: str, rows: int, seed: int = SEED) -> int:
    """Write the plan's rows as an XLSX laid out as Excel saves it, streamed straight into the zip.

    Not openpyxl's write-only mode: that writes inline strings and no <dimension>, so openpyxl
    would parse the whole sheet once more each time it opens the file, which Excel's files spare it.
    """
    strings: dict[str, int] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(SHEET_HEAD.format(ref=f"A1:{COLUMNS[len(HEADERS) - 1]}{rows + 1}").encode())
            sheet.write(_xlsx_row(1, HEADERS, strings))
            for r, row in enumerate(rows_of(plan, rows, seed), start=2):
                sheet.write(_xlsx_row(r, row, strings))
            sheet.write(b"</sheetData></worksheet>")
        shared = "".join(f"<si><t xml:space=\"preserve\">{escape(text)}</t></si>" for text in strings)
        zf.writestr("xl/sharedStrings.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst '
                    f'xmlns="{MAIN_NS}" count="{len(strings)}" uniqueCount="{len(strings)}">{shared}</sst>')
        for name, text in XLSX_PARTS.items():
            zf.writestr(name, text)
    return rows


def _xlsx_row(r: int, values: list, strings: dict[str, int]) -> bytes:
    """One <row>: numbers as numbers, dates as serials in the date style, text in the shared strings."""
    cells = []
    for c, value in enumerate(values):
        ref = f"{COLUMNS[c]}{r}"
        if isinstance(value, date):
            cells.append(f'<c r="{ref}" s="1"><v>{(value - EXCEL_EPOCH).days}</v></c>')
        elif isinstance(value, int):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        elif value != "":
            cells.append(f'<c r="{ref}" t="s"><v>{strings.setdefault(value, len(strings))}</v></c>')
    return f'<row r="{r}">{"".join(cells)}</row>'.encode()


COLUMNS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
EXCEL_EPOCH = date(1899, 12, 30)
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHEET_HEAD = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN_NS}">'
              '<dimension ref="{ref}"/><sheetData>')
XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{RELS_NS}">'
        f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{MAIN_NS}" '
        f'xmlns:r="{DOC_RELS}"><sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{RELS_NS}">'
        f'<Relationship Id="rId1" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{DOC_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId3" Type="{DOC_RELS}/styles" Target="styles.xml"/></Relationships>'),
    # Style 1 is Excel's built-in short date format (numFmtId 14), which is how a typed date is stored.
    "xl/styles.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{MAIN_NS}">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
}


def write_xls(path: Path, plan: str, rows: int, seed: int = SEED) -> int:
    """Write the plan's rows as an Excel 97-2003 XLS (xlwt; at most 65,535 data rows per sheet)."""
    import xlwt

    if rows > 65_535:
        raise SystemExit(f"An XLS sheet holds at most 65,535 data rows, not {rows:,}.")
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Customers")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for c, header in enumerate(HEADERS):
        ws.write(0, c, header)
    for r, row in enumerate(rows_of(plan, rows, seed), start=1):
        for c, value in enumerate(row):
            if isinstance(value, date):
                ws.write(r, c, value, date_style)
            elif value != "":
                ws.write(r, c, value)
    wb.save(str(path))
    return rows


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "xls": write_xls}


def file_path(plan: str, size: int, ext: str, seed: int = SEED, out: Path = OUT) -> Path:
    """Where the file of (plan, size, seed) is cached; an upload file's size is in megabytes."""
    size_text = f"{size}MB" if plan == "upload" else str(size)
    return out / f"personas-{plan}-{size_text}-v{VERSION}-s{seed}.{ext}"


def ensure(plan: str, size: int, ext: str = "csv", seed: int = SEED, out: Path = OUT) -> Path:
    """The cached file, generated first when missing."""
    path = file_path(plan, size, ext, seed, out)
    if path.exists():
        return path
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    if plan == "upload":
        # A fresh-plan CSV just under `size` MB (10^6 bytes), for the wizard's upload step.
        write_csv(tmp, "fresh", 10_000_000, seed, max_bytes=size * 1_000_000)
    else:
        WRITERS[ext](tmp, plan, size, seed)
    tmp.rename(path)
    print(f"generated {path.name} ({path.stat().st_size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return path


def main() -> None:
    """Write one file unless it is cached: a plan's rows, or the upload file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan", choices=[*PLANS, "upload"])
    ap.add_argument("size", type=int, help="data rows; for upload, megabytes")
    ap.add_argument("ext", nargs="?", choices=list(WRITERS), default="csv")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    ensure(args.plan, args.size, args.ext, args.seed, args.out)


if __name__ == "__main__":
    main()
