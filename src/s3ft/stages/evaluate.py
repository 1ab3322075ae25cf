"""Stage 8, evaluate: in-domain accuracy on the test split, for the base model and each method.

Reads `01_data/test.jsonl` and (for a method) its trained model from `07_train/<method>/`; writes
`<model>/predictions.jsonl`, `<model>/verdicts.jsonl` (same judge as the judge stage) and
`<model>/metrics.json`. Forgetting on general benchmarks is a separate evaluation that will write
beside these (`<model>/forgetting.json`); `evaluate.forgetting` is reserved for its settings.
"""

from __future__ import annotations

import logging
from pathlib import Path

from s3ft.rundir import Rows, write_json_atomic
from s3ft.stages.data import load_examples
from s3ft.stages.generate import gen_params, generate_into
from s3ft.stages.judge import judge_into, summarize

log = logging.getLogger("s3ft.evaluate")


def run(ctx, out: Path, model_name: str) -> dict:
    examples = load_examples(ctx.stage_dir("data"), "test")
    ecfg = ctx.cfg.evaluate
    params = gen_params(ctx.cfg.generate, getattr(ctx.task, "stop", ()), ecfg.max_new_tokens)
    preds = Rows(out / "predictions.jsonl")
    todo = [(ex.id, ctx.task.prompt(ex)) for ex in examples if ex.id not in preds]
    if todo:
        backend = ctx.backend() if model_name == "base" else ctx.trained_backend(model_name)
        generate_into(preds, backend, todo, params, ctx.chunk, "prediction", f"evaluate {model_name}")
    verdicts = Rows(out / "verdicts.jsonl")
    judge_into(verdicts, ctx.judge(), [(ex, preds.rows[ex.id]["prediction"]) for ex in examples], ctx.chunk,
               f"evaluate {model_name} judge")
    counts = summarize(verdicts)
    metrics = {"model": model_name, "n": counts["rows"], "correct": counts["correct"],
               "undecided": counts["undecided"],
               "accuracy": round(counts["correct"] / counts["rows"], 4) if counts["rows"] else None}
    write_json_atomic(out / "metrics.json", metrics)
    log.info("%s: accuracy %s (%d/%d)", model_name, metrics["accuracy"], counts["correct"], counts["rows"])
    return counts
