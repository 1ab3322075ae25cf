"""`generate.isolate`: each model's backend in a child process of its own (`s3ft.backends.process`), ended
when the model is released, with the same outputs as in-process; errors and a dead child are clear errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

from s3ft.backends.base import Completion, GenParams, batch_size
from s3ft.backends.process import BackendProcessError, ProcessBackend
from s3ft.config import ModelConfig

PROMPTS = [[{"role": "user", "content": q}] for q in ("What is 2 + 3?", "Reverse: a b c", "Name a colour.")]


class Echo:
    """A stand-in model: says which process it runs in, its batch size and adapter."""

    def __init__(self, model_cfg, batch_size: int = 8, adapter: str | None = None, fail: bool = False, **kw):
        if fail:
            raise ValueError(f"cannot load {model_cfg.path}")
        self.model_id, self.batch_size, self.adapter, self.lora = f"echo:{model_cfg.path}", batch_size, adapter, True

    def generate(self, prompts, params):
        if params.max_new_tokens == 0:
            raise RuntimeError("max_new_tokens must be positive")
        return [Completion(f"{p[-1]['content']}|pid={os.getpid()}|bs={self.batch_size}|ad={self.adapter}",
                           "length" if i % 2 else "stop") for i, p in enumerate(prompts)]

    def nll(self, prompts, completions):
        return [(float(len(c)), len(c.split())) for c in completions]

    def with_adapter(self, adapter):
        view = Echo.__new__(Echo)
        view.__dict__.update(self.__dict__, adapter=adapter, model_id=f"{self.model_id}+{adapter}")
        return view


class Careless(Echo):
    """A stand-in engine that starts processes of its own, as vLLM's does, and never stops them: a
    multiprocessing child (which multiprocessing waits for at exit) and a plain one (which outlives it)."""

    def __init__(self, model_cfg, **kw):
        import multiprocessing as mp
        import subprocess
        import sys
        import time

        super().__init__(model_cfg, **kw)
        self.worker = mp.get_context("spawn").Process(target=time.sleep, args=(600,))
        self.worker.start()
        self.plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def generate(self, prompts, params):
        return [Completion(f"{self.worker.pid} {self.plain.pid}", "stop")]


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["closed", "killed"])
def test_closing_ends_the_processes_the_engine_started_even_if_the_child_died(how, monkeypatch):
    """vLLM's engine runs in processes of its own: freeing the model must end them, also when the backend does
    not stop them itself or the child was killed (an orphaned engine would hold its GPU and the run's pipes).
    The wait for a child that does not exit is made an hour long: closing must not rely on it (the guard below
    is a hang guard, far above any machine's speed)."""
    import threading

    from s3ft.backends import process

    monkeypatch.setattr(process, "_STOP_S", 3600)
    b = ProcessBackend(Careless, ModelConfig(path="m"))
    pids = [int(p) for p in b.generate(PROMPTS[:1], GenParams())[0].split()]
    assert not any(_gone(p) for p in pids)
    if how == "killed":
        os.kill(b.pid, signal.SIGKILL)
    closing = threading.Thread(target=b.close, daemon=True)
    closing.start()
    closing.join(timeout=HANG_GUARD_S)
    assert not closing.is_alive(), "close() waited for the child's stop timeout"
    assert _gone(b.pid) and all(_gone(p) for p in pids), pids


@pytest.fixture
def echo():
    b = ProcessBackend(Echo, ModelConfig(path="m"), batch_size=4)
    yield b
    b.close()


def test_calls_run_in_a_child_process_and_come_back_with_their_finish_reasons(echo):
    assert echo.model_id == "echo:m" and echo.lora and echo.pid != os.getpid()
    out = echo.generate(PROMPTS, GenParams())
    assert [o.split("|")[0] for o in out] == [p[0]["content"] for p in PROMPTS]
    assert all(f"pid={echo.pid}|bs=4|ad=None" in o for o in out)
    assert [type(o) for o in out] == [Completion] * 3 and [o.finish for o in out] == ["stop", "length", "stop"]
    assert echo.nll(PROMPTS, ["a b", "c"]) == [(3.0, 2), (1.0, 1)]


def test_batch_size_reaches_the_child(echo):
    with batch_size(echo, 2):
        assert echo.batch_size == 2 and "|bs=2|" in echo.generate(PROMPTS[:1], GenParams())[0]
    assert echo.batch_size == 4 and "|bs=4|" in echo.generate(PROMPTS[:1], GenParams())[0]


def test_an_error_in_the_child_is_raised_with_its_traceback_and_the_child_serves_on(echo):
    with pytest.raises(BackendProcessError, match=r"raised RuntimeError:\n(.|\n)*max_new_tokens must be positive"):
        echo.generate(PROMPTS, GenParams(max_new_tokens=0))
    assert len(echo.generate(PROMPTS, GenParams())) == 3


def test_a_model_that_fails_to_load_is_an_error_and_leaves_no_process():
    import multiprocessing

    def backends():
        return [p for p in multiprocessing.active_children() if p.name.startswith("s3ft-backend-")]

    before = backends()
    with pytest.raises(BackendProcessError, match="raised ValueError(.|\n)*cannot load broken"):
        ProcessBackend(Echo, ModelConfig(path="broken"), fail=True)
    assert backends() == before  # the failed child was ended and joined, not left running


def test_a_dead_child_is_an_error_naming_its_exit_status_not_a_hang(echo):
    os.kill(echo.pid, signal.SIGKILL)
    with pytest.raises(BackendProcessError, match=r"died, exit status -9"):
        echo.generate(PROMPTS, GenParams())
    echo.close()  # closing a dead backend is fine


def test_close_ends_the_process_and_an_adapter_view_frees_nothing(echo):
    view = echo.with_adapter("/adapters/a")
    assert view.model_id == "echo:m+/adapters/a"
    assert "|ad=/adapters/a" in view.generate(PROMPTS[:1], GenParams())[0]
    assert "|ad=None" in echo.generate(PROMPTS[:1], GenParams())[0]  # the engine itself is unchanged
    view.close()
    assert echo._proc.is_alive()
    echo.close()
    assert not echo._proc.is_alive() and echo._proc.exitcode == 0
    with pytest.raises(BackendProcessError, match="closed"):
        echo.generate(PROMPTS, GenParams())


def test_the_hf_backend_in_a_child_gives_what_it_gives_in_process(tiny_model_dir):
    from s3ft.backends.hf import HFBackend

    cfg = ModelConfig(path=str(tiny_model_dir), dtype="float32", device="cpu")
    params = GenParams(max_new_tokens=6)
    here = HFBackend(cfg, batch_size=2)
    want, want_nll = here.generate(PROMPTS, params), here.nll(PROMPTS, ["5", "c b a", "blue"])
    want_id = here.model_id
    here.close()
    child = ProcessBackend(HFBackend, cfg, batch_size=2)
    try:
        assert child.model_id == want_id and child.pid != os.getpid()
        got = child.generate(PROMPTS, params)
        assert got == want and [g.finish for g in got] == [w.finish for w in want]
        assert child.nll(PROMPTS, ["5", "c b a", "blue"]) == want_nll
    finally:
        child.close()


def test_a_run_with_isolated_backends_writes_the_rows_of_an_in_process_run(tmp_path):
    """The whole per-row pipeline, its backend in child processes (`generate.isolate: true`): the same bytes,
    and the same fingerprints (isolation changes no output), as in-process."""
    from test_shards import LOADS, cli, config, rows_bytes

    from s3ft.rundir import read_json, stage_root

    LOADS.clear()
    assert cli("run", config(tmp_path, "here", ["s3ft"]), "--until", "judge_paraphrase") == 0
    assert LOADS  # built in this process
    LOADS.clear()
    cfg = config(tmp_path, "child", ["s3ft"])
    assert cli("run", cfg, "generate.isolate=true", "--until", "judge_paraphrase") == 0
    assert LOADS == []  # built in child processes only
    assert rows_bytes(tmp_path / "child") == rows_bytes(tmp_path / "here")
    for stage in ("generate", "paraphrase"):
        fps = [read_json(stage_root(tmp_path / r, stage) / "manifest.json")["fingerprint"] for r in ("here", "child")]
        assert fps[0] == fps[1]


def test_a_program_that_never_closes_its_backend_still_exits_and_takes_the_child_with_it(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from test_backend_process import Echo\nfrom s3ft.backends.process import ProcessBackend\n"
            "from s3ft.config import ModelConfig\n"
            "b = ProcessBackend(Echo, ModelConfig(path='m'))\nprint(b.pid, flush=True)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=HANG_GUARD_S)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
