"""The single-byte code page of a CSV that is not UTF-8: told for sure from its own letters, or refused.

One pass over the file collects the distinct non-ASCII bytes it holds and a sample of the lines holding them
(every distinct byte appears in the sample, so two code pages that read the sample alike read the whole file
alike). Each code page that gives every byte a printable character is a reading of the sample; charset-normalizer
ranks the readings by how messy they look, and our own count of mojibake signs (an accented capital inside a
word, a symbol between letters, two alphabets in one word) comes first, since short samples are where the
detector's statistics are weakest. A reading is taken only when it is clearly better than every other.
"""
import codecs
import re
import unicodedata
from dataclasses import dataclass, field

from charset_normalizer import from_bytes

from webapp.importer.errors import FileRefused

# What spreadsheet programs write: Windows' ANSI pages, "CSV (MS-DOS)" (OEM pages), "CSV (Macintosh)", Latin-9.
CODE_PAGES = {
    "cp1252": "Windows-1252 (Western)", "iso8859_15": "Latin-9", "mac_roman": "Mac Roman",
    "cp850": "MS-DOS Latin (850)", "cp437": "MS-DOS US (437)", "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)", "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)", "cp852": "MS-DOS Central European (852)", "cp866": "MS-DOS Cyrillic (866)",
}
# Where customers' names are written in Latin letters of Western Europe and the Americas (our users): on a tie,
# these readings win over a Central European, Cyrillic, Turkish or Baltic one. (Greek is left out: its letters
# read any Cyrillic file as plausible-looking words.)
WESTERN = ("cp1252", "iso8859_15", "mac_roman", "cp850", "cp437")
SAMPLE_BYTES = 64 * 1024
CHUNK = 1024 * 1024
MARGIN = 0.05  # how much less messy (charset-normalizer's chaos) a reading must be to win on that alone
ASCII = bytes(range(128))
HIGH = re.compile(rb"[\x80-\xff]")
# Where a two- or three-byte UTF-8 sequence may start (the line is then decoded to be sure): a line that is
# UTF-8 throughout means mixed encodings. One simple class pair searches three times faster than the exact forms.
UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xef][\x80-\xbf]")
NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Characters real customer text never holds but misread bytes often give.
NEVER = re.compile("[\u00a4\u0192\u2500-\u25ff\uf8ff\u02c7\u02d8\u02d9\u02db\u02dd]")
# Punctuation that does sit against letters: apostrophes, quotes, dashes.
NEXT_TO_LETTERS = set("’‘“”«»–—…•°¿¡·ªº®™©\u00a0")
SAVE_AS_UTF8 = 'Save the file from Excel as "CSV UTF-8 (Comma delimited)" and upload it again.'


@dataclass
class Scan:
    """What one pass over a file that is not UTF-8 found."""

    high: set = field(default_factory=set)  # the non-ASCII byte values it holds
    sample: bytearray = field(default_factory=bytearray)  # lines holding them, every value at least once
    lines: int = 1
    bad_line: int = 1  # the line of the first byte that is not UTF-8
    utf8_line: int | None = None  # a line that is UTF-8 (with letters beyond ASCII) throughout


def detect(f, bad_at: int) -> str:
    """The codec of a file that is not UTF-8, whose first non-UTF-8 byte is at bad_at; FileRefused when unsure."""
    scan = _scan(f, bad_at)
    if scan.utf8_line is not None:
        raise FileRefused(
            "The file mixes two text encodings (UTF-8 and Windows-1252), so some letters would come out garbled; "
            f"line {scan.bad_line} is the first that is not UTF-8. {SAVE_AS_UTF8}")
    high = bytes(sorted(scan.high))
    readings: dict[str, list[str]] = {}
    for codec in CODE_PAGES:
        if _printable(high, codec):
            readings.setdefault(bytes(scan.sample).decode(codec), []).append(codec)
    if not readings:
        raise FileRefused(
            f"The file's text encoding is not recognized: line {scan.bad_line} has a character that is not "
            f"UTF-8 text, nor text of any code page spreadsheet programs use. {SAVE_AS_UTF8}")
    if len(readings) == 1:
        return next(iter(readings.values()))[0]
    chaos = _chaos(bytes(scan.sample), [c for codecs_ in readings.values() for c in codecs_])
    ranked = sorted((Reading(text, cps[0], _signs(text), min(chaos[c] for c in cps)) for text, cps in readings.items()),
                    key=lambda r: (r.signs, r.chaos))
    western = [r for r in ranked if r.codec in WESTERN]
    for best in ranked[:1] + western[:1]:
        if best.plausible() and all(best.beats(other) for other in ranked if other is not best):
            return best.codec
    best, other = ranked[0], ranked[1]
    word, alternative = _first_difference(best.text, other.text)
    raise FileRefused(
        "The file is not saved as UTF-8, and its text encoding cannot be told for sure: the same bytes read "
        f'"{word}" as {CODE_PAGES[best.codec]} and "{alternative}" as {CODE_PAGES[other.codec]}. {SAVE_AS_UTF8}')


