"""Build the reader test files in code: CSV variants, XLSX, XLS (xlwt), hostile and mistaken files."""

import datetime as dt
import io
import re
import struct
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.utils.datetime import CALENDAR_MAC_1904


def write(path: Path, data: bytes) -> Path:
    """Write bytes and return the path."""
    path.write_bytes(data)
    return path


def text_file(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    """Write text with the given encoding (BOMs come from codecs like utf-8-sig/utf-16)."""
    return write(path, text.replace("\n", newline).encode(encoding))


def xlsx_file(path: Path, sheets: dict[str, list[list]], epoch_1904: bool = False,
              hidden: tuple[str, ...] = ()) -> Path:
    """Write a workbook with one sheet per entry; dates get a date number format."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    if epoch_1904:
        wb.epoch = CALENDAR_MAC_1904
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, (dt.date, dt.datetime)):
                    cell.number_format = "yyyy-mm-dd"
        if title in hidden:
            ws.sheet_state = "hidden"
    wb.save(path)
    return path


def xls_file(path: Path, sheets: dict[str, list[list]], dates_1904: bool = False) -> Path:
    """Write a real BIFF8 .xls with xlwt; dates get a date number format."""
    import xlwt  # dev extra

    wb = xlwt.Workbook()
    wb.dates_1904 = dates_1904
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for title, rows in sheets.items():
        ws = wb.add_sheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, (dt.date, dt.datetime)):
                    ws.write(r, c, value, date_style)
                else:
                    ws.write(r, c, value)
    wb.save(str(path))
    return path


def rewrite_zip(src: Path, dst: Path, edit: dict) -> Path:
    """Copy a zip, replacing members: edit maps a name to bytes or to a bytes->bytes function."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            change = edit.get(info.filename)
            if change is not None:
                data = change(data) if callable(change) else change
            zout.writestr(info.filename, data)
    return dst


def understate_dimension(src: Path, dst: Path) -> Path:
    """Make sheet1.xml claim a smaller range than it holds, as some exporters do."""
    def patch(xml: bytes) -> bytes:
        return re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="B2:B2"/>', xml)
    return rewrite_zip(src, dst, {"xl/worksheets/sheet1.xml": patch})


def entity_bomb(src: Path, dst: Path) -> Path:
    """Replace sheet1.xml with one whose DTD is a billion laughs."""
    lol = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    xml = ('<?xml version="1.0"?><!DOCTYPE worksheet [' + "".join(lol) + "]>"
           '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
           '<row r="1"><c r="A1" t="inlineStr"><is><t>Email</t></is></c>'
           '<c r="B1" t="inlineStr"><is><t>Name</t></is></c></row>'
           '<row r="2"><c r="A2" t="inlineStr"><is><t>a@example.com</t></is></c>'
           '<c r="B2" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')
    return rewrite_zip(src, dst, {"xl/worksheets/sheet1.xml": xml.encode()})


def zip_bomb(path: Path, unpacked_mb: int = 64) -> Path:
    """A 'workbook' whose sheet unpacks to a huge run of spaces (ratio ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        with zf.open("xl/worksheets/sheet1.xml", "w") as member:
            block = b" " * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(block)
    return path


def lying_zip(path: Path, stated: int = 3 * 1024 ** 3) -> Path:
    """A small workbook zip whose central directory states a huge unpacked size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", "x" * 100)
    data = bytearray(buf.getvalue())
    at = data.rfind(b"PK\x01\x02")  # central directory entry of the last member
    struct.pack_into("<I", data, at + 24, min(stated, 0xFFFFFFFE))
    return write(path, bytes(data))


def plain_zip(path: Path, members: dict[str, str]) -> Path:
    """A zip of the given text members (a .docx look-alike, a zip of CSVs)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def ole2_file(path: Path, streams: dict[str, bytes]) -> Path:
    """A minimal but valid OLE2 compound file holding the given streams (each padded to 4 KB)."""
    sector, end, free, fat_mark, no_stream = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    fat = [fat_mark, end]  # sector 0: the FAT itself, sector 1: the directory
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # the order CFB compares names in
    data, entries = b"", []
    for i, name in enumerate(names):
        # 4096 bytes or more keeps every stream in the main FAT (no mini stream to build).
        body = streams[name].ljust(4096, b"\0")
        body += b"\0" * (-len(body) % sector)
        start = len(fat)
        count = len(body) // sector
        fat += list(range(start + 1, start + count)) + [end]
        right = i + 2 if i + 1 < len(names) else no_stream
        entries.append(_dir_entry(name, 2, no_stream, right, no_stream, start, len(body)))
        data += body
    root = _dir_entry("Root Entry", 5, no_stream, no_stream, 1 if names else no_stream, end, 0)
    directory = b"".join([root] + entries).ljust(sector * ((len(entries) + 4) // 4), b"\0")
    assert len(directory) == sector, "keep it to three streams"
    fat_sector = struct.pack("<128I", *(fat + [free] * (128 - len(fat))))
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\0" * 16,
        0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, 1, 1, 0, 4096, end, 0, end, 0)
    header += struct.pack("<109I", 0, *([free] * 108))
    return write(path, header + fat_sector + directory + data)


def encrypted_xls(src: Path, dst: Path) -> Path:
    """Re-pack an .xls with a FILEPASS record after its first BOF, as Excel does for a password."""
    from xlrd import compdoc

    stream = compdoc.CompDoc(src.read_bytes(), logfile=io.StringIO()).get_named_stream("Workbook")
    after_bof = 4 + struct.unpack("<H", stream[2:4])[0]
    filepass = struct.pack("<HHHHH", 0x002F, 6, 0, 0, 0)  # XOR obfuscation, key and hash zero
    return ole2_file(dst, {"Workbook": stream[:after_bof] + filepass + stream[after_bof:]})


def _dir_entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
    """One 128-byte CFB directory entry."""
    raw = (name + "\0").encode("utf-16-le")
    return struct.pack("<64sHBBIII16sIQQIQ", raw, len(raw), kind, 1, left, right, child,
                       b"\0" * 16, 0, 0, 0, start, size)


def persona_rows(n: int) -> list[list]:
    """n simple persona rows as text."""
    return [[f"user{i}@example.com", f"First{i}", f"(415) 555-{i % 10000:04d}"] for i in range(n)]


def big_csv(path: Path, rows: int) -> Path:
    """A CSV of `rows` persona rows written in chunks (the file, not the test, holds the data)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("Email,First Name,Phone,Points,Notes\n")
        for start in range(0, rows, 10_000):
            f.write("".join(
                f'user{i}@example.com,First{i},(415) 555-{i % 10000:04d},{i % 500},"a note, with comma"\n'
                for i in range(start, min(rows, start + 10_000))))
    return path


# --- hostile files (tests/test_hostile_files.py) ---------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
HTML_TABLE = (b"<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head><meta charset=\"utf-8\"></head>"
              b"<body><table><tr><td>Email</td><td>Phone</td></tr>"
              b"<tr><td>ann@example.com</td><td>4155550101</td></tr></table></body></html>")


def docx_file(path: Path) -> Path:
    """The parts of a Word document that tell it apart from a workbook."""
    return plain_zip(path, {"[Content_Types].xml": "<Types/>", "_rels/.rels": "<Relationships/>",
                            "word/document.xml": "<w:document/>"})


def truncated(src: Path, dst: Path, keep: int) -> Path:
    """The first `keep` bytes of a file, as an interrupted download leaves it."""
    return write(dst, src.read_bytes()[:keep])


def xxe(src: Path, dst: Path, member: str = "xl/worksheets/sheet1.xml", target: str = "file:///etc/passwd") -> Path:
    """A workbook whose member declares an external entity (XXE) and, in a sheet, uses it in a cell."""
    doctype = f'<!DOCTYPE root [<!ENTITY xxe SYSTEM "{target}">]>'.encode()

    def patch(xml: bytes) -> bytes:
        xml = re.sub(rb"^<\?xml[^>]*\?>", b"", xml.lstrip())
        xml = re.sub(rb"<c r=\"B2\"[^>]*>.*?</c>", b'<c r="B2" t="inlineStr"><is><t>&xxe;</t></is></c>', xml)
        return b'<?xml version="1.0"?>' + doctype + xml
    return rewrite_zip(src, dst, {member: patch})


def understated_zip(src: Path, dst: Path, padding_mb: int = 64, member: str = "xl/worksheets/sheet1.xml") -> Path:
    """A workbook whose sheet unpacks to padding_mb MB more than its zip entries state (the original size)."""
    with zipfile.ZipFile(src) as zf:
        original = zf.read(member)
    padded = original.replace(b"</sheetData>", b" " * (padding_mb * 1024 * 1024) + b"</sheetData>")
    data = bytearray(rewrite_zip(src, dst, {member: padded}).read_bytes())
    name = member.encode()
    # Both the local header (offset 22) and the central directory entry (offset 24) state the size.
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        at = data.find(signature)
        while data[at + name_at:at + name_at + len(name)] != name:
            at = data.find(signature, at + 4)
        struct.pack_into("<I", data, at + size_at, len(original))
    return write(dst, bytes(data))


def padded_csv(path: Path, size: int, rows: str = "Email,First Name\nann@example.com,Ann\n") -> Path:
    """A CSV of exactly `size` bytes: the rows, then whitespace-only lines (blank rows import nothing)."""
    data = rows.encode()
    line = b" " * 99_999 + b"\n"
    data += line * ((size - len(data)) // len(line))
    return write(path, data + b"\n" * (size - len(data)))


TRANSITIONAL = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                "http://schemas.openxmlformats.org/officeDocument/2006/relationships")
STRICT = ("http://purl.oclc.org/ooxml/spreadsheetml/main", "http://purl.oclc.org/ooxml/officeDocument/relationships")


def hand_xlsx(path: Path, rows: list[list[str]], *, strict: bool = False, workbook: str = "xl/workbook.xml") -> Path:
    """An .xlsx written by hand as Excel writes one: text in shared strings (as given, escapes and all).

    strict: Excel's "Strict Open XML Spreadsheet" namespaces; workbook: where the workbook part lies (found
    through _rels/.rels, as the format allows).
    """
    main, rel = STRICT if strict else TRANSITIONAL
    folder, _, name = workbook.rpartition("/")
    strings = sorted({c for row in rows for c in row})
    index = {s: i for i, s in enumerate(strings)}
    cells = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{chr(65 + c)}{r}" t="s"><v>{index[v]}</v></c>' for c, v in enumerate(row))
        + "</row>" for r, row in enumerate(rows, 1))
    sst = "".join(f'<si><t xml:space="preserve">{s}</t></si>' for s in strings)
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/{workbook}" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/{folder}/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            f'<Override PartName="/{folder}/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="/{workbook}"/>'
            "</Relationships>"),
        workbook: (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
                   '<sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        f"{folder}/_rels/{name}.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'),
        f"{folder}/worksheets/sheet1.xml": (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}">'
                                     f"<sheetData>{cells}</sheetData></worksheet>"),
        f"{folder}/sharedStrings.xml": (f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main}" count="{len(strings)}" '
                                  f'uniqueCount="{len(strings)}">{sst}</sst>'),
    }
    return plain_zip(path, parts)


