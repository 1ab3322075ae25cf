"""The generation-backend interface: chat prompts in, completions (or their likelihood) out.

A backend is anything with `model_id`, `generate` and `nll`. Prompts are chat messages
(`[{"role": "user", "content": ...}]`); the backend applies the model's chat template. The values that pass
through it (`Messages`, `GenParams`, `Completion`) are records (`s3ft.records`), re-exported here for plug-ins.

A row too long for the model (prompt and `max_new_tokens`, or prompt and completion, over its context) is not run:
the backend gives `Failed(reason)` in its place (`too_long` words the reason) and runs the others, so that the
stage records that row as failed and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from s3ft.records import Completion, Failed, GenParams, Messages, finish_of, too_long

__all__ = ["Backend", "Completion", "Failed", "GenParams", "Messages", "batch_size", "finish_of", "too_long"]

class Backend(Protocol):
    """A model that generates. `model_id` identifies the weights (it keys the cache)."""

    model_id: str

    def generate(self, prompts: list[Messages], params: GenParams) -> list[str]:
        """One completion per prompt, truncated before the first stop string (a `Completion` where the
        backend knows why generation ended; a `Failed` for a prompt too long for the model)."""
        ...

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        """(summed negative log-likelihood, number of tokens) of each completion given its prompt (a `Failed`
        where the two are too long for the model)."""
        ...


@contextmanager
def batch_size(backend, n: int) -> Iterator[None]:
    """Within the block, `backend` (and every backend it wraps, e.g. a cache) generates `n` prompts per batch."""
    layers, b = [], backend
    while b is not None:
        if hasattr(b, "batch_size"):
            layers.append((b, b.batch_size))
        b = getattr(b, "backend", None)
    for b, _ in layers:
        b.batch_size = n
    try:
        yield
    finally:
        for b, old in layers:
            b.batch_size = old
