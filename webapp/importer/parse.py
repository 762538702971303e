"""A batch of rows parsed column by column: values.RowParser's columnar twin.

A Batch holds a file's rows as columns (text columns as polars Series, Excel's mixed columns as lists).
parse_batch turns it into one frame of typed field values per row, with the row's attributes, its
rejection and its warning count, plus the problems in the order RowParser reports them.
"""
from dataclasses import dataclass, field

import polars as pl

from webapp.importer.columns import VALUE_TYPES, Memo, parse_column
from webapp.importer.errors import EMAIL_INVALID_NO_PHONE, NO_KEY, NO_VALID_KEY, PHONE_INVALID_NO_EMAIL
from webapp.importer.fields import FIELDS, IGNORE, attribute_name
from webapp.importer.problems import ERROR, SCHEMA, WARNING
from webapp.importer.values import ParseContext, cell_text

# Attribute names never hold this (it is whitespace, which names lose), so it can join them in one text.
NAME_JOIN = "\x1f"
# Rejections, as values._rejection words them, by which match key had a problem.
REJECTIONS = {(True, True): NO_VALID_KEY.text, (True, False): EMAIL_INVALID_NO_PHONE.text,
              (False, True): PHONE_INVALID_NO_EMAIL.text, (False, False): NO_KEY.text}


