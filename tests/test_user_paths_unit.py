"""Unit tests of what a user meets on the way through (issue 29): relative paths against the config's folder,
each split's own format and fields, train and test sharing ids, a wrong model path caught by `validate` and
reported by `run` in one line, `s3ft --version`, `s3ft ls`, `s3ft status CONFIG`, the run's log file."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import HANG_GUARD_S

from s3ft.config import SplitSource, load_config
from s3ft.config.paths import resolve_path, resolve_paths
from s3ft.errors import ConfigError
from s3ft.logs import run_log
from s3ft.validate import validate

FIX = Path(__file__).parent / "fixtures"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "s3ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    folder = tmp_path / "cfgs"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text("")
    assert resolve_path("./x.jsonl", folder) == str(folder / "x.jsonl")  # ./ : beside, existing or not
    assert resolve_path("../runs/a", folder) == str(tmp_path / "runs" / "a")
    assert resolve_path("data/train.jsonl", folder) == str(folder / "data" / "train.jsonl")  # exists beside
    assert resolve_path("openai/gsm8k", folder) == "openai/gsm8k"  # a hub id: as written
    assert resolve_path("runs/x", folder) == "runs/x"  # not beside the config: the working directory's
    assert resolve_path("/abs/p", folder) == "/abs/p" and resolve_path("${s3ft}/data", folder) == "${s3ft}/data"
    raw = {"run_dir": "./run", "model": {"path": "./m", "load_args": {"path": "./keep"}},
           "data": {"train": {"path": "./t.jsonl", "fields": {"question": "./q"}}},
           "evaluate": {"forgetting": {"include_path": ["./tasks"]}}}
    out = resolve_paths(raw, folder)
    assert out["run_dir"] == str(folder / "run") and out["model"]["path"] == str(folder / "m")
    assert out["model"]["load_args"] == {"path": "./keep"} and out["data"]["train"]["fields"] == {"question": "./q"}
    assert out["evaluate"]["forgetting"]["include_path"] == [str(folder / "tasks")]


def test_load_config_resolves_the_file_but_not_the_overrides(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.jsonl").write_text("")
    (folder / "config.yaml").write_text(yaml.safe_dump(
        {"run_dir": "./run", "model": {"path": "org/model"}, "data": {"train": {"path": "train.jsonl"}}}))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(folder / "config.yaml", ["data.test={path: ./test.jsonl}"])
    assert cfg.run_dir == str(folder / "run") and cfg.data.train.path == str(folder / "train.jsonl")
    assert cfg.model.path == "org/model" and cfg.data.test.path == "./test.jsonl"


def test_each_split_names_its_own_format_and_fields_and_unset_they_are_not_written():
    assert set(SplitSource(path="a.csv").model_dump()) == {"path", "name", "split", "limit", "revision"}
    s = SplitSource(path="a.csv", format="fields", fields={"question": "q", "gold": "a"})
    assert SplitSource.model_validate(s.model_dump(mode="json")) == s
    with pytest.raises(ValueError, match="fields.question names a column, but format messages"):
        SplitSource(path="a.jsonl", format="messages", fields={"question": "q"})


def test_generic_task_reads_chat_train_and_csv_test(tmp_path):
    from s3ft.config import DataConfig
    from s3ft.tasks.generic import GenericTask

    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "a", "messages": [
        {"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}) + "\n")
    (tmp_path / "e.csv").write_text("qid,q,a,al\nx,2+2?,4,\"[\"\"four\"\"]\"\n")
    cfg = DataConfig(task="generic", judge="qa", train={"path": str(tmp_path / "t.jsonl"), "format": "messages"},
                     fields={"id": "id"},
                     test={"path": str(tmp_path / "e.csv"), "format": "fields",
                           "fields": {"id": "qid", "question": "q", "gold": "a", "meta": {"answers": "al"}}})
    task = GenericTask(cfg)
    (train,) = list(task.load(cfg.train))
    (test,) = list(task.load(cfg.test))
    assert (train.id, train.question, train.gold) == ("a", "1+1?", "2")
    assert (test.id, test.question, test.gold, test.meta) == ("x", "2+2?", "4", {"answers": ["four"]})


def test_train_and_test_sharing_ids_is_warned(caplog):
    from s3ft.stages.data import shared_ids

    with caplog.at_level(logging.WARNING, logger="s3ft.data"):
        assert shared_ids({"train": {"a", "b", "c"}, "test": {"b", "c", "d"}}) == ["b", "c"]
        assert shared_ids({"train": {"a"}, "test": {"z"}}) == []
    assert "train and test share 2 id(s) (b, c)" in caplog.text


def _cfg(tmp_path: Path, **model):
    raw = {"run_dir": str(tmp_path / "run"), "model": {"path": "s3ft-tiny", **model},
           "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}}}
    return load_config(raw=raw)


def test_validate_catches_a_missing_local_model_and_says_when_a_hub_id_needs_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for missing in ("./models/nonexist", str(tmp_path / "nope"), "../x/y/z"):
        with pytest.raises(ConfigError, match=f"model.path: no such model folder: {missing}"):
            validate(_cfg(tmp_path, path=missing))
    (tmp_path / "models").mkdir()
    with pytest.raises(ConfigError, match="model.path: no such model folder: models/nonexist"):
        validate(_cfg(tmp_path, path="models/nonexist"))  # its first folder is here: a local path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines = validate(_cfg(tmp_path, path="no-org/no-such-model"))
    assert any("model.path: no-org/no-such-model is a hub id, and the hub is offline" in x for x in lines)
    judge = load_config(raw={"run_dir": str(tmp_path / "run"), "model": {"path": str(tmp_path)},
                             "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}},
                             "judge": {"name": "llm", "llm": {"model": {"path": "./judge-model"}}}})
    with pytest.raises(ConfigError, match="judge.llm.model.path: no such model folder: ./judge-model"):
        validate(judge)


def test_run_with_a_wrong_model_path_says_one_line(tmp_path):
    cfg = {"run_dir": "./run", "model": {"path": "./models/nonexist"},
           "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert "model.path: no such model folder" in line and "nonexist" in line
    assert not (tmp_path / "run" / "01_data").exists()


def test_version_ls_and_status_of_a_config(tmp_path):
    from s3ft import __version__

    r = cli("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"s3ft {__version__}"
    r = cli("ls", cwd=tmp_path)
    assert "math       Math judge: reads the final answer" in r.stdout
    assert "gsm8k      GSM8K (grade-school math word problems)" in r.stdout and "s3ft.tasks.gsm8k:GSM8K" in r.stdout
    assert "sft        targets: the gold response for every example" in r.stdout
    cfg = {"run_dir": "./run", "model": {"path": str(tmp_path)},
           "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("status", str(tmp_path / "c.yaml"), "method=[sft]", cwd=Path("/"))
    assert r.returncode == 0, r.stderr
    units = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert units[0] == "data" and "train/sft" in units and all(x.split()[1] == "todo" for x in r.stdout.splitlines()[1:])
    r = cli("status", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "not a run directory (no config.yaml) or a config file" in r.stderr


def test_run_log_appends_the_lines_of_each_run(tmp_path):
    log = logging.getLogger("s3ft.pipeline")
    with run_log(tmp_path / "run") as path:
        log.info("first run")
    log.info("not while no run lasts")
    with run_log(tmp_path / "run"):
        log.warning("second run")
    text = path.read_text()
    assert "[pipeline] first run" in text and "[pipeline] second run" in text and "not while" not in text
    assert text.count("\n--- ") + text.startswith("--- ") == 2


def test_an_all_undecided_evaluation_shows_no_accuracy_and_undecided_counts_beside_each(tmp_path):
    from s3ft.results import decided_accuracy
    from s3ft.stages.report import accuracy_cell, report_markdown

    assert decided_accuracy({"n": 4, "correct": 0, "undecided": 4, "accuracy": 0.0}) is None
    assert decided_accuracy({"n": 4, "correct": 1, "undecided": 2, "accuracy": 0.25}) == 0.25
    assert accuracy_cell({"accuracy": None, "n": 4, "undecided": 4}) == "– (all 4 undecided)"
    assert accuracy_cell({"accuracy": 0.25, "n": 4, "undecided": 2}) == "25.0 (2 of 4 undecided)"
    method = {"accuracy": None, "n": 4, "undecided": 4, "accuracy_delta_vs_base": None, "composition": None,
              "target_nll_per_token": None, "train": {}, "general": {}, "benchmarks": {}}
    metrics = {"task": "generic", "model": "m", "base": {"accuracy": None, "n": 4, "undecided": 4, "general": {},
                                                          "benchmarks": {}},
               "methods": {"sft": method}}
    text = report_markdown(metrics)
    assert "Base model in-domain accuracy: – (all 4 undecided)" in text and "| sft | – (all 4 undecided) |" in text
    assert "0.0" not in text.split("| sft |")[1].split("|")[1]
