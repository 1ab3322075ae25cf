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


class ConfigError(S3FTError):
    """Bad configuration: names the config file, the dotted key and, when known, the line."""

    def __init__(self, path: str | None, key: str, message: str, line: int | None = None):
        self.path, self.key, self.line = path, key, line
        where = (path or "<config>") + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {key}: {message}")
