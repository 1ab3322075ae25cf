"""Property-based tests (hypothesis) of the run store, `Rows`: what must hold for any rows, any unicode and
any moment a write is cut short, besides the hand-picked cases of tests/test_rundir.py.

- Appended rows read back in order, each id once (its first row), whatever the ids and values, lone
  surrogates included, and however the appends are split between reopenings.
- A file cut at any byte keeps exactly the rows written whole, drops the rest from the file too, and a resumed
  append restores the uninterrupted file byte for byte.
- A torn last line of any bytes is dropped; a damaged line with rows after it, or an id written twice, is an
  error naming the line, and the file is left as it was.
- An append that cannot be serialised writes nothing.

Runs are derandomized (the same examples on every run, so CI does not flake) and keep no example database,
as in tests/test_properties.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from s3ft.errors import InputError
from s3ft.rundir import Rows, read_jsonl

PROPS = settings(deadline=None, database=None, derandomize=True, max_examples=100)

# any unicode, lone surrogates (which UTF-8 cannot hold) included
text = st.text(st.characters(exclude_categories=()), max_size=12)
ids = st.one_of(text, st.integers(-5, 5))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(text, scalars, max_size=2))
rows = st.builds(lambda i, extra: {**extra, "id": i}, ids, st.dictionaries(text, values, max_size=2))
batches = st.lists(st.lists(rows, max_size=4), max_size=4)
_files = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rows")


def fresh(folder: Path) -> Path:
    """A new file path for one example (hypothesis reuses the fixture across examples)."""
    return folder / f"rows-{next(_files)}.jsonl"


def first_of_each(batches: list[list[dict]]) -> dict[str, dict]:
    """What the store should hold: each id's first row, in the order ids first appear."""
    out: dict[str, dict] = {}
    for r in itertools.chain.from_iterable(batches):
        out.setdefault(str(r["id"]), r)
    return out


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a row file, each with its newline (split at newlines only, as `Rows` reads them)."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def written(folder: Path, batches: list[list[dict]]) -> tuple[Path, bytes]:
    path = fresh(folder)
    store = Rows(path)
    for batch in batches:
        store.append(batch)
    return path, path.read_bytes() if path.exists() else b""


def written_lines(folder: Path, batches: list[list[dict]]) -> tuple[Path, list[bytes]]:
    path, full = written(folder, batches)
    assume(full)
    return path, lines_of(full)


@PROPS
@given(batches, st.lists(st.booleans(), min_size=4, max_size=4))
def test_rows_read_back_in_order_each_id_once(folder, batches, reopen):
    path, want = fresh(folder), first_of_each(batches)
    store = Rows(path)
    for n, batch in enumerate(batches):
        store.append(iter(batch))  # any iterable, a generator too
        if reopen[n]:
            store = Rows(path)
    assert list(store.rows) == list(want) and store.rows == want
    back = Rows(path)
    assert list(back.rows) == list(want) and back.rows == want
    on_disk = read_jsonl(path) if path.exists() else []
    assert [str(r["id"]) for r in on_disk] == list(want)  # no id written twice, in first-append order
    assert on_disk == list(want.values())


@PROPS
@given(batches, st.data())
def test_a_cut_at_any_byte_keeps_the_whole_rows_and_a_resume_restores_the_file(folder, batches, data):
    path, full = written(folder, batches)
    assume(full)
    cut = data.draw(st.integers(0, len(full)), label="cut")
    path.write_bytes(full[:cut])  # a kill, or a crash, at any byte of the writes
    whole = full[: full.rfind(b"\n", 0, cut) + 1]  # the lines written whole, newline included
    kept = Rows(path)
    assert [json.loads(line) for line in lines_of(whole)] == list(kept.rows.values())
    assert path.read_bytes() == whole  # the torn tail is gone from the file too
    for batch in batches:  # the resumed stage appends everything again
        kept.append(batch)
    assert path.read_bytes() == full
    assert Rows(path).rows == first_of_each(batches)


@PROPS
@given(batches, st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b))
def test_a_torn_last_line_of_any_bytes_is_dropped(folder, batches, tail):
    path, full = written(folder, batches)
    path.write_bytes(full + tail)
    assert Rows(path).rows == first_of_each(batches)
    assert path.read_bytes() == full


@PROPS
@given(batches, st.data())
def test_a_damaged_line_before_the_last_is_an_error_and_the_file_is_kept(folder, batches, data):
    path, lines = written_lines(folder, batches)
    at = data.draw(st.integers(0, len(lines) - 1), label="at")
    junk = data.draw(st.sampled_from([b'{"id": "x", "v"\n', b"\xff\xfe\n", b"[1, 2]\n", b'{"v": 1}\n', b"null\n"]))
    damaged = b"".join(lines[:at]) + junk + b"".join(lines[at:])
    path.write_bytes(damaged)
    with pytest.raises(InputError) as e:
        Rows(path)
    assert e.value.path == str(path) and e.value.line == at + 1
    assert path.read_bytes() == damaged  # nothing truncated: the rows after the damage are still there


@PROPS
@given(batches, st.data())
def test_an_id_written_twice_is_an_error_naming_both_lines(folder, batches, data):
    path, lines = written_lines(folder, batches)
    first = data.draw(st.integers(0, len(lines) - 1), label="first")
    at = data.draw(st.integers(first + 1, len(lines)), label="at")
    path.write_bytes(b"".join(lines[:at]) + lines[first] + b"".join(lines[at:]))
    with pytest.raises(InputError, match=rf"written twice \(first at line {first + 1}\)") as e:
        Rows(path)
    assert (e.value.line, e.value.field) == (at + 1, "id")


@PROPS
@given(batches, st.lists(rows, min_size=1, max_size=5), st.data())
def test_an_append_that_cannot_be_serialised_writes_nothing(folder, batches, batch, data):
    path, full = written(folder, batches)
    store = Rows(path)
    before = dict(store.rows)
    at = data.draw(st.integers(0, len(batch)), label="at")
    assume("not json" not in store.rows and all(str(r["id"]) != "not json" for r in batch[:at]))
    bad = [*batch[:at], {"id": "not json", "value": {1, 2}}, *batch[at:]]
    with pytest.raises(TypeError):
        store.append(bad)
    assert store.rows == before and list(store.rows) == list(before)
    assert (path.read_bytes() if path.exists() else b"") == full
