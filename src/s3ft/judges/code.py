"""Code judge: runs each predicted program in a sandbox and evaluates its tests in another.

Reads the prediction (code between `[BEGIN]` and `[DONE]`, else the first ``` block, else the whole
text) and, from the example's meta, `tests` (assert statements, or `check(...)`-style test code),
`test_setup` (code both sides run first), `test_context` (code that precedes the program, as a
HumanEval prompt precedes its completion, and that the tests' side also runs as its own trusted
copy) and `entry_point` (the function the tests get as their candidate); writes one
`Verdict` per prediction: all tests passed, or which test failed and why, and the sandbox it ran in.

Two sandboxes per prediction (`sandbox.py`; design and limits in docs/sandbox.md): the program
runs in one and only answers calls to its functions with plain values (`runner_candidate.py`); the
tests run in the other, the referee, with the program's functions replaced by stubs that make
those calls (`runner_referee.py`). The verdict comes from the referee, on a descriptor only the
host holds, so nothing the program prints, patches, forges or returns can fake a pass: it can only
return values, which are compared by the tests like any answer. A test that needs to pass the
program something that is not plain data cannot be split so; it is undecided (`correct=None`).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import select
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from s3ft.judges.sandbox import Sandbox, runner_source
from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_CANDIDATE = runner_source("runner_candidate")
_REFEREE = runner_source("runner_referee")
FILE_SIZE_LIMIT = 10 * 2**20
NPROC = 64
NOFILE = 64

CANNOT_SPLIT = "cannot judge test"
"""How a verdict's reason starts where a test's form does not allow the split (counted apart by the judge
stages and the report: `cannot_split`)."""


def extract_code(text: str) -> str | None:
    """The program in a prediction: `[BEGIN]`..`[DONE]` (to the end if `[DONE]` is missing), else the
    first ```python block (or any ``` block), else the whole text. A quoted string literal is unquoted."""
    if "[BEGIN]" in text:
        text = text.split("[BEGIN]", 1)[1].split("[DONE]", 1)[0]
    fence = re.search(r"```[ \t]*(?:python|py|python3)[ \t]*\n(.*?)(?:```|$)", text, re.S | re.I)
    fence = fence or re.search(r"```[^\n]*\n(.*?)(?:```|$)", text, re.S)
    code = textwrap.dedent((fence.group(1) if fence else text).strip("\n"))
    if re.fullmatch(r"\s*('''|\"\"\"|'|\").*\1\s*", code, re.S):
        with contextlib.suppress(ValueError, SyntaxError):
            code = ast.literal_eval(code.strip())
    return code if isinstance(code, str) and code.strip() else None


def run_tests(sandbox: Sandbox, code: str, tests: list[str], timeout_s: float, memory_mb: int, setup: str = "",
              context: str = "", entry_point: str | None = None) -> dict:  # fmt: skip
    """The referee's result dict for `code` against `tests`, or {"error": ...}, plus the program's
    exit status ("status") and whether the memory cgroup killed it ("oom")."""
    cpu = math.ceil(timeout_s) + 1
    limits = {"RLIMIT_AS": memory_mb * 2**20, "RLIMIT_CPU": cpu, "RLIMIT_FSIZE": FILE_SIZE_LIMIT,
              "RLIMIT_NOFILE": NOFILE, "RLIMIT_CORE": 0}  # fmt: skip
    c2r, r2c, result = os.pipe(), os.pipe(), os.pipe()
    jobs = []
    try:
        ref_job = {"setup": setup, "context": context, "tests": tests, "entry_point": entry_point,
                   "fds": {"in": c2r[0], "out": r2c[1], "result": result[1]},
                   "limits": limits | {"RLIMIT_NPROC": 4, "RLIMIT_FSIZE": 2**20}}  # fmt: skip
        jobs.append(sandbox.start(_REFEREE, ref_job, (c2r[0], r2c[1], result[1])))
        program = (context + "\n" if context else "") + code
        cand_job = {"code": program, "setup": setup, "fds": {"in": r2c[0], "out": c2r[1]},
                    "limits": limits | {"RLIMIT_NPROC": NPROC}}  # fmt: skip
        jobs.append(sandbox.start(_CANDIDATE, cand_job, (r2c[0], c2r[1])))
        for fd in (*c2r, *r2c, result[1]):
            os.close(fd)
        c2r, r2c, result = (), (), (result[0],)
        data, overran = _read_result(result[0], timeout_s)
        res, talking = _parse(data)
        status = jobs[1].wait(2.0 if res and res.get("gone") else 0)
        if res is None and overran:
            res = {"error": f"timeout after {timeout_s}s"}
        elif res is None:  # undecided only where nothing the program sent can have caused it
            tail = (jobs[0].output_tail().splitlines() or ["no output"])[-1]
            res = {"error": ("the referee failed on the program's answers: " if talking else "the referee failed: ")
                   + tail, "undecided": not talking}  # fmt: skip
    finally:
        for fd in (*c2r, *r2c, *result):
            with contextlib.suppress(OSError):
                os.close(fd)
        for job in jobs:
            job.finish()
    res["status"], res["oom"] = status, jobs[1].oom
    if status is None and "error" not in res and res.get("gone"):
        res["status"] = jobs[1].proc.returncode
    return res


def _read_result(fd: int, timeout_s: float) -> tuple[bytes, bool]:
    """What the referee wrote before closing its end (at most 1 MiB), and whether time ran out."""
    deadline, chunks, size = time.monotonic() + timeout_s, [], 0
    while size < 2**20:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks), True
        if not (chunk := os.read(fd, 65536)):
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _parse(data: bytes) -> tuple[dict | None, bool]:
    """The referee's result (its last line, if well formed) and whether it had begun to read the
    program's messages (its `phase` line)."""
    lines = data.split(b"\n")
    talking = b'{"phase": "program"}' in lines
    try:
        res = json.loads(lines[-2] if len(lines) > 1 and not lines[-1] else b"")
    except ValueError:
        return None, talking
    ok = isinstance(res, dict) and res.get("stage") in ("code", "setup", "tests") and type(res.get("total")) is int
    return (res if ok else None), talking


