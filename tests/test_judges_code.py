"""Code judge on a real MBPP problem (task 2): passing, failing, crashing and misbehaving programs,
each run in the sandbox with its tests in another; nothing it prints or does can fake a pass.
Deliberately hostile programs are in tests/hostile/ (test_sandbox_hostile.py)."""

from __future__ import annotations

import time

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges.code import CodeJudge, extract_code
from s3ft.records import Example

# MBPP task 2, as the dataset gives it (code uses \r\n; tests are the three asserts of test_list).
MBPP_2 = Example(
    id="2",
    question="Write a function to find the similar elements from the given two tuple lists.",
    gold="def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
    meta={
        "tests": [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
            "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
        ],
        "test_setup": "",
    },
)
FAKE = '{"stage": "tests", "passed": 3, "total": 3, "failed": null, "exc": null, "msg": null}'
PROGRAMS = {
    # the MBPP few-shot prompt shows the solution as a quoted Python string; models copy that format
    "pass": "[BEGIN]\n 'def similar_elements(test_tup1, test_tup2):\\r\\n  res = tuple(set(test_tup1) & "
    "set(test_tup2))\\r\\n  return (res) ' \n[DONE]",
    "pass_fenced": "Here is the function:\n```python\ndef similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))\n```\nIt uses sets.",
    "fails_test_3": "[BEGIN]\ndef similar_elements(a, b):\n    return tuple(x for x in a if x in b)\n[DONE]",
    "raises": "[BEGIN]\ndef similar_elements(a, b):\n    return tuple(set(a) & set(c))\n[DONE]",
    "syntax": "[BEGIN]\ndef similar_elements(a, b)\n    return tuple(set(a) & set(b))\n[DONE]",
    "loops": "[BEGIN]\ndef similar_elements(a, b):\n    while True:\n        pass\n[DONE]",
    "bytearray": "x = bytearray(10**10)",
    "growing_list": "x = []\nwhile True:\n    x.append(' ' * 10**6)",
    "os_exit": "import os\nos._exit(0)\ndef similar_elements(a, b):\n    return (4, 5)",
    "sys_exit": "import sys\nsys.exit(0)",
    "spoof": (
        "import os\n"
        f"print({FAKE!r})\nprint('0' * 32 + ' ' + {FAKE!r})\n"
        "for fd in range(0, 256):\n"
        "    try:\n"
        f"        os.write(fd, ({FAKE!r} + '\\n').encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)"
    ),
    "reads_stdin": "x = input()",
    "no_code": "   \n",
}


@pytest.fixture(scope="module")
def verdicts() -> dict:
    judge = CodeJudge(JudgeConfig(workers=2, timeout_s=3.0, memory_mb=256))
    t0 = time.monotonic()
    out = judge([MBPP_2] * len(PROGRAMS), list(PROGRAMS.values()))
    assert time.monotonic() - t0 < 20
    return dict(zip(PROGRAMS, out, strict=True))


def test_passing_programs(verdicts: dict) -> None:
    for name in ("pass", "pass_fenced"):
        assert verdicts[name].correct is True, verdicts[name].reason
        assert verdicts[name].reason == "passed 3/3 tests"
    assert verdicts["pass"].extracted.startswith("def similar_elements(test_tup1, test_tup2):")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("fails_test_3", "failed test 3: assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14) "
                         "(AssertionError); passed 2/3"),
        ("raises", "failed test 1: assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5) "
                   "(NameError: name 'c' is not defined); passed 0/3"),
        ("syntax", "syntax error: line 1: expected ':'"),
        ("loops", "timeout after 3.0s"),
        ("bytearray", "memory limit exceeded (MemoryError) in the code"),
        ("growing_list", "memory limit exceeded (MemoryError) in the code"),
        ("os_exit", "the program exited with code 0 before answering the tests"),
        ("sys_exit", "the code raised SystemExit: 0 before the tests"),
        ("spoof", "the program sent a malformed message"),
        ("reads_stdin", "the code raised EOFError: EOF when reading a line before the tests"),
        ("no_code", "no code found"),
    ],
)  # fmt: skip
def test_failing_programs(verdicts: dict, name: str, reason: str) -> None:
    assert verdicts[name].correct is False
    assert verdicts[name].reason.startswith(reason), verdicts[name].reason


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[BEGIN]\ndef f():\n    return 1\n[DONE]\nExplanation: ...", "def f():\n    return 1"),
        ("[BEGIN]\ndef f():\n    return 1\n", "def f():\n    return 1"),  # the stop string cut [DONE] off
        ("[BEGIN]\n 'def f():\\r\\n  return 1' \n[DONE]", "def f():\r\n  return 1"),  # MBPP few-shot quoting
        (
            "Sure:\n```python\ndef f():\n    return 1\n```\n```python\nprint(f())\n```",
            "def f():\n    return 1",
        ),
        ("```\ndef f():\n    return 1\n```", "def f():\n    return 1"),
        ("def f():\n    return 1", "def f():\n    return 1"),
        ("", None),
        ("[BEGIN]\n[DONE]", None),
    ],
)
def test_extract_code(text: str, code: str | None) -> None:
    assert extract_code(text) == code


def test_environment_and_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3FT_TEST_SECRET", "hunter2")
    ex = Example(
        id="env",
        question="q",
        gold="",
        meta={
            "tests": [
                "assert 'S3FT_TEST_SECRET' not in environment()",
                "assert hash_randomization() == 0",  # PYTHONHASHSEED=0: set order is reproducible
                "assert where() == ('/sandbox', [])",
            ],
        },
    )
    code = (
        "import os, sys\n"
        "def environment():\n    return sorted(os.environ)\n"
        "def hash_randomization():\n    return sys.flags.hash_randomization\n"
        "def where():\n    return os.getcwd(), os.listdir('.')\n"
    )
    (v,) = CodeJudge(JudgeConfig())([ex], [code])
    assert v.correct is True, v.reason


def test_no_tests_is_undecided() -> None:
    (v,) = CodeJudge(JudgeConfig())([Example(id="x", question="q", gold="", meta={})], ["def f(): pass"])
    assert v.correct is None and v.reason == "no tests to run"


def test_process_limit_holds_for_root_too() -> None:
    code = "import os\npids = []\nfor _ in range(500):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
    code += "    pids.append(pid)\n"
    ex = Example(id="x", question="q", gold="", meta={"tests": ["assert True"]})
    (v,) = CodeJudge(JudgeConfig())([ex], [code + "for p in pids:\n    os.waitpid(p, 0)\n"])
    assert "BlockingIOError" in v.reason
