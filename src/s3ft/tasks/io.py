"""Reads the rows of one data split: a local .jsonl/.json/.csv/.parquet file or a hub dataset.

`read_rows(source)` yields `(number, row)` pairs, where `number` is the 1-based line of the row in
a .jsonl or .csv file (the header is line 1; a quoted multi-line CSV row gets the line where it
ends) and the 1-based row number in a .json, .parquet or hub split. It writes nothing.
`require(row, field, path, line)` fetches a field that must be present and non-empty, `require_text` one
that must also be text (a string, or a number as JSON writes one); `as_str_list` reads a list of strings,
also from a JSON-encoded list (as a CSV cell holds it). Every problem raises `InputError` naming the file,
the line and, where it applies, the field; a .json file's unreadable text (bad JSON or UTF-8) is named by
its line in the file. Text that UTF-8 cannot hold (a lone surrogate escape, `"\\ud800"`) is an error too.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.provenance import looks_like_hub_id

if TYPE_CHECKING:
    from s3ft.config import SplitSource

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)
_CSV_FIELD_LIMIT = 2**31 - 1  # the largest the csv module takes on every platform


def read_rows(source: SplitSource) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of `source`, at most `source.limit` of them, each with its 1-based line (or row) number."""
    rows = _rows(source)
    return islice(rows, source.limit) if source.limit is not None else rows


def _rows(source: SplitSource) -> Iterator[tuple[int, dict[str, Any]]]:
    path = Path(source.path).expanduser()
    if path.is_file():
        suffix = path.suffix.lower()
        readers = {".jsonl": _jsonl, ".json": _json, ".csv": _csv, ".parquet": _parquet}
        if suffix not in readers:
            raise InputError(
                source.path, f"unsupported file type '{suffix}' (expected one of {FILE_SUFFIXES})"
            )
        return readers[suffix](source.path)
    if path.is_dir() or looks_like_hub_id(source.path):
        return _hub(source)
    raise InputError(source.path, "no such file")


