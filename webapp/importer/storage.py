"""Uploaded files live in the database, in chunks, so any worker on any machine can read them."""
import hashlib
import io
import struct
import tempfile
from contextlib import contextmanager

from webapp.db import db, is_postgres
from webapp.importer.errors import FileRefused
from webapp.models import Import, UploadChunk

CHUNK_BYTES = 4 * 1024 * 1024
# PostgreSQL's binary COPY framing: signature, flags, header extension length; -1 ends the data.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)


def store_file(upload: Import, stream, max_bytes: int) -> None:
    """Copy stream into the upload's chunks, recording size and sha256; refuse files over max_bytes."""
    digest, size, seq = hashlib.sha256(), 0, 0
    with db.atomic():
        UploadChunk.delete().where(UploadChunk.upload == upload).execute()
        while block := stream.read(CHUNK_BYTES):
            size += len(block)
            if size > max_bytes:
                raise FileRefused(
                    f"This file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB. "
                    "Split it into smaller files and import them one after the other."
                )
            digest.update(block)
            _insert_chunk(upload.id, seq, block)
            seq += 1
        upload.size, upload.sha256 = size, digest.hexdigest()
        Import.update(size=upload.size, sha256=upload.sha256).where(Import.id == upload.id).execute()


def _insert_chunk(upload_id: int, seq: int, block: bytes) -> None:
    if not is_postgres():
        UploadChunk.insert(upload=upload_id, seq=seq, data=block).execute()
        return
    # Binary COPY: an INSERT would send the bytes hex-escaped as SQL text, several times slower for 100 MB.
    row = struct.pack("!hiiii", 3, 4, upload_id, 4, seq) + struct.pack("!i", len(block))
    framed = io.BytesIO(b"".join((COPY_HEADER, row, block, COPY_TRAILER)))
    table = UploadChunk._meta.table_name
    db.cursor().copy_expert(f'COPY "{table}" (upload_id, seq, data) FROM STDIN WITH (FORMAT binary)', framed)


@contextmanager
def opened_file(upload: Import):
    """A seekable local copy of the stored file, spooled from the database chunk by chunk."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as local:
        # One chunk per query: a single SELECT would hold the whole file (twice) in the worker's memory,
        # since the driver fetches every row of a result before handing over the first.
        seqs = UploadChunk.select(UploadChunk.seq).where(UploadChunk.upload == upload).order_by(UploadChunk.seq)
        for (seq,) in list(seqs.tuples()):
            chunk = UploadChunk.get((UploadChunk.upload == upload) & (UploadChunk.seq == seq))
            local.write(bytes(chunk.data))
        local.seek(0)
        yield local


def delete_file(upload: Import) -> None:
    """Remove the stored file's bytes."""
    UploadChunk.delete().where(UploadChunk.upload == upload).execute()
