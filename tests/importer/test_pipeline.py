"""Rows are parsed in a child process beside the dry run: same batches, same errors, no process left behind."""
import os
import threading

import pytest

from webapp.importer.errors import FileRefused
from webapp.importer.pipeline import parsed_batches


def _pids_parsing(batch):
    return [(os.getpid(), item * 2) for item in batch]


def test_batches_arrive_in_order_parsed_by_a_child_process():
    batches = list(parsed_batches(range(10), _pids_parsing, 4))
    assert [[value for _, value in batch] for batch in batches] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]
    assert {pid for batch in batches for pid, _ in batch} != {os.getpid()}


def test_outside_the_main_thread_rows_are_parsed_inline():
    """The embedded runner works in a web server thread, where forking is not safe."""
    seen = []
    worker = threading.Thread(target=lambda: seen.extend(parsed_batches(range(3), _pids_parsing, 2)))
    worker.start()
    worker.join()
    assert seen == [[(os.getpid(), 0), (os.getpid(), 2)], [(os.getpid(), 4)]]


def test_turned_off_rows_are_parsed_inline(monkeypatch):
    monkeypatch.setenv("IMPORT_PARSE_PROCESS", "0")
    assert list(parsed_batches(range(2), _pids_parsing, 5)) == [[(os.getpid(), 0), (os.getpid(), 2)]]


def _refusing_rows():
    yield from range(5)
    raise FileRefused("The file has more than 5 customer rows, the most one import takes.")


def test_a_file_refused_mid_stream_reaches_the_caller_with_its_message_after_the_rows_before_it():
    received = []
    with pytest.raises(FileRefused) as refused:
        for batch in parsed_batches(_refusing_rows(), _pids_parsing, 2):
            received.extend(value for _, value in batch)
    assert refused.value.message == "The file has more than 5 customer rows, the most one import takes."
    assert received == [0, 2, 4, 6]


def _failing_parse(batch):
    raise ValueError("bad cell")


def test_a_parser_failure_is_raised_in_the_caller():
    with pytest.raises(RuntimeError, match="ValueError: bad cell"):
        list(parsed_batches(range(3), _failing_parse, 2))


def _dying_parse(batch):
    os._exit(3)


def test_a_child_that_dies_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="ended early with code 3"):
        list(parsed_batches(range(3), _dying_parse, 2))


def test_a_caller_that_stops_early_leaves_no_child_process_behind():
    stream = parsed_batches(range(100_000), _pids_parsing, 10)
    (child_pid, _), *_ = next(stream)
    stream.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(child_pid, os.WNOHANG)  # already reaped: not running, not a zombie
