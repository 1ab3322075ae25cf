"""Stage 1, data: read the task's train and test splits into `train.jsonl` / `test.jsonl`.

Each row is an `Example` (stable id, question, gold, meta). Duplicate ids are an error naming the
split; the files are written atomically, so a failed read leaves nothing half-written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.rundir import read_jsonl, write_jsonl

log = logging.getLogger("s3ft.data")


def run(ctx, out: Path) -> dict:
    counts = {}
    splits = {"train": ctx.cfg.data.train, "test": ctx.cfg.data.test}
    for split, source in splits.items():
        if source is None:
            continue
        examples: list[Example] = []
        seen: set[str] = set()
        for ex in ctx.task.load(source):
            if ex.id in seen:
                raise InputError(source.path, f"duplicate example id '{ex.id}'", field="id")
            seen.add(ex.id)
            examples.append(ex)
        if not examples:
            raise InputError(source.path, f"the {split} split has no examples")
        counts[split] = write_jsonl(out / f"{split}.jsonl", (e.to_dict() for e in examples))
        log.info("%s: %d examples from %s", split, counts[split], source.path)
    return counts


def load_examples(data_dir: Path, split: str) -> list[Example]:
    path = data_dir / f"{split}.jsonl"
    return [Example.from_dict(d) for d in read_jsonl(path)] if path.exists() else []
