"""How a run stops when something outside it ends it: a full disk, a file-size limit, Ctrl-C. One line says
what ran out or what happened, where (the file, the stage unit), and that a rerun resumes; temporary files
are removed (a failed write's own at once, any left by a killed run when the next plain run starts).

The pipeline says which unit it is in (`at`); the command turns the exception into the line (`explain`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

RAN_OUT = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up",
           errno.EFBIG: "a file-size limit was reached"}
_where: list[str] = []  # the unit the pipeline is in: its name and folder


def at(unit: str | None, folder: Path | None = None) -> None:
    """The pipeline enters a unit (None: it left the last one)."""
    _where[:] = [] if unit is None else [unit, str(folder)]


def where() -> str:
    return f" in {_where[0]} ({_where[1]})" if _where else ""


@contextlib.contextmanager
def writing(path: Path):
    """Writes to `path` inside: an OSError that names no file (a failed `write` or `fsync`) is raised naming it."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


def ran_out(e: BaseException) -> str | None:
    """What ran out, where an exception is a full disk or a file-size limit (torch's writer says only
    `unexpected pos` or `file write failed`)."""
    if isinstance(e, OSError) and e.errno in RAN_OUT:
        return RAN_OUT[e.errno]
    text = str(e)
    if isinstance(e, RuntimeError) and ("unexpected pos" in text or "file write failed" in text):
        return "a write failed (a full disk or a file-size limit)"
    return None


def explain(e: BaseException) -> str | None:
    """The one line for an exception that is no bug of s3ft's (None: it is one, and keeps its traceback)."""
    if isinstance(e, KeyboardInterrupt):
        return f"interrupted{where()}: the rows and units written so far are kept; a rerun resumes from them"
    what = ran_out(e)
    if what is None:
        return None
    file = f" writing {e.filename}" if isinstance(e, OSError) and e.filename else ""
    return (f"{what}{file}{where()}: make room (or raise the limit), then rerun: it resumes from the rows and "
            "units already written")


def sweep(run_dir: Path) -> int:
    """Remove the temporary files (`.NAME.tmp`, `.NAME.<pid>-<id>.tmp`) a killed or failed run left in `run_dir`;
    only for the run directory's one writer (`s3ft.lock`). Returns how many."""
    n = 0
    for p in Path(run_dir).rglob(".*.tmp") if Path(run_dir).is_dir() else ():
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
