"""Benchmark for a lent GPU: s3ft's throughput on a model with Mistral-7B's shape, and the GPU-hours it implies.

No hub and no vLLM on the lent machine, so the model is randomly initialised with Mistral-7B-v0.2's shape
(Llama layers: hidden 4096, 32 layers, 32 heads, 8 KV heads, MLP 14336, vocabulary of the offline tokenizer
~32k) in bfloat16 and saved, then run through s3ft's own code: the hf backend's generation (a random model
never stops early, so every prompt makes `--new-tokens` tokens) and NLL scoring, and LoRA training steps
through the train stage (`train_model`: r 16, all linear layers, batch 8 of `--train-tokens` tokens, bf16).
Prints tokens per second of each (one timed repeat after an untimed warm-up for generation and NLL; training:
an untimed warm-up run of 2 steps, then a timed run of `--train-steps` steps, at least 10, the trainer's runtime
over them) and the GPU-hours of the paper's configs extrapolated from them (`hours`). With `--results DIR`,
`DIR/throughput.json` is rewritten as each phase finishes (build, generate, nll, train, hours; `phase` names the
last one done), so that an out-of-memory error in training keeps the inference numbers.
`--shape tiny --device cpu` checks the script on a CPU (under a minute on 2 cores).
Run: `python benchmarks/gpu_throughput.py [--shape mistral-7b] [--out DIR] [--results DIR]` (at most ~8
minutes on an H100/H200).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SHAPES = {
    "mistral-7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, max_position_embeddings=32768, rope_theta=1e6),
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=4096),
}
CONFIGS = {  # what the paper's configs do, per task (docs/paper.md): rows, tokens per row
    "gsm8k": {"train_rows": 7473, "test_rows": 1319, "prompt": 120, "answer": 200},
    "nq": {"train_rows": 10000, "test_rows": 3610, "prompt": 60, "answer": 60},
    "mbpp": {"train_rows": 374, "test_rows": 500, "prompt": 200, "answer": 150},
}


def hours(tput: dict[str, float], epochs: int = 3, methods: int = 4) -> dict[str, dict[str, float]]:
    """GPU-hours per config, extrapolated from the measured tokens/s: generate and paraphrase (the paraphrase
    of every row, an upper bound), the NLL of the targets, training `methods` x `epochs` over the rows (prompt
    and answer tokens), and in-domain evaluation of the base and every method. lm-eval is not included."""
    out = {}
    for name, c in CONFIGS.items():
        gen = 2 * c["train_rows"] * c["answer"] / tput["generate_tokens_per_s"]
        nll = methods * c["train_rows"] * (c["prompt"] + c["answer"]) / tput["nll_tokens_per_s"]
        train = methods * epochs * c["train_rows"] * (c["prompt"] + c["answer"]) / tput["train_tokens_per_s"]
        ev = (methods + 1) * c["test_rows"] * c["answer"] / tput["generate_tokens_per_s"]
        out[name] = {k: round(v / 3600, 3) for k, v in
                     {"generate+paraphrase": gen, "nll": nll, "train": train, "evaluate": ev,
                      "total": gen + nll + train + ev}.items()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--prompts", type=int, default=64, help="generation and NLL batch (one batch)")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--train-tokens", type=int, default=512, help="tokens per training row")
    p.add_argument("--train-steps", type=int, default=10, help="timed training steps (at least 10)")
    p.add_argument("--out", default=None, help="where to save the random model (default: a temporary folder)")
    p.add_argument("--results", default=None, help="write DIR/throughput.json as each phase finishes")
    args = p.parse_args()
    if args.train_steps < 10:
        p.error("--train-steps: at least 10 timed steps")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from s3ft.backends.base import GenParams
    from s3ft.backends.hf import HFBackend
    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.tiny import build_tokenizer
    from s3ft.training import train_model

    cpu = args.device == "cpu"
    dtype = torch.float32 if cpu else torch.bfloat16
    result: dict = {"shape": args.shape, "device": torch.cuda.get_device_name() if not cpu else "cpu",
                    "torch": torch.__version__, "seconds": {}}
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory()
    out = Path(args.out or tmp.name) / "model"
    tokenizer = build_tokenizer(32000 if args.shape == "mistral-7b" else 2000)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SHAPES[args.shape])
    torch.manual_seed(0)
    with torch.device(args.device):
        torch.set_default_dtype(dtype)
        model = LlamaForCausalLM(config)
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    result["params"] = sum(p.numel() for p in model.parameters())
    del model
    if not cpu:
        torch.cuda.empty_cache()
    result["seconds"]["build_and_save"] = round(time.perf_counter() - t0, 1)

    def save(phase: str) -> None:
        result["phase"] = phase
        if args.results:
            Path(args.results).mkdir(parents=True, exist_ok=True)
            tmp_file = Path(args.results) / ".throughput.json.tmp"
            tmp_file.write_text(json.dumps(result, indent=2) + "\n")
            tmp_file.replace(Path(args.results) / "throughput.json")

    save("build")

    mcfg = ModelConfig(path=str(out), dtype=str(dtype).removeprefix("torch."), device=args.device)
    words = "the of and to in is for on that with as by at from it an be this are or which".split()
    questions = [" ".join(words[(i * 7 + j) % len(words)] for j in range(60 + i % 40)) + "?" for i in range(args.prompts)]
    prompts = [[{"role": "user", "content": q}] for q in questions]
    t0 = time.perf_counter()
    backend = HFBackend(mcfg, batch_size=args.prompts)
    result["seconds"]["load"] = round(time.perf_counter() - t0, 1)
    params = GenParams(max_new_tokens=args.new_tokens)
    backend.generate(prompts[:2], GenParams(max_new_tokens=8))  # warm-up
    sync = (lambda: None) if cpu else torch.cuda.synchronize
    t0 = time.perf_counter()
    answers = backend.generate(prompts, params)
    sync()
    dt = time.perf_counter() - t0
    made = sum(len(backend.tokenizer(str(a), add_special_tokens=False)["input_ids"]) for a in answers)
    result["generate_tokens_per_s"] = round(args.prompts * args.new_tokens / dt, 1)
    result["generate_decoded_tokens"] = made  # re-tokenised text: about prompts x new tokens when none stopped
    result["seconds"]["generate"] = round(dt, 2)
    save("generate")
    completions = [" ".join(words[(i + j) % len(words)] for j in range(200)) for i in range(args.prompts)]
    backend.nll(prompts[:2], completions[:2])
    t0 = time.perf_counter()
    scores = backend.nll(prompts, completions)
    sync()
    dt = time.perf_counter() - t0
    tokens = sum(len(backend.completion_tokens(p, c)[0]) for p, c in zip(prompts, completions, strict=True))
    result["nll_tokens_per_s"] = round(tokens / dt, 1)
    result["nll_completion_tokens"] = sum(n for _, n in scores)
    result["seconds"]["nll"] = round(dt, 2)
    backend.close()
    del backend
    if not cpu:
        torch.cuda.empty_cache()
        result["peak_gpu_mib_inference"] = round(torch.cuda.max_memory_allocated() / 2**20)
        torch.cuda.reset_peak_memory_stats()
    save("nll")

    row_words = args.train_tokens // 2
    rows = [{"prompt": [{"role": "user", "content": questions[i % len(questions)]}],
             "completion": [{"role": "assistant", "content": " ".join(words[(i + j) % len(words)] for j in range(row_words))}]}
            for i in range(8 * args.train_steps)]
    train_file = Path(tmp.name) / "train.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tcfg = TrainConfig(mode="lora", lora_r=16, lora_alpha=32, batch_size=8, max_steps=args.train_steps, logging_steps=1,
                       max_length=args.train_tokens + 128, warmup_ratio=0.0, save_steps=10_000, bf16=not cpu, shuffle=False)
    base = mcfg.model_copy(update={"dtype": "auto"})
    t0 = time.perf_counter()  # warm-up, untimed: kernels, allocator, the first step's one-off costs
    train_model(train_file, Path(tmp.name) / "warmup", base, tcfg.model_copy(update={"max_steps": 2}), 0)
    result["seconds"]["train_warmup"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    metrics = train_model(train_file, Path(tmp.name) / "train", base, tcfg, 0)
    result["seconds"]["train_stage"] = round(time.perf_counter() - t0, 1)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    per_row = sum(len(tok.apply_chat_template([*r["prompt"], *r["completion"]], tokenize=True, return_dict=True)["input_ids"])
                  for r in rows[:8]) / 8
    times = [h["train_runtime"] for h in metrics["log_history"] if "train_runtime" in h]
    steps = metrics["steps"]
    step_s = times[0] / steps if times else float("nan")
    result["train_tokens_per_s"] = round(8 * min(per_row, tcfg.max_length) / step_s, 1)
    result["train_tokens_per_row"] = round(per_row, 1)
    result["train_seconds_per_step"] = round(step_s, 3)
    if not cpu:
        result["peak_gpu_mib_train"] = round(torch.cuda.max_memory_allocated() / 2**20)
    save("train")
    result["gpu_hours_extrapolated"] = hours(result)
    save("hours")
    print(json.dumps(result, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
