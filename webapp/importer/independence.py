"""Which rows of a file interact: they share an email, a phone or a matched persona with another row.

A row that shares none of them with any other row gives the same result whatever the order the file is
applied in; those merge column-wise (merge_columns). The others form groups (connected by shared keys or
personas) that are closed: no row of one group can see or touch what a row of another does, so each group
runs through the row-at-a-time Merger on its own, in file order.
"""
import polars as pl

GROUP_SCHEMA = {"seq": pl.Int64, "group": pl.Int64}


def groups(keys: pl.DataFrame, matched: pl.DataFrame) -> pl.DataFrame:
    """(seq, group) of every interacting row; its group is the seq of the group's first row.

    keys: seq, email, phone, rejected (rows without a valid key reach no one); matched: seq, email_id, phone_id.
    """
    live = keys.filter(~pl.col("rejected")).join(matched, on="seq", how="left")
    links = pl.concat([
        live.select("seq", key=pl.lit("e:") + pl.col("email")),
        live.select("seq", key=pl.lit("p:") + pl.col("phone")),
        live.select("seq", key=pl.lit("#") + pl.col("email_id").cast(pl.String)),
        live.select("seq", key=pl.lit("#") + pl.col("phone_id").cast(pl.String)),
    ]).drop_nulls().unique()
    shared = links.filter(pl.len().over("key") > 1)
    if shared.is_empty():
        return pl.DataFrame(schema=GROUP_SCHEMA)
    parent: dict[int, int] = {}

    def root(seq: int) -> int:
        while parent[seq] != seq:
            parent[seq] = parent[parent[seq]]
            seq = parent[seq]
        return seq

    for seqs in shared.group_by("key").agg(pl.col("seq").sort())["seq"].to_list():
        for seq in seqs:
            parent.setdefault(seq, seq)
        first = root(seqs[0])
        for seq in seqs[1:]:
            other = root(seq)
            if other != first:
                # The smaller seq stays the root, so a group is named by its first row.
                first, other = min(first, other), max(first, other)
                parent[other] = first
    return pl.DataFrame({"seq": list(parent), "group": [root(seq) for seq in parent]}, schema=GROUP_SCHEMA).sort("seq")
