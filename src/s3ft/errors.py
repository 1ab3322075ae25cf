"""Errors a user can act on: each names the file, the line and the field (or config key) at fault.
`loading_model(key, path)` makes a model that does not load one of them."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator


class S3FTError(Exception):
    """Base class for errors that s3ft reports to the user without a traceback. `detail`, where set: the traceback
    behind the one line (a child process's, where it failed in one), kept in the run's `run.log` (`detail_in`)."""

    detail: str | None = None
    detail_in: str | None = None


class InputError(S3FTError):
    """Bad input data: names the file, the 1-based line (or row) and the field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f":{line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class StageError(S3FTError):
    """A stage stopped midway: a backend or a judge failed on one chunk of rows. Names the stage, the chunk
    and its ids; the rows written before it are kept, and a rerun resumes from them."""

    def __init__(self, stage: str, chunk: int, chunks: int, ids: list[str], kept: int, problem: str):
        self.stage, self.chunk, self.ids = stage, chunk, ids
        span = repr(ids[0]) if len(ids) == 1 else f"{ids[0]!r} .. {ids[-1]!r}"
        super().__init__(
            f"{stage}: chunk {chunk} of {chunks} ({len(ids)} rows, ids {span}) failed: {problem}; "
            f"the {kept} rows written before it are kept, and a rerun resumes from them"
        )


class ConfigError(S3FTError):
    """Bad configuration: names the config file, the dotted key and, when known, the line."""

    def __init__(self, path: str | None, key: str, message: str, line: int | None = None):
        self.path, self.key, self.line, self.message = path, key, line, message
        where = (path or "<config>") + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {key}: {message}")


def load_cause(e: BaseException) -> str | None:
    """The one line of why a model did not load, where `e` says that: transformers' OSError (no such folder, a hub
    id unknown or unreachable offline, a config.json that is not JSON), safetensors' error (a corrupt weights
    file), or a child process's report of one (`e.load_cause`). None for anything else: an OSError with an errno
    is the system's (a full disk) and keeps its own report."""
    if (isinstance(e, OSError) and e.errno is None) or type(e).__name__ == "SafetensorError":
        return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return getattr(e, "load_cause", None)


@contextlib.contextmanager
def loading_model(key: str, path: str) -> Iterator[None]:
    """A model that does not load inside the block (`load_cause`) is a ConfigError naming `key` (`model.path`,
    `judge.llm.model.path`), the path and the cause in one line; its traceback is the error's `detail`."""
    try:
        yield
    except Exception as e:
        why = load_cause(e)
        if why is None:
            raise
        err = ConfigError(None, key, f"cannot load {path}: {why}")
        err.detail = getattr(e, "detail", None) or "".join(traceback.format_exception(e))
        raise err from e
