"""Stage 1, data: read the task's train and test splits into `train.jsonl` / `test.jsonl`.

Each row is an `Example` (stable id, question, gold, meta). Duplicate ids are an error naming the
split; the files are written atomically, so a failed read leaves nothing half-written. The counts say,
per split, the examples written and, for a task that reports them (`TemplateTask.load_counts`), the rows
read (`<split>_rows`) and those folded into an earlier row with the same id (`<split>_repeats`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from s3ft.config import section_dict
from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.rundir import read_jsonl, write_jsonl
from s3ft.stages import Planned

log = logging.getLogger("s3ft.data")
NAME = "data"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit: it reads the task, the data section, its templates and the splits' files."""
    cfg = ctx.cfg
    splits = [s for s in (cfg.data.train, cfg.data.test) if s is not None]
    files = {s.path: ctx.ref(s.path, s.revision, "dataset") for s in splits}
    return [Planned({"task": ctx.task.name, "version": ctx.task.version, "data": section_dict(cfg.data),
                     "templates": ctx.task.templates(), "files": files}, lambda out: run(ctx, out))]


def run(ctx, out: Path) -> dict:
    counts, ids = {}, {}
    splits = {"train": ctx.cfg.data.train, "test": ctx.cfg.data.test}
    for split, source in splits.items():
        if source is None:
            continue
        examples: list[Example] = []
        seen: dict[str, int] = {}
        for n, ex in enumerate(ctx.task.load(source), 1):
            if ex.id in seen:  # a task's own load reports repeats by line; this guards a plug-in's
                raise InputError(
                    source.path, f"duplicate example id '{ex.id}' (examples {seen[ex.id]} and {n} of the task's load)",
                    field="id",
                )
            seen[ex.id] = n
            examples.append(ex)
        if not examples:
            raise InputError(source.path, f"the {split} split has no examples")
        counts[split] = write_jsonl(out / f"{split}.jsonl", (e.to_dict() for e in examples))
        if (read := getattr(ctx.task, "load_counts", None)) is not None:
            counts[f"{split}_rows"], counts[f"{split}_repeats"] = read["rows"], read["repeats"]
        log.info("%s: %d examples from %s", split, counts[split], source.path)
        ids[split] = set(seen)
    if shared := shared_ids(ids):
        counts["shared_ids"] = len(shared)
    return counts


def shared_ids(ids: dict[str, set[str]]) -> list[str]:
    """The ids found in both the train and the test split, with a warning: the same example trained on and
    tested on (or two examples whose ids collide) makes the test accuracy mean less."""
    shared = sorted(ids.get("train", set()) & ids.get("test", set()))
    if shared:
        log.warning("train and test share %d id(s) (%s%s): is the test split held out from the training data?",
                    len(shared), ", ".join(shared[:5]), ", ..." if len(shared) > 5 else "")
    return shared


def load_examples(data_dir: Path, split: str) -> list[Example]:
    path = data_dir / f"{split}.jsonl"
    return [Example.from_dict(d) for d in read_jsonl(path)] if path.exists() else []
