"""The miniature world as the package holds it for `s3ft demo` (`s3ft.world`): the shipped splits and base,
the target tasks' kinds, accuracy by kind, the task configs; and that the package never imports the research
code that built them (`research/world/`, tested in `tests/research/`). Reads only shipped files."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import s3ft
from s3ft.config import load_config
from s3ft.world import (
    SHIPPED_BASE,
    SHIPPED_DIR,
    TARGET,
    TARGETS,
    by_kind,
    kind_rates,
    share_correct,
    shipped_split,
    split_rows,
    target_of,
    task_config,
)

SKILLS = ("arith", "chain", "reverse", "passage", "facts", "story", "paraphrase", "shop", "lookup")


def test_the_shipped_files_are_where_the_package_says():
    world = json.loads((SHIPPED_DIR / "world.json").read_text())
    assert world["seed"] == 0 and [s["name"] for s in world["skills"]] == list(SKILLS)
    for name, n in world["files"].items():
        skill, split = name.removesuffix(".jsonl").split("_")
        assert shipped_split(skill, split).is_file() and len(split_rows(skill, split)) == n
    assert split_rows("arith", limit=3) == split_rows("arith")[:3]
    assert (SHIPPED_BASE / "config.json").is_file() and "checks" in json.loads((SHIPPED_BASE / "pretrain.json").read_text())


@pytest.mark.parametrize("task", TARGETS)
def test_every_shipped_target_question_is_of_exactly_one_kind_in_equal_numbers(task):
    t = TARGET[task]
    for split in ("train", "val", "test"):
        for r in split_rows(task, split):
            assert sum(bool(p.search(r["question"])) for p in t.kinds.values()) == 1, r["question"]
    for split, n in (("val", 900), ("test", 300)):
        assert {k: len(rows) for k, rows in by_kind(split_rows(task, split)).items()} == {k: n // 3 for k in t.kinds}


def test_target_kinds_tell_the_shipped_tasks_apart():
    for skill in SKILLS:
        questions = [r["question"] for r in split_rows(skill, "val")]
        assert target_of(questions) == TARGET.get(skill), skill
        for t in TARGET.values():
            if t.name != skill:
                assert not any(t.kind_of(q) for q in questions), (t.name, skill)
    assert target_of([]) is None


def test_accuracy_by_kind_and_rows_of_no_one_task():
    rows = split_rows("shop", "test", limit=30)
    right = [i % 2 == 0 for i in range(len(rows))]
    rates = kind_rates(rows, right)
    assert set(rates) == set(TARGET["shop"].kinds)
    for kind, kind_rows in by_kind(rows).items():
        assert rates[kind] == share_correct([right[rows.index(r)] for r in kind_rows])
    assert share_correct([]) is None and share_correct([True, False, False]) == 0.3333
    assert by_kind([]) == {k: [] for k in TARGET["shop"].kinds}
    with pytest.raises(ValueError, match="not all questions of one target task"):
        by_kind(rows[:1] + split_rows("lookup", "test", limit=1))


def test_each_target_task_has_its_demo_config():
    assert task_config("shop") == Path(s3ft.__file__).parent / "configs" / "world.yaml"
    for task, t in TARGET.items():
        cfg = load_config(task_config(task))
        assert Path(cfg.data.train.path) == shipped_split(task, "train") and cfg.data.judge == t.judge
    with pytest.raises(ValueError, match="unknown world task 'poetry'"):
        task_config("poetry")


def test_the_harness_tasks_read_the_shipped_test_splits():
    from s3ft.lm_eval_tasks.utils import data_file

    assert data_file("facts") == shipped_split("facts", "test")


def test_the_package_never_imports_the_research_code():
    """`research/` builds what the package ships; the package must run without it (it is not installed)."""
    for path in Path(s3ft.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "research" or n.startswith("research.") for n in names), path
