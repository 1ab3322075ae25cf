"""Benchmark: pre-training the world's base model with length-bucketed batches against random batches.

Same rows, model, batch size (64 rows per optimizer step) and steps: random batches; whole batches cut from
length buckets; micro-batches of `--micro` rows cut from length buckets, accumulated to 64 rows per step
(`PretrainConfig.micro_batch_size`); random micro-batches, accumulated (the same gradient as random
batches, less padding); and each step's random rows sorted by length, then cut into micro-batches
(`PretrainConfig.sort_steps`: the same gradient again, less padding still). Prints the seconds per step of each and the ratios against random
batches (median of `--repeats` runs each, in one process). Run: `python benchmarks/pretrain_batches.py
[--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `research/` is not installed: the repository root

BUCKETS = 8  # batches per length-sorted group, as build 1 ran (the default is now 0: random batches)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--micro", type=int, default=8)
    args = p.parse_args()
    import torch
    from transformers import AutoTokenizer

    from research.world.pretrain import PretrainConfig, bucket_by_length, build_rows, sort_within_steps, texts
    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.tiny import build_tiny_model
    from s3ft.training import train_model

    torch.set_num_threads(2)
    base = PretrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        arms = {"random": (0, 0), "bucketed": (BUCKETS, 0),
                f"bucketed micro-batches of {args.micro}": (BUCKETS, args.micro),
                f"random micro-batches of {args.micro}": (0, args.micro),
                f"step-sorted micro-batches of {args.micro}": (-1, args.micro),
                f"step-sorted micro-batches of {2 * args.micro}": (-1, 2 * args.micro)}
        results: dict[str, list[float]] = {name: [] for name in arms}
        rows = build_rows(base)
        init = tmp / "init"
        build_tiny_model(init, hidden_size=base.hidden_size, num_layers=base.num_layers, num_heads=base.num_heads,
                         vocab_size=base.vocab_size, texts=texts(rows))
        lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(init)(texts(rows))["input_ids"]]
        for name, (buckets, micro) in arms.items():  # as `pretrain` orders them, then the first steps' rows
            if buckets < 0:
                ordered = [rows[i] for i in sort_within_steps(len(rows), lengths, base.batch_size, args.steps,
                                                              random.Random("steps/0"))]
            else:
                ordered = bucket_by_length(rows, lengths, micro or base.batch_size, buckets,
                                           random.Random("buckets/0"))[: args.steps * base.batch_size]
            (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ordered))
        for i in range(args.repeats):
            for name, (_, micro) in arms.items():
                micro = micro or base.batch_size
                cfg = TrainConfig(mode="full", learning_rate=base.learning_rate, max_steps=args.steps,
                                  batch_size=micro, grad_accum=base.batch_size // micro, logging_steps=1000,
                                  save_steps=100_000, max_length=512, shuffle=False)
                start = time.perf_counter()
                train_model(tmp / f"{name}.jsonl", tmp / f"out-{name}-{i}", ModelConfig(path=str(init)), cfg, 0)
                results[name].append((time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"{k}: {v:.3f} s/step (runs: {', '.join(f'{x:.3f}' for x in results[k])})")
    for k in list(arms)[1:]:
        print(f"speed-up, {k} vs random batches: {med['random'] / med[k]:.2f}x")


if __name__ == "__main__":
    main()
