"""Benchmark: s3ft's vllm backend on vLLM's CPU build against its hf backend, on the same rows in one process.

Three jobs on the shipped world model (float32, greedy), each with the demo config's settings: generating
answers to the target task's training questions (`generate`), paraphrasing their golds (`paraphrase`, long
and uneven outputs), and scoring the golds' NLL (`nll`, what the select stage does). Prints seconds of each
backend (median of `--repeats`), the ratio hf / vllm (above 1: vLLM faster), rows per second, how many
outputs are identical, and the largest NLL gap per token; vLLM's engine start-up is timed apart.
Needs the CPU-vLLM environment (docs/gpu.md, "Testing the vLLM path on a CPU"):
`python benchmarks/vllm_cpu.py [--n 128] [--batch-size 64] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: same threads as hf
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=128, help="training questions")
    p.add_argument("--batch-size", type=int, default=64, help="the demo config's generate.batch_size")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    from s3ft.backends.base import GenParams
    from s3ft.backends.hf import HFBackend
    from s3ft.backends.vllm import VLLMBackend
    from s3ft.config import load_config
    from s3ft.demo import DEMO_CONFIG
    from s3ft.registry import resolve

    torch.set_num_threads(2)
    cfg = load_config(DEMO_CONFIG)
    task = resolve("task", cfg.data.task)(cfg.data)
    examples = list(task.load(cfg.data.train))[: args.n]
    prompts = [task.prompt(ex) for ex in examples]
    jobs = {
        "generate": ([task.prompt(ex) for ex in examples], GenParams(max_new_tokens=cfg.generate.max_new_tokens)),
        "paraphrase": ([task.paraphrase_prompt(ex) for ex in examples],
                       GenParams(max_new_tokens=cfg.paraphrase.max_new_tokens)),
    }
    golds = [task.gold_target(ex) for ex in examples]
    model = cfg.model.model_copy(update={"device": "cpu"})
    hf = HFBackend(model, batch_size=args.batch_size)
    start = time.perf_counter()
    vllm = VLLMBackend(cfg.model, batch_size=args.batch_size, enforce_eager=True, max_model_len=1024)
    print(f"vLLM engine start-up: {time.perf_counter() - start:.1f} s (once per run)")

    def timed(fn):
        runs, out = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            runs.append(time.perf_counter() - t)
        return statistics.median(runs), runs, out

    for name, (ps, params) in jobs.items():
        (th, rh, oh), (tv, rv, ov) = (timed(lambda b=b, ps=ps, params=params: [str(c) for c in b.generate(ps, params)])
                                      for b in (hf, vllm))
        same = sum(a == b for a, b in zip(oh, ov, strict=True))
        print(f"{name}: hf {th:.2f} s ({', '.join(f'{x:.2f}' for x in rh)}), vllm {tv:.2f} s "
              f"({', '.join(f'{x:.2f}' for x in rv)}) for {len(ps)} rows; hf/vllm {th / tv:.2f}x; "
              f"identical outputs {same}/{len(ps)}")
    (th, rh, oh), (tv, rv, ov) = (timed(lambda b=b: b.nll(prompts, golds)) for b in (hf, vllm))
    gap = max(abs(a - b) / n for (a, n), (b, _) in zip(oh, ov, strict=True))
    print(f"nll: hf {len(golds) / th:.1f} rows/s ({', '.join(f'{x:.2f}' for x in rh)} s), vllm {len(golds) / tv:.1f} "
          f"rows/s ({', '.join(f'{x:.2f}' for x in rv)} s); hf/vllm {th / tv:.2f}x; largest gap {gap:.2e} nats/token")
    vllm.close()


if __name__ == "__main__":
    main()
