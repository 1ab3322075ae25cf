"""What a candidate can hold (issue 31, defects 8 and 9; docs/sandbox.md, "Memory"). The hostile program
tests/hostile/36_memory_outside_the_address_space.py runs 40 processes that fill one kind of memory each
(memfds, AF_UNIX socket buffers, pipe buffers, inodes of empty files) and answers correctly only if those
still alive hold more than the sandbox's bound by their own count. With a memory cgroup (root, cgroup v1)
the cgroup's peak (`memory.max_usage_in_bytes`) must reach no further than its limit and the program must
not pass; without one, memfds and every socket are refused by the filter. Without any sandbox the same
program passes: the control that shows it can tell."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges import sandbox as sandbox_mod
from s3ft.judges.code import CodeJudge
from s3ft.judges.sandbox import Cgroup, SandboxUnavailable
from s3ft.records import Example

HOG = (Path(__file__).parent / "hostile" / "36_memory_outside_the_address_space.py").read_text()
ADD = Example(id="add", question="q", gold="", meta={"tests": ["assert add(2, 3) == 5"]})
MEMORY_MB = 128
LIMIT = (MEMORY_MB + sandbox_mod.WORK_MB + 64) * 2**20  # the candidate's memory cgroup (memory_mb + 128 MiB)


def hog(kind: str) -> str:
    return HOG.replace('KINDS = ("memfd", "socket", "pipe", "inode")', f"KINDS = ({kind!r},)")


def judge(monkeypatch: pytest.MonkeyPatch, sandbox: str = "bwrap", cgroups: bool = True) -> tuple[CodeJudge, list]:
    """A judge whose memory cgroups report their peak usage (bytes, memory and memory+swap) when removed."""
    if not cgroups:
        monkeypatch.setattr(Cgroup, "available", staticmethod(lambda: False))
    peaks: list[tuple[int, ...]] = []
    remove = Cgroup.remove

    def record(self: Cgroup) -> None:
        mem = self.dirs[1]
        peaks.append(tuple(int((mem / f).read_text()) for f in ("memory.max_usage_in_bytes", "memory.limit_in_bytes")
                           if (mem / f).exists()))  # fmt: skip
        remove(self)

    monkeypatch.setattr(Cgroup, "remove", record)
    try:
        return CodeJudge(JudgeConfig(workers=1, timeout_s=6.0, memory_mb=MEMORY_MB, sandbox=sandbox)), peaks
    except SandboxUnavailable as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("kind", ["memfd", "socket", "pipe", "inode"])
def test_every_kind_of_memory_is_held_to_the_cgroup_bound(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    if not Cgroup.available():
        pytest.skip("needs root and a writable cgroup v1 (pids, memory)")
    code_judge, peaks = judge(monkeypatch)
    (v,) = code_judge([ADD], [hog(kind)])
    assert v.correct is False, v.reason
    peak, limit = peaks[-1]  # the candidate's cgroup is removed last
    assert limit == LIMIT and 0 < peak <= LIMIT, (peak, limit)
    print(f"\n{kind}: candidate cgroup peak {peak / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB; {v.reason}")


def test_without_a_cgroup_memfds_and_sockets_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root without cgroups (as on a cgroup-v2 host) uses the filter a non-root user gets: no memfd and no
    socket of any family, AF_UNIX included; pipes stay within the per-user pipe limits."""
    code_judge, _ = judge(monkeypatch, cgroups=False)
    assert "+cgroup" not in code_judge.sandbox.name
    attempt = ("import os, socket\ndef attempt():\n    out = []\n"
               "    for make in (lambda: os.memfd_create('m'), socket.socketpair, lambda: socket.socket(socket.AF_UNIX)):\n"
               "        try:\n            make()\n            out.append(0)\n"
               "        except OSError as e:\n            out.append(e.errno)\n    return out\n")  # fmt: skip
    probe = Example(id="eperm", question="q", gold="", meta={"tests": [f"assert attempt() == [{errno.EPERM}] * 3"]})
    verdicts = code_judge([probe] + [ADD] * 3, [attempt, hog("memfd"), hog("socket"), hog("pipe")])
    assert verdicts[0].correct is True, verdicts[0].reason
    assert [v.correct for v in verdicts[1:]] == [False] * 3, [v.reason for v in verdicts]


def test_the_hog_can_tell_when_nothing_bounds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: without a sandbox (`judge.sandbox: none`, the address-space limit only), 40 processes'
    memfds hold more than the bound, and the program says so by passing (about 3 x the bound, briefly)."""
    code_judge, _ = judge(monkeypatch, sandbox="none")
    (v,) = code_judge([ADD], [hog("memfd")])
    assert v.correct is True, v.reason


def test_system_v_ipc_and_message_queues_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A detached System V segment is held by no process's address space, and message queues hold kernel
    memory up to `kernel.msgmni` x `msgmnb` (500 MiB): refused (EPERM) with a cgroup and without."""
    attempt = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\ndef attempt():\n    out = []\n"
               "    for r in (libc.shmget(0, 2**20, 0o1600), libc.msgget(0, 0o1600), libc.semget(0, 1, 0o1600),\n"
               "              libc.mq_open(b'/q', 0o100 | 2, 0o600, None)):\n"
               "        out.append(0 if r >= 0 else ctypes.get_errno())\n    return out\n")  # fmt: skip
    ex = Example(id="ipc", question="q", gold="", meta={"tests": [f"assert attempt() == [{errno.EPERM}] * 4"]})
    for cgroups in (True, False):
        code_judge, _ = judge(monkeypatch, cgroups=cgroups)
        (v,) = code_judge([ex], [attempt])
        assert v.correct is True, (code_judge.sandbox.name, v.reason)
