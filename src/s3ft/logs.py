"""Logging for the `s3ft` command and the processes it starts: one line per event on stderr,
`HH:MM:SS [stage] message`, the stage read from the logger's name (`s3ft.generate` -> `generate`)."""

from __future__ import annotations

import logging
import sys


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
