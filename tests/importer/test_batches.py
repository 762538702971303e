"""Column batches are Table.rows() in columns: the same lines, the same cells, the same refusals.

The CSV fast path (polars, piece by piece) must agree with csv_reader's strict row reader on every file:
quotes, line breaks in cells, blank and title rows, ragged and shifted rows, formula prefixes, encodings,
and a fall back to csv_reader mid-file where polars cannot read on.
"""
import datetime as dt
import os

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.importer import corpus, test_calamine
from webapp.importer import csv_frames
from webapp.importer.errors import FileRefused
from webapp.importer.readers import Shifted, open_table


def _normal(cell):
    """Blank cells the way the import sees them: "" and a missing cell are the same."""
    if cell is None or cell == "":
        return None
    return cell


def _rows(path, **kwargs):
    try:
        with open_table(path, **kwargs) as table:
            return [(line, [_normal(c) for c in cells], _shift(cells)) for line, cells in table.rows()]
    except FileRefused as refused:
        return refused.message


def _shift(cells):
    """A shifted row's cells and reason, else None."""
    return (cells.every, cells.reason) if isinstance(cells, Shifted) else None


def _batched(path, size=7, **kwargs):
    try:
        with open_table(path, **kwargs) as table:
            found = []
            for batch in table.batches(size):
                columns = [c.to_list() if isinstance(c, pl.Series) else c for c in batch.columns]
                found += [(line, [_normal(c) for c in cells], batch.shifted.get(line))
                          for line, cells in zip(batch.lines.to_list(), zip(*columns) if columns else [])]
            return found
    except FileRefused as refused:
        return refused.message


def assert_same(path, **kwargs):
    expected = _rows(path, **kwargs)
    assert _batched(path, **kwargs) == expected
    return expected


@pytest.fixture(params=[csv_frames.PIECE_BYTES, 64], ids=["one-piece", "small-pieces"])
def pieces(request, monkeypatch):
    monkeypatch.setattr(csv_frames, "PIECE_BYTES", request.param)
    monkeypatch.setattr(csv_frames, "MAX_CARRY", 4 * request.param)
    return request.param


CASES = {
    "plain": "Email,Name\na@example.com,Ann\nb@example.com,Bob\n",
    "crlf": "Email,Name\r\na@example.com,Ann\r\nb@example.com,Bob\r\n",
    "no final newline": "Email,Name\na@example.com,Ann",
    "blank and whitespace rows": "Email,Name\n\na@example.com,Ann\n  ,  \n,\n\t\nb@example.com,Bob\n",
    "title rows": "Customer export\n\nEmail,Name,Points\na@example.com,Ann,1\n",
    "quoted cells": 'Email,Name\n"a@example.com","Ann, ""the"" first"\n"",""\nb@example.com,"Bob"\n',
    "quoted line breaks": 'Email,Street,City\na@example.com,"1 Main St\nApt 2",Boston\nb@example.com,x,y\n',
    "crlf inside quotes": 'Email,Street,City\r\na@example.com,"1 Main St\r\nApt 2",Boston\r\n',
    "short rows": "Email,Name,Points\na@example.com\nb@example.com,Bob\n",
    "extra blank cells": "Email,Name\na@example.com,Ann,,\n",
    "values past the headers": "Email,Name,\na@example.com,Ann,x\n,,y\n",
    "shifted row": "Email,Name\na@example.com,Ann\nb@example.com,Bob,Smith\n",
    "shifted rows past blank cells": "Email,Name,City\na@example.com,Ann,Reno\nb@example.com,Bob,1 Main,Reno,,\n,,,x\n",
    "formula prefixes": "Email,Name\na@example.com,'=HYPERLINK(1)\nb@example.com,'plain\nc@example.com,''=x\n",
    "stray quote mid cell": 'Email,Name\na@example.com,O"Brien\n',
    "quote after a quoted cell": 'Email,Name\na@example.com,"Ann"x\n',
    "unclosed quote": 'Email,Name\na@example.com,"Ann\nb@example.com,Bob\n',
    "nul bytes": "Email,Name\na@example.com,A\x00nn\n",
    "old mac line ends": "Email,Name\ra@example.com,Ann\rb@example.com,Bob\r",
    "semicolons": "Email;Name\na@example.com;Ann\n",
    "tabs": "Email\tName\na@example.com\tAnn\n",
    "unicode": "Email,Name\nj@example.com,José Ñandú 😀\n",
    "swallowed rows": 'Email,Name,City\na@example.com,"Ann\nb@example.com,Bob,X\nc@example.com,Cy,Y\n",Z\n',
}


@pytest.mark.parametrize("name", list(CASES))
def test_csv_batches_equal_rows(tmp_path, pieces, name):
    path = corpus.text_file(tmp_path / "f.csv", CASES[name])
    assert_same(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_csv_batches_equal_rows_in_every_encoding(tmp_path, pieces, encoding):
    text = "Email,Name\n" + "".join(f"p{i}@example.com,Zoë Brontë {i}\n" for i in range(40))
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode(encoding))
    rows = assert_same(path)
    assert rows[-1] == (41, ["p39@example.com", "Zoë Brontë 39"], None)


