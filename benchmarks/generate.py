"""Benchmark: s3ft's HF generation backend against a batch-size-1 `model.generate` loop.

The loop is how public self-distillation code generates (one prompt at a time, greedy). Both run the
shipped world model on the same target-task training questions, greedy, the same `max_new_tokens`, in one
process; prints seconds of each (median of `--repeats`), the speed-up, and how many outputs are identical.
Run: `python benchmarks/generate.py [--n 128] [--batch-size 64] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=128, help="prompts")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=160, help="the demo config's generate.max_new_tokens")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    from s3ft.backends.base import GenParams
    from s3ft.backends.hf import HFBackend
    from s3ft.config import ModelConfig
    from s3ft.world import SHIPPED_BASE, split_rows

    torch.set_num_threads(2)
    prompts = [[{"role": "user", "content": r["question"]}] for r in split_rows("shop", "train", args.n)]
    backend = HFBackend(ModelConfig(path=str(SHIPPED_BASE), dtype="float32"), batch_size=args.batch_size)
    params = GenParams(max_new_tokens=args.max_new_tokens)
    tok, model = backend.tokenizer, backend.model

    @torch.inference_mode()
    def one_at_a_time() -> list[str]:
        out = []
        for m in prompts:
            ids = tok.apply_chat_template(m, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            seq = model.generate(**ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                                 eos_token_id=backend.eos_ids, pad_token_id=tok.pad_token_id)
            out.append(tok.decode(seq[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
        return out

    runs: dict[str, list[float]] = {"batch-1 loop": [], "s3ft hf backend": []}
    outputs = {}
    for _ in range(args.repeats):
        for name, fn in (("batch-1 loop", one_at_a_time),
                         ("s3ft hf backend", lambda: [str(c) for c in backend.generate(prompts, params)])):
            start = time.perf_counter()
            outputs[name] = fn()
            runs[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in runs.items()}
    for k, v in med.items():
        print(f"{k}: {v:.2f} s for {len(prompts)} prompts (runs: {', '.join(f'{x:.2f}' for x in runs[k])})")
    same = sum(a == b for a, b in zip(outputs["batch-1 loop"], outputs["s3ft hf backend"], strict=True))
    print(f"speed-up, s3ft hf backend (batch {args.batch_size}) vs batch-1 loop: "
          f"{med['batch-1 loop'] / med['s3ft hf backend']:.1f}x; identical outputs: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
