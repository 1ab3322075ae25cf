"""Nothing lost: the real CLI killed with SIGKILL at seeded random moments, in every stage (train and evaluate
included), then run again until it finishes; the result is compared with an uninterrupted run.

Each start runs until it has reached the stage the kill aims at and made one to three steps of durable
progress there (a unit done, rows written, a trainer checkpoint; seeded), and is killed at a random moment up
to a quarter second later (a second overshot the short evaluate stage on a fast CPU), mid-work; no start may lose progress a kill left, each must add some, and no row may be
lost or repeated. The fast test kills 5 times, in generate, paraphrase, train (twice) and evaluate; the
`slow` one at least 50 times, over several rounds, aimed at every stage with work in it (prints where they
landed; kills aimed at a stage of a second or less may land in the next).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import HANG_GUARD_S

from s3ft.rundir import STAGES, read_json, read_jsonl, stage_root

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data"
ROWS = ("rows.jsonl", "predictions.jsonl", "verdicts.jsonl", "train.jsonl", "nll.jsonl")


def config(tmp: Path, model: Path, run: str, methods: list[str]) -> Path:
    cfg = {
        "run_dir": str(tmp / run), "method": methods, "model": {"path": str(model), "dtype": "float32"},
        "data": {"task": "gsm8k", "train": {"path": str(DATA / "tiny_gsm8k_train.jsonl"), "limit": 24},
                 "test": {"path": str(DATA / "tiny_gsm8k_test.jsonl"), "limit": 8}},
        # small chunks and frequent checkpoints: a kill can land between durable steps of every stage
        "generate": {"batch_size": 4, "max_new_tokens": 40}, "paraphrase": {"max_new_tokens": 40},
        "judge": {"workers": 1},
        "train": {"mode": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 2, "batch_size": 4, "learning_rate": 1e-3,
                  "max_length": 384, "logging_steps": 1, "save_steps": 2, "save_total_limit": 1},
        "cache": {"enabled": False},  # every resume recomputes what it lost: nothing served from a cache
    }
    path = tmp / f"{run}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(cfg: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "s3ft", "run", str(cfg)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def progress(run: Path) -> tuple[int, int, int]:
    """(units done, rows written, steps saved in trainer checkpoints): what a kill cannot take back. Read
    again when the live run removes a file or folder mid-scan (the trainer rotating its checkpoints)."""
    for _ in range(20):
        try:
            return _progress(run)
        except FileNotFoundError:
            time.sleep(0.05)
    return _progress(run)


def _progress(run: Path) -> tuple[int, int, int]:
    units = sum(1 for _ in run.rglob("manifest.json"))
    rows = sum(p.read_bytes().count(b"\n") for name in ROWS for p in run.rglob(name) if "checkpoint" not in str(p))
    steps = sum(max((int(c.parent.name.split("-")[1]) for c in d.glob("checkpoint-*/trainer_state.json")), default=0)
                for d in run.rglob("checkpoints"))
    return units, rows, steps


def stage_at(run: Path) -> str | None:
    """The stage the run has reached: the latest whose folder exists (a unit makes its folder as it starts)."""
    reached = [stage for stage in STAGES if stage_root(run, stage).exists()]
    return reached[-1] if reached else None


def outputs(run: Path, methods: list[str]) -> dict:
    """What a finished run produced, for comparison: every stage's rows (sorted by id), training sets,
    adapters' bytes, evaluation metrics."""
    out = {}
    for stage in ("generate", "judge", "paraphrase", "judge_paraphrase"):
        rows = read_jsonl(stage_root(run, stage) / "rows.jsonl")
        assert len({r["id"] for r in rows}) == len(rows), f"{stage}: an id written twice"
        out[stage] = sorted(rows, key=lambda r: r["id"])
    for m in methods:
        out[f"select/{m}"] = (stage_root(run, "select") / m / "train.jsonl").read_bytes()
        out[f"adapter/{m}"] = (stage_root(run, "train") / m / "adapter" / "adapter_model.safetensors").read_bytes()
    for m in ["base", *methods]:  # each test answer and its verdict, once each
        metrics = read_json(stage_root(run, "evaluate") / m / "metrics.json")
        out[f"evaluate/{m}"] = (metrics["n"], metrics["correct"])
        for name in ("predictions", "verdicts"):
            rows = read_jsonl(stage_root(run, "evaluate") / m / f"{name}.jsonl")
            assert len({r["id"] for r in rows}) == len(rows) == metrics["n"], f"evaluate/{m}/{name}: lost or repeated"
            out[f"evaluate/{m}/{name}"] = sorted(rows, key=lambda r: r["id"])
    return out


