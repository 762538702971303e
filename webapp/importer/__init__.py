"""The import core: reading files, parsing values, merging rows into personas. No Flask, no RQ."""
