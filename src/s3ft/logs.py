"""Logging for the `s3ft` command and the processes it starts: one line per event on stderr,
`HH:MM:SS [stage] message`, the stage read from the logger's name (`s3ft.generate` -> `generate`).
`run_log(run_dir)` also writes them, while a run lasts, to `RUN_DIR/run.log` (appended, one header line per
run with its date), and with them the `detail` of an error that ends the run (the traceback behind its one line,
a child process's where it failed in one); a training process under `accelerate launch` appends its own lines to
the same file (`current_run_log`). A FutureWarning is shown once per message, not once per call site or process."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

RUN_LOG = "run.log"
_OPEN: list[Path] = []  # the run logs open in this process, the innermost last


class StageFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stage = record.name.removeprefix("s3ft.").removeprefix("s3ft")
        msg = super().format(record)
        return f"{self.formatTime(record, '%H:%M:%S')} [{stage or 's3ft'}] {msg}"


def setup_logging(verbose: bool = False) -> None:
    """s3ft's loggers to stderr (DEBUG with `verbose`); the field's libraries' own chatter to errors only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StageFormatter("%(message)s"))
    root = logging.getLogger("s3ft")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    for noisy in ("transformers", "datasets", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    once_per_message()


def once_per_message() -> None:
    """Each FutureWarning and DeprecationWarning message shown once, here and in the processes started from here
    (the same deprecation, met by every evaluation, used to print every time)."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("once", category=category)
    os.environ.setdefault("PYTHONWARNINGS", "once::FutureWarning")


@contextlib.contextmanager
def run_log(run_dir: str | Path, header: bool = True) -> Iterator[Path]:
    """While the block runs, s3ft's log lines (INFO and up) are also appended to `run_dir/run.log` (`header`: after
    a line with the date and the command); an exception that leaves the block with a `detail` (`S3FTError.detail`)
    leaves it there too."""
    path = Path(run_dir) / RUN_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(StageFormatter("%(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("s3ft")
    level = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    _OPEN.append(path)
    try:
        if header:
            handler.stream.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} s3ft {' '.join(sys.argv[1:])}\n")
            handler.flush()  # before a child process appends its own lines
        yield path
    except BaseException as e:
        if detail := getattr(e, "detail", None):
            handler.stream.write(f"{e}\n{detail.rstrip()}\n")
            e.detail_in = str(path)
        raise
    finally:
        _OPEN.remove(path)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)


def current_run_log() -> Path | None:
    """The `run.log` a `run_log` block has open in this process (None outside one): where a child process started
    from the run appends its own lines."""
    return _OPEN[-1] if _OPEN else None