def kill_until_done(cfg: Path, run: Path, rng: random.Random, targets: list[str]) -> list[str]:
    """Start; wait until the run has reached the next stage of `targets` (non-decreasing) and made 1 to 3
    steps of durable progress there (seeded), then SIGKILL it at a random moment up to a quarter second later; once
    per target, then let a last start finish. Every kill lands mid-work, after progress that the next start
    must keep: after each kill the run holds strictly more than after the one before. Returns the stage each
    kill landed in (fewer kills when the run finished first)."""
    assert [STAGES.index(t) for t in targets] == sorted(STAGES.index(t) for t in targets), targets
    hit: list[str] = []
    before = progress(run)
    while True:
        p = start(cfg)
        if len(hit) < len(targets):
            target = STAGES.index(targets[len(hit)])
            steps, seen, last = rng.randint(1, 3), 0, progress(run)
            assert all(a >= b for a, b in zip(last, before, strict=True)), f"a start lost progress: {before} -> {last}"
            while p.poll() is None and seen < steps:
                time.sleep(0.05)
                if (now := progress(run)) != last:
                    seen, last = seen + (STAGES.index(stage_at(run) or "data") >= target), now
            if p.poll() is None:
                time.sleep(rng.uniform(0, 0.25))
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                hit.append(stage_at(run))
                now = progress(run)
                assert all(a >= b for a, b in zip(now, before, strict=True)), f"kill {len(hit)} lost progress"
                assert now != before, f"kill {len(hit)}: the start before it made no durable progress"
                before = now
                continue
        assert p.wait(timeout=HANG_GUARD_S) == 0, p.stderr.read()[-3000:]
        return hit


def reference(tmp: Path, model: Path, methods: list[str]) -> dict:
    """An uninterrupted run's outputs."""
    cfg = config(tmp, model, "ref", methods)
    p = start(cfg)
    assert p.wait(timeout=HANG_GUARD_S) == 0, p.stderr.read()[-3000:]
    return outputs(tmp / "ref", methods)


def check_same(killed: dict, ref: dict) -> None:
    """Every row once and the same results. Greedy generation on CPU in float32 gives the same text whatever
    the batch it ran in for this model, so training sets and adapters are compared byte for byte."""
    for key, value in ref.items():
        assert killed[key] == value, f"{key} differs from the uninterrupted run"


def test_killed_at_random_moments_the_run_resumes_to_the_same_result(taught_model, tmp_path):
    methods = ["sft", "s3ft"]
    ref = reference(tmp_path, taught_model, methods)
    cfg = config(tmp_path, taught_model, "killed", methods)
    targets = ["generate", "paraphrase", "train", "train", "evaluate"]
    hit = kill_until_done(cfg, tmp_path / "killed", random.Random(0), targets)
    print(f"kills landed in: {hit}")
    assert len(hit) == 5 and {"train", "evaluate"} <= set(hit), hit
    check_same(outputs(tmp_path / "killed", methods), ref)


@pytest.mark.slow
def test_fifty_kills_across_every_stage_and_method(taught_model, tmp_path):
    methods = ["sft", "ssr", "sdft", "s3ft"]
    ref = reference(tmp_path, taught_model, methods)
    hit: list[str] = []
    rounds = 0
    while len(hit) < 50:
        run = f"killed-{rounds}"
        cfg = config(tmp_path, taught_model, run, methods)
        rng = random.Random(rounds)
        targets = sorted(rng.choices(STAGES[1:-1], k=20), key=STAGES.index)  # data and report: too short to aim at
        hit += kill_until_done(cfg, tmp_path / run, rng, targets)
        check_same(outputs(tmp_path / run, methods), ref)
        rounds += 1
    print(f"{len(hit)} kills in {rounds} rounds, by stage: { {s: hit.count(s) for s in STAGES} }")
    # the long stages: kills aimed at the short ones (judge, select) may land in the next stage
    assert {"generate", "paraphrase", "train", "evaluate"} <= set(hit), hit
