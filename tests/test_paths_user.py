"""Paths a user takes across features, through the real CLI (the second of tests/test_paths.py's kind): chat
data in TRL `messages` rows for training and a CSV test set, `s3ft run`, `s3ft export`, then one step of TRL's
`SFTTrainer` on the exported file, as a user who takes the training set elsewhere would; and a run directory
looked at from another folder, moved, or named by its config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import HANG_GUARD_S

from s3ft.rundir import read_jsonl, stage_root

REPO = Path(__file__).resolve().parents[1]
CHAT = REPO / "examples" / "chat_data"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "s3ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def chat_config(tmp_path: Path, model: Path) -> Path:
    """Training rows in TRL's `messages` format, the test split a CSV file with its own fields."""
    train = [json.loads(line) for line in (CHAT / "train.jsonl").read_text().splitlines()][:8]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "test.csv").write_text("qid,q,a\nt1,What is 3 + 4?,3 + 4 = 7. The answer is 7.\n"
                                       "t2,What is 9 - 2?,9 - 2 = 7. The answer is 7.\n")
    cfg = {"run_dir": "./run", "method": ["sft", "s3ft"], "model": {"path": str(model), "dtype": "float32"},
           "data": {"task": "generic", "judge": "math",
                    "train": {"path": "./train.jsonl", "format": "messages"},
                    "test": {"path": "./test.csv", "format": "fields",
                             "fields": {"id": "qid", "question": "q", "gold": "a"}}},
           "generate": {"batch_size": 8, "max_new_tokens": 16}, "paraphrase": {"max_new_tokens": 16},
           "judge": {"workers": 1},
           "train": {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "epochs": 1, "batch_size": 4, "max_length": 256}}
    (tmp_path / "cfg").mkdir()
    shutil.move(str(tmp_path / "train.jsonl"), tmp_path / "cfg" / "train.jsonl")
    shutil.move(str(tmp_path / "test.csv"), tmp_path / "cfg" / "test.csv")
    path = tmp_path / "cfg" / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def one_trl_step(train_file: Path, model: Path, out: Path) -> float:
    """One optimiser step of TRL's `SFTTrainer` on an exported `train.jsonl`, read as its usage note says."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = load_dataset("json", data_files=str(train_file))["train"].select_columns(["prompt", "completion"])
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model), train_dataset=ds,
                         processing_class=AutoTokenizer.from_pretrained(model),
                         args=SFTConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=2,
                                        use_cpu=True, report_to=[], save_strategy="no", logging_steps=1,
                                        disable_tqdm=True, max_length=256))
    return trainer.train().training_loss


def test_chat_data_run_export_and_one_trl_step(tiny_model_dir, tmp_path):
    """Chat training rows and a CSV test set (each split its own format and fields), the config's relative paths
    beside it, run from another folder; export; the exported TRL file trains one step of `SFTTrainer`."""
    config = chat_config(tmp_path, tiny_model_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli("run", str(config), cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines() == [r.stdout.splitlines()[0]] and "stage unit(s) ran" in r.stdout  # no loss dicts
    assert "[train] step " in r.stderr and "select NLL" in r.stderr
    run = tmp_path / "cfg" / "run"
    assert (run / "run.log").is_file() and "select" in (run / "run.log").read_text()
    r = cli("export", str(run), cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    for m in ("sft", "s3ft"):
        exported = run / "export" / m / "dataset" / "train.jsonl"
        rows = read_jsonl(exported)
        assert len(rows) == len(read_jsonl(stage_root(run, "select") / m / "train.jsonl")) == 8
        assert all(r["prompt"][-1]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in rows)
    test_rows = read_jsonl(stage_root(run, "data") / "test.jsonl")
    assert [r["id"] for r in test_rows] == ["t1", "t2"]
    loss = one_trl_step(run / "export" / "sft" / "dataset" / "train.jsonl", tiny_model_dir, tmp_path / "trl")
    assert loss == loss and loss > 0  # a number, not NaN
    assert all(line.split(":")[0] in ("sft", "s3ft") for line in r.stdout.splitlines())  # export's lines only

    # the same run, looked at from elsewhere, copied, and named by its config
    copy = tmp_path / "moved" / "run-copy"
    shutil.copytree(run, copy)
    for target in (run, copy, config):
        r = cli("status", str(target), cwd=elsewhere)
        assert r.returncode == 0, r.stderr[-3000:]
        assert all(line.split()[1] == "done" for line in r.stdout.splitlines()[1:]), (target, r.stdout)

    # a rerun with another learning rate, stopped before training: the model on disk was trained at the old one
    r = cli("run", str(config), "train.learning_rate=0.0123", "--until", "select", cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli("export", str(run), "--adapter", "--method", "sft", cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stale" in r.stderr and "train.learning_rate" in r.stderr
    readme = (run / "export" / "sft" / "adapter" / "README.md").read_text()
    settings = readme.split("## Settings", 1)[1]
    assert "learning_rate: 0.0001" in settings and "0.0123" not in settings, settings
    assert "**Stale**" in readme and "train.learning_rate" in readme
