"""The import core: reading files, parsing values, merging rows into personas. No Flask, no RQ."""
import os

# polars allocates with its own jemalloc, which by default keeps freed pages for ten seconds: a worker
# parsing and merging tens of thousands of rows a second then held twice the memory it used. Freed
# pages go back after 200 ms instead, returned by jemalloc's own thread (measured: a million-row apply
# peaked at 383 MB instead of 603, and ran no slower). Read when polars loads, so set before it does.
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:0")
