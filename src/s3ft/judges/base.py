"""The judge interface: examples and predictions in, one `Verdict` per prediction out.

Judges are plain callables over lists (as TRL's reward functions are), so a judge can batch, use
worker processes or call a model. A judge never raises on a bad prediction: it returns a verdict
with `correct=False` (or `None` when it could not decide) and the reason.
"""

from __future__ import annotations

from typing import Protocol

from s3ft.records import Example, Verdict


class Judge(Protocol):
    name: str
    version: str
    """Bump when the judge's behaviour changes: it is part of the judge stage's fingerprint."""

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]: ...
