"""A full disk (an injected ENOSPC), a file-size limit (RLIMIT_FSIZE) and Ctrl-C each end a run with one line
saying what happened and where, leave no temporary file behind, and the next run resumes to the result of a
run that was never stopped. The pipeline runs on test_shards' stand-in backend (no model, no torch)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

from conftest import HANG_GUARD_S
from test_rundir_tamper import outputs
from test_shards import config

from s3ft.cli import main

UNTIL = "judge_paraphrase"


def temporary_files(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def reference(tmp_path: Path) -> dict[str, bytes]:
    assert main(["run", config(tmp_path, "clean", ["s3ft"]), "--until", UNTIL]) == 0
    return outputs(tmp_path / "clean")


def test_a_full_disk_says_so_in_one_line_leaves_no_temporary_file_and_resumes(tmp_path, monkeypatch, capsys):
    want = reference(tmp_path)
    cfg, run = config(tmp_path, "run", ["s3ft"]), tmp_path / "run"
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 12:  # mid-run: in the middle of a stage's writes
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert main(["run", cfg, "--until", UNTIL]) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]  # the rest: the log
    assert "Traceback" not in err and "rerun: it resumes" in line
    assert line.startswith("error: no space left on the device writing ") and " in generate (" in line
    assert temporary_files(run) == []
    monkeypatch.setattr(os, "fsync", real)  # room again
    assert main(["run", cfg, "--until", UNTIL]) == 0
    assert outputs(run) == want and temporary_files(run) == []


def test_temporary_files_a_killed_run_left_are_removed_by_the_next_run(tmp_path):
    cfg, run = config(tmp_path, "run", ["s3ft"]), tmp_path / "run"
    (run / "02_generate").mkdir(parents=True)
    for stale in (run / ".config.yaml.123-abcd.tmp", run / "02_generate" / ".rows.jsonl.tmp"):
        stale.write_text("half")
    assert main(["run", cfg, "--until", "data"]) == 0
    assert temporary_files(run) == []


def test_a_file_size_limit_says_so_in_one_line_and_a_rerun_without_it_resumes(tmp_path):
    want = reference(tmp_path)
    cfg, run = config(tmp_path, "run", ["s3ft"]), tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    limit = max(len(b) for b in want.values()) // 2  # the largest output cannot be written

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([sys.executable, "-m", "s3ft", "run", cfg, "--until", UNTIL], env=env, capture_output=True,
                       text=True, preexec_fn=small_files, timeout=HANG_GUARD_S)
    assert r.returncode == 2, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert "a file-size limit was reached writing" in line and "rerun: it resumes" in line
    assert "Traceback" not in r.stderr and temporary_files(run) == []
    assert main(["run", cfg, "--until", UNTIL]) == 0
    assert outputs(run) == want


def test_ctrl_c_says_where_it_stopped_and_that_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    import s3ft.stages.paraphrase as paraphrase

    want = reference(tmp_path)
    cfg, run = config(tmp_path, "run", ["s3ft"]), tmp_path / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(paraphrase, "run", interrupted)
    capsys.readouterr()
    assert main(["run", cfg, "--until", UNTIL]) == 130
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("stopped: interrupted in paraphrase (") and "a rerun resumes" in err
    assert "Traceback" not in err
    monkeypatch.undo()
    assert main(["run", cfg, "--until", UNTIL]) == 0
    assert outputs(run) == want
