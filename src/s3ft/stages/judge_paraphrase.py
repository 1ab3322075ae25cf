"""Stage 5, judge_paraphrase: the judge's verdicts on the base model's paraphrases of the gold.

The judge stage's work (`s3ft.stages.judge.run`) on `04_paraphrase/rows.jsonl`: a paraphrase rejected before
judging (it talks about the reference answer) gets a `False` verdict carrying the rejection, without a call.
"""

from __future__ import annotations

from pathlib import Path

from s3ft.rundir import rows_by_id
from s3ft.stages import Planned, judge

NAME = "judge_paraphrase"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit after paraphrase: it reads the paraphrases and the judge."""
    if "paraphrase" not in fps:
        return []

    def complete() -> bool:
        judged = rows_by_id(ctx.stage_dir(NAME) / "rows.jsonl")
        made = rows_by_id(ctx.stage_dir("paraphrase") / "rows.jsonl")
        return {i for i in made if ctx.owns(i)} <= judged.keys()

    return [Planned({"upstream": fps["paraphrase"], "judge": ctx.judge_parts}, lambda out: run(ctx, out),
                    complete=complete)]


def run(ctx, out: Path) -> dict:
    return judge.run(ctx, out, upstream="paraphrase", field="paraphrase")