def _jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for n, text in _decoded(path, f):
            if not text.strip():
                continue
            row = _parsed(path, text, n)
            if not isinstance(row, dict):
                raise InputError(path, f"expected a JSON object, found {type(row).__name__}", line=n)
            if _SURROGATE_ESCAPE.search(text):
                _check_unicode(path, row, n)
            yield n, row


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice (JSON would keep the last silently) raises."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _parsed(path: str, text: str, line: int | None) -> Any:
    """`json.loads(text)`; bad JSON, JSON nested too deeply to read, and an object holding a key twice raise
    `InputError` at `line`."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise InputError(path, "the key appears twice in one object (which value is meant?)", line, e.args[0]) from None
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON: {e}", line=line if line is not None else e.lineno) from None
    except RecursionError:
        raise InputError(path, "not readable: JSON nested too deeply", line=line) from None


def _check_unicode(path: str, row: dict[str, Any], line: int) -> None:
    """A lone surrogate (a `"\\ud800"` escape: half of a UTF-16 pair, which no UTF-8 file can hold) raises
    `InputError` naming the field."""
    for field, value in row.items():
        try:
            json.dumps([field, value], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            what = f"not valid Unicode: a lone surrogate {e.object[e.start]!r} (half of a UTF-16 pair)"
            raise InputError(path, what, line, ascii(field)[1:-1]) from None


def _decoded(path: str, lines: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """Number and decode the lines of a file opened in binary mode (a BOM is dropped); a line that
    is not UTF-8 raises `InputError` at its own line (text-mode reading would fail a chunk early)."""
    for n, raw in enumerate(lines, 1):
        try:
            yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise InputError(path, f"not valid UTF-8: {e.reason} at byte {e.start}", line=n) from None


def _json(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(path, f"not valid UTF-8: {e.reason} at byte {e.start}", line=line) from None
    data = _parsed(path, text, None)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise InputError(path, 'expected a list of objects, or {"data": [...]}')
    surrogates = bool(_SURROGATE_ESCAPE.search(text))
    for i, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise InputError(path, f"row {i} is not a JSON object ({type(row).__name__})", line=i)
        if surrogates:
            _check_unicode(path, row, i)
        yield i, row


def _csv(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)  # the default, 128 KiB, would refuse a long gold that JSONL accepts
    with open(path, "rb") as f:
        reader = csv.DictReader(line for _, line in _decoded(path, f))
        try:
            header = reader.fieldnames
            if not header:
                raise InputError(path, "empty CSV file (no header line)", line=1)
            if twice := next((c for i, c in enumerate(header) if c in header[:i]), None):
                at = [i + 1 for i, c in enumerate(header) if c == twice]
                raise InputError(path, f"the header names this column twice (columns {at[0]} and {at[1]}): which one "
                                 "is meant?", 1, twice)
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    found = len(header) + len(row.get(None) or []) - sum(v is None for v in row.values())
                    raise InputError(
                        path, f"row has {found} fields, the header has {len(header)}", line=reader.line_num
                    )
                yield reader.line_num, row
        except csv.Error as e:
            raise InputError(path, f"not valid CSV: {e}", line=reader.line_num) from None


def _parquet(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(path, f"not a readable Parquet file: {e}") from None
    n = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                n += 1
                yield n, row
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"not readable after row {n}: {e}", line=n + 1) from None


def _hub(source: SplitSource) -> Iterator[tuple[int, dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_dataset(source.path, source.name, split=source.split, revision=source.revision)
    except Exception as e:  # offline, unknown id, wrong config, split or revision: all reported the same way
        local = "" if Path(source.path).expanduser().is_dir() else "no such local file, and "
        pinned = f", revision={source.revision!r}" if source.revision else ""
        raise InputError(
            source.path,
            f"{local}could not load hub dataset (name={source.name!r}, split={source.split!r}{pinned}): {e}",
        ) from e
    for i, row in enumerate(ds, 1):
        yield i, dict(row)


def require(row: dict[str, Any], field: str, path: str, line: int) -> Any:
    """`row[field]`; raises `InputError` if it is missing, None, an empty or blank string, or empty list."""
    if field not in row or row[field] is None:
        raise InputError(
            path, f"missing (the row has: {', '.join(map(str, row)) or 'no fields'})", line, field
        )
    value = row[field]
    if isinstance(value, str) and not value.strip():
        raise InputError(path, "empty", line, field)
    if isinstance(value, (list, tuple)) and not value:
        raise InputError(path, "empty list", line, field)
    return value


def require_text(row: dict[str, Any], field: str, path: str, line: int) -> str:
    """`require`, as text: a string, or a finite number as written (JSON `42` -> "42"); an object, a list,
    true/false or NaN raises `InputError` naming the field (no `{'a': 1}` enters a prompt as a question)."""
    value = require(row, field, path, line)
    if isinstance(value, str):
        return clean_text(value, path, line, field)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    raise InputError(path, f"expected text, found {_kind(value)}", line, field)


def clean_text(text: str, path: str, line: int, field: str) -> str:
    """Text as a prompt or target takes it: line endings normalised to `\n` (a CSV cell written on Windows
    holds `\r\n`); a NUL character, which no tokenizer reads as text, raises `InputError`."""
    if "\x00" in text:
        raise InputError(path, f"holds a NUL character (at offset {text.index(chr(0))}): not text", line, field)
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def answer_list(value: Any, path: str, line: int, field: str) -> list[str]:
    """`meta.answers`, gold aliases: text, or a list of texts (numbers as written); NaN (a missing cell), an
    object or a list of them raises `InputError` (each would be an alias no answer matches)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            v = str(v)
        if not isinstance(v, str):
            raise InputError(path, f"meta.answers: expected text or a list of texts, found {_kind(v)}", line, field)
        out.append(clean_text(v, path, line, field))
    return out


def _kind(value: Any) -> str:
    if isinstance(value, float):
        return f"the number {value}"
    kinds = {dict: "an object", list: "a list", bool: "true/false", bytes: "bytes", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def as_str_list(value: Any, path: str, line: int, field: str) -> list[str]:
    """A list of strings, also from a JSON-encoded list (as a CSV cell holds it)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(path, f"not a valid JSON list: {e}", line, field) from None
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InputError(path, f"expected a list of strings, found {_kind(value)}", line, field)
    if odd := [v for v in value if not isinstance(v, str)]:
        raise InputError(path, f"expected a list of strings, found a list holding {_kind(odd[0])}", line, field)
    return list(value)
