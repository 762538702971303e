"""CSV records as polars frames: the file read in pieces cut between records, each piece parsed in Rust.

csv_reader.records (Python's csv module, strict) stays the reference and the fallback. A piece polars
cannot read the way csv.reader reads it (a stray quote, NUL bytes, old Mac line ends, a row wider than
expected, bytes that are not UTF-8) ends the fast path there: the rest of the file is read by csv_reader
from that piece's first record on, so its exact messages and rules still apply.
"""
import codecs
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl

from webapp.importer.errors import FileRefused

PIECE_BYTES = 8 * 1024 * 1024
# A piece holds whole records only; a record longer than this (an unclosed quote) goes to csv_reader.
MAX_CARRY = 4 * PIECE_BYTES
UTF8 = ("utf-8", "utf-8-sig")


@dataclass
class Piece:
    """Records of the file from a byte offset on: parsed (frame) or left to csv_reader (frame is None)."""

    offset: int  # byte offset of its first record in the UTF-8 source
    before: int  # how many records come before it
    frame: pl.DataFrame | None  # "rec" (record number) and c0 … c<width-1>, all text
    quotes: bool = True  # the piece holds a quote character (so a cell may hold a line break)
    apostrophes: bool = True  # the piece holds a ' (so a cell may carry our report's formula prefix)


@contextmanager
def utf8_source(opener, encoding: str, decode_error):
    """A binary file of the CSV as UTF-8: the file itself, or a copy decoded from its own encoding."""
    if encoding in UTF8:
        with opener() as f:
            yield f
        return
    with opener() as f, tempfile.TemporaryFile() as copy:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        try:
            while block := f.read(PIECE_BYTES):
                copy.write(decoder.decode(block).encode("utf-8"))
            copy.write(decoder.decode(b"", final=True).encode("utf-8"))
        except UnicodeDecodeError:
            raise FileRefused(decode_error) from None
        copy.seek(0)
        yield copy


def pieces(f, delimiter: str, width: int) -> Iterator[Piece]:
    """The file's records, piece by piece; the last piece has frame None when polars cannot read on."""
    schema = {f"c{i}": pl.String for i in range(width)}
    offset = before = 0
    carry = b""
    while True:
        block = f.read(PIECE_BYTES)
        data = carry + block
        if not data:
            return
        if block:
            cut = _record_end(data)
            if cut <= 0:
                if len(data) > MAX_CARRY:
                    yield Piece(offset, before, None)
                    return
                carry = data
                continue
            piece, carry = data[:cut], data[cut:]
        else:
            piece, carry = data, b""
        frame = _read(piece, delimiter, schema, first=offset == 0)
        if frame is None:
            yield Piece(offset, before, None)
            return
        yield Piece(offset, before, frame.with_row_index("rec", offset=before + 1).with_columns(
            pl.col("rec").cast(pl.Int64)), quotes=b'"' in piece, apostrophes=b"'" in piece)
        before += len(frame)
        offset += len(piece)


def _record_end(data: bytes) -> int:
    """The end of the last whole record in data (after a line break outside quotes), or 0."""
    quotes = data.count(b'"')
    end = data.rfind(b"\n")
    while end >= 0:
        # An even number of quotes before the line break: it is not inside a quoted cell.
        if (quotes - data.count(b'"', end + 1)) % 2 == 0:
            return end + 1
        end = data.rfind(b"\n", 0, end)
    return 0


def _read(piece: bytes, delimiter: str, schema: dict, first: bool) -> pl.DataFrame | None:
    """The piece's records as text columns, or None where csv.reader might read it otherwise."""
    if first and piece.startswith(codecs.BOM_UTF8):
        piece = piece[len(codecs.BOM_UTF8):]
    if b"\0" in piece or piece.count(b"\r") != piece.count(b"\r\n"):
        return None  # NUL bytes are dropped and lone CRs end lines in csv_reader; polars does neither
    try:
        return pl.read_csv(piece, has_header=False, separator=delimiter, quote_char='"', schema=schema,
                           missing_columns="insert", infer_schema=False, raise_if_empty=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return None
