"""Values a later import's rows set again: the same value changes nothing and leaves no audit entry.

Which personas a later import reached comes from its generated audience (every persona a row reached:
created, updated or unchanged); which values its rows carried, from its kept column chunks (staging), the
only record of an unchanged row's cells. Both are read once per revert, set-based. Deleting an import's file
deletes both, so it first keeps a digest of them (ReachedDigest: personas and the fields their rows carried,
no values). An import whose file went before digests existed is taken to have set every field it mapped.
"""
import datetime

import polars as pl

from webapp.importer import staging
from webapp.importer.fields import CHANNELS, FIELDS, PLAIN_FIELDS, attribute_name, label, opt_fields
from webapp.importer.states import SETTLED
from webapp.models import AudienceMember, Import, Persona, ReachedDigest

KEY_COLUMNS = ("target", "email_id", "phone_id")
OPT_FIELDS = tuple(name for channel in CHANNELS for name in opt_fields(channel))
ROWS_PER_READ = 50_000  # a kept chunk's size: read one at a time, keep only a few columns of it


class Later:
    """The imports of the account applied after one import, and what their rows carried, read once."""

    def __init__(self, upload: Import, only: list[int] | None = None):
        """only: the personas to look at (the preview's), else every one the later imports reached."""
        since = upload.queued_at or upload.created_at
        self.only = only
        self.imports = list(Import.select().where(
            (Import.account == upload.account_id) & (Import.id != upload.id) & Import.status.in_(SETTLED)
            & Import.terms_accepted_at.is_null(False) & (Import.finished_at >= since)).order_by(Import.id))
        self._reached: dict[int, pl.DataFrame | None] = {}

    def reasserted(self, personas: dict[int, dict]) -> dict[int, dict[str, Import]]:
        """persona id -> {field or "attribute:<name>": the later import that set its current value again}."""
        found: dict[int, dict[str, Import]] = {}
        for later in self.imports:
            if later.id not in self._reached:
                self._reached[later.id] = _digest_of(later) if later.file_deleted else reached(later, self.only)
            frame = self._reached[later.id]
            later.unchecked = frame is None
            if frame is None:
                for persona in personas.values():
                    _assume_mapped(later, persona, found.setdefault(persona["id"], {}))
                continue
            for row in frame.filter(pl.col("persona_id").is_in(list(personas))).iter_rows(named=True):
                _note(later, personas[row["persona_id"]], row, found.setdefault(row["persona_id"], {}),
                      exact=not later.file_deleted)
        return found


def reached(upload: Import, only: list[int] | None = None) -> pl.DataFrame:
    """One row per persona the import's rows reached: the last value each field carried, the attributes and
    opt-ins/outs set TRUE. Rows find their persona among the audience's by the ids they matched, else by key.

    only: just these personas (the rows of the others are dropped chunk by chunk, so memory stays small).
    """
    query = Persona.select(Persona.id, Persona.email, Persona.phone).join(
        AudienceMember, on=(AudienceMember.persona == Persona.id)).where(
        AudienceMember.audience == (upload.audience_id or 0))
    if only is not None:
        query = query.where(AudienceMember.persona.in_(only))
    members = pl.DataFrame(list(query.tuples()), schema={"id": pl.Int64, "email": pl.String, "phone": pl.String},
                           orient="row")
    rows = _kept_rows(upload, None if only is None else members)
    ids = members["id"].to_list()
    found = [rows.filter(pl.col(c).is_in(ids)).with_columns(persona_id=pl.col(c), rank=pl.lit(rank))
             for rank, c in enumerate(KEY_COLUMNS)]
    found += [rows.join(members.select(key, persona_id="id"), on=key, how="inner").with_columns(rank=pl.lit(3 + n))
              for n, key in enumerate(("email", "phone"))]
    matched = pl.concat(found, how="diagonal_relaxed").sort("seq", "rank").unique("seq", keep="first")
    aggregates = [pl.col(name).drop_nulls().last() for name in PLAIN_FIELDS if name in matched.columns]
    aggregates += [(pl.col(name) == True).any() for name in OPT_FIELDS if name in matched.columns]  # noqa: E712
    if "attributes" in matched.columns:
        aggregates.append(pl.col("attributes").explode().drop_nulls().unique())
    return matched.sort("seq").group_by("persona_id").agg(aggregates)


def keep_digest(upload: Import) -> None:
    """Before an import's kept rows and audience go: which personas they reached and which fields they carried."""
    frame = reached(upload)
    frame = frame.with_columns([pl.col(name).is_not_null() for name in PLAIN_FIELDS if name in frame.columns])
    ReachedDigest.delete().where(ReachedDigest.upload == upload.id).execute()
    ReachedDigest.insert(upload=upload.id, data=staging.encode(frame)).execute()


def _digest_of(upload: Import) -> pl.DataFrame | None:
    data = ReachedDigest.select(ReachedDigest.data).where(ReachedDigest.upload == upload.id).scalar()
    return None if data is None else staging.decode(data)


def _kept_rows(upload: Import, members: pl.DataFrame | None = None) -> pl.DataFrame:
    """The import's kept rows without a rejection, only the keys and cells a re-assertion is read from.

    members: only the rows that may reach one of these personas (by a matched id, the email or the phone).
    """
    frames = []
    for kind in ("alone", "together"):
        for after in range(0, upload.rows_total or 0, ROWS_PER_READ):
            frame = staging.load(upload.id, kind, after, after + ROWS_PER_READ)
            if frame is not None:
                frame = _wanted(frame)
                if members is not None:
                    frame = frame.filter(pl.any_horizontal(
                        *(pl.col(c).is_in(members["id"].implode()) for c in KEY_COLUMNS),
                        *(pl.col(c).is_in(members[c].drop_nulls().implode()) for c in ("email", "phone")))
                        .fill_null(False))
                frames.append(frame)
    if not frames:
        return _wanted(pl.DataFrame({"seq": []}, schema={"seq": pl.Int64}))
    return pl.concat(frames, how="diagonal_relaxed")


def _wanted(frame: pl.DataFrame) -> pl.DataFrame:
    for column in (*KEY_COLUMNS, "email", "phone", "error", "rejection"):
        if column not in frame.columns:
            dtype = pl.Int64 if column in KEY_COLUMNS else pl.String
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(column))
    wanted = [c for c in ("seq", *KEY_COLUMNS, *FIELDS, "attributes") if c in frame.columns]
    return frame.filter(pl.col("error").is_null() & pl.col("rejection").is_null()).select(wanted)


def _same(cell, value) -> bool:
    if isinstance(cell, datetime.date):
        cell = cell.isoformat()
    return cell == value


def _note(later: Import, persona: dict, row: dict, found: dict, exact: bool) -> None:
    """Note what a later import's rows set again; a digest (not exact) knows only that a field was carried."""
    for name in PLAIN_FIELDS:
        cell = row.get(name)
        if cell is None:
            continue
        if _same(cell, persona[name]) if exact else (cell is True and persona[name] is not None):
            found[name] = later
    for name in row.get("attributes") or ():
        if name in persona["attributes"]:
            found[f"attribute:{name}"] = later
    for channel in CHANNELS:
        opt_in, opt_out = opt_fields(channel)
        if row.get(opt_out):
            if persona[opt_out]:
                found[opt_out] = later
        elif (row.get(opt_in) or later.options.get(f"opt_in_{channel}")) and persona[opt_in]:
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
    if getattr(later, "unchecked", False):
        return (f"{label(name)} kept: a later import may have set the same value (import #{later.id}; its file "
                "was deleted before it could be checked)")
    return f"{label(name)} kept: a later import set the same value (import #{later.id})"


