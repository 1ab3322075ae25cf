"""The hostile suite: each program in tests/hostile/ is written to escape, damage, outlive or fool the
code judge, and is judged against a three-assert `add` task in the real sandbox (docs/sandbox.md).

Every one must be judged failed (never passed, never undecided: nothing the program does may make the
verdict "undecided") within its timeout + 5 s, with a reason that is one plain line (no control
characters), leave the canary files, the run
directory, the home directory's files, and every file and folder of the virtual environment and of the
project as they were, leave no process
behind and harm no process on the host; the control (00_control.py) passes before and after. Where
a program can tell that its attack worked, it then answers correctly, so that a broken defence shows
up as a pass. `python -m pytest tests/test_sandbox_hostile.py --hostile-dir DIR` runs the same checks
on another directory of programs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges.code import CodeJudge, printable
from s3ft.judges.sandbox import UID_BASE, SandboxUnavailable
from s3ft.records import Example

HOSTILE = Path(__file__).parent / "hostile"
TIMEOUT = 3.0
TASK = Example(
    id="add", question="Write add(a, b).", gold="def add(a, b):\n    return a + b",
    meta={"tests": ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(10, 5) == 15"]},
)  # fmt: skip
CHECK_TASK = Example(  # the same task with HumanEval's test format: a check(candidate) function
    id="add-check", question="Write add(a, b).", gold="def add(a, b):\n    return a + b",
    meta={"tests": ["def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
                    "    assert candidate(10, 5) == 15\n"
                    "    for i in range(5):\n        assert candidate(i, 10) == i + 10\n\ncheck(add)\n"],
          "entry_point": "add", "test_context": 'def add(a, b):\n    """Add a and b."""\n'},
)  # fmt: skip
TASKS = {"asserts": TASK, "check": CHECK_TASK}
SECRET = "S3FT_HOSTILE_SECRET"


def programs_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("--hostile-dir") or HOSTILE)


def programs(config: pytest.Config) -> list[Path]:
    return sorted(programs_dir(config).glob("[0-9]*.py"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "program" in metafunc.fixturenames:
        metafunc.parametrize("program", [p.name for p in programs(metafunc.config)])
    if "form" in metafunc.fixturenames:
        metafunc.parametrize("form", list(TASKS))


def _digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for f in files:
            st = f.stat()
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest() + f" {oct(st.st_mode)} {st.st_mtime_ns}"
        out[f"{root} exists"] = str(root.exists())
    return out


def _listing(d: Path) -> set[tuple]:
    return {(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in d.iterdir()}


def _tree(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every entry under `root` (not following links, not under `skip`): {path: (kind, size, mode, mtime)}."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [n for n in dirs if Path(d, n) not in skip]
        for n in dirs + files:
            st = os.lstat(Path(d, n))
            out[str(Path(d, n))] = (st.st_mode >> 12, st.st_size, st.st_mode & 0o7777, st.st_mtime_ns)
    return out


def _tree_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What changed between two `_tree`s, save new bytecode files that Python writes for itself (a fresh
    interpreter, run by the suite, may write `__pycache__/*.pyc` for modules not yet compiled)."""
    changed = [f"changed {k}" for k in before.keys() & after.keys() if before[k] != after[k]
               and not (Path(k).name == "__pycache__" and before[k][:3] == after[k][:3])]  # its mtime: a new .pyc
    changed += [f"removed {k}" for k in before.keys() - after.keys()]
    changed += [f"added {k}" for k in after.keys() - before.keys()
                if not (Path(k).parent.name == "__pycache__" and k.endswith(".pyc"))
                and Path(k).name != "__pycache__"]
    return sorted(changed)