@dataclass
class Batch:
    """Rows of a file as columns: their line numbers and one column of cells per header."""

    lines: pl.Series
    columns: list  # per header: a String Series, or a list of cells of any type
    # CSV rows with values past the header row's last column: line -> (all their cells, why they are rejected).
    shifted: dict[int, tuple[list, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def texts(self, positions: list[int]) -> list[list[str]]:
        """The cells of the rows at these positions as the text a spreadsheet shows (for the report)."""
        columns = [column.gather(positions).to_list() if isinstance(column, pl.Series)
                   else [column[i] for i in positions] for column in self.columns]
        texts = [["" if cell is None else cell if cell.__class__ is str else cell_text(cell) for cell in row]
                 for row in zip(*columns)] if columns else [[] for _ in positions]
        if self.shifted:  # a shifted row is shown whole: its values are not under the right headers
            for at, line in enumerate(self.lines.gather(positions).to_list()):
                if line in self.shifted:
                    texts[at] = ["" if c is None else c for c in self.shifted[line][0]]
        return texts


@dataclass
class Parsed:
    """A parsed batch: rows (line, a typed column per mapped field, attributes, error, warnings) and problems."""

    rows: pl.DataFrame
    problems: pl.DataFrame
    problem_cells: list[tuple[int, list[str]]]  # (line, original cells) of every row with a problem


@dataclass(frozen=True)
class Plan:
    """A mapping resolved once for a file: which column feeds which field or attribute."""

    fields: tuple[tuple[int, str, str], ...]  # (column index, header, field name)
    attributes: tuple[tuple[int, str, str], ...]  # (column index, header, attribute name)

    @classmethod
    def of(cls, headers: list[str], mapping: dict[str, str]) -> "Plan":
        """Resolve a header -> target mapping (fields, 'attribute:<name>', 'ignore')."""
        fields, attributes = [], []
        for index, header in enumerate(headers):
            target = mapping.get(header, IGNORE)
            if target == IGNORE:
                continue
            name = attribute_name(target)
            if name is not None:
                if not name:
                    raise ValueError(f"custom attribute without a name for column {header!r}")
                attributes.append((index, header, name))
            elif target in FIELDS:
                fields.append((index, header, target))
            else:
                raise ValueError(f"unknown target {target!r} for column {header!r}")
        return cls(tuple(fields), tuple(attributes))

    def mapped(self) -> list[str]:
        """The fields the file fills, in its column order."""
        return [name for _, _, name in self.fields]

    def headers(self) -> dict[str, str]:
        """field -> the file's header for it, so problems name the user's own column."""
        return {name: header for _, header, name in self.fields}

    def schema(self) -> dict:
        """The parsed rows' columns and types."""
        return {"line": pl.Int64, **{name: VALUE_TYPES[FIELDS[name].kind] for _, _, name in self.fields},
                "attributes": pl.List(pl.String), "error": pl.String, "warnings": pl.Int64}


def parse_batch(batch: Batch, plan: Plan, ctx: ParseContext, memos: dict | None = None) -> Parsed:
    """Every row of the batch parsed: the same values, attributes, problems and rejections as RowParser.

    memos: column index -> Memo, kept across a file's batches by the caller.
    """
    memos = {} if memos is None else memos
    lines = batch.lines.cast(pl.Int64)
    columns, problem_parts, bad_keys = {"line": lines}, [], {}
    # A row's cell problems come in the order of its columns, its rejection last.
    for index, header, name in plan.fields:
        value, reason = parse_column(FIELDS[name].kind, batch.columns[index], ctx, memos.setdefault(index, Memo()))
        columns[name] = value
        problem_parts.append(_cell_problems(lines, header, batch.columns[index], reason, index))
        if name in ("email", "phone"):
            bad_keys[name] = reason.is_not_null()
    attributes = []
    for index, header, name in plan.attributes:
        value, reason = parse_column("bool", batch.columns[index], ctx, memos.setdefault(index, Memo()))
        attributes.append((name, value))
        problem_parts.append(_cell_problems(lines, header, batch.columns[index], reason, index))
        if name in ("email", "phone"):
            # RowParser goes by name: a bad cell of an attribute called "email" or "phone" words the rejection too.
            bad = reason.is_not_null()
            bad_keys[name] = bad_keys[name] | bad if name in bad_keys else bad
    order = len(batch.columns)
    rows = pl.DataFrame(columns)
    rows = rows.with_columns(attributes=_attribute_lists(attributes, len(rows)),
                             error=_rejection(rows, bad_keys))
    if batch.shifted:
        # Its cells sit under the wrong headers: the row is rejected for that alone, its cells not judged.
        reasons = pl.DataFrame({"line": list(batch.shifted), "shift": [r for _, r in batch.shifted.values()]},
                               schema={"line": pl.Int64, "shift": pl.String})
        rows = rows.join(reasons, on="line", how="left", maintain_order="left").with_columns(
            error=pl.coalesce("shift", "error")).drop("shift")
        problem_parts = [part.filter(~pl.col("line").is_in(reasons["line"].implode())) for part in problem_parts]
    errors = (rows.filter(pl.col("error").is_not_null())
              .select("line", column=pl.lit(""), value=pl.lit(""), reason="error", severity=pl.lit(ERROR),
                      order=pl.lit(order)))
    problems = pl.concat([*problem_parts, errors]).sort("line", "order", maintain_order=True)
    warnings = problems.filter(pl.col("severity") == WARNING).group_by("line").len("warnings")
    rows = rows.join(warnings, on="line", how="left", maintain_order="left").with_columns(
        pl.col("warnings").fill_null(0).cast(pl.Int64))
    problem_lines = problems["line"].unique(maintain_order=True)
    positions = lines.to_frame("line").with_row_index("at").join(
        problem_lines.to_frame("line"), on="line", how="semi", maintain_order="left")["at"].to_list()
    problem_cells = list(zip(lines.gather(positions).to_list(), batch.texts(positions)))
    return Parsed(rows.select(list(plan.schema())).cast(plan.schema()), problems.drop("order").cast(SCHEMA),
                  problem_cells)


def _cell_problems(lines: pl.Series, header: str, cells, reasons: pl.Series, order: int) -> pl.DataFrame:
    """One warning per cell whose value could not be read: its line, column, the cell as shown, the reason."""
    bad = reasons.is_not_null()
    positions = bad.arg_true()
    if isinstance(cells, pl.Series):
        shown = cells.gather(positions)
    else:
        shown = pl.Series([cell_text(cells[i]) for i in positions.to_list()], dtype=pl.String)
    return pl.DataFrame({"line": lines.gather(positions), "column": pl.Series([header] * len(positions), dtype=pl.String),
                         "value": shown, "reason": reasons.gather(positions),
                         "severity": pl.Series([WARNING] * len(positions), dtype=pl.String),
                         "order": pl.Series([order] * len(positions), dtype=pl.Int32)},
                        schema={**SCHEMA, "order": pl.Int32})


def _attribute_lists(attributes: list[tuple[str, pl.Series]], height: int) -> pl.Series:
    """Per row, the sorted names of the attributes its cells set TRUE."""
    if not attributes:
        return pl.Series([[]] * height, dtype=pl.List(pl.String))
    # Names joined in sorted order and split again: list building and sorting per row cost ten times more.
    ordered = sorted(attributes, key=lambda item: item[0])
    frame = pl.DataFrame({f"a{i}": value for i, (_, value) in enumerate(ordered)})
    names = pl.concat_str([pl.when(pl.col(f"a{i}").fill_null(False)).then(pl.lit(name))
                           for i, (name, _) in enumerate(ordered)], separator=NAME_JOIN, ignore_nulls=True)
    return frame.select(pl.when(names == "").then(pl.lit([], dtype=pl.List(pl.String)))
                        .otherwise(names.str.split(NAME_JOIN))).to_series()


def _rejection(rows: pl.DataFrame, bad_keys: dict) -> pl.Series:
    """The reason a row with neither a valid email nor a valid phone is rejected, else null."""
    height = len(rows)
    email = rows["email"] if "email" in rows.columns else pl.Series([None] * height, dtype=pl.String)
    phone = rows["phone"] if "phone" in rows.columns else pl.Series([None] * height, dtype=pl.String)
    none = pl.Series([False] * height, dtype=pl.Boolean)  # typed even when empty
    frame = pl.DataFrame({"keyless": email.is_null() & phone.is_null(), "bad_email": bad_keys.get("email", none),
                          "bad_phone": bad_keys.get("phone", none)})
    reason = pl.lit(None, dtype=pl.String)
    for (bad_email, bad_phone), text in REJECTIONS.items():
        reason = pl.when(pl.col("keyless") & (pl.col("bad_email") == bad_email) & (pl.col("bad_phone") == bad_phone)
                         ).then(pl.lit(text)).otherwise(reason)
    return frame.select(reason).to_series()
