"""The import core: reading files, parsing values, merging rows into personas. No Flask, no RQ."""
import ctypes
import os

# polars allocates with its own jemalloc, which by default keeps freed pages for ten seconds: a worker
# parsing and merging tens of thousands of rows a second then held twice the memory it used. Freed
# pages go back after 200 ms instead, returned by jemalloc's own thread (measured: a million-row apply
# peaked at 383 MB instead of 603, and ran no slower). Read when polars loads, so set before it does.
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:0")

# glibc's malloc (Python's larger objects, the driver's buffers, COPY's text) gives each thread that
# allocates its own arena, and keeps what an arena freed: the apply's two writer threads and the
# validation's second one each grew their own. Two arenas for the process (glibc's MALLOC_ARENA_MAX):
# a million-row apply peaked at 352 MB instead of 425-541, the 300,000-row one at 313 instead of 387,
# no slower. Set before those threads start; an explicit MALLOC_ARENA_MAX is left as it is.
M_ARENA_MAX = -8  # glibc's malloc.h
if "MALLOC_ARENA_MAX" not in os.environ:
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: its allocator has its own rules
        pass
