"""Data that would be read silently wrong is refused or normalised, named by file, line and column or key:
duplicated CSV columns, duplicated JSON keys, NaN or object aliases in `meta.answers`, CRLF line endings
(normalised) and NUL characters (refused); a torn `trainer_state.json` in the newest checkpoint is skipped for
the one before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3ft.config import DataConfig, FieldMap, SplitSource
from s3ft.errors import InputError
from s3ft.tasks.generic import GenericTask

FIELDS = FieldMap(question="q", gold="a", meta={"answers": "aliases"})


def load(path: Path) -> list:
    task = GenericTask(DataConfig(task="generic", judge="qa", train=SplitSource(path=str(path)), fields=FIELDS))
    return list(task.load(SplitSource(path=str(path))))


def test_a_csv_column_named_twice_is_an_error_naming_it(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("q,a,aliases,a\nwhat?,gold,[],other\n")
    with pytest.raises(InputError, match=r"d.csv:1: field 'a': the header names this column twice \(columns 2 and 4\)"):
        load(p)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_json_key_given_twice_is_an_error_naming_it(tmp_path, suffix):
    row = '{"q": "what?", "a": "gold", "aliases": ["gold"], "a": "other"}'
    p = tmp_path / f"d{suffix}"
    p.write_text(f'{{"q": "x", "a": "y", "aliases": ["y"]}}\n{row}\n' if suffix == ".jsonl" else f"[{row}]")
    line = ":2" if suffix == ".jsonl" else ""
    with pytest.raises(InputError, match=rf"d{suffix}{line}: field 'a': the key appears twice in one object"):
        load(p)


@pytest.mark.parametrize(("aliases", "found"), [("NaN", "the number nan"), ('[{"x": 1}]', "an object"),
                                                ('["ok", NaN]', "the number nan"), ('{"x": 1}', "an object")])
def test_nan_or_object_aliases_are_refused_where_they_are(tmp_path, aliases, found):
    p = tmp_path / "d.jsonl"
    p.write_text(f'{{"q": "x", "a": "y", "aliases": ["y", 7]}}\n{{"q": "what?", "a": "gold", "aliases": {aliases}}}\n')
    with pytest.raises(InputError, match=rf"d.jsonl:2: field 'aliases': meta.answers: .*found {found}"):
        load(p)


def test_numbers_among_aliases_are_text_as_written(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"q": "x", "a": "y", "aliases": ["y", 7]}\n')
    assert load(p)[0].meta["answers"] == ["y", "7"]


def test_crlf_in_csv_cells_is_normalised_and_nul_is_refused(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b'q,a,aliases\r\n"line one\r\nline two","first\r\nsecond",[]\r\n')
    (ex,) = load(p)
    assert ex.question == "line one\nline two" and ex.gold == "first\nsecond"
    p.write_bytes(b'q,a,aliases\nfine,"go\x00ld",[]\n')
    with pytest.raises(InputError, match=r"d.csv:2: field 'a': holds a NUL character"):
        load(p)


def test_a_torn_trainer_state_in_the_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    from s3ft.training.loop import last_checkpoint

    for step in (2, 4, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_step": 6, "log_hist')  # torn
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert "checkpoint-6/trainer_state.json does not load" in caplog.text
    for d in tmp_path.iterdir():
        (d / "trainer_state.json").write_text("")
    assert last_checkpoint(tmp_path) is None
