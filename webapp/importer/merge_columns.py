"""The merge rules of merge.py, column-wise, for rows that share nothing with any other row of the file.

Such a row (its email, its phone and the persona it matches belong to no other row) gives the same
result whatever order the file is applied in, so all of them merge at once: each rule of merge.Merger
as an expression over the row's values (its columns) and its persona's state (columns "s_<name>").
The audit changes are built as the same JSON the Merger writes: {"field": [old, new], ...}.
"""
from dataclasses import dataclass

import polars as pl

from webapp.importer.errors import BALANCE_BELOW_ZERO, OPT_OUT_LIFTED
from webapp.importer.fields import CHANNELS, PERSONA_COLUMNS, PLAIN_FIELDS, STAMPS, opt_fields
from webapp.importer.merge import Stamp
from webapp.importer.problems import ERROR, SCHEMA, WARNING

ROW_SCHEMA = {"seq": pl.Int64, "line": pl.Int64, "action": pl.String, "persona_id": pl.Int64,
              "changes": pl.String, "added": pl.List(pl.String)}


@dataclass
class Merged:
    """What independent rows do: per row, and per persona they create or update."""

    rows: pl.DataFrame  # ROW_SCHEMA, plus the box flags "box_<channel>" (the box would opt it in)
    personas: pl.DataFrame  # seq, id (None for new ones), every persona column as merged, attributes
    changed: list[str]  # the persona columns some updated persona of these rows changes
    problems: pl.DataFrame  # problems.SCHEMA, in the order the Merger reports them

    def without(self, seqs: pl.Series) -> "Merged":
        """The same, less these rows (they merge again, row by row)."""
        if seqs.is_empty():
            return self
        lines = self.rows.filter(pl.col("seq").is_in(seqs.implode()))["line"]
        return Merged(self.rows.filter(~pl.col("seq").is_in(seqs.implode())),
                      self.personas.filter(~pl.col("seq").is_in(seqs.implode())), self.changed,
                      self.problems.filter(~pl.col("line").is_in(lines.implode())))


def state(name: str) -> pl.Expr:
    """The persona's state before the row: a new persona's where the row matched none."""
    column = pl.col(f"s_{name}")
    if name == "points":
        return column.fill_null(0)
    if name == "attributes":
        return column.fill_null(pl.lit([], dtype=pl.List(pl.String)))
    if name == "archived" or name.endswith(("_opt_in", "_opt_out")):
        return column.fill_null(False)
    return column


def _json(expr: pl.Expr) -> pl.Expr:
    """A value as JSON text (polars encodes it inside a one-field object; the wrapper is cut off)."""
    return pl.struct(v=expr).struct.json_encode().str.slice(5).str.strip_suffix("}")


def _change(name: str, changed: pl.Expr, old: pl.Expr, new: pl.Expr) -> pl.Expr:
    return pl.when(changed).then(pl.concat_str([pl.lit(f'"{name}":['), _json(old), pl.lit(","), _json(new), pl.lit("]")]))


def merge(rows: pl.DataFrame, mapped: list[str], stamp: Stamp, headers: dict[str, str], writes: bool = True) -> Merged:
    """Merge independent rows (parsed columns, "target", "rejection" and the target's "s_" state).

    mapped: the fields the file fills, in its column order; headers: field -> the file's header.
    writes: False for the dry run, which needs each row's action and problems but nothing to write.
    """
    rejected = pl.col("error").is_not_null() | pl.col("rejection").is_not_null()
    live = ~rejected
    fragments, flags, merged = [], [], {}
    for name in mapped:
        if name not in PLAIN_FIELDS:
            continue
        new, old = pl.col(name), state(name)
        changed = live & new.is_not_null() & new.ne_missing(old)
        flags.append(changed)
        fragments.append(_change(name, changed, old, new))
        merged[name] = pl.when(changed).then(new).otherwise(old)
    problems = []
    if "points" in mapped:
        delta, old = pl.col("points").fill_null(0), state("points")
        changed = live & (delta != 0)
        flags.append(changed)
        fragments.append(_change("points", changed, old, old + delta))
        merged["points"] = pl.when(changed).then(old + delta).otherwise(old)
        problems.append(_problem(changed & (old + delta < 0), headers.get("points", "points"), delta.cast(pl.String),
                                 pl.format(BALANCE_BELOW_ZERO.text, old + delta), WARNING, 1))
    box = {}
    for order, (channel, label) in enumerate(CHANNELS.items(), start=2):
        opt_in, opt_out = opt_fields(channel)
        row_in = pl.col(opt_in).fill_null(False) if opt_in in mapped else pl.lit(False)
        row_out = pl.col(opt_out).fill_null(False) if opt_out in mapped else pl.lit(False)
        cur_in, cur_out = state(opt_in), state(opt_out)
        # The box opts in only a persona with no opt-out on record or in the file (here: this very row).
        by_box = live & ~row_out & ~row_in & ~cur_out
        box[channel] = by_box & ~cur_in
        wants_in = live & ~row_out & (row_in | (by_box & pl.lit(bool(stamp.opt_in_all.get(channel)))))
        wants_out = live & row_out
        wanted = wants_in | wants_out
        change_in, change_out = wanted & (cur_in != wants_in), wanted & (cur_out != wants_out)
        consented = change_in | change_out
        flags.append(consented)
        fragments.append(_change(opt_in, change_in, cur_in, wants_in))
        fragments.append(_change(opt_out, change_out, cur_out, wants_out))
        merged[opt_in] = pl.when(consented).then(wants_in).otherwise(cur_in)
        merged[opt_out] = pl.when(consented).then(wants_out).otherwise(cur_out)
        for part, value in zip(STAMPS, (stamp.at, stamp.import_id, stamp.user_id, stamp.terms_version)):
            column = f"{channel}_{part}"
            merged[column] = pl.when(consented).then(pl.lit(value)).otherwise(state(column))
        problems.append(_problem(live & ~row_out & row_in & cur_out, headers.get(opt_in, opt_in), pl.lit("TRUE"),
                                 pl.lit(OPT_OUT_LIFTED(label, label)),
                                 WARNING, order))
    rows = _with_gains(rows)
    added, after = pl.col("added"), pl.col("after")
    gains = live & (added.list.len() > 0)
    flags.append(gains)
    fragments.append(_change("attributes", gains, state("attributes"), after))
    merged["attributes"] = pl.when(gains).then(after).otherwise(state("attributes"))
    problems.append(_problem(pl.col("rejection").is_not_null(), "", pl.lit(""), pl.col("rejection"), ERROR, 0))

    created = live & pl.col("target").is_null()
    action = (pl.when(rejected).then(pl.lit("rejected")).when(created).then(pl.lit("created"))
              .when(pl.any_horizontal(flags) if flags else pl.lit(False)).then(pl.lit("updated"))
              .otherwise(pl.lit("unchanged")))
    frame = rows.with_columns(action=action, persona_id=pl.col("target"),
                              **{f"box_{channel}": flag for channel, flag in box.items()})
    if not writes:
        counted = frame.select("seq", "line", "action", "persona_id", *(f"box_{c}" for c in CHANNELS))
        return Merged(rows=counted, personas=pl.DataFrame(), changed=[], problems=_problems(frame, problems))
    changes = pl.concat_str([pl.lit("{"), pl.concat_str(fragments, separator=",", ignore_nulls=True), pl.lit("}")])
    frame = frame.with_columns(
        changes=pl.when(pl.col("action").is_in(["created", "updated"])).then(changes),
        added=pl.when(gains).then(added).otherwise(pl.lit([], dtype=pl.List(pl.String))),
        **{f"m_{name}": expr for name, expr in merged.items()})
    return Merged(
        rows=frame.select(*ROW_SCHEMA, *(f"box_{c}" for c in CHANNELS)).cast(ROW_SCHEMA),
        personas=_personas(frame),
        changed=_changed_columns(frame, merged),
        problems=_problems(frame, problems))


