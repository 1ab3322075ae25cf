"""Issue 31's defects, one test (or a few) each: any exit status or signal is a verdict, not a crash of
the judge; sockets of every family but AF_UNIX refused by the filter; no filter, no sandbox; a fake
bwrap refused by the start-up probe, never waited on for ever; a value the program controls can make it
fail but never undecided; reasons free of control characters; a channel linear in a message's size; an
old bwrap and hosts without user namespaces refused with the cause. The hostile suite (tests/hostile/36-44)
runs the in-sandbox reproductions as hostile programs; this file keeps what needs simulation (stand-in
bwraps, another architecture, a non-root user), the `none` opt-out, and the finer checks (each socket
family's errno, the reason each undecided case fails with, the channel's timing)."""

from __future__ import annotations

import errno
import os
import platform
import signal
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges import code as code_mod
from s3ft.judges import sandbox as sandbox_mod
from s3ft.judges.code import CodeJudge, _exit, _parse, describe, printable, signal_name
from s3ft.judges.sandbox import Sandbox, SandboxUnavailable, runner_source
from s3ft.judges.wire import Channel
from s3ft.records import Example

ADD = Example(id="add", question="q", gold="", meta={"tests": ["assert add(2, 3) == 5", "assert add(1, 1) == 2"]})
RT = signal.SIGRTMIN + 3
EXITS = {  # program -> how it ends
    "exit 200 at import": "import os\nos._exit(200)",
    "exit 255 at import": "import os\nos._exit(255)",
    "exit 137 at import": "import os\nos._exit(137)",
    "exit 200 in the call": "import os\ndef add(a, b):\n    os._exit(200)",
    "SystemExit(200) while its result is sent": "def gen():\n    yield 1\n    raise SystemExit(200)\n"
                                                 "def add(a, b):\n    return gen()",
    "SystemExit('text') while its result is sent": "def gen():\n    raise SystemExit('bye\\x1b[2J')\n    yield 1\n"
                                                    "def add(a, b):\n    return gen()",
    # as its sandbox's pid 1 the runner ignores the signal; it then exits as bwrap reports such a death
    "real-time signal at import": f"import os\nos.kill(os.getpid(), {RT})\nos._exit({128 + RT})",
    "real-time signal in the call": f"import os\ndef add(a, b):\n    os.kill(os.getpid(), {RT})\n    os._exit({128 + RT})",
    "SIGKILL in the call": "import os\ndef add(a, b):\n    os.kill(os.getpid(), 9)",
    "garbage on the channel": "import gc, os\nch = [o for o in gc.get_objects() if type(o).__name__ == 'Channel'][0]\n"
                              "def add(a, b):\n    os.write(ch.wfd, bytes(range(256)) * 4 + b'\\n')\n    os._exit(3)",
}  # fmt: skip


@pytest.fixture(scope="module", params=["bwrap", "none"])
def exits(request: pytest.FixtureRequest) -> dict:
    try:
        judge = CodeJudge(JudgeConfig(sandbox=request.param, workers=2, timeout_s=5.0, memory_mb=256))
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    return dict(zip(EXITS, judge([ADD] * len(EXITS), list(EXITS.values())), strict=True))


@pytest.mark.parametrize("case", list(EXITS))
def test_any_exit_status_or_signal_is_a_verdict_not_a_crash(exits: dict, case: str) -> None:
    v = exits[case]
    assert v.correct is False, v.reason
    assert v.reason and printable(v.reason) == v.reason


def test_exit_descriptions_never_raise() -> None:
    assert signal_name(9) == "SIGKILL" and signal_name(72) == "signal 72" and signal_name(0) == "signal 0"
    assert signal_name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"
    for status in (0, 1, 200, 255, -9, -24, -72, -(signal.SIGRTMIN + 3), -(2**40), None, "x", 1.5):
        assert isinstance(_exit(status, False), str)
        correct, reason = describe({"stage": "code", "gone": True, "status": status, "total": 1})
        assert correct is False and reason.startswith("the program ")
    assert "SIGXCPU" in _exit(-signal.SIGXCPU, False) and "memory limit" in _exit(-9, True)


def test_result_lines_are_parsed_defensively() -> None:
    assert _parse(b"") == (None, False)
    assert _parse(b'{"phase": "program"}\n') == (None, True)
    assert _parse(b'{"phase": "program"}\n{"stage": "tests", "total": 1') == (None, True)
    assert _parse(b'{"phase": "program"}\n[1, 2]\n') == (None, True)
    assert _parse(b'{"stage": "tests", "total": 2}\n')[0] == {"stage": "tests", "total": 2}
    assert describe({"error": "the referee failed on the program's answers: x", "undecided": False})[0] is False
    assert describe({"error": "the referee failed: x", "undecided": True})[0] is None


FAMILIES = [f for f in range(0, 50) if f != 1] + [100, 255, 2**31 - 1]