def _foreign_processes() -> set[tuple[int, str]]:
    """Processes outside this pid namespace, or (as root) owned by a sandbox user."""
    own = os.readlink("/proc/self/ns/pid")
    found = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ns, uid = os.readlink(p / "ns" / "pid"), p.stat().st_uid
            if ns != own or uid >= UID_BASE:
                status = dict(line.split(":\t", 1) for line in (p / "status").read_text().splitlines() if ":\t" in line)
                found.add((int(p.name), f"{status.get('Name')} {status.get('State')} ppid {status.get('PPid')} uid {uid}"))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    try:
        judge = CodeJudge(JudgeConfig(workers=4, timeout_s=TIMEOUT, memory_mb=256))
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("hostile")
    canary, run = root / "canary", root / "run"
    for d, files in ((canary, {"canary.txt": "canary", "secret.txt": "the secret"}), (run, {"rows.jsonl": "{}\n"})):
        d.mkdir()
        d.chmod(0o777)  # writable by anyone: only the sandbox stands between the programs and these
        for name, text in files.items():
            (d / name).write_text(text)
            (d / name).chmod(0o666)
    home = Path.home()
    home_canary = home / ".s3ft-hostile-canary"
    home_canary.write_text("home canary")
    home_canary.chmod(0o666)
    venv_site = Path(sysconfig.get_paths()["purelib"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    sentinel = subprocess.Popen(["sleep", "600"])
    os.environ[SECRET] = "hunter2"
    subs = {"@CANARY@": str(canary), "@RUN@": str(run), "@HOME@": str(home), "@VENV_SITE@": str(venv_site),
            "@PROJECT@": str(Path(__file__).resolve().parents[1]), "@PORT@": str(listener.getsockname()[1]),
            "@JUDGE_PID@": str(os.getpid()), "@SENTINEL_PID@": str(sentinel.pid)}  # fmt: skip
    watched = [canary, run, home_canary, *(home / n for n in (".bashrc", ".profile", ".zshrc"))]
    project = Path(__file__).resolve().parents[1]
    trees = {Path(sys.prefix): (), project: (project / ".git", Path(sys.prefix), project / ".pytest_cache")}

    def snapshot() -> dict:
        return {"files": _digest(watched), "venv": _listing(venv_site), "procs": _foreign_processes(),
                "trees": {root: _tree(root, skip) for root, skip in trees.items()}}

    before = snapshot()

    def judge_one(form_path: tuple[str, Path]):
        form, path = form_path
        code = path.read_text()
        for k, v in subs.items():
            code = code.replace(k, v)
        t0 = time.monotonic()
        verdict = judge.judge_one(TASKS[form], code)
        return verdict, time.monotonic() - t0

    try:
        control = [judge_one((form, HOSTILE / "00_control.py")) for form in TASKS]
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=judge.cfg.workers) as pool:
            jobs = [(form, p) for form in TASKS for p in programs(request.config)]
            results = dict(zip([(f, p.name) for f, p in jobs], pool.map(judge_one, jobs), strict=True))
        elapsed = time.monotonic() - t0
        procs_after = _foreign_processes()
        time.sleep(1.0)  # delayed tampering would be due by now
        fresh = subprocess.run([sys.executable, "-c", "print('clean')"], capture_output=True, text=True)
        after = snapshot()
        try:
            connection = listener.accept()
        except BlockingIOError:
            connection = None
        sentinel_alive = sentinel.poll() is None
        control_after = [judge_one((form, HOSTILE / "00_control.py")) for form in TASKS]
    finally:
        os.environ.pop(SECRET, None)
        home_canary.unlink(missing_ok=True)
        sentinel.send_signal(signal.SIGKILL)
        sentinel.wait()
        listener.close()
    report = "\n".join(f"{f} {n}: {v.correct} {t:.1f}s {v.reason}" for (f, n), (v, t) in results.items())
    print(f"\nhostile suite: {len(results)} programs in {elapsed:.1f}s ({judge.sandbox.name})\n{report}")
    return {"results": results, "before": before, "after": after, "procs_after": procs_after, "fresh": fresh,
            "connection": connection, "sentinel_alive": sentinel_alive, "control": control + control_after,
            "sandbox": judge.sandbox.name}  # fmt: skip


def test_each_program_is_judged_not_passed_in_time(suite: dict, form: str, program: str) -> None:
    verdict, seconds = suite["results"][form, program]
    assert seconds <= TIMEOUT + 5, (program, seconds, verdict.reason)
    assert verdict.sandbox == suite["sandbox"]
    assert verdict.reason and printable(verdict.reason) == verdict.reason, verdict.reason
    if program.startswith("00_"):
        assert verdict.correct is True, verdict.reason
    else:
        assert verdict.correct is False, verdict.reason


def test_the_control_passes_before_and_after(suite: dict) -> None:
    for verdict, _ in suite["control"]:
        assert verdict.correct is True and verdict.reason.startswith("passed"), verdict.reason


def test_files_outside_the_sandbox_are_untouched(suite: dict) -> None:
    assert suite["after"]["files"] == suite["before"]["files"]
    assert suite["after"]["venv"] == suite["before"]["venv"]
    for root, tree in suite["before"]["trees"].items():  # the virtual environment's and the project's
        assert _tree_changes(tree, suite["after"]["trees"][root]) == [], root
    assert suite["fresh"].stdout == "clean\n" and suite["fresh"].stderr == ""


def test_no_process_is_left_behind_or_harmed(suite: dict) -> None:
    assert suite["procs_after"] <= suite["before"]["procs"]
    assert suite["after"]["procs"] <= suite["before"]["procs"]
    assert suite["sentinel_alive"]
    assert suite["connection"] is None
