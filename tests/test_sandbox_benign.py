"""Plain Python's verdict, not a stricter or looser one: each benign program in tests/benign/cases.py is
judged by the sandboxed code judge and run plainly (program, setup and tests in one namespace of one
interpreter, as MBPP's and HumanEval's own harnesses do). The recorded verdicts must be plain
Python's; the judge must agree on at least 95% of the programs, and every disagreement must be one
that docs/sandbox.md explains (`KNOWN`)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges.code import CodeJudge
from s3ft.judges.sandbox import SandboxUnavailable
from s3ft.records import Example

_spec = importlib.util.spec_from_file_location("benign_cases", Path(__file__).parent / "benign" / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASES, KNOWN = cases.CASES, cases.KNOWN
PLAIN = """
import json, sys
case = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
exec(case.get("test_context", "") + "\\n" + case["code"], ns)
exec(case.get("test_setup", ""), ns)
for test in case["tests"]:
    exec(test, ns)
print("PASSED")
"""


def plain(case: dict) -> bool:
    """Whether the program passes its tests run the plain way (this interpreter, site-packages too)."""
    try:
        out = subprocess.run([sys.executable, "-c", PLAIN], input=json.dumps(case), capture_output=True,
                             text=True, timeout=5)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return out.stdout.strip().endswith("PASSED")


def example(case: dict) -> Example:
    meta = {"tests": case["tests"], **{k: case[k] for k in ("entry_point", "test_context", "test_setup") if k in case}}
    return Example(id=case["name"], question="q", gold="", meta=meta)


@pytest.fixture(scope="module")
def judged() -> dict:
    try:
        judge = CodeJudge(JudgeConfig(workers=2, timeout_s=3.0, memory_mb=512))
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    verdicts = judge([example(c) for c in CASES], [c["code"] for c in CASES])
    return {c["name"]: v for c, v in zip(CASES, verdicts, strict=True)}


def test_the_suite_is_large_enough_and_names_are_unique() -> None:
    assert len(CASES) >= 40 and len({c["name"] for c in CASES}) == len(CASES)


def test_recorded_verdicts_are_plain_pythons() -> None:
    with ThreadPoolExecutor(2) as pool:
        got = dict(zip([c["name"] for c in CASES], pool.map(plain, CASES), strict=True))
    assert {n: v for n, v in got.items() if v != next(c["plain"] for c in CASES if c["name"] == n)} == {}


def test_the_judge_agrees_with_plain_python(judged: dict) -> None:
    disagree = {c["name"]: (c["plain"], judged[c["name"]].correct, judged[c["name"]].reason)
                for c in CASES if judged[c["name"]].correct is not c["plain"]}  # fmt: skip
    rate = 1 - len(disagree) / len(CASES)
    print(f"\nbenign suite: the judge agrees with plain Python on {len(CASES) - len(disagree)}/{len(CASES)} "
          f"programs ({rate:.1%}); disagreements:")  # fmt: skip
    for name, (want, got, reason) in disagree.items():
        print(f"  {name}: plain {want}, judge {got} ({reason})")
    assert rate >= 0.95
    assert set(disagree) == set(KNOWN), "each disagreement is explained in KNOWN and docs/sandbox.md"
