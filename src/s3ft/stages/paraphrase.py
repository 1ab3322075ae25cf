"""Stage 4, paraphrase: the base model rewrites the gold in its own words.

Reads the examples (and, for S3FT's scope, the judge's verdicts: only examples the model got wrong
are paraphrased; SDFT paraphrases all; S3FT-k alone, only the wrong rows where no sample was correct, read from
`03_resample`; with S3FT or SDFT beside it, the wider scope, whose rows S3FT-k reads too). Appends
`{id, paraphrase, rejected}` rows, where `rejected` names the pattern that a paraphrase talking about "the
reference answer" matched, or is null; a row whose prompt is too long for the model fails alone (`failed`: why;
`s3ft.stages.generate`). The finished file is in the data's order. A shard run (`s3ft.shards`) paraphrases its own examples only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from s3ft import methods
from s3ft.config import section_dict
from s3ft.rundir import Rows, rows_by_id
from s3ft.stages import Planned
from s3ft.stages.data import load_examples
from s3ft.stages.generate import failures, gen_params, generate_into, task_stop

log = logging.getLogger("s3ft.paraphrase")
NAME = "paraphrase"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit where a method trains on paraphrases: it reads the data, the base model and its settings (and,
    for S3FT's scope, the judge's verdicts, read when it runs: `complete` says when more are needed)."""
    scope = methods.paraphrase_scope(ctx.cfg.method)
    if not scope:
        return []

    def complete() -> bool:
        upstream = {"wrong": "judge", "unrecovered": "resample"}.get(scope)
        if upstream and not (ctx.stage_dir(upstream) / "rows.jsonl").exists():
            return True  # cannot tell before the judge (or resample) has run; its own state decides
        made = rows_by_id(ctx.stage_dir(NAME) / "rows.jsonl")
        return set(select_ids(ctx, scope)) <= made.keys()

    return [Planned({"data": fps["data"], "model": ctx.model_parts, "paraphrase": section_dict(ctx.cfg.paraphrase),
                     "backend": ctx.cfg.generate.backend, "stop": task_stop(ctx)},
                    lambda out: run(ctx, out, scope), complete=complete)]


def rejection(text: str, patterns: list[str]) -> str | None:
    """The first reject pattern the paraphrase matches (case-insensitive), or an empty-output note."""
    if not text.strip():
        return "empty paraphrase"
    for p in patterns:
        if re.search(p, text, flags=re.IGNORECASE):
            return f"mentions /{p}/"
    return None


def select_ids(ctx, scope: str) -> list[str]:
    ids = [ex.id for ex in load_examples(ctx.stage_dir("data"), "train") if ctx.owns(ex.id)]
    if scope == "all":
        return ids
    verdicts = rows_by_id(ctx.stage_dir("judge") / "rows.jsonl")
    wrong = [i for i in ids if verdicts.get(i, {}).get("correct") is not True]
    if scope == "wrong":
        return wrong
    resampled = rows_by_id(ctx.stage_dir("resample") / "rows.jsonl")  # "unrecovered": s3ft-k alone
    return [i for i in wrong if resampled.get(i, {}).get("kept") is None]


def run(ctx, out: Path, scope: str) -> dict:
    examples = {ex.id: ex for ex in load_examples(ctx.stage_dir("data"), "train")}
    ids = select_ids(ctx, scope)
    cfg = ctx.cfg.paraphrase
    rows = Rows(out / "rows.jsonl")
    items = [(i, ctx.task.paraphrase_prompt(examples[i])) for i in ids]
    params = gen_params(cfg, getattr(ctx.task, "stop", ()))
    backend = ctx.backend() if any(i not in rows for i, _ in items) else None  # none to make (merged): no load
    new = generate_into(
        rows, backend, items, params, ctx.chunk, "paraphrase", "paraphrase",
        extra=lambda _id, text: {"rejected": rejection(text, cfg.reject_patterns)}, source="question and gold",
    )
    rows.reorder(examples)  # the data's order
    rejected = sum(1 for r in rows.rows.values() if r.get("rejected"))
    failed = failures(rows.rows.values())
    log.info("%d paraphrases (%d generated now, scope %s), %d rejected before judging%s", len(rows), new, scope,
             rejected, f", {failed['failed']} failed" if failed else "")
    return {"rows": len(rows), "generated": new, "rejected": rejected, "scope": scope, **failed}