SOCKETS = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "def attempt(family):\n    pair = (ctypes.c_int * 2)()\n    out = []\n"
           "    for r in (libc.socket(family, 2, 0), libc.socketpair(family, 1, 0, pair)):\n"
           "        out.append(0 if r >= 0 else ctypes.get_errno())\n    return out\n")  # fmt: skip


@pytest.fixture(scope="module")
def sockets() -> dict:
    """One verdict per family: socket() and socketpair() of it refused with EPERM, AF_UNIX's allowed."""
    try:
        judge = CodeJudge(JudgeConfig(timeout_s=10.0, workers=2))
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    examples = [Example(id=str(f), question="q", gold="", meta={"tests": [
        f"assert attempt({f}) == [{errno.EPERM}, {errno.EPERM}]", "assert attempt(1) == [0, 0]"]})
        for f in FAMILIES]  # fmt: skip
    return dict(zip(FAMILIES, judge(examples, [SOCKETS] * len(FAMILIES)), strict=True))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_socket_family_but_af_unix_is_refused_by_the_filter(sockets: dict, family: int) -> None:
    """EPERM from the filter, not the kernel's EAFNOSUPPORT: AF_VSOCK (40) and every other family."""
    assert sockets[family].correct is True, sockets[family].reason


def test_an_architecture_without_a_filter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    with pytest.raises(SandboxUnavailable, match=r"no seccomp filter for this architecture \(riscv64\).*"
                                                 r"set judge.sandbox: none"):  # fmt: skip
        Sandbox("bwrap")


FAKES = {  # a bwrap on PATH that is not one: each refused by the probe, within the start-up time limit
    "runs the command unsandboxed": 'if [ "$1" = --version ]; then echo "bubblewrap 0.11.0"; exit 0; fi\n'
                                    'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"',
    "does nothing": "exit 0",
    "hangs": "exec sleep 600",
    "reports a pid, then hangs": 'if [ "$1" = --version ]; then echo "bubblewrap 0.11.0"; exit 0; fi\n'
                                 'while [ "$1" != "--info-fd" ]; do shift; done\n'
                                 'echo "{\\"child-pid\\": $$}" >&$2\nexec sleep 600',
}  # fmt: skip


@pytest.mark.parametrize("fake", list(FAKES))
def test_a_fake_bwrap_is_refused_not_waited_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: str) -> None:
    path = tmp_path / "bwrap"
    path.write_text("#!/bin/bash\n" + FAKES[fake] + "\n")
    path.chmod(0o755)
    monkeypatch.setattr(sandbox_mod, "bwrap_binary", lambda: str(path))
    monkeypatch.setattr(sandbox_mod, "START_TIMEOUT_S", 2.0)
    t0 = time.monotonic()
    with pytest.raises(SandboxUnavailable, match="set judge.sandbox: none") as e:
        Sandbox("bwrap")
    assert time.monotonic() - t0 < 10
    assert str(path) in str(e.value) or "no output" in str(e.value), str(e.value)
    if fake == "runs the command unsandboxed":
        assert "does not isolate" in str(e.value) and "pids" in str(e.value)


def _stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, error: str) -> Path:
    """A bwrap on PATH that reports `version` and fails every sandbox with `error`, as a real one does there."""
    path = tmp_path / "bwrap"
    path.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "{version}"; exit 0; fi\n'
                    f"echo 'bwrap: {error}' >&2\nexit 1\n")  # fmt: skip
    path.chmod(0o755)
    monkeypatch.setattr(sandbox_mod, "bwrap_binary", lambda: str(path))
    return path


def test_an_old_bwrap_is_refused_by_its_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Debian 12's bubblewrap 0.8.0 has no --size: refused before any sandbox, naming the version and the fix."""
    _stand_in(tmp_path, monkeypatch, "bubblewrap 0.8.0", "Unknown option --size")
    with pytest.raises(SandboxUnavailable, match=r"is bubblewrap 0\.8; the sandbox needs bubblewrap 0\.10 or newer "
                                                 r"\(--size\).*set judge.sandbox: none"):  # fmt: skip
        Sandbox("bwrap")


NO_NAMESPACES = {  # where bwrap cannot make its namespaces, the error it gives
    "AppArmor (Ubuntu 24.04), not root": (False, "setting up uid map: Permission denied"),
    "sysctl kernel.unprivileged_userns_clone=0, not root": (False, "No permissions to create new namespace, likely "
        "because the kernel does not allow non-privileged user namespaces. On e.g. debian this can be enabled with "
        "sysctl kernel.unprivileged_userns_clone=1."),
    "rootless container (root without CAP_SYS_ADMIN)": (True, "Creating new namespace failed: Operation not permitted"),
}  # fmt: skip


