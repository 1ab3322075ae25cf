"""Benchmark: re-running a finished run (every stage skipped) against the CLI's own start-up (`s3ft --help`).

Builds a tiny model and runs `configs/tiny.yaml` on a few rows once (untimed), then times, as separate
processes, `s3ft run CONFIG` on the finished run and `s3ft --help`; prints each (median of `--repeats`) and
the ratio, which should be at most 2x: deciding that nothing is to do must not cost a model load.
Run: `python benchmarks/rerun.py [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    s3ft = [sys.executable, "-m", "s3ft"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*s3ft, "make-tiny", f"{tmp}/model"], check=True, capture_output=True)
        overrides = [f"run_dir={tmp}/run", f"model.path={tmp}/model", "data.train.limit=8", "data.test.limit=4",
                     "train.max_steps=1"]
        config = str(ROOT / "configs" / "tiny.yaml")
        subprocess.run([*s3ft, "run", config, *overrides], check=True, capture_output=True, cwd=ROOT)

        def timed(cmd: list[str]) -> list[float]:
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                runs.append(time.perf_counter() - start)
                if r.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
                if "run" in cmd and "0 stage unit(s) ran" not in r.stdout:
                    raise SystemExit(f"the finished run ran something:\n{r.stdout}")
            return runs

        rerun, help_ = timed([*s3ft, "run", config, *overrides]), timed([*s3ft, "--help"])
    for name, runs in (("s3ft run (finished run)", rerun), ("s3ft --help", help_)):
        print(f"{name}: {statistics.median(runs):.2f} s (runs: {', '.join(f'{x:.2f}' for x in runs)})")
    print(f"ratio: {statistics.median(rerun) / statistics.median(help_):.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