def signal_name(n: int) -> str:
    """SIGKILL, SIGRTMIN+3 or `signal 99`: never an exception, whatever the number."""
    try:
        return signal.Signals(n).name
    except ValueError:
        rt = getattr(signal, "SIGRTMIN", 34), getattr(signal, "SIGRTMAX", 64)
        return f"SIGRTMIN+{n - rt[0]}" if rt[0] <= n <= rt[1] else f"signal {n}"


def _exit(status, oom: bool) -> str:
    if oom:
        return "was killed at the memory limit"
    if type(status) is not int:
        return "closed its channel"
    if status < 0:
        sig = signal_name(-status)
        return {"SIGXCPU": "exceeded its CPU time limit"}.get(sig, "was killed") + f" ({sig})"
    return f"exited with code {status}"


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with control, bidi-override, zero-width and lone-surrogate characters escaped
    (`\\r`, `\\x1b`, `\\u202e`), so a reason is one plain line in report.md and the logs."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1] if m.group() < "\ud800" else f"\\u{ord(m.group()):04x}", text)


def describe(res: dict) -> tuple[bool | None, str]:
    """(correct, reason) for a `run_tests` result."""
    if "error" in res:
        return (None if res.get("undecided") else False), res["error"]
    exc, msg, n = res.get("exc"), res.get("msg"), res["total"]
    detail = f"{exc}: {msg}" if msg else exc
    if res["stage"] == "code":
        if res.get("gone"):
            return False, f"the program {_exit(res.get('status'), res.get('oom'))} before answering the tests"
        if res.get("malformed"):
            return False, f"the program sent a malformed message ({res['malformed']})"
        if exc in ("SyntaxError", "IndentationError", "TabError"):
            return False, f"syntax error: {msg}"
        if exc == "MemoryError":
            return False, "memory limit exceeded (MemoryError) in the code"
        return False, f"the code raised {detail} before the tests"
    if res["stage"] == "setup":
        return False, f"test setup raised {detail}"
    if n == 0:
        return None, "no tests to run"
    if res["passed"] == n and res.get("failed") is None:
        return True, f"passed {n}/{n} tests"
    k, test, passed = res["failed"] + 1, res.get("test", ""), f"passed {res['passed']}/{n}"
    where = f"test {k}: {test[:200]}" if "\n" not in test.strip() else f"test {k} at `{res.get('line')}`"
    if res.get("cannot_split"):
        return None, f"{CANNOT_SPLIT} {k} across the sandbox boundary: {res['cannot_split']}"
    if res.get("gone"):
        return False, f"the program {_exit(res.get('status'), res.get('oom'))} during test {k}; {passed}"
    if res.get("malformed"):
        return False, f"the program sent a malformed reply in test {k} ({res['malformed']}); {passed}"
    if exc == "MemoryError":
        return False, f"memory limit exceeded (MemoryError) in test {k}; {passed}"
    note = f"; it returned a {res['opaque']}, which cannot cross the sandbox boundary" if res.get("opaque") else ""
    return False, f"failed {where} ({detail}); {passed}{note}"

class CodeJudge:
    name = "code"
    version = "2"

    def __init__(self, cfg: JudgeConfig) -> None:
        self.cfg = cfg
        self.sandbox = Sandbox(getattr(cfg, "sandbox", "bwrap"))

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        code = extract_code(prediction or "")
        if code is None:
            return Verdict(False, "no code found")
        tests = ex.meta.get("tests") or []
        tests = [tests] if isinstance(tests, str) else [str(t) for t in tests]
        if not tests:
            return Verdict(None, "no tests to run", code, sandbox=self.sandbox.name)
        res = run_tests(self.sandbox, code, tests, self.cfg.timeout_s, self.cfg.memory_mb,
                        setup=ex.meta.get("test_setup") or "", context=ex.meta.get("test_context") or "",
                        entry_point=ex.meta.get("entry_point"))  # fmt: skip
        if res.get("failed") is not None:
            res["test"] = tests[res["failed"]]
        correct, reason = describe(res)
        return Verdict(correct, printable(reason), code, sandbox=self.sandbox.name)

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        with ThreadPoolExecutor(max_workers=self.cfg.workers, thread_name_prefix="s3ft-code") as pool:
            return list(pool.map(self.judge_one, examples, predictions))
