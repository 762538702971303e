"""What the spreadsheet libraries print or log about a file goes to our log at debug level, never to stdout.

openpyxl prints ("0 is out of range" for a bad style index) and xlrd writes warnings to a log file. stdout is
the product's own (the CLI's JSON, a worker's log): while a thread runs library code inside quiet(), what it
prints is logged instead. Other threads print as usual.
"""
import logging
import sys
import threading

log = logging.getLogger("webapp.importer.libraries")
_inside = threading.local()


class _Stdout:
    """sys.stdout, except for threads inside quiet(): their text goes to the log."""

    def __init__(self, real):
        self.real = real

    def write(self, text: str) -> int:
        if getattr(_inside, "depth", 0):
            return _log(text)
        return self.real.write(text)

    def __getattr__(self, name):
        return getattr(self.real, name)


class LogFile:
    """A file-like object for libraries that take a log file (xlrd): each line a debug log record."""

    def write(self, text: str) -> int:
        return _log(text)

    def flush(self) -> None:
        pass


def _log(text: str) -> int:
    """Log each line of a library's text at debug level."""
    for line in text.splitlines():
        if line.strip():
            log.debug("%s", line.rstrip())
    return len(text)


class quiet:
    """A block whose library prints (in this thread) are logged at debug level instead."""

    def __enter__(self):
        if not isinstance(sys.stdout, _Stdout):  # installed once; again if a test runner swapped stdout since
            sys.stdout = _Stdout(sys.stdout)
        _inside.depth = getattr(_inside, "depth", 0) + 1
        return self

    def __exit__(self, *exc):
        _inside.depth -= 1


def quietly(iterator):
    """A library's iterator, each step run inside quiet() (a suspended step prints nothing of ours away)."""
    while True:
        with quiet():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item