@dataclass
class Reading:
    """The sample as one code page reads it, with its signs of misread bytes and charset-normalizer's mess ratio."""

    text: str
    codec: str
    signs: int
    chaos: float

    def plausible(self) -> bool:
        """Few enough signs of misread bytes for real text (a stray symbol in one cell of fifty)."""
        return self.signs * 50 <= len(NON_ASCII.findall(self.text))

    def beats(self, other: "Reading") -> bool:
        """Clearly the better reading: fewer signs, far less mess, or as good and Western against not."""
        if self.signs != other.signs:
            return self.signs < other.signs
        return (other.chaos - self.chaos >= MARGIN
                or (self.codec in WESTERN and other.codec not in WESTERN and other.chaos >= self.chaos - MARGIN))


def _scan(f, bad_at: int) -> Scan:
    """One pass over the file from byte 0, in whole lines."""
    scan, offset, carry = Scan(), 0, b""
    while True:
        block = f.read(CHUNK)
        data = carry + block
        if not data:
            return scan
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if cut == 0:  # no line end yet: read on
            carry = data
            continue
        part, carry = data[:cut], data[cut:]
        if offset <= bad_at < offset + len(part):
            scan.bad_line = scan.lines + part.count(b"\n", 0, bad_at - offset)
        _take(scan, part)
        scan.lines += part.count(b"\n")
        offset += len(part)
        if not block:
            return scan


def _take(scan: Scan, part: bytes) -> None:
    """Add a piece of whole lines to the scan: its new byte values, sample lines, a UTF-8 line."""
    new = set(part.translate(None, ASCII + bytes(scan.high)))  # bytes.translate deletes in C: no loop per byte
    # One line for each byte value not seen before, wherever it is; then the first lines with any, to the cap.
    starts = {part.rfind(b"\n", 0, part.find(bytes((value,)))) + 1 for value in new}
    at, size = 0, len(scan.sample)
    while size < SAMPLE_BYTES and (match := HIGH.search(part, at)):
        start = part.rfind(b"\n", 0, match.start()) + 1
        at = part.find(b"\n", match.start()) + 1 or len(part)
        starts.add(start)
        size += at - start
    for start in sorted(starts):
        scan.sample += _line_at(part, start)
    scan.high |= new
    if scan.utf8_line is None:
        start = 0
        while match := UTF8_MULTIBYTE.search(part, start):
            line = _line_at(part, match.start())
            start = part.find(b"\n", match.start()) + 1 or len(part)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                continue
            scan.utf8_line = scan.lines + part.count(b"\n", 0, match.start())
            return


def _line_at(data: bytes, at: int) -> bytes:
    """The line holding byte at (with its line end)."""
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    return data[start:] if end < 0 else data[start:end + 1]


def _printable(high: bytes, codec: str) -> bool:
    """Whether the code page gives every one of these bytes a printable character."""
    try:
        text = high.decode(codec)
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(ch) in ("Cc", "Co", "Cn") for ch in text)


def _chaos(sample: bytes, codecs_: list[str]) -> dict[str, float]:
    """charset-normalizer's mess ratio of the sample in each code page it ranked."""
    found = {}
    for match in from_bytes(sample, cp_isolation=codecs_, threshold=1.0, preemptive_behaviour=False):
        for name in [match.encoding, *match.could_be_from_charset]:
            found[codecs.lookup(name).name] = match.chaos
    return {codec: found.get(codecs.lookup(codec).name, 1.0) for codec in codecs_}


def _signs(text: str) -> int:
    """How many signs of misread bytes the text shows (counted around its non-ASCII characters)."""
    signs = 0
    for match in NON_ASCII.finditer(text):
        at = match.start()
        ch, before, after = text[at], text[at - 1:at], text[at + 1:at + 2]
        if NEVER.match(ch):
            signs += 1
        elif ch.isalpha():
            if ch.isupper() and before.isalpha() and (before.islower() or after.islower()):
                signs += 1  # "JosŽ", "MÅller": a capital inside a word
            elif (before.isalpha() and _script(before) != _script(ch)) or (
                    after.isalpha() and _script(after) != _script(ch)):
                signs += 1  # "Josй": two alphabets in one word
        elif unicodedata.category(ch)[0] not in "MZ" and ch not in NEXT_TO_LETTERS and (
                before.isalpha() or after.isalpha()):
            signs += 1  # "H‚lŠne", "Pawe³", "£ukasz": a symbol against a letter
    return signs


def _script(ch: str) -> str:
    """A letter's alphabet: LATIN, CYRILLIC, GREEK…"""
    return unicodedata.name(ch, "?").split()[0]


def _first_difference(text: str, other: str) -> tuple[str, str]:
    """The first word two readings of the same bytes spell differently, in each (one character per byte)."""
    at = next(i for i, (a, b) in enumerate(zip(text, other)) if a != b)
    start = max(text.rfind(sep, 0, at) for sep in ", ;\t\n\"") + 1
    ends = [e for e in (text.find(sep, at) for sep in ", ;\t\r\n\"") if e >= 0]
    end = min(ends) if ends else len(text)
    return text[start:end], other[start:end]
