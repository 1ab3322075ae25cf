"""Helpers for s3ft's own lm-evaluation-harness tasks (the YAML files beside this one).

The miniature world's general skills as harness tasks: the data is the test split shipped in
`s3ft/data/world/`, the prompt is the question as the world's predict template renders it, and a
response is right when its final answer (s3ft's `final` judge: the last "The answer is X." or "#### X")
equals the item's answer, exactly as `s3ft.judges.final` scores it inside the pipeline.
"""

from __future__ import annotations

from pathlib import Path


def data_file(skill: str, **_) -> Path:
    """The shipped test split of one world skill (its harness score's cache key hashes this file)."""
    from s3ft.world import shipped_split

    return shipped_split(skill)


def load(skill: str, **_):
    """One world skill's shipped test split, in memory (no cache files)."""
    import json

    import datasets

    rows = [json.loads(line) for line in data_file(skill).read_text().splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    from s3ft.judges.final import FinalAnswerJudge
    from s3ft.records import Example

    verdict = FinalAnswerJudge().judge_one(Example(doc["id"], doc["question"], doc["gold"], {"answer": doc["answer"]}),
                                           results[0])
    return {"acc": float(verdict.correct is True)}
