"""Benchmark: pre-training the world's base model with length-bucketed batches against random batches.

Same rows, model, batch size and steps; prints the seconds per step of each and the ratio (median of
`--repeats` runs each, in one process). Run: `python benchmarks/pretrain_batches.py [--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.stages.train import train_model
    from s3ft.tiny import build_tiny_model
    from s3ft.world.pretrain import PretrainConfig, build_rows

    torch.set_num_threads(2)
    base = PretrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results: dict[str, list[float]] = {"random": [], "bucketed": []}
        for name, buckets in (("random", 0), ("bucketed", base.length_buckets)):
            rows = build_rows(replace(base, length_buckets=buckets))[: args.steps * base.batch_size]
            (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        init = tmp / "init"
        build_tiny_model(init, hidden_size=base.hidden_size, num_layers=base.num_layers, num_heads=base.num_heads,
                         vocab_size=base.vocab_size, texts=[r["prompt"][0]["content"] for r in rows])
        for i in range(args.repeats):
            for name in results:
                cfg = TrainConfig(mode="full", learning_rate=base.learning_rate, max_steps=args.steps,
                                  batch_size=base.batch_size, logging_steps=1000, save_steps=100_000,
                                  max_length=512, shuffle=False)
                start = time.perf_counter()
                train_model(tmp / f"{name}.jsonl", tmp / f"out-{name}-{i}", ModelConfig(path=str(init)), cfg, 0)
                results[name].append((time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"{k}: {v:.3f} s/step (runs: {', '.join(f'{x:.3f}' for x in results[k])})")
    print(f"speed-up, bucketed vs random batches: {med['random'] / med['bucketed']:.2f}x")


if __name__ == "__main__":
    main()