def biff_file(path: Path, version: int, rows: list[list]) -> Path:
    """A bare BIFF2, BIFF3 or BIFF4 worksheet (no OLE2 container), as old point-of-sale tools write: text and
    numbers, in Windows-1252."""
    def record(code: int, data: bytes) -> bytes:
        return struct.pack("<HH", code, len(data)) + data

    bof = {2: 0x0009, 3: 0x0209, 4: 0x0409}[version]
    data = record(bof, struct.pack("<HH", 0, 0x0010) + (b"\0\0" if version > 2 else b""))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                text = value.encode("cp1252")
                data += (record(0x0004, struct.pack("<HH3sB", r, c, b"\0\0\0", len(text)) + text) if version == 2
                         else record(0x0204, struct.pack("<HHHH", r, c, 0, len(text)) + text))
            else:
                data += (record(0x0003, struct.pack("<HH3sd", r, c, b"\0\0\0", value)) if version == 2
                         else record(0x0203, struct.pack("<HHHd", r, c, 0, value)))
    return write(path, data + record(0x000A, b""))


def ods_file(path: Path, sheets: dict[str, list[list]], hidden: tuple[str, ...] = ()) -> Path:
    """An OpenDocument spreadsheet as LibreOffice writes one: typed cells (text, numbers, booleans, dates)."""
    def cell(value) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, bool):
            kind = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
        elif isinstance(value, (int, float)):
            kind = f'office:value-type="float" office:value="{value}"'
        elif isinstance(value, (dt.date, dt.datetime)):
            kind = f'office:value-type="date" office:date-value="{value.isoformat()}"'
        else:
            kind = 'office:value-type="string"'
        return f"<table:table-cell {kind}><text:p>{value}</text:p></table:table-cell>"

    def table(name: str, rows: list[list]) -> str:
        style = ' table:style-name="hidden"' if name in hidden else ""
        body = "".join("<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>" for row in rows)
        return f'<table:table table:name="{name}"{style}>{body}</table:table>'

    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"')
    styles = ('<office:automatic-styles><style:style style:name="hidden" style:family="table">'
              '<style:table-properties table:display="false"/></style:style></office:automatic-styles>')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">{styles}'
               "<office:body><office:spreadsheet>" + "".join(table(n, r) for n, r in sheets.items())
               + "</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
                'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")  # stored, first
        zf.writestr("META-INF/manifest.xml", manifest)
        zf.writestr("content.xml", content)
    return path