@pytest.mark.parametrize("where", list(NO_NAMESPACES))
def test_no_user_namespaces_is_a_refusal_that_names_the_cause(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              where: str) -> None:  # fmt: skip
    root, error = NO_NAMESPACES[where]
    _stand_in(tmp_path, monkeypatch, "bubblewrap 0.11.0", error)
    monkeypatch.setattr(sandbox_mod.os, "geteuid", lambda: 0 if root else 1000)
    with pytest.raises(SandboxUnavailable) as e:
        Sandbox("bwrap")
    message = str(e.value)
    assert error in message and "no user namespaces for this user here" in message, message
    assert "set judge.sandbox: none" in message and ("bwrap/root" if root else "bwrap/userns") in message


def test_a_value_the_program_controls_cannot_make_it_undecided() -> None:
    """A module named like another platform's, a constant or an exception whose tagged value does not
    decode, a forged names reply: each fails the program (before: `the referee failed`, undecided)."""
    bad = '{"complex": ["1", "x"]}'
    programs = {
        "platform module": "import types\nwinreg = types.ModuleType('winreg')\ndef add(a, b):\n    return a + b",
        "undecodable constant": f"import __main__, json\nX = 5\n__main__.encode = lambda *a, **k: json.loads({bad!r})\n"
                                "def add(a, b):\n    return a + b",
        "undecodable exception args": f"import __main__, json\n__main__.encode = lambda *a, **k: json.loads({bad!r})\n"
                                      "def add(a, b):\n    raise ValueError(a)",
        "names reply of the wrong shape": "import __main__\n__main__.reply = lambda ns, req: {'names': {'add': {'module': 5}}}\n"
                                          "def add(a, b):\n    return a + b",
    }  # fmt: skip
    tests = {"platform module": ["assert winreg is not None", "assert add(2, 3) == 5"],
             "undecodable constant": ["assert X == 5", "assert add(2, 3) == 5"],
             "undecodable exception args": ["try:\n    add(1, 2)\nexcept ValueError:\n    pass"],
             "names reply of the wrong shape": ["assert add(2, 3) == 5"]}  # fmt: skip
    judge = CodeJudge(JudgeConfig(workers=2))
    examples = [Example(id=k, question="q", gold="", meta={"tests": tests[k]}) for k in programs]
    # the runners' sources are read when code.py is imported: a tree edited after that (once, mid-run) runs
    # other runners than the files show, and then this verdict says nothing about the files
    assert code_mod._CANDIDATE == runner_source("runner_candidate"), "runner_candidate.py changed since import"
    assert code_mod._REFEREE == runner_source("runner_referee"), "runner_referee.py changed since import"
    why = {"platform module": "NameError: name 'winreg' is not defined",
           "undecodable constant": "malformed message (WireError: bad complex)",
           "undecodable exception args": "malformed reply in test 1 (WireError: bad complex)",
           "names reply of the wrong shape": "malformed message (WireError: malformed reply)"}  # fmt: skip
    for name, v in zip(programs, judge(examples, list(programs.values())), strict=True):
        assert v.correct is False and why[name] in v.reason, (name, v.reason)  # failed, and for that reason


def test_reasons_carry_no_control_characters() -> None:
    code = ("Bad = type('Bad\\u202eName\\x1b[31m', (ValueError,), {})\n"
            "def add(a, b):\n    raise Bad('line\\rover\\x1b[2J\\u202eevil\\x00end\\ud800')\n")  # fmt: skip
    (v,) = CodeJudge(JudgeConfig())([ADD], [code])
    assert v.correct is False
    assert not [c for c in v.reason if unicodedata.category(c) in ("Cc", "Cf", "Cs")], repr(v.reason)
    assert "\\r" in v.reason and "\\x1b[2J" in v.reason and "\\u202e" in v.reason and "\\x00" in v.reason
    assert printable("tab\there é ü 中") == "tab\\there é ü 中"


def test_the_channel_is_linear_in_a_message_size() -> None:
    """A 4 MiB and a 32 MiB message: eight times the size takes well under 8² times as long."""

    def seconds(n: int) -> float:
        r, w = os.pipe()
        chan = Channel(r, w)
        writer = threading.Thread(target=chan.send, args=({"ok": "x" * n},))
        t0 = time.perf_counter()
        writer.start()
        msg = chan.recv()
        writer.join()
        os.close(r), os.close(w)
        assert len(msg["ok"]) == n
        return time.perf_counter() - t0

    small, big = min(seconds(4 * 2**20) for _ in range(3)), min(seconds(32 * 2**20) for _ in range(2))
    assert big < 24 * small + 0.2, (small, big)


def test_a_25_mib_answer_is_judged_in_time() -> None:
    n = 25 * 2**20
    ex = Example(id="big", question="q", gold="", meta={"tests": [f"assert len(f({n})) == {n}"]})
    t0 = time.monotonic()
    (v,) = CodeJudge(JudgeConfig(timeout_s=10.0, memory_mb=1024))([ex], ["def f(n):\n    return 'x' * n"])
    assert v.correct is True, v.reason
    assert time.monotonic() - t0 < 10
