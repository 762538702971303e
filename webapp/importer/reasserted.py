"""Values a later import's rows set again: the same value changes nothing and leaves no audit entry.

Which personas a later import reached comes from its generated audience (every persona a row reached,
created, updated or unchanged: one indexed query a chunk). Which values those rows carried comes from its
kept column chunks (staging), read once per revert: the only record of an unchanged row's cells. A later
import whose file was deleted has neither: every field it mapped is taken as set again (a revert keeps
data it cannot prove unasserted, and says so).
"""
import datetime

import polars as pl

from webapp.importer import staging
from webapp.importer.fields import CHANNELS, FIELDS, PLAIN_FIELDS, attribute_name, opt_fields
from webapp.models import Audience, AudienceMember, Import

SETTLED = ("completed", "failed")
KEY_COLUMNS = ("target", "email_id", "phone_id")
ROWS_PER_READ = 50_000  # a kept chunk's size: read one at a time, keep only a few columns of it


class Later:
    """The imports of the account applied after one import, and the cells of their rows, read once."""

    def __init__(self, upload: Import):
        since = upload.queued_at or upload.created_at
        self.imports = list(Import.select().where(
            (Import.account == upload.account_id) & (Import.id != upload.id) & Import.status.in_(SETTLED)
            & Import.terms_accepted_at.is_null(False) & (Import.finished_at >= since)).order_by(Import.id))
        self._rows: dict[int, pl.DataFrame] = {}

    def reasserted(self, personas: dict[int, dict]) -> dict[int, dict[str, Import]]:
        """persona id -> {field or "attribute:<name>": the later import that set its current value again}."""
        found: dict[int, dict[str, Import]] = {}
        if not self.imports or not personas:
            return found
        reached = self._reached(list(personas))
        for later in self.imports:
            if later.file_deleted:
                for persona in personas.values():
                    _assume_mapped(later, persona, found.setdefault(persona["id"], {}))
                continue
            for persona_id, row in self._rows_reaching(later, personas, reached.get(later.id, set())):
                _note(later, personas[persona_id], row, found.setdefault(persona_id, {}))
        return found

    def _reached(self, persona_ids: list[int]) -> dict[int, set[int]]:
        query = (AudienceMember.select(Audience.source_import, AudienceMember.persona)
                 .join(Audience, on=(AudienceMember.audience == Audience.id))
                 .where(Audience.source_import.in_([i.id for i in self.imports])
                        & AudienceMember.persona.in_(persona_ids)).tuples())
        reached: dict[int, set[int]] = {}
        for import_id, persona_id in query:
            reached.setdefault(import_id, set()).add(persona_id)
        return reached

    def _rows_reaching(self, later: Import, personas: dict[int, dict], reached: set[int]):
        """(persona id, row) for each applied row of later that reached one of personas."""
        if not reached:
            return
        rows = self._rows_of(later)
        ids = list(reached)
        by_email = {personas[i]["email"]: i for i in ids if personas[i]["email"]}
        by_phone = {personas[i]["phone"]: i for i in ids if personas[i]["phone"]}
        hit = pl.lit(False)
        for column in KEY_COLUMNS:
            hit = hit | pl.col(column).is_in(ids).fill_null(False)
        hit = hit | pl.col("email").is_in(list(by_email)).fill_null(False)
        hit = hit | pl.col("phone").is_in(list(by_phone)).fill_null(False)
        for row in rows.filter(hit).iter_rows(named=True):
            persona_id = next((row[c] for c in KEY_COLUMNS if row[c] in reached), None)
            persona_id = persona_id or by_email.get(row["email"]) or by_phone.get(row["phone"])
            if persona_id is not None:
                yield persona_id, row

    def _rows_of(self, later: Import) -> pl.DataFrame:
        """The later import's applied-worthy rows, only the columns asked of them (kept chunks hold far more)."""
        if later.id not in self._rows:
            frames = []
            for kind in ("alone", "together"):
                for after in range(0, later.rows_total or 0, ROWS_PER_READ):
                    frame = staging.load(later.id, kind, after, after + ROWS_PER_READ)
                    if frame is not None:
                        frames.append(_wanted(frame))
            self._rows[later.id] = pl.concat(frames, how="diagonal_relaxed") if frames else _wanted(pl.DataFrame())
        return self._rows[later.id]


def _wanted(frame: pl.DataFrame) -> pl.DataFrame:
    """A kept chunk's rows without a rejection, with the keys and cells a re-assertion is read from."""
    for column in (*KEY_COLUMNS, "email", "phone", "error", "rejection"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Int64 if column in KEY_COLUMNS else pl.String).alias(column))
    wanted = [c for c in (*KEY_COLUMNS, *FIELDS, "attributes") if c in frame.columns]
    return frame.filter(pl.col("error").is_null() & pl.col("rejection").is_null()).select(wanted)


def _same(cell, value) -> bool:
    if isinstance(cell, datetime.date):
        cell = cell.isoformat()
    return cell == value


def _note(later: Import, persona: dict, row: dict, found: dict) -> None:
    for name in PLAIN_FIELDS:
        cell = row.get(name)
        if cell is not None and _same(cell, persona[name]):
            found[name] = later
    for name in row.get("attributes") or ():
        if name in persona["attributes"]:
            found[f"attribute:{name}"] = later
    for channel in CHANNELS:
        opt_in, opt_out = opt_fields(channel)
        if row.get(opt_out) is True:
            if persona[opt_out]:
                found[opt_out] = later
        elif (row.get(opt_in) is True or later.options.get(f"opt_in_{channel}")) and persona[opt_in]:
            found[opt_in] = later


def _assume_mapped(later: Import, persona: dict, found: dict) -> None:
    """Without its rows, a later import may have set any field it mapped to the value the persona has."""
    for target in (later.mapping or {}).values():
        name = attribute_name(target)
        if name is not None and name in persona["attributes"]:
            found[f"attribute:{name}"] = later
        elif target in FIELDS and FIELDS[target].merge != "add" and persona.get(target) not in (None, False):
            found[target] = later
    for channel in CHANNELS:
        if later.options.get(f"opt_in_{channel}") and persona[f"{channel}_opt_in"]:
            found[f"{channel}_opt_in"] = later


def why(name: str, later: Import) -> str:
    """The reason a re-asserted value is kept, as the not-reverted list gives it."""
    if later.file_deleted:
        return (f"{label(name)} kept: a later import may have set the same value (import #{later.id}; its file "
                "was deleted, so its rows cannot be checked)")
    return f"{label(name)} kept: a later import set the same value (import #{later.id})"


def label(name: str) -> str:
    """A field (or "attribute:<name>") as a marketer reads it."""
    if name.startswith("attribute:"):
        return f'Attribute "{name.split(":", 1)[1]}"'
    return FIELDS[name].label if name in FIELDS else name.replace("_", " ")
