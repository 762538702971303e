"""Reader benchmark: rows/s and peak RSS for reading generated persona files (CSV, XLSX).

Run from the project root: `python bench/read_bench.py [--rows N] [--xlsx-rows N] [--out DIR]`.
Figures, not asserts: these machines are noisy (±2x), compare the ratios.
"""

import argparse
import csv
import random
import resource
import subprocess
import sys
import time
import unicodedata
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADERS = ["Email", "First Name", "Last Name", "Phone", "Birthday", "Points", "Zip", "Customer Type"]
FIRST = ["Ana", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Günter", "Hana", "Ian", "José"]
LAST = ["Lee", "Smith", "O'Brien", "García", "Nguyen", "Khan", "Müller", "Rossi", "Kim", "Brown"]


# Area codes in service, so that a generated number is a valid one (only the 1% noise is invalid).
AREA_CODES = [201, 212, 213, 303, 305, 310, 312, 404, 415, 503, 512, 602, 617, 702, 713, 720, 773, 818, 916, 971]


def phone(rng: random.Random) -> str:
    """A US number in one of the five formats people type."""
    area, mid, last = rng.choice(AREA_CODES), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice([
        f"({area}) {mid}-{last:04d}", f"{area}-{mid}-{last:04d}", f"{area}.{mid}.{last:04d}",
        f"{area}{mid}{last:04d}", f"+1 {area} {mid} {last:04d}"])


def persona(rng: random.Random, i: int) -> list:
    """One row with the usual noise: email case and spaces, mixed formats, 1% invalid values."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    # Addresses are ASCII (the names keep their accents): a mail provider would refuse "chloé@".
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    email = f"{ascii_name}{i}@Example.com".replace("'", "")
    email = rng.choice([email, email.lower(), f"  {email} ", email.upper()])
    birthday = f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if rng.random() < 0.3:
        birthday = f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1950, 2004)}"
    row = [email, first, last, phone(rng), birthday, rng.randint(0, 5000),
           f"{rng.randint(1000, 99999):05d}", rng.choice(["medical", "recreational", "Rec", "MED"])]
    if rng.random() < 0.01:  # 1% invalid: a broken email, phone, date or points value
        column = rng.choice([0, 3, 4, 5])
        row[column] = {0: "not-an-email", 3: "12345", 4: "13/45/2020", 5: "lots"}[column]
    return row


def write_csv(path: Path, rows: int) -> Path:
    """A CSV of generated personas."""
    rng = random.Random(1)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADERS)
        for i in range(rows):
            writer.writerow(persona(rng, i))
    return path


def write_xlsx(path: Path, rows: int) -> Path:
    """An XLSX laid out as Excel saves it (shared strings), written directly for speed."""
    rng = random.Random(2)
    strings: dict[str, int] = {}

    def cell(ref: str, value) -> str:
        if isinstance(value, int):
            return f'<c r="{ref}"><v>{value}</v></c>'
        index = strings.setdefault(value, len(strings))
        return f'<c r="{ref}" t="s"><v>{index}</v></c>'

    letters = "ABCDEFGH"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
                        b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                        b'<dimension ref="A1"/><sheetData>')
            for r in range(1, rows + 2):
                values = HEADERS if r == 1 else persona(rng, r)
                cells = "".join(cell(f"{letters[c]}{r}", v) for c, v in enumerate(values))
                sheet.write(f'<row r="{r}">{cells}</row>'.encode())
            sheet.write(b"</sheetData></worksheet>")
        shared = "".join(f"<si><t xml:space=\"preserve\">{escape(s)}</t></si>" for s in strings)
        zf.writestr("xl/sharedStrings.xml", '<?xml version="1.0" encoding="UTF-8"?><sst xmlns='
                    f'"http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="{len(strings)}">'
                    f"{shared}</sst>")
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
    return path


CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
</Types>"""
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, rows_expected: int, fn) -> None:
    """Run fn() (which returns a row count) and print rows/s and this process's peak RSS."""
    started = time.perf_counter()
    rows = fn()
    seconds = time.perf_counter() - started
    assert rows == rows_expected, (label, rows, rows_expected)
    print(f"{label:<26} {rows:>9,} rows {seconds:7.2f} s {rows / seconds:>10,.0f} rows/s  "
          f"peak RSS {peak_rss_mb():5.0f} MB", flush=True)


