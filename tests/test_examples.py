"""The worked examples (`examples/*/`): each one validates, from the repository root as its README says and from
any other folder (its data and templates are read beside the config), and each one runs end to end through
`s3ft run` from another folder, made tiny by overrides: a few rows, sft and s3ft, one epoch, short generations. The model is the one the configs name, the small base model
shipped in the package; the judge model of `judge_model` is the session's tiny model (the README makes one
with `s3ft make-tiny models/judge`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

from s3ft.rundir import read_jsonl, stage_root

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["own_csv_math", "chat_data", "judge_model", "own_code_task"]
TINY = ["method=[sft,s3ft]", "data.train.limit=4", "data.test.limit=2", "train.epochs=1", "generate.batch_size=4",
        "generate.max_new_tokens=16", "paraphrase.max_new_tokens=16", "judge.workers=1"]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "s3ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def needs_sandbox(name: str) -> None:
    """The code example's judge refuses to run where bwrap cannot start (docs/sandbox.md): skip it there."""
    if name != "own_code_task":
        return
    from s3ft.judges.sandbox import Sandbox, SandboxUnavailable

    try:
        Sandbox("bwrap")
    except SandboxUnavailable as e:
        pytest.skip(str(e))


def test_every_example_has_its_config_data_and_readme():
    assert sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_dir()) == sorted(EXAMPLES)
    readme = (ROOT / "README.md").read_text()
    for name in EXAMPLES:
        folder = ROOT / "examples" / name
        assert (folder / "config.yaml").is_file() and f"examples/{name}/config.yaml" in (folder / "README.md").read_text()
        assert any(p.suffix in (".csv", ".jsonl", ".json") for p in folder.iterdir()), name
        assert f"examples/{name}" in readme, name


@pytest.mark.parametrize("where", ["root", "elsewhere"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates(name, where, monkeypatch, capsys, tmp_path):
    """`s3ft validate` as the README runs it (from the repository root), and from a temporary folder, in this
    process: it is cheap. Either way the data files are the example's own, beside its config."""
    from s3ft import cli as s3ft_cli

    needs_sandbox(name)
    monkeypatch.chdir(ROOT if where == "root" else tmp_path)
    config = f"examples/{name}/config.yaml" if where == "root" else str(ROOT / "examples" / name / "config.yaml")
    assert s3ft_cli.main(["validate", config]) == 0
    out = capsys.readouterr().out
    assert f"examples/{name}/config.yaml: OK" in out and "warning:" not in out, out
    assert f"data.train: local file {ROOT / 'examples' / name}/" in out, out


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_end_to_end(name, tmp_path, request):
    needs_sandbox(name)
    run = tmp_path / "run"
    overrides = [f"run_dir={run}", *TINY]
    if name == "judge_model":
        judge = request.getfixturevalue("tiny_model_dir")
        overrides += [f"judge.llm.model.path={judge}", "judge.llm.generate.max_new_tokens=4"]
    r = cli("run", str(ROOT / "examples" / name / "config.yaml"), *overrides, cwd=tmp_path)  # not the repo root
    assert r.returncode == 0, r.stderr[-3000:]
    report = stage_root(run, "report")
    assert (report / "report.md").is_file()
    assert set(json.loads((report / "metrics.json").read_text())["methods"]) == {"sft", "s3ft"}
    examples = read_jsonl(stage_root(run, "data") / "train.jsonl")
    verdicts = read_jsonl(stage_root(run, "judge") / "rows.jsonl")
    assert len(examples) == len(verdicts) == 4 and all(v["reason"] for v in verdicts)
    assert len(read_jsonl(stage_root(run, "data") / "test.jsonl")) == 2
    if name == "own_csv_math":  # the CSV's `final` column reaches the math judge
        assert [e["meta"]["answer"] for e in examples] == ["42", "35", "83", "53"]
    if name == "chat_data":  # TRL rows to train on, ShareGPT rows to test on; system prompts and earlier turns
        assert "read as data.format messages" in r.stderr and "read as data.format sharegpt" in r.stderr
        assert [m["role"] for m in examples[0]["context"]] == ["system"]
        assert [m["role"] for m in examples[2]["context"]] == ["system", "user", "assistant"]
        rows = {row["id"]: row for row in read_jsonl(stage_root(run, "select") / "s3ft" / "train.jsonl")}
        assert [m["role"] for m in rows["chat-3"]["prompt"]] == ["system", "user", "assistant", "user"]
    if name == "judge_model":  # the judge model's replies: a clean yes/no, or undecided and kept apart
        assert all(v["reason"].startswith(("judge said", "undecided")) for v in verdicts)
    if name == "own_code_task":  # every program found was run in the sandbox
        assert all(v["sandbox"].startswith("bwrap/") for v in verdicts if v["reason"] != "no code found")
        # and the test set's: each evaluated model's count of them reaches the report
        sandbox = json.loads((report / "metrics.json").read_text())["sandbox"]
        for m in ("base", "sft", "s3ft"):
            ran = read_jsonl(stage_root(run, "evaluate") / m / "verdicts.jsonl")
            counts = {k: sum(v.get("sandbox") == k for v in ran) for k in {v.get("sandbox") for v in ran} - {None}}
            assert sandbox.get(f"evaluate ({m}, test set)", {}) == counts
