"""Outputs the run can vouch for (`s3ft.verify`): a finished unit's files edited, cut or deleted make it stale,
named by `s3ft status`, and the next run redoes it (and what reads it); `status --verify` hashes again; an
upstream made again with other contents makes its readers stale; a stage refuses an upstream that lost rows;
a damaged row names its file and line; a unit whose files were refused when sealed is shown with the reason.
The train stage's outputs (an adapter, its metrics), the evaluate stage's and the report are vouched for too.

The pipeline runs on test_shards' stand-in backend (no model, no torch), in this process; training is a stand-in
too (`stand_in_training`)."""

from __future__ import annotations

import json
import os
import re
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


def assert_named_stale(capsys, run, unit: str, says: str) -> None:
    """`s3ft status RUN` shows `unit` stale, naming what changed (`says`), and that the next run redoes it."""
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    table = capsys.readouterr().out
    (line,) = [x for x in table.splitlines() if x.startswith(unit + " ")]
    assert " stale " in line and says in line and "the next run redoes it" in line, table


@pytest.mark.parametrize(("unit", "rel", "tamper", "says"), CASES, ids=[c[1] for c in CASES])
def test_a_tampered_output_is_named_and_redone(made, capsys, unit, rel, tamper, says):
    cfg, run, before = made
    tamper(run / rel)
    assert_named_stale(capsys, run, unit, says)
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
    assert unit.state() == "partial" and re.search(says, unit.refused())  # what `s3ft status` says of it
    unit.begin()  # the next attempt starts afresh: resuming would read the refused file again
    assert not (unit.path / "rows.jsonl").exists() and unit.refused() is None


def test_status_says_why_a_unit_was_refused_when_sealed_and_the_next_run_redoes_it(tmp_path, capsys, monkeypatch):
    from s3ft.stages import select

    cfg = config(tmp_path, "run", ["s3ft"], select={"nll": False})
    make = select.run

    def second_writer(ctx, out, method):  # a row written twice, as by a second run on the directory
        counts = make(ctx, out, method)
        with open(out / "train.jsonl", "rb+") as f:
            first = f.readline()
            f.seek(0, os.SEEK_END)
            f.write(first)
        return counts

    monkeypatch.setattr(select, "run", second_writer)
    assert main(["run", cfg, "--until", UNTIL]) == 2
    capsys.readouterr()
    assert main(["status", str(tmp_path / "run")]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("select/s3ft ")]
    assert re.search(r" partial .*\(refused to seal: \S+/06_select/s3ft/train.jsonl:41: field 'id': id '\S+' written "
                     r"twice \(first at line 1\).*; the next run redoes it\)", line), line
    monkeypatch.setattr(select, "run", make)
    results = s3ft.run(s3ft.load_config(cfg), until=UNTIL)
    assert {r["unit"]: r["action"] for r in results}["select/s3ft"] == "ran"
    rows = {r["unit"]: r for r in s3ft.status(tmp_path / "run", verify=True)}
    assert rows["select/s3ft"]["state"] == "done" and "refused" not in rows["select/s3ft"]


# --- the train and report stages' outputs ------------------------------------------------------------


TRAININGS: list[str] = []  # every stand-in training, by method


def stand_in_training(rows, out, model, train, seed, snapshots=0):
    """A stand-in for `s3ft.training.train_model` (no torch): an adapter whose bytes follow the training rows, and
    metrics whose `runtime_s` differs each time, as a real training's does."""
    TRAININGS.append(Path(out).name)
    (out / "adapter").mkdir(parents=True, exist_ok=True)
    (out / "adapter" / "adapter_config.json").write_text('{"r": 1}\n')
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"weights of " + Path(rows).read_bytes()[:64])
    metrics = {"train_loss": 0.5, "steps": 2, "runtime_s": float(len(TRAININGS)), "mode": "lora"}
    (out / "train_metrics.json").write_text(json.dumps(metrics))
    return metrics


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run through every stage, trained by the stand-in (for this module's tests that ask for it)."""
    from test_shards import DATA

    from s3ft.stages import train as stage_train

    tmp = tmp_path_factory.mktemp("tamper-train")
    cfg = config(tmp, "run", ["s3ft"], select={"nll": False}, report={"plots": False},
                 data={"task": "gsm8k", "train": {"path": str(DATA), "limit": 40}, "test": {"path": str(DATA), "limit": 4}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage_train, "train_model", stand_in_training)
        assert main(["run", cfg]) == 0
        yield cfg, tmp / "run", outputs(tmp / "run")


def flip_a_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))


ADAPTER = "07_train/s3ft/adapter/adapter_model.safetensors"
TRAIN_CASES = [  # (file, tampering, what status says, the units the rerun redoes)
    (ADAPTER, flip_a_byte, f"{ADAPTER} changed (contents)", ["train/s3ft", "evaluate/s3ft", "report"]),
    (ADAPTER, lambda p: p.unlink(), f"{ADAPTER} deleted", ["train/s3ft", "evaluate/s3ft", "report"]),
    ("07_train/s3ft/train_metrics.json", lambda p: p.write_text("{}"), "07_train/s3ft/train_metrics.json changed (size",
     ["train/s3ft", "evaluate/s3ft", "report"]),
    ("08_evaluate/s3ft/predictions.jsonl", cut_last_row, "08_evaluate/s3ft/predictions.jsonl changed (size",
     ["evaluate/s3ft"]),  # made again to the same contents: the report, which read them, stays done
    ("08_evaluate/s3ft/metrics.json", lambda p: p.write_text("{}"), "08_evaluate/s3ft/metrics.json changed",
     ["evaluate/s3ft"]),
    ("09_report/report.md", cut_last_row, "09_report/report.md changed (size", ["report"]),
    ("09_report/metrics.json", lambda p: p.unlink(), "09_report/metrics.json deleted", ["report"]),
]


@pytest.mark.parametrize(("rel", "tamper", "says", "redone"), TRAIN_CASES,
                         ids=["adapter-edited", "adapter-deleted", "train-metrics", "predictions", "evaluate-metrics", "report-md", "report-metrics"])
def test_a_tampered_adapter_metrics_or_report_is_named_and_redone(trained, capsys, rel, tamper, says, redone):
    cfg, run, before = trained
    unit = redone[0]
    tamper(run / rel)
    assert_named_stale(capsys, run, unit, says)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("s3ft.stages.train.train_model", stand_in_training)
        results = s3ft.run(s3ft.load_config(cfg))
    assert [r["unit"] for r in results if r["action"] != "skipped"] == redone
    assert all(r["state"] == "done" for r in s3ft.status(run, verify=True))
    after = outputs(run)
    assert after.keys() == before.keys() and after[ADAPTER] == before[ADAPTER]
    timed = ("07_train/s3ft/train_metrics.json", "09_report/metrics.json", "09_report/report.md")  # runtime_s
    assert {k: v for k, v in after.items() if k not in timed} == {k: v for k, v in before.items() if k not in timed}
