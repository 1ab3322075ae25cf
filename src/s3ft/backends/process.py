"""A backend in a child process of its own (`generate.isolate`): closing it ends the process, so that
everything the model held (a GPU's memory, a vLLM engine's workers) is freed before the next model loads.

`ProcessBackend(cls, *args, **kwargs)` starts a fresh interpreter (multiprocessing's "spawn": no CUDA state
is inherited), builds `cls(*args, **kwargs)` there, and forwards `generate`, `nll`, `batch_size` and, for an
engine that serves LoRA adapters, `with_adapter` views to it over a pipe. Completions come back with their
finish reasons. An error in the child is raised here: s3ft's own errors (a missing vLLM, a bad adapter path)
with their message, a model that does not load with its cause in one line (`load_cause`, the child's
traceback its `detail`), any other with the child's traceback; a child that dies (killed, out of memory) is an
error naming its exit status, never a hang. Closing also ends every process the child started that outlives
it (an engine's processes, when the backend does not stop them or the child was killed).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing as mp
import traceback
import weakref

from s3ft.errors import S3FTError, load_cause

log = logging.getLogger("s3ft.backends")
_STOP_S = 60


class BackendProcessError(S3FTError):
    """The backend's child process failed: the message holds its traceback or exit status; where the model did
    not load, `load_cause` says why in one line and `detail` holds the traceback."""

    load_cause: str | None = None


def _serve(conn, cls, args: tuple, kwargs: dict) -> None:
    """The child's loop: build the backend, then answer (op, view, name, args, kwargs) requests."""
    try:
        backend = cls(*args, **kwargs)
        conn.send(("ok", {a: getattr(backend, a, None) for a in ("model_id", "batch_size", "lora")}))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", _describe(e, loading=True)))
        _end_children()
        return
    views, ids = {None: backend}, itertools.count(1)
    while True:
        try:
            op, view, name, a, kw = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if op == "close":
            break
        try:
            target = views[view]
            if op == "call":
                result = getattr(target, name)(*a, **kw)
            elif op == "set":
                setattr(target, name, a[0])
                result = None
            else:  # "view": a LoRA adapter on the engine
                v = backend.with_adapter(*a)
                views[i := next(ids)] = v
                result = (i, v.model_id)
            conn.send(("ok", result))
        except BaseException as e:  # noqa: BLE001
            conn.send(("error", _describe(e)))
    views.clear()  # an adapter view may hold the engine
    close = getattr(backend, "close", None)
    if close is not None:
        close()
    _end_children()


def _end_children(grace_s: float = 5) -> None:
    """End this process's multiprocessing children that its backend left running (an engine's workers):
    at exit, multiprocessing would wait for them forever."""
    left = mp.active_children()
    if left:
        log.warning("the backend left %d process(es) running: stopped", len(left))
    for p in left:
        p.terminate()
    for p in left:
        p.join(grace_s)
        if p.is_alive():
            p.kill()
            p.join()


def _describe(e: BaseException, loading: bool = False) -> tuple[str, str, bool, str | None]:
    """(kind, text, ours, cause): an S3FTError's message (a user's error, said plainly), else the traceback; and,
    `loading` the backend, why its model did not load where that is the failure (`load_cause`)."""
    ours = isinstance(e, S3FTError)
    cause = load_cause(e) if loading and not ours else None
    return type(e).__name__, str(e) if ours else "".join(traceback.format_exception(e)), ours, cause


class ProcessBackend:
    """`cls(*args, **kwargs)` in a child process (see the module docstring)."""

    def __init__(self, cls, *args, **kwargs):
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._what = f"{getattr(cls, '__name__', cls)} for {getattr(args[0], 'path', args[0]) if args else '?'}"
        # not a daemon: vLLM's engine starts processes of its own. The child ends when its pipe closes: at
        # close(), at exit (the finalizer), or when this process dies.
        self._proc = ctx.Process(target=_serve, args=(child, cls, args, kwargs), name=f"s3ft-backend-{self._what}")
        self._proc.start()
        child.close()
        self._family: set = set()  # the child's own child processes, as last seen (psutil.Process)
        self._stop = weakref.finalize(self, _shutdown, self._conn, self._proc, self._family)
        self.owner, self._view = True, None
        try:
            info = self._receive()
        except BaseException:
            self.close()
            raise
        self.model_id, self._batch_size, self.lora = info["model_id"], info["batch_size"], bool(info["lora"])
        self._family.update(_descendants(self._proc.pid))  # an engine's processes, known even if the child dies
        log.info("backend %s runs in child process %d", self._what, self._proc.pid)

    def _receive(self):
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError, ConnectionError):
            self._proc.join(5)
            raise BackendProcessError(f"the backend process ({self._what}) died, exit status "
                                      f"{self._proc.exitcode}: out of memory, or killed?") from None
        if status == "error":
            kind, text, ours, cause = value
            if ours:
                raise BackendProcessError(text)
            if cause:  # the model did not load: one line; the child's traceback kept apart
                err = BackendProcessError(f"the backend process ({self._what}) could not load the model: {cause}")
                err.load_cause, err.detail = cause, text
                raise err
            raise BackendProcessError(f"the backend process ({self._what}) raised {kind}:\n{text.rstrip()}")
        return value

    def _request(self, op: str, name: str = "", *args, **kwargs):
        if self._conn is None:
            raise BackendProcessError(f"the backend process ({self._what}) is closed")
        try:
            self._conn.send((op, self._view, name, args, kwargs))
        except (BrokenPipeError, OSError):
            return self._receive()  # raises: the child is gone
        return self._receive()

    def generate(self, prompts, params, **kwargs) -> list[str]:
        return self._request("call", "generate", prompts, params, **kwargs)

    def nll(self, prompts, completions) -> list[tuple[float, int]]:
        return self._request("call", "nll", prompts, completions)

    @property
    def batch_size(self):
        return self._batch_size

    @batch_size.setter
    def batch_size(self, n) -> None:
        self._request("set", "batch_size", n)
        self._batch_size = n

    def with_adapter(self, adapter: str) -> ProcessBackend:
        """A view of the child's engine with a LoRA adapter (`VLLMBackend.with_adapter`); closing it frees
        nothing."""
        i, model_id = self._request("view", "", adapter)
        view = object.__new__(ProcessBackend)
        view.__dict__.update(self.__dict__)
        view.owner, view._view, view.model_id = False, i, model_id
        return view

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def close(self) -> None:
        """End the child process (a view: nothing), and with it everything the model held."""
        if self.owner and self._conn is not None:
            self._conn = None
            self._stop()


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _shutdown(conn, proc, family: set) -> None:
    """Ask the child to close its backend and exit; kill it if it does not within `_STOP_S`. Then end any
    process it started that outlived it (a killed child's engine, orphaned, would hold a GPU forever)."""
    import psutil

    family.update(_descendants(proc.pid))
    try:
        conn.send(("close", None, "", (), {}))
    except (BrokenPipeError, OSError):
        pass
    proc.join(_STOP_S)
    if proc.is_alive():
        log.warning("backend process %d did not stop in %d s: killed", proc.pid, _STOP_S)
        proc.kill()
        proc.join()
    conn.close()
    alive = _running(family, wait_s=5)
    if alive:
        log.warning("backend process %d left %d process(es) running: killed", proc.pid, len(alive))
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        _running(alive, wait_s=5)


def _running(procs, wait_s: float) -> list:
    """Those of `procs` still running after up to `wait_s` seconds (a zombie has ended; a Process object
    whose pid was reused by another process is not running)."""
    import time

    import psutil

    def running(p) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + wait_s
    while (left := [p for p in procs if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
