"""Build a world v5 base: `python -m research.world.v5.pretrain OUT_DIR --train-seed S [--splits DIR]`.

The recipe (docs/world_v5.md, section 4): a 4-layer Llama, hidden 192, its own byte-level BPE tokenizer,
pre-trained from scratch on world v5's pre-training rows (`build.pretrain_rows`: the world's questions, their
answer styles drawn from the pre-training seed `S`), full training, loss on answers only, step-sorted
micro-batches, cosine from 2e-3. Resumable (the same command continues from the last checkpoint). Writes the
model (bfloat16) and `pretrain.json`: the recipe, where and how it was built (device, threads, CPU, seconds),
its validation record and its build checks (`checks`). `--score-only` re-scores a built base.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from research.world.pretrain import PretrainConfig, pretrain
from research.world.v5.build import PRETRAIN, pretrain_rows, write_world
from research.world.v5.checks import base_checks, base_record

log = logging.getLogger("s3ft.world")


@dataclass
class V5Config(PretrainConfig):
    """World v5's recipe: `PretrainConfig`'s fields, with v5's defaults (its v4-only fields unused)."""

    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 4
    vocab_size: int = 640
    steps: int = 1400
    save_steps: int = 100
    per_skill: dict[str, int] = field(default_factory=lambda: dict(PRETRAIN))
    opaque_paraphrase: int = 0
    arith_repeat: int = 1
    world: str = "v5"


def rows_of(cfg: V5Config) -> list[dict]:
    return pretrain_rows(cfg.seed, cfg.train_seed, cfg.per_skill)


def cpu_name() -> str:
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        import platform

        return platform.processor() or "unknown"


def record_of(splits_dir: Path):
    def record(model_dir: Path) -> dict:
        import torch

        rec = base_record(model_dir, splits_dir)
        return {"built_on": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()},
                "record": rec, "checks": base_checks(rec)}
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.v5.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--train-seed", type=int, required=True, help="the pre-training seed: it makes the base")
    p.add_argument("--splits", default=None, help="world v5's splits (default: written into OUT_DIR/../splits-v5)")
    p.add_argument("--steps", type=int, default=V5Config.steps)
    p.add_argument("--save-steps", type=int, default=V5Config.save_steps)
    p.add_argument("--score-only", action="store_true")
    args = p.parse_args(argv)
    from s3ft.logs import setup_logging

    setup_logging()
    splits = Path(args.splits or Path(args.out_dir).resolve().parent / "splits-v5")
    if not (splits / "world.json").is_file():
        write_world(splits)
    record = record_of(splits)
    if args.score_only:
        print(json.dumps(record(Path(args.out_dir)), indent=1))
        return
    cfg = V5Config(train_seed=args.train_seed, steps=args.steps, save_steps=args.save_steps)
    out = pretrain(args.out_dir, cfg, rows_of=rows_of, record=record)
    info = json.loads((out / "pretrain.json").read_text())
    print(json.dumps({"checks": info["checks"], "val": info["record"]["val"]}, indent=1))
    log.info("recipe: %s", json.dumps({k: v for k, v in asdict(cfg).items() if k != "per_skill"}))


if __name__ == "__main__":
    main()
