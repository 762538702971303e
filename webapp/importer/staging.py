"""The validation's parsed rows, kept for the apply as compressed column chunks in the database.

Any worker on any machine can apply an import: the chunks live beside the import, not on a disk. A
chunk is an Arrow IPC stream (lz4), a few megabytes for fifty thousand rows.
"""
import io

import polars as pl

from webapp import config
from webapp.db import db, is_postgres
from webapp.importer import bulk
from webapp.models import StagedChunk


def unit_rows() -> int:
    """Rows per unit of the apply (the chunk_rows setting, IMPORT_CHUNK_ROWS)."""
    return config.current().chunk_rows


def encode(frame: pl.DataFrame, compression: str = "lz4") -> bytes:
    """A frame as compressed Arrow IPC bytes."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression=compression)
    return buffer.getvalue()


def decode(data: bytes) -> pl.DataFrame:
    """The frame encode() wrote."""
    return pl.read_ipc(io.BytesIO(bytes(data)))


def save(import_id: int, kind: str, frame: pl.DataFrame) -> None:
    """Keep a frame of rows of one kind (its "seq" column numbers them, in order) for the apply.

    It is kept in pieces of the apply's units (seq 1 to 25,000, 25,001 to 50,000, ...), so a unit
    decodes its own rows only.
    """
    if frame.is_empty():
        return
    size = unit_rows()
    pieces = frame.with_columns(_unit=(pl.col("seq") - 1) // size).partition_by(
        "_unit", maintain_order=True, include_key=False)
    for piece in pieces:
        _save_piece(import_id, kind, piece)


def _save_piece(import_id: int, kind: str, frame: pl.DataFrame) -> None:
    first, last, data = frame["seq"][0], frame["seq"][-1], encode(frame)
    if is_postgres():
        # COPY in binary sends the blob as it is; an INSERT parameter travels hex-escaped (6x slower).
        bulk.copy_binary_row(StagedChunk._meta.table_name, ["upload_id", "kind", "first_seq", "last_seq", "data"],
                             [import_id, kind, first, last, data])
    else:
        StagedChunk.insert(upload=import_id, kind=kind, first_seq=first, last_seq=last, data=data).execute()


def load(import_id: int, kind: str, after: int, until: int) -> pl.DataFrame | None:
    """The kept rows of a kind with after < seq <= until, in order; None when there are none."""
    mark = "%s" if is_postgres() else "?"
    table = StagedChunk._meta.table_name
    # One query per chunk: the driver would hold every blob of a single result in memory at once.
    found = db.execute_sql(
        f'SELECT id FROM "{table}" WHERE upload_id = {mark} AND kind = {mark} AND last_seq > {mark} '
        f"AND first_seq <= {mark} ORDER BY first_seq", [import_id, kind, after, until]).fetchall()
    frames = []
    for (chunk_id,) in found:
        (data,) = db.execute_sql(f'SELECT data FROM "{table}" WHERE id = {mark}', [chunk_id]).fetchone()
        frames.append(decode(data).filter((pl.col("seq") > after) & (pl.col("seq") <= until)))
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def delete(import_id: int) -> None:
    """Forget the kept rows of an import."""
    StagedChunk.delete().where(StagedChunk.upload == import_id).execute()


def exists(import_id: int) -> bool:
    """True when the import has kept rows."""
    return StagedChunk.select().where(StagedChunk.upload == import_id).exists()
