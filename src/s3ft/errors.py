"""Errors a user can act on: each names the file, the line and the field (or config key) at fault."""

from __future__ import annotations


class S3FTError(Exception):
    """Base class for errors that s3ft reports to the user without a traceback."""


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