def read_only(path: Path) -> int:
    """Stream every row through open_table."""
    from webapp.importer.readers import open_table

    with open_table(path) as table:
        return sum(1 for _ in table.rows())


def raw_csv(path: Path) -> int:
    """The floor: csv.reader alone over the same file."""
    with open(path, encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def row_parser():
    """RowParser and auto_match when the values/fields modules provide them, else None."""
    try:
        from webapp.importer.fields import auto_match
        from webapp.importer.values import RowParser
    except ImportError:
        return None
    return lambda headers: RowParser(headers, auto_match(headers))


def read_and_parse(path: Path, make_parser) -> int:
    """Stream and normalize every row (no database)."""
    from webapp.importer.readers import open_table

    with open_table(path) as table:
        parser = make_parser(table.headers)
        count = 0
        for line, cells in table.rows():
            parser(line, cells)
            count += 1
        return count


MEASURES = {
    # name: (label, which file, function)
    "csv-raw": ("csv.reader alone", "csv", lambda path: raw_csv(path)),
    "csv": ("CSV read", "csv", lambda path: read_only(path)),
    "xlsx": ("XLSX read", "xlsx", lambda path: read_only(path)),
    "csv-parse": ("CSV read + RowParser", "csv", lambda path: read_and_parse(path, row_parser())),
    "xlsx-parse": ("XLSX read + RowParser", "xlsx", lambda path: read_and_parse(path, row_parser())),
}


def main() -> None:
    """Generate the files (unless present), then run each measurement in a fresh process."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1,000,000)")
    ap.add_argument("--xlsx-rows", type=int, default=None, help="XLSX rows (default rows/10)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--only", choices=[*MEASURES, "generate"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    xlsx_rows = args.xlsx_rows if args.xlsx_rows is not None else max(1, args.rows // 10)
    files = {"csv": (args.out / f"personas-{args.rows}.csv", args.rows),
             "xlsx": (args.out / f"personas-{xlsx_rows}.xlsx", xlsx_rows)}
    if args.only == "generate":
        _generate(files, args.out)
        return
    if args.only:
        label, kind, fn = MEASURES[args.only]
        path, rows = files[kind]
        timed(label, rows, lambda: fn(path))
        return
    # Every step runs in a fresh process and this one stays small: Linux carries the peak RSS
    # (ru_maxrss) of a parent into the child it starts, so a big parent would blur the figures.
    def step(name: str) -> None:
        subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--xlsx-rows",
                        str(xlsx_rows), "--out", str(args.out), "--only", name], check=True)

    step("generate")
    print(f"baseline: this interpreter, peak RSS {peak_rss_mb():.0f} MB; with the readers "
          f"imported, {_baseline_rss():.0f} MB", flush=True)
    for name in MEASURES:
        if "parse" in name and not _has_row_parser():
            print(f"{MEASURES[name][0]:<26} skipped (webapp.importer.values.RowParser not available)")
            continue
        step(name)


def _generate(files: dict, out: Path) -> None:
    """Write the benchmark files that are not there yet."""
    out.mkdir(parents=True, exist_ok=True)
    for kind, writer in (("csv", write_csv), ("xlsx", write_xlsx)):
        path, rows = files[kind]
        if not path.exists():
            started = time.perf_counter()
            writer(path.with_suffix(".tmp"), rows).rename(path)
            print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)


def _python(code: str) -> str:
    """Run a snippet in a fresh interpreter at the project root; return its output."""
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, check=True).stdout


def _baseline_rss() -> float:
    """Peak RSS of a process that only imports the readers."""
    return float(_python("import resource, webapp.importer.readers; "
                         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"))


def _has_row_parser() -> bool:
    """Whether the values module provides RowParser yet (checked without importing it here)."""
    return _python("import sys\ntry:\n from webapp.importer.values import RowParser\n"
                   "except ImportError:\n sys.exit(print('no'))\nprint('yes')").strip() == "yes"


if __name__ == "__main__":
    main()
