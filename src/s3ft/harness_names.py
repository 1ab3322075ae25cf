"""Which `evaluate.forgetting.tasks` names no lm-evaluation-harness task file mentions: checked by `s3ft validate`
without building the harness's task index (~15 s).

Every harness task, group or tag is declared in a YAML file (the harness's own, s3ft's `lm_eval_tasks/`, and
`include_path`'s), so a name that appears in none, as a whole word, names nothing the harness could run: it is
refused. A name that appears somewhere passes (the harness itself decides at evaluation); reading the ~14,000
files as bytes takes a second or two.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from s3ft.harness import TASKS_DIR


@functools.lru_cache(maxsize=4)
def _yaml_text(dirs: tuple[str, ...]) -> bytes:
    return b"\n".join(p.read_bytes() for d in dirs for p in sorted(Path(d).rglob("*.yaml")) if p.is_file())


def task_dirs(include_path: list[str]) -> tuple[str, ...] | None:
    """The folders of YAML task files the harness indexes; None where lm-eval is not installed."""
    try:
        import lm_eval.tasks
    except ImportError:
        return None
    return (str(Path(lm_eval.tasks.__file__).parent), str(TASKS_DIR), *map(str, include_path))


def unknown_tasks(names: list[str], include_path: list[str] = ()) -> list[str] | None:
    """The names no task file mentions; None where lm-eval is not installed (then nothing is checked)."""
    dirs = task_dirs(list(include_path))
    if dirs is None:
        return None
    text = _yaml_text(dirs)
    return [n for n in names if not re.search(rb"(?<![\w.-])" + re.escape(n.encode()) + rb"(?![\w-])", text)]
