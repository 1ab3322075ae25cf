"""The generation-backend interface: chat prompts in, completions (or their likelihood) out.

A backend is anything with `model_id`, `generate` and `nll`. Prompts are chat messages
(`[{"role": "user", "content": ...}]`); the backend applies the model's chat template.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Protocol

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class GenParams:
    """Decoding parameters. Greedy by default; sampling is seeded when `seed` is set."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    @property
    def sampled(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


class Completion(str):
    """A generated text that also says why generation ended: `finish` is "stop" (end of turn or a stop
    string), "length" (cut off at `max_new_tokens`), or None (the backend did not say)."""

    finish: str | None

    def __new__(cls, text: str, finish: str | None = None):
        obj = super().__new__(cls, text)
        obj.finish = finish
        return obj


def finish_of(text: str) -> str | None:
    """Why the generation of `text` ended ("stop" / "length"), when its backend said; else None."""
    return getattr(text, "finish", None)


class Backend(Protocol):
    """A model that generates. `model_id` identifies the weights (it keys the cache)."""

    model_id: str

    def generate(self, prompts: list[Messages], params: GenParams) -> list[str]:
        """One completion per prompt, truncated before the first stop string (a `Completion` where the
        backend knows why generation ended)."""
        ...

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        """(summed negative log-likelihood, number of tokens) of each completion given its prompt."""
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
