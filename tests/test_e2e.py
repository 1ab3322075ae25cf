"""End to end through the real CLI: a tiny Llama model, taught offline, through every stage for every method.

The model is built and taught (a few hundred rows of its own house-style answers) once per session,
so that its generations really are right for some questions and wrong for others: every kind of
training target (self / paraphrase / gold) occurs, judged by the real math judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import HANG_GUARD_S

from s3ft.rundir import read_jsonl, stage_root

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data"
METHODS = ["sft", "ssr", "sdft", "s3ft"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "s3ft", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def write_config(tmp: Path, model: Path) -> Path:
    cfg = {
        "run_dir": str(tmp / "run"),
        "method": METHODS,
        "model": {"path": str(model), "dtype": "float32"},
        "data": {
            "task": "gsm8k",
            "train": {"path": str(DATA / "tiny_gsm8k_train.jsonl"), "limit": 16},
            "test": {"path": str(DATA / "tiny_gsm8k_test.jsonl"), "limit": 8},
        },
        "generate": {"batch_size": 8, "max_new_tokens": 40},
        "paraphrase": {"max_new_tokens": 40},
        "judge": {"workers": 1},
        "train": {"mode": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 8,
                  "learning_rate": 1e-3, "max_length": 384, "logging_steps": 1},
        # a general-skill set (here a fixture in GSM8K's schema): its drop from the base is forgetting
        "evaluate": {"general": [{"name": "fixture", "task": "gsm8k",
                                  "source": {"path": str(Path(__file__).parent / "fixtures" / "gsm8k_test.jsonl")}}]},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_stage_every_method(taught_model, tmp_path):
    config = write_config(tmp_path, taught_model)
    r = cli("validate", str(config), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("run", str(config), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[generate]" in r.stderr and "[select]" in r.stderr  # stage-prefixed logs
    run = tmp_path / "run"
    for stage in ("data", "generate", "judge", "paraphrase", "judge_paraphrase", "report"):
        assert (stage_root(run, stage) / "manifest.json").is_file(), stage

    examples = {e["id"]: e for e in read_jsonl(stage_root(run, "data") / "train.jsonl")}
    preds = {r["id"]: r for r in read_jsonl(stage_root(run, "generate") / "rows.jsonl")}
    verdicts = {r["id"]: r for r in read_jsonl(stage_root(run, "judge") / "rows.jsonl")}
    paras = {r["id"]: r for r in read_jsonl(stage_root(run, "paraphrase") / "rows.jsonl")}
    pverdicts = {r["id"]: r for r in read_jsonl(stage_root(run, "judge_paraphrase") / "rows.jsonl")}
    assert len(examples) == len(preds) == len(verdicts) == 16
    assert len(paras) == 16  # sdft is among the methods: every gold is paraphrased

    rows = {m: read_jsonl(stage_root(run, "select") / m / "train.jsonl") for m in METHODS}
    for m, mrows in rows.items():
        assert [r["id"] for r in mrows] == list(examples)
        stats = json.loads((stage_root(run, "select") / m / "stats.json").read_text())
        counts = {s: sum(r["source"] == s for r in mrows) for s in ("self", "paraphrase", "gold")}
        assert stats["composition"]["counts"] == counts
        assert stats["target_nll_per_token"] > 0
        for r in mrows:
            target = r["completion"][0]["content"]
            if r["source"] == "self":
                assert verdicts[r["id"]]["correct"] is True and target == preds[r["id"]]["prediction"]
                assert r["self_verdict"]["correct"] is True
            elif r["source"] == "paraphrase":
                assert pverdicts[r["id"]]["correct"] is True and target == paras[r["id"]]["paraphrase"]
            else:
                assert target.endswith(f"The answer is {examples[r['id']]['meta']['answer']}.")

    comp = {m: json.loads((stage_root(run, "select") / m / "stats.json").read_text())["composition"]["counts"]
            for m in METHODS}
    assert comp["sft"] == {"self": 0, "paraphrase": 0, "gold": 16}
    # The taught model answers half the questions in its own style and rewrites a quarter of the golds.
    assert comp["s3ft"]["self"] >= 4 and comp["s3ft"]["paraphrase"] >= 1 and comp["s3ft"]["gold"] >= 1
    assert comp["ssr"]["self"] == comp["s3ft"]["self"] and comp["ssr"]["paraphrase"] == 0
    assert comp["sdft"]["self"] == 0 and comp["sdft"]["paraphrase"] >= comp["s3ft"]["paraphrase"]
    nll = {m: json.loads((stage_root(run, "select") / m / "stats.json").read_text())["target_nll_per_token"]
           for m in METHODS}
    assert nll["s3ft"] < nll["sft"]  # the model's own answers are closer to it than the gold

    for m in METHODS:
        assert (stage_root(run, "train") / m / "adapter" / "adapter_config.json").is_file()
        metrics = json.loads((stage_root(run, "evaluate") / m / "metrics.json").read_text())
        assert metrics["n"] == 8 and 0 <= metrics["accuracy"] <= 1
    report = stage_root(run, "report")
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["methods"]) == set(METHODS) and metrics["base"]["accuracy"] is not None
    assert all((report / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
               for f in ("composition.png", "accuracy.png", "target_nll.png", "gain_vs_forgetting.png"))
    general = json.loads((stage_root(run, "evaluate") / "s3ft" / "metrics.json").read_text())["general"]
    assert general["fixture"]["n"] == 4 and "general_mean_delta_vs_base" in metrics["methods"]["s3ft"]
    assert "| s3ft |" in (report / "report.md").read_text()

    # A second run skips every stage.
    r = cli("run", str(config), cwd=tmp_path)
    assert r.returncode == 0 and "0 stage unit(s) ran" in r.stdout, r.stdout + r.stderr[-2000:]
    # Changing train.* reruns only train, evaluate of the methods, and report.
    r = cli("run", str(config), "train.learning_rate=2e-3", "method=[sft,s3ft]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    ran = {line.split("]")[1].split(":")[0].strip() for line in r.stderr.splitlines() if ": running" in line}
    assert ran == {"train/sft", "train/s3ft", "evaluate/sft", "evaluate/s3ft", "report"}, ran
    st = cli("status", str(run), cwd=tmp_path)
    assert st.returncode == 0 and all(line.split()[1] == "done" for line in st.stdout.splitlines()[1:]), st.stdout


def test_learning_curves_through_the_cli(taught_model, tmp_path):
    """`evaluate.curve`: snapshots during training, each scored on validation samples; the base is step 0."""
    config = write_config(tmp_path, taught_model)
    fixture = Path(__file__).parent / "fixtures" / "gsm8k_test.jsonl"
    curve = (f"evaluate.curve={{points: 2, seeds: [0], in_domain: {{path: '{DATA / 'tiny_gsm8k_test.jsonl'}', "
             f"split: val, limit: 4}}, general: [{{name: fix, task: gsm8k, source: {{path: '{fixture}', limit: 3}}}}]}}")
    r = cli("run", str(config), "method=[sft,s3ft]", curve, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    base = json.loads((stage_root(run, "evaluate") / "base" / "metrics.json").read_text())["curve"]
    assert [p["step"] for p in base] == [0] and set(base[0]["general"]) == {"fix"}
    for m in ("sft", "s3ft"):
        steps = json.loads((stage_root(run, "train") / m / "manifest.json").read_text())["counts"]["snapshots"]
        points = json.loads((stage_root(run, "evaluate") / m / "metrics.json").read_text())["curve"]
        assert [p["step"] for p in points] == steps and len(steps) == 2
        assert all(0 <= p["in_domain"] <= 1 and p["general_mean"] == p["general"]["fix"] for p in points)
        preds = read_jsonl(stage_root(run, "evaluate") / m / "curve" / f"step-{steps[0]}" / "in_domain" / "predictions.jsonl")
        assert len(preds) == 4
    report = stage_root(run, "report")
    assert (report / "curves.png").read_bytes()[:4] == b"\x89PNG" and "curves.png" in (report / "report.md").read_text()
    # another seed than the curve's: no snapshots, no curves
    r = cli("run", str(config), "method=[sft]", curve, "seed=1", f"run_dir={tmp_path / 'run1'}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (stage_root(tmp_path / "run1", "train") / "sft" / "curve").exists()
    assert "curve" not in json.loads((stage_root(tmp_path / "run1", "evaluate") / "sft" / "metrics.json").read_text())


def test_killed_stage_resumes_without_losing_or_duplicating_rows(taught_model, tmp_path):
    config = write_config(tmp_path, taught_model)
    assert cli("run", str(config), "method=s3ft", "--until", "judge", cwd=tmp_path).returncode == 0
    gen = stage_root(tmp_path / "run", "generate")
    full = (gen / "rows.jsonl").read_text().splitlines(keepends=True)
    # Simulate a kill mid-stage: no manifest, half the rows, and a torn last line.
    (gen / "manifest.json").unlink()
    (gen / "rows.jsonl").write_text("".join(full[:7]) + full[7][:20])
    st = cli("status", str(tmp_path / "run"), cwd=tmp_path)
    assert "generate                 partial" in st.stdout, st.stdout
    r = cli("run", str(config), "method=s3ft", "--until", "generate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming, 7 of 16 rows already written" in r.stderr
    assert (gen / "rows.jsonl").read_text().splitlines(keepends=True) == full  # greedy: same rows, same order


def test_bad_input_names_file_line_and_key(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q1", "answer": "1+1=2\\n#### 2"}\n{"question": "q2", "answer": \n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"run_dir: {tmp_path / 'run'}\ndata:\n  train: {{path: {bad}}}\nmodel: {{path: nowhere}}\n")
    r = cli("run", str(cfg), "--until", "data", cwd=tmp_path)
    assert r.returncode == 2 and f"{bad}:2" in r.stderr, r.stderr
    cfg.write_text(f"data:\n  train: {{path: {bad}}}\ntrain:\n  epochs: 1\n  learning_rat: 0.1\n")
    r = cli("validate", str(cfg), cwd=tmp_path)
    assert r.returncode == 2 and "train.learning_rat" in r.stderr and f"{cfg}:5" in r.stderr, r.stderr
    empty_gold = tmp_path / "empty.jsonl"
    empty_gold.write_text('{"question": "q1", "answer": "1+1=2\\n#### 2"}\n{"question": "q2", "answer": "  "}\n')
    cfg.write_text(f"run_dir: {tmp_path / 'run2'}\nmodel: {{path: nowhere}}\ndata:\n  train: {{path: {empty_gold}}}\n")
    r = cli("run", str(cfg), "--until", "data", cwd=tmp_path)
    assert r.returncode == 2 and f"{empty_gold}:2" in r.stderr and "answer" in r.stderr, r.stderr


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    "task, judge",
    [("mbpp", "code"), ("nq", "qa"), ("gsm8k", "llm")],
)
def test_other_tasks_and_judges_through_the_pipeline(taught_model, tmp_path, task, judge):
    """Each built-in task with its judge (and the LLM judge, with the base model judging) through select."""
    config = write_config(tmp_path, taught_model)
    r = cli("run", str(config), "method=[sft,s3ft]", f"data.task={task}", f"judge.name={judge}",
            f"data.train.path={FIXTURES / f'{task}_train.jsonl'}", f"data.test.path={FIXTURES / f'{task}_test.jsonl'}",
            "data.train.limit=null", "data.test.limit=null", "--until", "select", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    n = len(read_jsonl(stage_root(run, "data") / "train.jsonl"))
    verdicts = read_jsonl(stage_root(run, "judge") / "rows.jsonl")
    assert len(verdicts) == n and all(v["reason"] for v in verdicts)
    if judge == "code":  # the random-ish model writes no passing code: every verdict says why
        assert all(v["correct"] is False for v in verdicts)
    if judge == "llm":  # a tiny model's replies are rarely a clean yes/no: undecided verdicts are kept apart
        assert all(v["reason"].startswith(("judge said", "undecided")) for v in verdicts)
    stats = json.loads((stage_root(run, "select") / "s3ft" / "stats.json").read_text())
    assert stats["composition"]["n"] == n
    assert not (stage_root(run, "train")).exists()  # --until select stops there


def test_chat_data_through_every_stage_with_a_template_that_rejects_a_system_role(tiny_model_dir, tmp_path):
    """ShareGPT rows (system prompts, earlier turns) to train on and TRL `messages` rows to evaluate on, through
    every stage, on a model whose chat template (Mistral-7B-Instruct-v0.2's kind) rejects a system role: the
    system prompt is folded into the first user turn, and the log says so once. Then status says why a stage
    is stale, and each manifest records its inputs and versions."""
    run = tmp_path / "run"
    cfg = {
        "run_dir": str(run), "method": ["sft", "s3ft"],
        "model": {"path": str(tiny_model_dir), "dtype": "float32",
                  "chat_template": str(FIXTURES / "mistral_chat_template.jinja")},
        "data": {"task": "generic", "judge": "qa", "train": {"path": str(FIXTURES / "chat_sharegpt.json")},
                 "test": {"path": str(FIXTURES / "chat_messages.jsonl")}},
        "generate": {"batch_size": 4, "max_new_tokens": 8}, "paraphrase": {"max_new_tokens": 8},
        "judge": {"workers": 1},
        "train": {"mode": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 2, "max_length": 256},
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    r = cli("run", str(config), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("rejects a system role") == 1 and "read as data.format sharegpt" in r.stderr
    examples = read_jsonl(stage_root(run, "data") / "train.jsonl")
    assert [m["role"] for m in examples[1]["context"]] == ["system", "user", "assistant"]
    rows = {r["id"]: r for r in read_jsonl(stage_root(run, "select") / "s3ft" / "train.jsonl")}
    assert [m["role"] for m in rows["train-2"]["prompt"]] == ["system", "user", "assistant", "user"]
    assert rows["train-2"]["prompt"][-1]["content"] == "Plus 10?"
    assert (stage_root(run, "train") / "sft" / "adapter" / "adapter_config.json").is_file()
    assert json.loads((stage_root(run, "evaluate") / "s3ft" / "metrics.json").read_text())["n"] == 3
    manifest = json.loads((stage_root(run, "train") / "sft" / "manifest.json").read_text())
    assert {"python", "torch", "transformers", "trl", "peft"} <= set(manifest["versions"])
    assert "train.learning_rate" in manifest["inputs"] and "model.chat_template" in manifest["inputs"]
    st = cli("status", str(run), cwd=tmp_path)
    assert all(line.split()[1] == "done" for line in st.stdout.splitlines()[1:]), st.stdout
    r = cli("run", str(config), "train.learning_rate=2e-3", "--until", "select", cwd=tmp_path)  # saves the config
    assert r.returncode == 0 and "0 stage unit(s) ran" in r.stdout, r.stderr[-2000:]
    st = cli("status", str(run), cwd=tmp_path)  # read against the saved config: train is stale, and why
    assert "train/sft" in st.stdout and "(changed: train.learning_rate)" in st.stdout, st.stdout
