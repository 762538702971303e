"""Generated workbooks for the Uploaded step's tests and bench: zip parts written directly, any size, fast."""
import random
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
WORDS = [f"{a}{b}" for a in ("bud", "leaf", "kush", "haze", "dank", "pine", "sour", "mint") for b in
         ("ly", "er", "ing", "ed", "ness", "ful", "ish", "ward", "ous", "ment")]


def write_workbook(path: Path, sheets: dict[str, int], *, note_bytes: int = 0, header=("Email", "First Name", "Notes"),
                   dimension: bool = True) -> Path:
    """An .xlsx with one sheet per name holding that many customer rows, every text cell a shared string.

    note_bytes: the length of each row's unique Notes text, which is what makes the shared strings part large.
    """
    rng = random.Random(7)
    strings: list[str] = list(header)
    sheet_xml = []
    for index, (_name, rows) in enumerate(sheets.items()):
        cells = ['<row r="1">' + "".join(f'<c r="{col}1" t="s"><v>{i}</v></c>' for i, col in enumerate("ABC"))
                 + "</row>"]
        for n in range(rows):
            line = n + 2
            strings.append(f"s{index}c{n}@example.com")
            strings.append(f"Name{n}")
            note = ""
            while len(note) < note_bytes:
                note += rng.choice(WORDS) + " "
            strings.append(f"{n} {note}")
            first = len(strings) - 3
            cells.append(f'<row r="{line}">' + "".join(
                f'<c r="{col}{line}" t="s"><v>{first + i}</v></c>' for i, col in enumerate("ABC")) + "</row>")
        ref = f'<dimension ref="A1:C{rows + 1}"/>' if dimension else ""
        sheet_xml.append(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{ref}<sheetData>'
                         + "".join(cells) + "</sheetData></worksheet>")
    sst = (f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="{len(strings)}" '
           f'uniqueCount="{len(strings)}">' + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")
    names = list(sheets)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(len(names)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
            '"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            'main+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            f'officedocument.spreadsheetml.sharedStrings+xml"/>{overrides}</Types>'))
        zf.writestr("_rels/.rels", f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
                    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
                    "</Relationships>")
        zf.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" '
                    f'xmlns:r="{REL}"><sheets>' + "".join(
                        f'<sheet name="{escape(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
                        for i, name in enumerate(names)) + "</sheets></workbook>")
        zf.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0" encoding="UTF-8"?><Relationships '
                    f'xmlns="{PKG}">' + "".join(
                        f'<Relationship Id="rId{i + 1}" Type="{REL}/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
                        for i in range(len(names)))
                    + f'<Relationship Id="rId{len(names) + 1}" Type="{REL}/sharedStrings" '
                    'Target="sharedStrings.xml"/></Relationships>')
        for i, xml in enumerate(sheet_xml):
            zf.writestr(f"xl/worksheets/sheet{i + 1}.xml", xml)
        zf.writestr("xl/sharedStrings.xml", sst)
    return path
