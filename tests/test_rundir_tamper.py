"""Outputs the run can vouch for (`s3ft.verify`): a finished unit's files edited, cut or deleted make it stale,
named by `s3ft status`, and the next run redoes it (and what reads it); `status --verify` hashes again; an
upstream made again with other contents makes its readers stale; a stage refuses an upstream that lost rows;
a damaged row names its file and line.

The pipeline runs on test_shards' stand-in backend (no model, no torch), in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_shards import config

import s3ft
from s3ft.cli import main
from s3ft.errors import InputError
from s3ft.rundir import UnitDir, read_jsonl

UNTIL = "select"


def outputs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.glob("0*/**/*"))
            if p.is_file() and p.name not in ("manifest.json", "progress.json")}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tamper")
    cfg = config(tmp, "run", ["s3ft"], select={"nll": False})
    assert main(["run", cfg, "--until", UNTIL]) == 0
    return cfg, tmp / "run", outputs(tmp / "run")


def cut_last_row(p: Path) -> None:
    lines = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(b"".join(lines[:-1]))


def edit_a_row(p: Path) -> None:
    text = p.read_text()
    p.write_text(text.replace('"correct": true', '"correct": false', 1) if '"correct": true' in text
                 else text.replace('"', "'", 1).replace("'", '"', 1).replace("a", "b", 1))


def same_size_edit(p: Path) -> None:
    data = bytearray(p.read_bytes())
    i = data.index(b"a")
    data[i:i + 1] = b"b"
    p.write_bytes(bytes(data))


CASES = [
    ("data", "01_data/train.jsonl", lambda p: p.unlink(), "01_data/train.jsonl deleted"),
    ("generate", "02_generate/rows.jsonl", cut_last_row, "02_generate/rows.jsonl changed (size"),
    ("judge", "03_judge/rows.jsonl", edit_a_row, "03_judge/rows.jsonl changed (size"),
    ("paraphrase", "04_paraphrase/rows.jsonl", same_size_edit, "04_paraphrase/rows.jsonl changed (contents)"),
    ("judge_paraphrase", "05_judge_paraphrase/rows.jsonl", cut_last_row, "05_judge_paraphrase/rows.jsonl changed"),
    ("select/s3ft", "06_select/s3ft/train.jsonl", cut_last_row, "06_select/s3ft/train.jsonl changed (size"),
    ("select/s3ft", "06_select/s3ft/stats.json", lambda p: p.write_text("{}"), "06_select/s3ft/stats.json changed"),
]


@pytest.mark.parametrize(("unit", "rel", "tamper", "says"), CASES, ids=[c[1] for c in CASES])
def test_a_tampered_output_is_named_and_redone(made, capsys, unit, rel, tamper, says):
    cfg, run, before = made
    tamper(run / rel)
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    table = capsys.readouterr().out
    (line,) = [x for x in table.splitlines() if x.startswith(unit + " ")]
    assert " stale " in line and says in line and "the next run redoes it" in line, table
    results = s3ft.run(s3ft.load_config(cfg), until=UNTIL)
    assert {r["unit"]: r["action"] for r in results}[unit] == "ran"
    assert outputs(run) == before  # redone to the same bytes (the stand-in model is deterministic)
    assert all(r["state"] == "done" for r in s3ft.status(run) if r["unit"] not in ("train/s3ft", "report"))


def test_status_verify_rehashes_a_file_whose_size_and_time_were_kept(made):
    cfg, run, before = made
    p = run / "02_generate" / "rows.jsonl"
    st = p.stat()
    same_size_edit(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # the time put back: only a hash sees it
    assert {r["unit"]: r["state"] for r in s3ft.status(run)}["generate"] == "done"
    rows = {r["unit"]: r for r in s3ft.status(run, verify=True)}
    assert rows["generate"]["state"] == "stale" and rows["generate"]["why"] == ["02_generate/rows.jsonl changed (contents)"]
    p.write_bytes(before["02_generate/rows.jsonl"])
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert all(r["state"] != "stale" for r in s3ft.status(run, verify=True))


def test_an_upstream_made_again_with_other_contents_makes_its_readers_stale(tmp_path):
    up, down = UnitDir(tmp_path / "02_generate", "a"), UnitDir(tmp_path / "03_judge", "b")
    down.upstream = {"generate": up}
    for unit, text in ((up, '{"id": "x", "prediction": "1"}\n'), (down, '{"id": "x", "correct": true}\n')):
        unit.begin()
        (unit.path / "rows.jsonl").write_text(text)
        unit.finish("s", {})
    assert down.state() == "done"
    up.begin(force=True)  # `--force generate`, sampled: another answer, the same fingerprint
    (up.path / "rows.jsonl").write_text('{"id": "x", "prediction": "2"}\n')
    up.finish("s", {})
    assert up.state() == "done" and down.state() == "stale"
    assert down.tampered() == ["upstream generate made again with other contents"]


def test_nested_outputs_an_adapter_and_a_report_are_vouched_for_but_checkpoints_are_not(tmp_path):
    unit = UnitDir(tmp_path / "07_train" / "sft", "fp")
    unit.begin()
    (unit.path / "adapter").mkdir()
    (unit.path / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (unit.path / "train_metrics.json").write_text("{}")
    (unit.path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (unit.path / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    m = unit.finish("train", {})
    assert sorted(m["files"]) == ["adapter/adapter_model.safetensors", "train_metrics.json"]
    (unit.path / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{ torn")
    assert unit.state() == "done"
    (unit.path / "adapter" / "adapter_model.safetensors").write_bytes(b"other weights")
    assert unit.tampered() == ["07_train/sft/adapter/adapter_model.safetensors changed (size 7 -> 13 bytes)"]


def test_select_refuses_an_upstream_that_lost_rows(made):
    cfg, run, _ = made
    from s3ft.context import Context
    from s3ft.stages.select import build_rows

    p = run / "03_judge" / "rows.jsonl"
    keep = p.read_bytes()
    try:
        cut_last_row(p)
        with pytest.raises(InputError, match=r"03_judge/rows.jsonl: holds 39 rows, but its unit was sealed with 40: the file lost rows"):
            build_rows(Context(s3ft.load_config(cfg)), "s3ft")
    finally:
        p.write_bytes(keep)


def test_a_damaged_row_names_its_file_and_line(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b", \n{"id": "c"}\n')
    with pytest.raises(InputError, match=r"rows.jsonl:2: damaged row"):
        read_jsonl(p)


@pytest.mark.parametrize(("text", "says"), [
    ('{"id": "a"}\n[1]\n', r"rows.jsonl:2: damaged row, not sealed"),
    ('{"id": "a", "prediction": "1"}\n{"id": "b"}\n{"id": "a", "prediction": "2"}\n',
     r"rows.jsonl:3: field 'id': id 'a' written twice \(first at line 1\)"),  # two writers, once
], ids=["damaged", "id-twice"])
def test_a_row_file_that_is_damaged_or_holds_an_id_twice_is_not_sealed(tmp_path, text, says):
    unit = UnitDir(tmp_path / "02_generate", "fp")
    unit.begin()
    (unit.path / "rows.jsonl").write_text(text)
    with pytest.raises(InputError, match=says):
        unit.finish("generate", {})
    assert unit.state() == "partial"