def test_a_chosen_header_line_and_the_row_limit_apply_alike(tmp_path, pieces):
    path = corpus.text_file(tmp_path / "f.csv", "x,y\nEmail,Name\n" + "a@example.com,Ann\n" * 5)
    assert assert_same(path, header_line=2)[0][0] == 3
    assert "more than 4 customer rows" in assert_same(path, header_line=2, max_rows=4)


def test_a_cell_over_the_field_limit_is_refused_naming_its_line(tmp_path):
    path = corpus.text_file(tmp_path / "f.csv", "Email,Note\na@example.com,ok\nb@example.com," + "x" * 131073 + "\n")
    assert "Line 3 has a cell longer than 128 KB" in assert_same(path)


def test_polars_hands_over_to_csv_reader_mid_file(tmp_path, pieces):
    good = "".join(f"p{i}@example.com,Ann {i}\n" for i in range(30))
    path = corpus.text_file(tmp_path / "f.csv", "Email,Name\n" + good + 'q@example.com,O"Brien\n' + good)
    rows = assert_same(path)
    assert len(rows) == 61 and rows[30] == (32, ["q@example.com", 'O"Brien'], None)


cell = st.one_of(
    st.sampled_from(["", " ", "a", "Ann", "a@example.com", "'=1", "'x", "x,y", 'say "hi"', "1\n2", "  ",
                     "\t", "é", "'+", "a\r\nb"]),
    st.text(alphabet=st.sampled_from(list('ab ,"\n\'=;é')), max_size=6))
row = st.lists(cell, min_size=0, max_size=5)


def _csv_text(header, rows, newline):
    def quote(value):
        if any(ch in value for ch in ',"\n\r') or value != value.strip(" "):
            return '"' + value.replace('"', '""') + '"'
        return value
    return newline.join(",".join(quote(v) for v in r) for r in [header, *rows]) + newline


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "150")), deadline=None,
          derandomize=not os.environ.get("PROPERTY_RANDOM"), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, max_size=12), newline=st.sampled_from(["\n", "\r\n"]), piece=st.sampled_from([32, 4096]),
       raw=st.booleans())
def test_random_csv_files_read_alike(tmp_path, monkeypatch, rows, newline, piece, raw):
    monkeypatch.setattr(csv_frames, "PIECE_BYTES", piece)
    monkeypatch.setattr(csv_frames, "MAX_CARRY", 4 * piece)
    header = ["Email", "Name", "City"]
    # raw: cells written as they are, so stray quotes and unquoted separators reach the readers too.
    text = (newline.join(",".join(r) for r in [header, *rows]) + newline) if raw else _csv_text(header, rows, newline)
    path = corpus.write(tmp_path / "r.csv", text.encode("utf-8"))
    assert_same(path)


# --- workbooks: calamine sheets are batched column by column -------------------------------------------

HEADER = ["Email", "Name", "When", "N", "X"]


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")), deadline=None,
          derandomize=not os.environ.get("PROPERTY_RANDOM"), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=test_calamine.sheet, size=st.integers(1, 9), kind=st.sampled_from(["xlsx", "xls"]))
def test_random_workbooks_read_alike(tmp_path, rows, size, kind):
    rows = test_calamine._clean(rows)
    if kind == "xls":
        rows = [[c for c in row if not isinstance(c, int) or isinstance(c, bool) or abs(c) < 2 ** 31] for row in rows]
    path = _workbook(tmp_path, kind, [HEADER, *rows])
    assert _batched(path, size) == _rows(path)


def _workbook(tmp_path, kind: str, rows: list):
    write = corpus.xlsx_file if kind == "xlsx" else corpus.xls_file
    return write(tmp_path / f"w.{kind}", {"Customers": rows})


WORKBOOK_CASES = {
    "blank and whitespace rows": [HEADER, ["a@example.com", "Ann"], [], [" ", "\t"], [None, None, None, None, 5]],
    "values past the headers": [["Email", "Name"], ["a@example.com", "Ann", "x"], [None, None, "y"], ["b@x.io"]],
    "title rows and an offset sheet": [["Customer export"], [], [None, "Email", "Points"], [None, "a@example.com", 1],
                                       [None, None, None, "note"], [None, "b@example.com", "lots"]],
    "formula prefixes": [["Email", "Name"], ["a@example.com", "'=HYPERLINK(1)"], ["b@example.com", "'plain"]],
    "mixed columns": [["Email", "Phone", "When"], ["a@example.com", 6175550100.0, dt.datetime(2020, 1, 2)],
                      ["b@example.com", "617-555-0101", "2020-01-03"], [None, True, 3.5]],
}


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
@pytest.mark.parametrize("name", list(WORKBOOK_CASES))
def test_workbook_batches_equal_rows(tmp_path, kind, name):
    path = _workbook(tmp_path, kind, WORKBOOK_CASES[name])
    for size in (1, 2, 50):
        assert _batched(path, size) == _rows(path)
    assert _rows(path)  # every case has data rows


def test_a_workbook_over_the_row_limit_is_refused_alike(tmp_path):
    path = corpus.xlsx_file(tmp_path / "w.xlsx", {"Customers": [["Email"], *([f"p{i}@example.com"] for i in range(6))]})
    assert "more than 5 customer rows" in assert_same(path, max_rows=5)
    assert len(assert_same(path, max_rows=6)) == 6
