"""One writer per run directory (`s3ft.lock`): a second run refuses at once, naming the holder, and the first
run finishes intact; a lock left by a dead process is taken over; shards lock their own folders and the merge
waits for them; a finished unit never holds an id twice (test_rundir_tamper).

The runs use test_shards' stand-in backend (no model, no torch), in this process or as `python -m s3ft`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S
from test_shards import config

import s3ft
from s3ft.cli import main
from s3ft.errors import S3FTError
from s3ft.lock import RunLock, for_run
from s3ft.rundir import read_jsonl, stage_root

HOLD = """import sys, time
from s3ft.lock import RunLock, for_run
lock = for_run(sys.argv[1], sys.argv[2] or None)
print("held", flush=True)
time.sleep(600)
"""


def hold(run_dir: Path, shard: str = "") -> subprocess.Popen:
    """Another process holding the lock of `run_dir` (of its shard folder with `shard`), until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), shard], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def check_ids_once(run: Path) -> None:
    for path in run.rglob("*.jsonl"):
        ids = [r["id"] for r in read_jsonl(path) if "id" in r]
        assert len(ids) == len(set(ids)), path


def test_a_second_run_is_refused_at_once_naming_the_holder(tmp_path, capsys):
    cfg = config(tmp_path, "run", ["sft"])
    holder = hold(tmp_path / "run")
    try:
        t0 = time.monotonic()
        assert main(["run", cfg]) == 2
        assert time.monotonic() - t0 < 30
        err = capsys.readouterr().err
        assert f"pid {holder.pid} on host {socket.gethostname()}" in err and "another s3ft run" in err
        assert not stage_root(tmp_path / "run", "data").exists()  # refused before any stage
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", cfg, "--until", "data"]) == 0  # the holder died (SIGKILL): its lock is free


def test_a_run_started_during_anothers_work_is_refused_and_the_first_finishes_intact(tmp_path, monkeypatch, capsys):
    """The second run starts while the first is inside its judge stage (held there by a patched stage)."""
    import s3ft.stages.judge as judge

    cfg = s3ft.load_config(config(tmp_path, "run", ["s3ft"]))
    inside, go, done = threading.Event(), threading.Event(), {}
    real = judge.run

    def slow(*args, **kwargs):
        inside.set()
        assert go.wait(HANG_GUARD_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(judge, "run", slow)
    first = threading.Thread(target=lambda: done.update(r=s3ft.run(cfg, until="judge_paraphrase")))
    first.start()
    assert inside.wait(HANG_GUARD_S)
    with pytest.raises(S3FTError, match=f"another s3ft run writes this run directory \\(pid {os.getpid()} "):
        s3ft.run(cfg, until="judge_paraphrase")
    go.set()
    first.join(HANG_GUARD_S)
    assert [r["unit"] for r in done["r"]][-1] == "judge_paraphrase"
    run = tmp_path / "run"
    states = {r["unit"]: r["state"] for r in s3ft.status(run)}
    assert all(states[u] == "done" for u in ("data", "generate", "judge", "paraphrase", "judge_paraphrase"))
    check_ids_once(run)
    assert RunLock(run).held() is None and (run / "run.lock").read_text() == ""  # released: names nobody


def test_two_runs_started_together_one_refused_one_intact(tmp_path):
    cfg = config(tmp_path, "run", ["s3ft"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    runs = [subprocess.Popen([sys.executable, "-m", "s3ft", "run", cfg, "--until", "judge"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=HANG_GUARD_S) for p in runs]
    codes = sorted(p.returncode for p in runs)
    refused = [err for (_, err), p in zip(outs, runs, strict=True) if p.returncode == 2]
    if codes == [0, 0]:  # the second reached the lock after the first had finished: it skipped every unit
        assert any("0 stage unit(s) ran" in out for out, _ in outs)
    else:
        assert codes == [0, 2], outs
        assert "another s3ft run writes this run directory (pid" in refused[0]
    run = tmp_path / "run"
    assert all(r["state"] == "done" for r in s3ft.status(run) if r["unit"] in ("data", "generate", "judge"))
    check_ids_once(run)
    assert main(["run", cfg, "--until", "judge"]) == 0  # and the next plain run goes on


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": 1.0}))
    with RunLock(tmp_path) as lock:
        assert lock.holder()["pid"] == os.getpid()
    assert f"taking over the lock of a run that no longer runs (pid {dead.pid}" in caplog.text


def test_a_lock_naming_another_host_is_refused_with_the_way_out(tmp_path):
    (tmp_path / "run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "since": 1.0}))
    with pytest.raises(S3FTError, match=r"another host \(pid 1 on host elsewhere.example.*delete .*run.lock"):
        RunLock(tmp_path).acquire()


def test_shards_lock_their_folders_and_the_merge_waits_for_them(tmp_path):
    run = tmp_path / "run"
    holder = hold(run, "1/2")
    try:
        with for_run(run, "0/2"):  # shards run at once
            pass
        with pytest.raises(S3FTError, match="shard shard-1-of-2 is still running"):
            for_run(run)
    finally:
        holder.kill()
        holder.wait()
    for_run(run).release()  # the shard died: the merge goes on
    main_holder = hold(run)
    try:  # and a shard refuses while a plain run (which merges and removes shard folders) writes
        with pytest.raises(S3FTError, match="another s3ft run writes this run directory"):
            for_run(run, "0/2")
    finally:
        main_holder.kill()
        main_holder.wait()
    assert not (run / "shards" / "shard-0-of-2").exists()  # a shard folder holding only its lock is removed

