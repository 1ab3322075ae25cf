"""A model that does not load, in s3ft's process or in a child process it started (a training process under
`accelerate launch`, a backend in a process of its own), is one line naming the config key; the traceback is kept
in RUN_DIR/run.log, where a training process also appends its log lines; a training process starts without runpy's
warning of a module imported before it ran (issue 29)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import HANG_GUARD_S

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError, loading_model
from s3ft.logs import run_log
from s3ft.training.launcher import FAILED, launch

pytestmark = pytest.mark.integration  # training processes, the CLI
FIX = Path(__file__).parent / "fixtures"
TRAIN = dict(mode="full", max_steps=2, batch_size=2, logging_steps=1, save_steps=1000, warmup_ratio=0.0,
             max_length=64, bf16=False, num_processes=2)


@pytest.fixture(scope="module")
def broken(tiny_model_dir, tmp_path_factory) -> dict[str, str]:
    """Model paths that do not load, by why: a missing folder, a hub id while offline (conftest sets
    HF_HUB_OFFLINE), a config.json that is not JSON, a corrupt safetensors file."""
    root = tmp_path_factory.mktemp("broken")
    config, weights = root / "bad-config", root / "bad-weights"
    for d in (config, weights):
        shutil.copytree(tiny_model_dir, d)
    (config / "config.json").write_text("{not json")
    (weights / "model.safetensors").write_bytes(b"garbage" * 10)
    return {"missing": str(root / "nope"), "hub": "no-org/no-such-model", "config": str(config),
            "weights": str(weights)}


def _rows(path: Path, n: int = 8) -> Path:
    path.write_text("".join(json.dumps({
        "id": f"t-{i}", "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "completion": [{"role": "assistant", "content": f"The answer is {2 * i}."}], "source": "gold",
        "judge": {"correct": True}}) + "\n" for i in range(n)))
    return path


def test_each_kind_of_model_that_does_not_load_is_one_line_naming_the_key(broken):
    from s3ft.training.model import load_base_model

    for path in broken.values():
        with pytest.raises(ConfigError) as e, loading_model("model.path", path):
            load_base_model(ModelConfig(path=path), "float32")
        assert str(e.value).startswith(f"<config>: model.path: cannot load {path}: ") and "\n" not in str(e.value)
        assert "Traceback" in e.value.detail
    assert "Error while deserializing header" in str(e.value)  # safetensors' own error, not an OSError
    with pytest.raises(OSError, match="No space left"), loading_model("model.path", "m"):
        raise OSError(28, "No space left on device")  # the system's error, with its errno: as it is


def test_a_training_process_that_cannot_load_the_model_says_one_line_and_keeps_its_traceback(broken, tmp_path,
                                                                                             capfd):
    path = broken["config"]
    with pytest.raises(ConfigError) as e, run_log(tmp_path / "run"):
        launch(_rows(tmp_path / "train.jsonl"), tmp_path / "out", ModelConfig(path=path, dtype="float32", device="cpu"),
               TrainConfig(**TRAIN), 0)
    assert str(e.value) == (f"<config>: model.path: cannot load {path}: It looks like the config file at "
                            f"'{path}/config.json' is not a valid JSON file.")
    shown = capfd.readouterr().err
    assert "Traceback" not in shown and "ChildFailedError" not in shown, shown
    assert "found in sys.modules" not in shown, shown  # runpy's warning, where `s3ft` imported the launcher
    log = (tmp_path / "run" / "run.log").read_text()
    assert re.search(r"^training process [01]: Traceback", log, re.M) and "JSONDecodeError" in log
    assert "ChildFailedError" in log  # torchrun's report, after the failed process: kept, not shown
    assert not (tmp_path / "out" / FAILED).exists()


def test_a_training_process_appends_its_log_lines_to_run_log(tiny_model_dir, tmp_path):
    with run_log(tmp_path / "run"):
        metrics = launch(_rows(tmp_path / "train.jsonl"), tmp_path / "out",
                         ModelConfig(path=str(tiny_model_dir), dtype="float32", device="cpu"), TrainConfig(**TRAIN), 0)
    assert metrics["processes"] == 2
    log = (tmp_path / "run" / "run.log").read_text()
    assert "[train] training under accelerate launch" in log  # this process's line
    for line in (f"[train] training {tiny_model_dir} (full) on 8 rows", "[train] step 1: loss",
                 "[train] step 2: loss", "[train] trained 2 steps"):  # the training process's, main process only
        assert log.count(line) == 1, (line, log)


def test_run_with_a_model_that_does_not_load_in_its_backend_process_says_one_line(broken, tmp_path):
    path = broken["weights"]
    cfg = {"run_dir": "./run", "model": {"path": path, "device": "cpu"}, "generate": {"isolate": True},
           "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl"), "limit": 4}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "s3ft", "run", "c.yaml"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=HANG_GUARD_S)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert line == (f"error: c.yaml:3: model.path: cannot load {path}: Error while deserializing header: header too "
                    f"large (the traceback: {tmp_path / 'run' / 'run.log'})"), line
    log = (tmp_path / "run" / "run.log").read_text()
    assert "Traceback" in log and "SafetensorError" in log and f"model.path: cannot load {path}: Error while" in log


def test_a_training_process_starts_without_runpy_warnings(tmp_path):
    """`python -m s3ft.training.launcher SPEC`, as `accelerate launch` starts each training process: nothing that
    importing its packages (`s3ft`, `s3ft.training`) imports imports the launcher before runpy runs it, which would
    warn "found in sys.modules ... prior to execution", once per process. The spec's rows are missing: the process
    fails at once, as the launcher reports a failure."""
    spec = tmp_path / "launch.json"
    spec.write_text(json.dumps({"train_file": str(tmp_path / "missing.jsonl"), "out_dir": str(tmp_path / "out"),
                                "seed": 0, "snapshots": 0, "model": ModelConfig(path="m").model_dump(mode="json"),
                                "train": TrainConfig().model_dump(mode="json")}))
    r = subprocess.run([sys.executable, "-W", "default", "-m", "s3ft.training.launcher", str(spec)],
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert r.returncode == 1 and "Warning" not in r.stderr, r.stderr
    assert "missing.jsonl" in json.loads((tmp_path / "out" / FAILED).read_text())["message"]
