"""Paths a user takes across features, through the real CLI: a run whose methods share one training, then
`s3ft status` and `s3ft export --merge --adapter` on it, and the exported model and adapter loaded by the
field's libraries. (Export used to build a stand-in context and crashed on every run where a method reused
another's training: every `make demo` run.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import HANG_GUARD_S

from s3ft.rundir import read_jsonl, stage_root

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "s3ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def load_and_generate(merged: Path, adapter: Path) -> tuple[str, str]:
    """Greedy text from the merged model (transformers) and from base + adapter (peft), on one prompt."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = []
    for model in (AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32),
                  AutoPeftModelForCausalLM.from_pretrained(adapter, dtype=torch.float32)):
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=8, do_sample=False)
        out.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return out[0], out[1]


def check_export(run: Path, methods: list[str], cwd: Path) -> None:
    r = cli("status", str(run), cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(line.split()[1] == "done" for line in r.stdout.splitlines()[1:]), r.stdout
    r = cli("export", str(run), "--merge", "--adapter", cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    for m in methods:
        folder = run / "export" / m
        card = (folder / "merged" / "README.md").read_text()
        assert f"`{m}`: the training targets are" in card and "## Results" in card
        assert len(read_jsonl(folder / "dataset" / "train.jsonl")) == len(
            read_jsonl(stage_root(run, "select") / m / "train.jsonl"))
        merged, adapted = load_and_generate(folder / "merged", folder / "adapter")
        assert merged == adapted  # the merged weights are base + adapter


def test_export_after_a_run_whose_methods_share_one_training(tiny_model_dir, tmp_path):
    """A random tiny model answers nothing right: SSR's rows are SFT's golds, in the same order, so SSR takes
    SFT's trained model (`reused_from`); status, export with merged model and adapter, and loading both work."""
    cfg = {"run_dir": str(tmp_path / "run"), "method": ["sft", "ssr"],
           "model": {"path": str(tiny_model_dir), "dtype": "float32"},
           "data": {"task": "gsm8k", "train": {"path": str(DATA / "tiny_gsm8k_train.jsonl"), "limit": 8},
                    "test": {"path": str(DATA / "tiny_gsm8k_test.jsonl"), "limit": 4}},
           "generate": {"batch_size": 8, "max_new_tokens": 16}, "judge": {"workers": 1},
           "train": {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "epochs": 1, "batch_size": 4, "max_length": 256}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((stage_root(run, "train") / "ssr" / "train_metrics.json").read_text())
    assert metrics["reused_from"] == "sft"
    report = json.loads((stage_root(run, "report") / "metrics.json").read_text())
    assert report["methods"]["ssr"]["train"]["reused_from"] == "sft"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check_export(run, ["sft", "ssr"], cwd=elsewhere)


def test_export_after_a_shortened_demo(tmp_path):
    """`s3ft demo` shortened to SDFT and S3FT, one seed, then status and export through the CLI (in the shipped
    v4 world SDFT's and S3FT's training sets are identical, so S3FT reuses SDFT's training)."""
    short = ["method=[sdft, s3ft]", "data.train.limit=24", "data.test.limit=8", "train.epochs=1",
             "evaluate.forgetting.limit=4", "evaluate.curve=null"]
    r = cli("demo", "--seeds", "0", "--run-dir", str(tmp_path / "w"), *short, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "w" / "seed-0"
    rows = {m: [(r["prompt"], r["completion"]) for r in read_jsonl(stage_root(run, "select") / m / "train.jsonl")]
            for m in ("sdft", "s3ft")}
    same = rows["sdft"] == rows["s3ft"]
    metrics = json.loads((stage_root(run, "train") / "s3ft" / "train_metrics.json").read_text())
    assert (metrics.get("reused_from") == "sdft") == same
    check_export(run, ["sdft", "s3ft"], cwd=tmp_path)
