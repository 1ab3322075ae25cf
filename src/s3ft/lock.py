"""One writer per run directory: `RUN_DIR/run.lock`, held by `s3ft run` (and `s3ft.run`) while it runs.

The lock is an exclusive `flock` on the file, which the kernel drops when its holder dies, however it dies
(SIGKILL included); the file names the holder (pid, host, process start time, command), so that a second run
refuses at once and says who holds it. A lock whose holder is gone is taken over, with a log line naming it:
on the same host, where the named pid is no longer that process; a lock named by another host whose flock is
free is refused (a network file system may not carry flock between hosts), and deleting the file by hand is
the way out, which the error says. Releasing it empties the file; a shard folder that holds nothing else is
removed with it (a run that locked the file just before checks, once locked, that it is still the file there).

A shard run (`--shard I/N`) locks its own folder, `shards/shard-I-of-N/run.lock`, so that shards on several
machines run at once; the merge (a plain run) refuses while a shard's lock is held (`check_shards_free`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from s3ft.errors import S3FTError

log = logging.getLogger("s3ft.lock")
NAME = "run.lock"


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, Linux), which a reused pid does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` runs on this host (and, where `started` is known, is the process that started then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, another user's
    now = _start_time(pid)
    return started is None or now is None or now == started


def holder_text(h: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["since"])) if h.get("since") else "?"
    return f"pid {h.get('pid')} on host {h.get('host')}, since {since}" + (f": {h['command']}" if h.get("command") else "")


class RunLock:
    """The lock of one folder (a run directory, or a shard's folder): `with RunLock(path):` or acquire/release."""

    def __init__(self, folder: Path, what: str = "run directory", tidy: bool = False):
        self.folder, self.what = Path(folder), what
        self.tidy = tidy
        """Remove the folder on release where the lock is all it holds (a shard folder refused before it began)."""
        self.path = self.folder / NAME
        self._fd: int | None = None

    def holder(self) -> dict | None:
        """Who the file names (None when it names nobody: never locked, or released)."""
        try:
            text = self.path.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        try:
            h = json.loads(text) if text.strip() else None
        except ValueError:
            return None  # torn by a holder killed while writing it: it names nobody
        return h if isinstance(h, dict) else None

    def held(self) -> dict | None:
        """The holder, where a live process holds the lock now (another process or this one); else None."""
        if self._fd is not None:
            return self.holder()
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.holder() or {"pid": "?", "host": "?"}
        finally:
            os.close(fd)  # closing drops a lock taken here
        return None

    def refused(self, h: dict) -> S3FTError:
        return S3FTError(f"{self.folder}: another s3ft run writes this {self.what} ({holder_text(h)}); one run at a "
                         f"time writes a {self.what}: wait for it to finish or stop it, then run again (the lock "
                         f"is {self.path})")

    def acquire(self) -> RunLock:
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self.refused(self.holder() or {"pid": "?", "host": "?"}) from None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # a tidy release removed the file after we opened it: lock the one there now
        try:
            self._take_over(self.holder())
        except BaseException:
            os.close(fd)
            raise
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
              "since": time.time(), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def _take_over(self, h: dict | None) -> None:
        """The flock is ours: the file names nobody, or a holder that is gone (taken over), or one that may not be."""
        if h is None or h.get("pid") == os.getpid() and h.get("host") == socket.gethostname():
            return
        if h.get("host") != socket.gethostname():
            raise S3FTError(f"{self.folder}: the lock names a run on another host ({holder_text(h)}), which this host "
                            f"cannot see: if no s3ft run writes this {self.what} there, delete {self.path} and "
                            "run again")
        if isinstance(h.get("pid"), int) and alive(h["pid"], h.get("started")):
            raise self.refused(h)  # a live holder whose flock this file system did not show
        log.warning("%s: taking over the lock of a run that no longer runs (%s)", self.folder, holder_text(h))

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # names nobody; the file stays (see the module docstring)
            if self.tidy and [p.name for p in self.folder.iterdir()] == [NAME]:
                self.path.unlink()  # still locked: a process that opened it sees another inode and retries
                self.folder.rmdir()
                with contextlib.suppress(OSError):  # another shard may be making its folder there
                    self.folder.parent.rmdir()
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_shards_free(run_dir: Path) -> None:
    """Refuse to merge while a shard run holds its folder's lock."""
    root = Path(run_dir) / "shards"
    for d in sorted(root.iterdir()) if root.is_dir() else ():
        lock = RunLock(d, "shard folder")
        if (h := lock.held()) is not None:
            raise S3FTError(f"{d}: shard {d.name} is still running ({holder_text(h)}): wait for it to finish "
                            "before the plain run that merges the shards")


def for_run(run_dir: str | Path, shard=None) -> RunLock:
    """The lock a run takes, acquired: a plain run's, on the run directory (refused while a shard still runs,
    since it merges them); a shard run's (`shard`: a `shards.Shard` or "I/N"), on its shard folder (refused
    while a plain run holds the run directory: it would merge and remove the folder under it)."""
    from s3ft.shards import Shard, shard_dir

    run_dir = Path(run_dir)
    if shard is None:
        lock = RunLock(run_dir).acquire()
        try:
            check_shards_free(run_dir)
        except BaseException:
            lock.release()
            raise
        return lock
    shard = shard if isinstance(shard, Shard) else Shard.parse(shard)
    main = RunLock(run_dir)
    if (h := main.held()) is not None:
        raise main.refused(h)
    return RunLock(shard_dir(run_dir, shard), f"shard folder ({shard})", tidy=True).acquire()
