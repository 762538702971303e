"""Which rows of a file interact: they share an email, a phone or a matched persona with another row.

A row that shares none of them with any other row gives the same result whatever the order the file is
applied in; those merge column-wise (merge_columns). The others form groups (connected by shared keys or
personas) that are closed: no row of one group can see or touch what a row of another does, so each group
runs through the row-at-a-time Merger on its own, in file order.

Keys are compared by their 64-bit hashes, so a million rows' keys take a few megabytes. Two different
keys with one hash would only make their rows interact: the Merger gives them their exact result anyway.
"""
import polars as pl

GROUP_SCHEMA = {"seq": pl.Int64, "group": pl.Int64}
KEY_SCHEMA = {"seq": pl.Int64, "email": pl.UInt64, "phone": pl.UInt64}
LINK_SLICE = 20_000


def row_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """What independence looks at in a batch of parsed rows: seq and the hashes of email and phone.

    Rows without a valid key (rejected when parsed) reach no one and are left out.
    """
    live = rows.filter(pl.col("error").is_null())
    # A missing key stays missing: polars hashes null to one value, which would join every row without one.
    return live.select("seq", **{name: pl.when(pl.col(name).is_not_null()).then(pl.col(name).hash())
                                 if name in live.columns else pl.lit(None, dtype=pl.UInt64)
                                 for name in ("email", "phone")}).cast(KEY_SCHEMA)


def groups(keys: pl.DataFrame, matched: pl.DataFrame) -> pl.DataFrame:
    """(seq, group) of every interacting row; its group is the seq of the group's first row.

    keys: seq and key hashes of the live rows (row_keys); matched: seq, email_id, phone_id of those matching.
    """
    # A row's two personas, once when they are one: (seq, persona) is unique without a unique(), which
    # cost a million rows' validation 230 MB.
    other = matched.filter(pl.col("email_id").is_null() | (pl.col("phone_id") != pl.col("email_id")))
    personas = pl.concat([matched.select("seq", persona="email_id"), other.select("seq", persona="phone_id")])
    personas = personas.drop_nulls()
    shared = pl.concat([
        _shared(keys.select("seq", key="email"), "email"), _shared(keys.select("seq", key="phone"), "phone"),
        _shared(personas.select("seq", key=pl.col("persona").cast(pl.UInt64)), "persona")])
    if shared.is_empty():
        return pl.DataFrame(schema=GROUP_SCHEMA)
    rows = _UnionFind()
    linked = shared.group_by("kind", "key").agg(pl.col("seq").sort())["seq"]
    # A slice of the keys at a time as Python lists, however many rows interact.
    for start in range(0, len(linked), LINK_SLICE):
        for seqs in linked.slice(start, LINK_SLICE).to_list():
            rows.join(seqs)
    return rows.frame()


class _UnionFind:
    """Rows joined into groups, each named by its first row (the smallest seq)."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def root(self, seq: int) -> int:
        parent = self.parent
        while parent[seq] != seq:
            parent[seq] = parent[parent[seq]]
            seq = parent[seq]
        return seq

    def join(self, seqs: list[int]) -> None:
        """Put these rows (sorted) in one group."""
        for seq in seqs:
            self.parent.setdefault(seq, seq)
        first = self.root(seqs[0])
        for seq in seqs[1:]:
            other = self.root(seq)
            if other != first:
                first, other = min(first, other), max(first, other)
                self.parent[other] = first

    def frame(self) -> pl.DataFrame:
        """(seq, group) of every row joined, by seq."""
        seqs = list(self.parent)
        return pl.DataFrame({"seq": seqs, "group": [self.root(seq) for seq in seqs]}, schema=GROUP_SCHEMA).sort("seq")


def _shared(links: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The (seq, key) links whose key more than one row has."""
    # Sorted, a key's rows lie together: is_duplicated's hash table of a million keys took 50 MB more.
    links, key = links.drop_nulls("key").sort("key"), pl.col("key")
    return links.filter((key == key.shift(1)) | (key == key.shift(-1))).select("seq", "key", kind=pl.lit(kind))
