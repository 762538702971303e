"""Read and parse a file's rows in a child process, so parsing overlaps the dry run and the database writes.

Validation is a chain: read and parse rows, then simulate the merge and stage them. The two halves use a
core each when the parse runs in a forked child that sends batches through a pipe: the child parses the
next batch while the parent works on this one, and waits while the parent is behind, so memory stays flat.
Forking is only safe from a process's main thread (an RQ work horse, the CLI); the in-process runner of
`make run` works in a thread of the web server, so there the rows are parsed inline.
"""
import multiprocessing
import os
import threading
from itertools import islice

from webapp.importer.errors import FileRefused


def batches(iterable, size: int):
    """Lists of up to size items, in order."""
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def parsed_batches(rows, parse, size: int):
    """parse(batch) of each batch of rows: in a child process when that is safe and useful, else inline."""
    if not _may_fork():
        for batch in batches(rows, size):
            yield parse(batch)
        return
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(rows, parse, size, receiver, sender), daemon=True)
    child.start()
    # Only the child writes: once it is gone, reading ends instead of waiting forever.
    sender.close()
    try:
        yield from _consume(receiver, child)
    finally:
        # The consumer may stop early (a lost lease, an error): the child must not outlive it.
        if child.is_alive():
            child.terminate()
        child.join()
        receiver.close()


def _may_fork() -> bool:
    if os.environ.get("IMPORT_PARSE_PROCESS", "1") == "0" or (os.cpu_count() or 1) < 2:
        return False
    return hasattr(os, "fork") and threading.current_thread() is threading.main_thread()


def _consume(receiver, child):
    while True:
        try:
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            raise RuntimeError(f"the parsing process ended early with code {child.exitcode}") from None
        if kind == "batch":
            yield payload
        elif kind == "refused":
            raise FileRefused(payload)
        elif kind == "failed":
            raise RuntimeError(f"the parsing process failed: {payload}")
        else:
            return


def _produce(rows, parse, size: int, receiver, sender) -> None:
    """The child: parse batches and send them; a parent that is gone (a killed work horse) ends it."""
    receiver.close()
    last = ("done", None)
    try:
        for batch in batches(rows, size):
            sender.send(("batch", parse(batch)))
    except (BrokenPipeError, ConnectionResetError):
        return
    except FileRefused as refused:
        last = ("refused", refused.message)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which retries or fails the import
        last = ("failed", f"{type(error).__name__}: {error}")
    try:
        sender.send(last)
    except (BrokenPipeError, ConnectionResetError):
        pass
