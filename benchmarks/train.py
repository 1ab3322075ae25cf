"""Benchmark: s3ft's train stage against a plain TRL `SFTTrainer` script, in training tokens per second.

Same model (the shipped world model, full fine-tuning, float32 on the CPU), rows (the target task's gold
training rows), batch size, maximum length, learning rate and one epoch, in one process. Tokens per second
count the rows' real tokens (prompt and answer, no padding) over the same span on both sides: load the
model, build the trainer, train, save the weights (s3ft: `train_model`, which does all four). s3ft is also
run with `train.packing` (padding-free packing), which the plain script does not set. The plain script sets float32 and no activation checkpointing,
as s3ft does on a CPU without native bf16: TRL's own defaults (bf16 autocast, activation checkpointing) ran
23 s per step here, 10x slower. Prints the median of `--repeats` and the ratios.
Both sides run in the same precision: float32, or bf16 mixed precision with `--bf16` (s3ft's own default turns
bf16 on where the CPU has native bf16, so the script sets it on both sides rather than leave it automatic).
Each arm first runs `--warmup` times untimed (first-call costs: lazy imports, kernel selection, file
caches), then the repeats alternate the arms' order (A B, B A, ...) so that drift in the machine's speed
falls on both sides.
Run: `python benchmarks/train.py [--rows 512] [--batch-size 16] [--repeats 3] [--warmup 1] [--bf16] [--no-packing]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="both sides in bf16 mixed precision (where the CPU has it)")
    p.add_argument("--no-packing", action="store_true", help="skip the packing arm (slow on a CPU)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each arm first (first-call costs)")
    args = p.parse_args()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.training import train_model
    from s3ft.world import SHIPPED_BASE, split_rows

    torch.set_num_threads(2)
    model_dir = str(SHIPPED_BASE)
    rows = [{"prompt": [{"role": "user", "content": r["question"]}],
             "completion": [{"role": "assistant", "content": r["gold"]}]}
            for r in split_rows("shop", "train", args.rows)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    tokens = sum(len(tok.apply_chat_template([*r["prompt"], *r["completion"]], return_dict=True)["input_ids"])
                 for r in rows)
    lr, max_length = 1e-4, 512

    def plain(out: Path) -> float:
        start = time.perf_counter()  # the span train_model times: load, build, train, save
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        cfg = SFTConfig(output_dir=str(out), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
                        learning_rate=lr, max_length=max_length, completion_only_loss=True, save_strategy="no",
                        report_to="none", use_cpu=True, logging_steps=1000, seed=0,
                        bf16=args.bf16, gradient_checkpointing=False)  # the same precision as s3ft's side
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
        trainer.train()
        trainer.save_model(str(out / "final"))
        return time.perf_counter() - start

    def s3ft(out: Path, packing: bool) -> float:
        out.parent.mkdir(parents=True, exist_ok=True)
        (out.parent / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = TrainConfig(mode="full", learning_rate=lr, epochs=1, batch_size=args.batch_size, max_length=max_length,
                          packing=packing, logging_steps=1000, save_steps=100_000,
                          bf16=args.bf16)  # set, not automatic: a CPU with bf16 would turn it on for s3ft only
        start = time.perf_counter()
        train_model(out.parent / "rows.jsonl", out, ModelConfig(path=model_dir, dtype="float32"), cfg, 0)
        return time.perf_counter() - start

    runs: dict[str, list[float]] = {"plain TRL SFTTrainer": [], "s3ft train": []}
    if not args.no_packing:
        runs["s3ft train, packing"] = []
    arms = {"plain TRL SFTTrainer": lambda d: plain(d), "s3ft train": lambda d: s3ft(d / "out", False)}
    if "s3ft train, packing" in runs:
        arms["s3ft train, packing"] = lambda d: s3ft(d / "out", True)
    with tempfile.TemporaryDirectory() as tmp:
        warm = {k: ", ".join(f"{arm(Path(tmp) / f'warm-{j}-{w}'):.1f}" for w in range(args.warmup))
                for j, (k, arm) in enumerate(arms.items())} if args.warmup else {}
        for i in range(args.repeats):  # each repeat runs every arm, in the reverse order of the one before
            for j, (k, arm) in enumerate(list(arms.items())[:: 1 if i % 2 == 0 else -1]):
                runs[k].append(arm(Path(tmp) / f"run-{i}-{j}"))
    rate = {k: tokens / statistics.median(v) for k, v in runs.items()}
    print(f"{len(rows)} rows, {tokens} tokens, batch {args.batch_size}, one epoch, "
          f"{'bf16 mixed precision' if args.bf16 else 'float32'}, CPU; warm-up runs (not counted): {warm or 'none'}")
    for k, v in runs.items():
        print(f"{k}: {rate[k]:.0f} tokens/s (seconds: {', '.join(f'{x:.1f}' for x in v)})")
    base = rate["plain TRL SFTTrainer"]
    print(f"ratio vs plain TRL: s3ft train {rate['s3ft train'] / base:.2f}x"
          + (f", s3ft train with packing {rate['s3ft train, packing'] / base:.2f}x" if "s3ft train, packing" in rate
             else ""))


if __name__ == "__main__":
    main()