def _with_gains(rows: pl.DataFrame) -> pl.DataFrame:
    """Columns "added" (the attributes a row adds to its persona) and "after" (the persona's, after), sorted.

    Both lists come sorted (the row's by parse, the state's by the database); only a persona gaining names
    beside ones it has needs a sort, which costs too much to run on every row.
    """
    before = state("attributes")
    rows = rows.with_columns(added=pl.col("attributes").fill_null(pl.lit([], dtype=pl.List(pl.String)))
                             .list.set_difference(before))
    rows = rows.with_columns(after=before.list.set_union(pl.col("added")))
    mixed = (before.list.len() > 0) & (pl.col("added").list.len() > 0)
    if rows.select(mixed.any()).item():
        rows = rows.with_row_index("_at")
        # Sorted as a long frame: polars' list.sort costs ~15 µs a row.
        sorted_after = (rows.filter(mixed).select("_at", "after").explode("after").sort("_at", "after")
                        .group_by("_at", maintain_order=True).agg("after"))
        rows = rows.join(sorted_after, on="_at", how="left", suffix="_sorted", maintain_order="left").with_columns(
            after=pl.coalesce("after_sorted", "after")).drop("_at", "after_sorted")
    return rows


def _problem(condition: pl.Expr, column: str, value: pl.Expr, reason: pl.Expr, severity: str, order: int):
    return condition, column, value, reason, severity, order


def _problems(frame: pl.DataFrame, problems: list) -> pl.DataFrame:
    parts = [frame.filter(condition).select("line", column=pl.lit(column), value=value, reason=reason,
                                            severity=pl.lit(severity), order=pl.lit(order))
             for condition, column, value, reason, severity, order in problems]
    return pl.concat(parts).sort("line", "order", maintain_order=True).drop("order").cast(SCHEMA)


def _personas(frame: pl.DataFrame) -> pl.DataFrame:
    """The created and updated personas as they are after their row."""
    kept = frame.filter(pl.col("action").is_in(["created", "updated"]))
    columns = [(pl.col(f"m_{name}") if f"m_{name}" in kept.columns else state(name)).alias(name)
               for name in (*PERSONA_COLUMNS, "attributes")]
    return kept.select("seq", "line", pl.col("target").alias("id"), *columns, pl.col("s_version").alias("version"),
                       "added")


def _changed_columns(frame: pl.DataFrame, merged: dict) -> list[str]:
    """The persona columns that differ from the state in some updated row."""
    updated = frame.filter(pl.col("action") == "updated")
    if updated.is_empty():
        return []
    differs = updated.select([pl.col(f"m_{name}").ne_missing(state(name)).any().alias(name)
                              for name in PERSONA_COLUMNS if name in merged])
    return [name for name in PERSONA_COLUMNS if name in merged and differs[name][0]]


def state_columns() -> list[str]:
    """The columns of a persona's state in a merged frame: s_<column>, s_attributes, s_version."""
    return [f"s_{name}" for name in (*PERSONA_COLUMNS, "attributes", "version")]

