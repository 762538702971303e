"""Give the freed heap back to the operating system between chunks, so a worker's memory stays flat.

Each chunk builds and drops tens of megabytes of short-lived rows. glibc keeps freed blocks for
reuse, and their scattering left a worker a hundred megabytes larger for every few hundred thousand
rows although its live data stayed the same size. malloc_trim returns those pages; elsewhere
(another C library) this does nothing.
"""
import ctypes
import ctypes.util

try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):
    _malloc_trim = None


def release_free_memory() -> None:
    """Return the heap's free pages to the operating system (glibc only)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
