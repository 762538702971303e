"""The dry run's memory: personas the simulated rows changed, spilled to a throwaway SQLite file.

Validation simulates the merge chunk by chunk and writes nothing to personas, yet what earlier
chunks did must stay visible to later ones. Keeping every touched persona in memory would grow
with the file, so each chunk's changed personas are kept on disk, indexed by email and phone.
"""
import json
import pickle
import sqlite3
import tempfile

from webapp.importer.personas_io import SQLITE_LIST


class Overlay:
    """Simulated personas by their current email and phone (new ones keyed by the line creating them)."""

    def __init__(self):
        self._file = tempfile.NamedTemporaryFile(prefix="dry-run-", suffix=".sqlite")
        self._db = sqlite3.connect(self._file.name)
        self._db.executescript("""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            CREATE TABLE overlay (key INTEGER PRIMARY KEY, id INTEGER, email TEXT, phone TEXT, state BLOB);
            CREATE INDEX overlay_email ON overlay (email);
            CREATE INDEX overlay_phone ON overlay (phone);
            CREATE INDEX overlay_id ON overlay (id);
        """)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._db.close()
        self._file.close()

    def by_keys(self, emails: list, phones: list) -> list[dict]:
        """The simulated personas that hold one of these emails or phones now."""
        sql = f"SELECT state FROM overlay WHERE email IN {SQLITE_LIST} OR phone IN {SQLITE_LIST}"
        return [pickle.loads(state) for (state,) in self._db.execute(sql, [json.dumps(emails), json.dumps(phones)])]

    def holding(self, ids) -> set[int]:
        """Which of these database personas the simulation has changed (their stored keys may be stale)."""
        rows = self._db.execute(f"SELECT id FROM overlay WHERE id IN {SQLITE_LIST}", [json.dumps(list(ids))])
        return {persona_id for (persona_id,) in rows}

    def save(self, personas) -> None:
        """Keep (or replace) these personas' simulated state."""
        self._db.executemany(
            "INSERT OR REPLACE INTO overlay (key, id, email, phone, state) VALUES (?, ?, ?, ?, ?)",
            [(p["id"] if p["id"] is not None else -p["created_by_line"], p["id"], p["email"], p["phone"],
              # pickle: a private scratch file, and several times faster than JSON for these dicts.
              pickle.dumps(p, pickle.HIGHEST_PROTOCOL)) for p in personas])
        # SQLite kept memory from every chunk's writes (170 MB over a million rows, well past its 2 MB page
        # cache); handing it back each chunk keeps the dry run flat for a few percent of its time.
        self._db.execute("PRAGMA shrink_memory")

