"""Stage 3, judge: verdicts on the base model's answers (and, for stage 5, `judge_paraphrase`, its paraphrases).

Reads the examples and the upstream stage's rows (`prediction` or `paraphrase`); appends
`{id, correct, reason, extracted, sandbox}` rows (the counts say how many verdicts ran code in each
sandbox). A paraphrase rejected before judging (it talks about the reference answer) gets a `False`
verdict carrying the rejection as its reason, without a judge call; a row the model did not run (`failed`: too
long for it) an undecided one saying why. A judge that fails on a chunk (raises,
or returns the wrong number of verdicts) stops the stage with a `StageError` naming it and the chunk; the
verdicts written before it are kept. The finished file is in the data's order; a shard run
(`s3ft.shards`) judges its own examples only.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from s3ft.errors import StageError
from s3ft.judges.code import CANNOT_SPLIT
from s3ft.records import Example, Verdict
from s3ft.rundir import Rows, read_jsonl
from s3ft.stages import Planned
from s3ft.stages.data import load_examples

log = logging.getLogger("s3ft.judge")
NAME = "judge"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit after generate: it reads the answers and the judge."""
    if "generate" not in fps:
        return []
    return [Planned({"upstream": fps["generate"], "judge": ctx.judge_parts}, lambda out: run(ctx, out))]


def judge_into(rows: Rows, judge, pairs: list[tuple[Example, str]], chunk: int, desc: str) -> int:
    """Judge every (example, text) not yet in `rows`; returns how many were judged now."""
    todo = [(ex, text) for ex, text in pairs if ex.id not in rows]
    with tqdm(total=len(pairs), initial=len(pairs) - len(todo), desc=desc, unit="ex") as bar:
        chunks = -(-len(todo) // chunk)
        for k, start in enumerate(range(0, len(todo), chunk), 1):
            part = todo[start : start + chunk]
            ids = [ex.id for ex, _ in part]
            try:
                verdicts = list(judge([ex for ex, _ in part], [t for _, t in part]))
            except Exception as e:
                log.debug("%s: the judge's traceback", desc, exc_info=True)
                raise StageError(desc, k, chunks, ids, len(rows), f"the judge raised {type(e).__name__}: {e}") from e
            if len(verdicts) != len(part) or not all(isinstance(v, Verdict) for v in verdicts):
                got = f"{len(verdicts)} verdicts ({', '.join(sorted({type(v).__name__ for v in verdicts}))})"
                raise StageError(desc, k, chunks, ids, len(rows), f"the judge returned {got} for {len(part)} texts")
            rows.append({"id": ex.id, **v.to_dict()} for (ex, _), v in zip(part, verdicts, strict=True))
            bar.update(len(part))
    return len(todo)


def unjudged(row: dict) -> Verdict | None:
    """The verdict of a text the judge does not see: none was made (the row failed: undecided, saying why), or
    a paraphrase rejected before judging (False); None for a text to judge."""
    if row.get("failed"):
        return Verdict(None, f"nothing to judge: {row['failed']}")
    if row.get("rejected"):
        return Verdict(False, f"rejected before judging: {row['rejected']}")
    return None


def summarize(rows: Rows) -> dict:
    vals = [r["correct"] for r in rows.rows.values()]
    return {
        "rows": len(vals),
        "correct": sum(v is True for v in vals),
        "wrong": sum(v is False for v in vals),
        "undecided": sum(v is None for v in vals),
        "sandbox": dict(Counter(r["sandbox"] for r in rows.rows.values() if r.get("sandbox"))),
        # of the undecided: code whose test could not be judged outside the program (docs/sandbox.md)
        "cannot_split": sum(r["correct"] is None and str(r.get("reason", "")).startswith(CANNOT_SPLIT)
                            for r in rows.rows.values()),
    }


def run(ctx, out: Path, upstream: str = "generate", field: str = "prediction") -> dict:
    examples = {ex.id: ex for ex in load_examples(ctx.stage_dir("data"), "train")}
    texts = [r for r in read_jsonl(ctx.stage_dir(upstream) / "rows.jsonl") if ctx.owns(str(r["id"]))]
    rows = Rows(out / "rows.jsonl")
    rows.append({"id": r["id"], **v.to_dict()} for r in texts if (v := unjudged(r)))
    pairs = [(examples[r["id"]], r[field]) for r in texts if not unjudged(r)]
    judge = ctx.judge() if any(ex.id not in rows for ex, _ in pairs) else None  # none to make (merged): no load
    judge_into(rows, judge, pairs, ctx.chunk, "judge" if upstream == "generate" else "judge_paraphrase")
    rows.reorder(examples)  # the data's order (rejected paraphrases and failed rows were written first)
    counts = summarize(rows)
    log.info("%s: %d correct, %d wrong, %d undecided", upstream, counts["correct"], counts["wrong"], counts["undecided"])
    return counts
