"""Code judge: runs each predicted program against its example's assert tests in a child process.

Reads the prediction (code between `[BEGIN]` and `[DONE]`, else the first ``` block, else the whole
text), `ex.meta["tests"]` (assert statements) and `ex.meta["test_setup"]`; writes one `Verdict` per
prediction: all tests passed, or which test failed and why.

Each run gets a fresh temporary directory (removed afterwards) as its working directory, a minimal
environment (PATH, HOME, PYTHONHASHSEED=0: none of the caller's secrets), no stdin, a new session
whose whole process group is killed when the run ends or overruns `timeout_s`, and rlimits set by the
runner before the candidate runs: address space (`memory_mb`), CPU seconds, file size (10 MiB) and,
when not root (root ignores it), the number of processes. Results come back on a private pipe, tagged
with a per-run random nonce, so printing a fake result or exiting early cannot pass.

It does NOT protect against deliberately hostile code: the candidate runs as the caller's user, can
read and write any file that user can (including outside its directory), can use the network, can
escape the process group with setsid(), can read the runner's memory (and the nonce) by introspection,
and, as root, can raise its own limits. `launch` is the one function to swap for a real sandbox.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

FILE_SIZE_LIMIT = 10 * 2**20
NPROC_MARGIN = 64
_RUNNER = r"""
import json, os, resource, signal, sys

