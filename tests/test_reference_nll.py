"""The continuous forgetting measure: the NLL per token of held-out reference answers under each model, in all
and per style (`evaluate.general[*].reference_nll`), beside accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3ft.config import load_config
from s3ft.pipeline import run
from s3ft.rundir import read_json, read_jsonl, stage_root

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data"
pytestmark = pytest.mark.integration


def test_reference_nll_per_model_and_style(tiny_model_dir, tmp_path):
    refs = tmp_path / "skill.jsonl"
    refs.write_text("".join(json.dumps({"id": f"s{i}", "question": f"What is {i} + 1?", "gold": f"{i + 1}",
                                        "answer": str(i + 1),
                                        "references": {"plain": f"The answer is {i + 1}.",
                                                       "worked": f"{i} + 1 = {i + 1}. The answer is {i + 1}."}}) + "\n"
                            for i in range(3)))
    general = {"name": "skill", "source": {"path": str(refs)}, "judge": "final", "reference_nll": "references",
               "fields": {"id": "id", "question": "question", "gold": "gold",
                          "meta": {"answer": "answer", "references": "references"}}}
    cfg = load_config(raw={
        "run_dir": str(tmp_path / "run"), "method": ["sft"], "model": {"path": str(tiny_model_dir), "dtype": "float32"},
        "data": {"task": "gsm8k", "train": {"path": str(DATA / "tiny_gsm8k_train.jsonl"), "limit": 4},
                 "test": {"path": str(DATA / "tiny_gsm8k_test.jsonl"), "limit": 2}},
        "generate": {"batch_size": 4, "max_new_tokens": 8}, "judge": {"workers": 1},
        "train": {"mode": "full", "epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                  "max_length": 256},
        "evaluate": {"general": [general]}})
    run(cfg)
    scores = {}
    for model in ("base", "sft"):
        m = read_json(stage_root(tmp_path / "run", "evaluate") / model / "metrics.json")
        nll = m["general"]["skill"]["reference_nll"]
        assert nll["references"] == 6 and set(nll["by_style"]) == {"plain", "worked"}
        assert nll["per_token"] > 0 and all(v > 0 for v in nll["by_style"].values())
        rows = read_jsonl(stage_root(tmp_path / "run", "evaluate") / model / "general" / "skill" / "reference_nll.jsonl")
        assert sorted(r["id"] for r in rows) == sorted(f"s{i}/{s}" for i in range(3) for s in ("plain", "worked"))
        scores[model] = nll["per_token"]
    assert scores["base"] != scores["sft"]  # training on the task moved the model's likelihood of the references
    report = read_json(stage_root(tmp_path / "run", "report") / "metrics.json")
    assert report["base"]["general_reference_nll"] == {"skill": scores["base"]}
    assert report["methods"]["sft"]["general_reference_nll_delta_vs_base"]["skill"] == round(
        scores["sft"] - scores["base"], 4)
