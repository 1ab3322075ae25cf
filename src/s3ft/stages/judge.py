"""Stages 3 and 5, judge and judge_paraphrase: verdicts on the model's answers and paraphrases.

Reads the examples and the upstream stage's rows (`prediction` or `paraphrase`); appends
`{id, correct, reason, extracted, sandbox}` rows (the counts say how many verdicts ran code in each
sandbox). A paraphrase rejected before judging (it talks about the reference answer) gets a `False`
verdict carrying the rejection as its reason, without a judge call.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from s3ft.records import Example, Verdict
from s3ft.rundir import Rows, read_jsonl
from s3ft.stages.data import load_examples

log = logging.getLogger("s3ft.judge")


def judge_into(rows: Rows, judge, pairs: list[tuple[Example, str]], chunk: int, desc: str) -> int:
    """Judge every (example, text) not yet in `rows`; returns how many were judged now."""
    todo = [(ex, text) for ex, text in pairs if ex.id not in rows]
    with tqdm(total=len(pairs), initial=len(pairs) - len(todo), desc=desc, unit="ex") as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            verdicts = judge([ex for ex, _ in part], [t for _, t in part])
            rows.append({"id": ex.id, **v.to_dict()} for (ex, _), v in zip(part, verdicts, strict=True))
            bar.update(len(part))
    return len(todo)


def summarize(rows: Rows) -> dict:
    vals = [r["correct"] for r in rows.rows.values()]
    return {
        "rows": len(vals),
        "correct": sum(v is True for v in vals),
        "wrong": sum(v is False for v in vals),
        "undecided": sum(v is None for v in vals),
        "sandbox": dict(Counter(r["sandbox"] for r in rows.rows.values() if r.get("sandbox"))),
    }


def run(ctx, out: Path, upstream: str = "generate", field: str = "prediction") -> dict:
    examples = {ex.id: ex for ex in load_examples(ctx.stage_dir("data"), "train")}
    texts = read_jsonl(ctx.stage_dir(upstream) / "rows.jsonl")
    rows = Rows(out / "rows.jsonl")
    rejected = [r for r in texts if r.get("rejected")]
    rows.append({"id": r["id"], **Verdict(False, f"rejected before judging: {r['rejected']}").to_dict()} for r in rejected)
    pairs = [(examples[r["id"]], r[field]) for r in texts if not r.get("rejected")]
    judge_into(rows, ctx.judge(), pairs, ctx.chunk, "judge" if upstream == "generate" else "judge_paraphrase")
    counts = summarize(rows)
    log.info("%s: %d correct, %d wrong, %d undecided", upstream, counts["correct"], counts["wrong"], counts["undecided"])
    return counts


def run_paraphrase(ctx, out: Path) -> dict:
    return run(ctx, out, upstream="paraphrase", field="paraphrase")