def main():
    job_path, fd = sys.argv[1], int(sys.argv[2])
    del sys.argv[1:]
    with open(job_path) as f:
        job = json.load(f)
    os.unlink(job_path)
    os.set_inheritable(fd, False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with an error instead
    for name, value in job["limits"].items():
        if name == "RLIMIT_NPROC":
            if os.geteuid() == 0:
                continue
            uid = os.geteuid()
            value += sum(len(os.listdir(f"/proc/{p}/task")) for p in os.listdir("/proc")
                         if p.isdigit() and _owner(f"/proc/{p}") == uid)
        try:
            resource.setrlimit(getattr(resource, name), (value, value + (name == "RLIMIT_CPU")))
        except (ValueError, OSError):
            pass
    tests = job["tests"]
    res = {"stage": "tests", "passed": 0, "total": len(tests), "failed": None, "exc": None, "msg": None}
    ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
    steps = [("code", job["code"]), ("setup", job["setup"])] + [("test", t) for t in tests]
    for i, (kind, src) in enumerate(steps):
        try:
            exec(compile(src, f"<{kind}>", "exec"), ns)
            res["passed"] += kind == "test"
        except BaseException as e:
            if res["exc"] is None:
                res.update(stage=kind, failed=i - 2 if kind == "test" else None, exc=type(e).__name__)
                res["msg"] = _describe(e)
            if kind != "test":
                break
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os.write(fd, (job["nonce"] + " " + json.dumps(res) + "\n").encode())
    os._exit(0)

def _owner(path):
    try:
        return os.stat(path).st_uid
    except OSError:
        return None

def _describe(e):
    try:
        if isinstance(e, SyntaxError):
            return f"line {e.lineno}: {e.msg}"
        return str(e)[:300]
    except BaseException:
        return "<unprintable>"

main()
"""


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


def launch(argv: list[str], cwd: str, env: dict[str, str], stdout, stderr, pass_fds) -> subprocess.Popen:
    """Start the runner. Swap this for a real sandbox (namespaces, seccomp, cgroups)."""
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        pass_fds=pass_fds, start_new_session=True, close_fds=True,
    )  # fmt: skip


def _wait_then_kill_group(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait up to timeout_s for the runner to exit, then kill its process group. True if it overran."""
    try:  # a pidfd lets us wait without reaping, so the group id cannot be reused before killpg
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        overran = not poller.poll(timeout_s * 1000)
        os.close(fd)
    else:
        try:
            proc.wait(timeout_s)
            overran = False
        except subprocess.TimeoutExpired:
            overran = True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return overran


def run_tests(code: str, setup: str, tests: list[str], timeout_s: float, memory_mb: int) -> dict:
    """Run code, then setup, then each test in a child; the runner's result dict, or {"error": ...}."""
    root = tempfile.mkdtemp(prefix="s3ft-code-")
    read_fd = None
    try:
        work, nonce = os.path.join(root, "work"), secrets.token_hex(16)
        os.mkdir(work)
        limits = {"RLIMIT_AS": memory_mb * 2**20, "RLIMIT_CPU": math.ceil(timeout_s) + 1}
        limits |= {"RLIMIT_FSIZE": FILE_SIZE_LIMIT, "RLIMIT_NPROC": NPROC_MARGIN, "RLIMIT_CORE": 0}
        job = {"nonce": nonce, "code": code, "setup": setup, "tests": tests, "limits": limits}
        for name, text in (("job.json", json.dumps(job)), ("runner.py", _RUNNER)):
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "TMPDIR": work,
               "PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
        # -I minus -E: the environment is ours already, and -E would drop PYTHONHASHSEED (set order).
        flags = ["-s", "-P"] if sys.version_info >= (3, 11) else ["-s"]
        read_fd, write_fd = os.pipe()
        out_path, err_path = os.path.join(root, "stdout"), os.path.join(root, "stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                argv = [sys.executable, *flags, *(os.path.join(root, n) for n in ("runner.py", "job.json"))]
                proc = launch([*argv, str(write_fd)], work, env, out, err, (write_fd,))
            finally:
                os.close(write_fd)
        overran = _wait_then_kill_group(proc, timeout_s)
        os.set_blocking(read_fd, False)
        data = b""
        while len(data) < 2**20:
            try:
                if not (chunk := os.read(read_fd, 65536)):
                    break
            except BlockingIOError:
                break
            data += chunk
        for line in data.decode(errors="replace").splitlines():
            if line.startswith(nonce + " "):
                return json.loads(line[len(nonce) + 1 :])
        if overran:
            return {"error": f"timeout after {timeout_s}s"}
        with open(err_path, "rb") as f:
            f.seek(max(0, os.path.getsize(err_path) - 2000))
            tail = f.read().decode(errors="replace").strip().splitlines()
        if proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            what = {"SIGXCPU": "CPU time limit exceeded", "SIGSEGV": "crashed"}.get(sig, "killed")
            return {"error": f"{what} ({sig})"}
        if tail and "MemoryError" in tail[-1]:
            return {"error": "memory limit exceeded (MemoryError)"}
        last = f": {tail[-1][:200]}" if tail else ""
        return {"error": f"exited with code {proc.returncode} before reporting test results{last}"}
    finally:
        if read_fd is not None:
            os.close(read_fd)
        shutil.rmtree(root, ignore_errors=True)


def describe(res: dict) -> tuple[bool | None, str]:
    """(correct, reason) for a `run_tests` result."""
    if "error" in res:
        return False, res["error"]
    exc, msg, n = res["exc"], res["msg"], res["total"]
    detail = f"{exc}: {msg}" if msg else exc
    if res["stage"] == "code":
        if exc in ("SyntaxError", "IndentationError", "TabError"):
            return False, f"syntax error: {msg}"
        if exc == "MemoryError":
            return False, "memory limit exceeded (MemoryError) in the code"
        return False, f"the code raised {detail} before the tests"
    if res["stage"] == "setup":
        return False, f"test setup raised {detail}"
    if n == 0:
        return None, "no tests to run"
    if res["passed"] == n:
        return True, f"passed {n}/{n} tests"
    k = res["failed"] + 1
    if exc == "MemoryError":
        return False, f"memory limit exceeded (MemoryError) in test {k}; passed {res['passed']}/{n}"
    return False, f"failed test {k}: {res['test'][:200]} ({detail}); passed {res['passed']}/{n}"


class CodeJudge:
    name = "code"
    version = "1"

    def __init__(self, cfg: JudgeConfig) -> None:
        self.cfg = cfg

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        code = extract_code(prediction or "")
        if code is None:
            return Verdict(False, "no code found")
        tests = ex.meta.get("tests") or []
        tests = [tests] if isinstance(tests, str) else [str(t) for t in tests]
        if not tests:
            return Verdict(None, "no tests to run", code)
        res = run_tests(code, ex.meta.get("test_setup") or "", tests, self.cfg.timeout_s, self.cfg.memory_mb)
        if res.get("failed") is not None:
            res["test"] = tests[res["failed"]]
        correct, reason = describe(res)
        return Verdict(correct, reason, code)

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        with ThreadPoolExecutor(max_workers=self.cfg.workers, thread_name_prefix="s3ft-code") as pool:
            return list(pool.map(self.judge_one, examples, predictions))
