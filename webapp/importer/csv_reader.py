"""CSV side of the readers: encoding and delimiter detection, strict streaming records."""

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from webapp.importer import code_pages
from webapp.importer.code_pages import CODE_PAGES, SAVE_AS_UTF8
from webapp.importer.errors import FileRefused
from webapp.importer.safe_cells import TRIGGERS

Opener = Callable[[], AbstractContextManager]  # yields a binary file positioned at byte 0

DELIMITERS = (",", ";", "\t", "|")
SNIFF_CHARS = 64 * 1024
SCAN_CHUNK = 1024 * 1024
# A quoted cell spanning more physical lines than this is a quote left open, not an address.
MAX_CELL_LINES = 100
NOT_A_SHEET = "This file is not a spreadsheet or a CSV file. Upload a .csv, .xlsx, .xls or .ods file."
# Bytes that never occur in text: many of them mean a binary file, not a CSV.
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def detect_encoding(opener: Opener, head: bytes) -> tuple[str, bool]:
    """Return (codec, strip_nul) for a text file: BOMs first, then a strict full UTF-8 scan, then code pages."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", False
    bare = _bare_utf16(head)
    if bare:
        return bare, False
    if len(CONTROL_BYTES.findall(head)) > 0.1 * len(head):
        raise FileRefused(NOT_A_SHEET)
    # Scanning the whole file costs one fast pass but means a late é can never turn into mojibake.
    with opener() as f:
        bad_at = _first_invalid_utf8(f)
        if bad_at is None:
            return "utf-8", True
        f.seek(0)
        return code_pages.detect(f, bad_at), True


def _bare_utf16(head: bytes) -> str | None:
    """Recognize UTF-16 without a BOM by its zero bytes on every other position."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _first_invalid_utf8(f) -> int | None:
    """Byte offset of the first byte that is not UTF-8, or None when the whole file is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    while chunk := f.read(SCAN_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return offset + exc.start
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


class _ByteSource(io.RawIOBase):
    """Read-only view of an open binary file that drops NUL bytes and never closes the file."""

    def __init__(self, f, strip_nul: bool):
        self._f = f
        self._strip_nul = strip_nul

    def readable(self):
        return True

    def readinto(self, buffer):
        while True:
            data = self._f.read(len(buffer))
            if self._strip_nul and b"\0" in data:
                # A stray NUL byte is never customer data; dropping it beats refusing the file.
                data = data.replace(b"\0", b"")
                if not data:
                    continue
            buffer[:len(data)] = data
            return len(data)


def text_stream(f, encoding: str, strip_nul: bool) -> io.TextIOWrapper:
    """Decode a binary file incrementally and strictly; newline="" as the csv module requires."""
    raw = io.BufferedReader(_ByteSource(f, strip_nul), 1 << 16)
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def sniff_delimiter(sample: str) -> tuple[str, int]:
    """Pick the delimiter that splits the first lines into the most consistent width; return it and the width."""
    lines = sample.splitlines(keepends=True)
    if len(sample) >= SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in half
    best, best_score = (",", 1), (0.0, 0)
    for delim in DELIMITERS:
        widths = [len(r) for r in csv.reader(lines, delimiter=delim) if any(r)]
        if not widths:
            continue
        width, hits = Counter(widths).most_common(1)[0]
        if width < 2:
            continue
        # Title rows above the header make some lines narrower; the share at the modal width still wins.
        score = (hits / len(widths), width)
        if score > best_score:
            best, best_score = (delim, width), score
    return best


@dataclass(frozen=True)
class CsvSource:
    """How to read a text file as CSV: where its bytes are, their encoding, the delimiter and the usual width."""

    opener: Opener
    encoding: str
    strip_nul: bool
    delimiter: str
    width: int  # the most common row width in the first lines

    def records(self, start: tuple[int, int] = (0, 0)) -> Iterator[tuple[int, list]]:
        """Its records from a record boundary on (csv_reader.records)."""
        return records(self.opener, self.encoding, self.strip_nul, self.delimiter, self.width, start)


def records(opener: Opener, encoding: str, strip_nul: bool, delimiter: str, width: int,
            start: tuple[int, int] = (0, 0)) -> Iterator[tuple[int, list]]:
    """Yield (record number, cells) for every non-blank record; blank records still count.

    start: (byte offset, records before it) of a record boundary to begin at, where the fast reader left off.
    """
    offset, before = start
    with opener() as f:
        f.seek(offset)
        text = text_stream(f, encoding, strip_nul)
        try:
            yield from _strict_records(text, delimiter, width, before)
        except UnicodeDecodeError:
            raise FileRefused(decode_error(encoding)) from None
        finally:
            text.detach()  # leave the caller's file open for the next pass


def decode_error(encoding: str) -> str:
    """The message for text that is not in the encoding the file was detected to have."""
    return (f"The file's text could not be read as {_codec_name(encoding)}: part of it is "
            f"damaged or in another encoding. {SAVE_AS_UTF8}")


def _strict_records(text, delimiter: str, width: int, before: int = 0) -> Iterator[tuple[int, list]]:
    """Run csv.reader strictly, translating its errors and catching quotes left open."""
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    number = before
    last_line = 0
    try:
        for cells in reader:
            number += 1
            if reader.line_num - last_line > 1:
                # Only a quoted newline makes a record span lines: check it swallowed no rows.
                check_multiline(cells, number, reader.line_num - last_line, delimiter, width)
            last_line = reader.line_num
            joined = "".join(cells)
            if not joined or joined.isspace():
                continue
            if "'" in joined:
                cells = [_unquote_prefix(c) for c in cells]
            yield number, cells
    except csv.Error as exc:
        raise FileRefused(csv_error_message(str(exc), number + 1)) from None


def _unquote_prefix(cell: str) -> str:
    """Strip the ' our own reports put before a formula trigger."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in TRIGGERS else cell


def check_multiline(cells: list, number: int, span: int, delimiter: str, width: int) -> None:
    """Refuse a record whose quoted cell spans too many lines or holds lines shaped like rows."""
    swallowed = span > MAX_CELL_LINES
    if not swallowed and width >= 3:
        for cell in cells:
            inner = cell.splitlines()[1:]
            if any(line.count(delimiter) >= width - 1 for line in inner):
                swallowed = True
                break
    if swallowed:
        raise FileRefused(
            f'Line {number} has a quote (") that is not closed on that line, so the next {span - 1} '
            f"lines would be read into one cell. Fix or remove the quote in line {number} and upload "
            "the file again.")


def csv_error_message(error: str, number: int) -> str:
    """Turn a csv module error into a sentence naming the line."""
    if "field limit" in error:
        limit_kb = csv.field_size_limit() // 1024
        return (f"Line {number} has a cell longer than {limit_kb} KB, far more than any customer "
                f'field holds. This usually means a quote (") is not closed; check that line.')
    if "unexpected end of data" in error:
        return (f'Line {number} has a quote (") that is never closed, so the rest of the file '
                f"would be read as one cell. Fix or remove the quote in line {number} and upload "
                "the file again.")
    if "expected after" in error:
        return (f'Line {number} has a quote (") in the middle of a cell. Put the whole cell in '
                f'quotes and double the quote inside it (""), or remove it, and upload the file again.')
    return f"Line {number} cannot be read as CSV. Check that line and upload the file again."


def _codec_name(encoding: str) -> str:
    """Name an encoding the way Excel's Save As dialog does."""
    if encoding in CODE_PAGES:
        return CODE_PAGES[encoding]
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8"}.get(encoding, "UTF-16")
