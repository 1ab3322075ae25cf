"""`s3ft demo --world v5`: the four methods once per base, then paired differences over bases with an interval.
Two stand-in bases (tiny random models named as two bases) run a shortened v5 config through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import HANG_GUARD_S

pytestmark = pytest.mark.integration


def test_the_v5_demo_runs_each_base_and_pairs_the_methods_over_bases(tiny_model_dir, tmp_path):
    bases = []
    for name in ("base-a", "base-b"):
        shutil.copytree(tiny_model_dir, tmp_path / name)
        bases += ["--base", str(tmp_path / name)]
    short = ["data.train.limit=8", "data.test.limit=4", "generate.max_new_tokens=12", "paraphrase.max_new_tokens=12",
             "train.batch_size=4", *[f"evaluate.general.{i}.source.limit=3" for i in range(7)]]
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--world", "v5", *bases, "--run-dir", str(tmp_path / "w"),
                        *short], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                       timeout=HANG_GUARD_S)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["bases"] == ["base-a", "base-b"]
    assert set(summary["per_base"]["base-a"]) == {"sft", "ssr", "sdft", "s3ft"}
    assert summary["primary"]["n"] == 2 and summary["primary"]["low"] is not None
    assert summary["primary"]["reading"] in ("S3FT forgets less than SFT", "S3FT forgets more than SFT", "inconclusive")
    md = (tmp_path / "w" / "summary.md").read_text()
    assert "| base-a |" in md and "95% CI" in md and "Time per stage, all bases" in md
    assert list(summary["preconditions"]["base-a"]) == ["1", "2", "3", "4", "5"] and "- base-b: 1 SFT keeps" in md
    metrics = json.loads((tmp_path / "w" / "base-a" / "08_evaluate" / "base" / "metrics.json").read_text())
    assert metrics["general"]["chain"]["reference_nll"]["by_style"].keys() == {"so", "step", "we", "gold"}


def test_the_v5_demo_without_a_base_says_how_to_build_one(tmp_path):
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--world", "v5", "--run-dir", str(tmp_path / "w")],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=HANG_GUARD_S)
    assert r.returncode == 2 and "research.world.v5.pretrain" in r.stderr
