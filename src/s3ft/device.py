"""One model on the device at a time: the rule every stage's model requests go through.

`Device.get(key, load)` returns the model loaded under `key`, loading it with `load()` after freeing
whatever else is loaded: a run never holds the base model, a trained model and a judge's model at once
(on a GPU, two 7B models, or a vLLM engine that takes 90% of the memory beside anything, do not fit).
What is built on the loaded model (a vLLM adapter view of the base engine, an LLM judge that generates
through it) is its `dependent`, and goes with it. Freeing closes each object (a backend's `close`:
its child process ends, a vLLM engine shuts down), then collects garbage and empties torch's CUDA
cache, so that the next model, or training in this process, finds the memory free.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("s3ft.device")


def free_memory() -> None:
    """Collect garbage (a freed model's tensors may sit in reference cycles), then hand torch's cached CUDA
    memory back to the driver where torch is loaded and uses CUDA."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def close(obj: Any) -> None:
    getattr(obj, "close", lambda: None)()


class Device:
    """The model on the device (at most one), under its key, and what is built on it."""

    def __init__(self) -> None:
        self.key: Hashable | None = None
        self.model: Any = None
        self.dependents: dict[Hashable, Any] = {}

    def holds(self, key: Hashable) -> bool:
        return self.model is not None and self.key == key

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The model under `key`: the one loaded, or, after freeing any other, `load()`'s."""
        if not self.holds(key):
            self.free()
            self.model, self.key = load(), key
        return self.model

    def dependent(self, name: Hashable, make: Callable[[Any], Any]) -> Any:
        """An object built on the loaded model by `make(model)`, kept until the model is freed."""
        if name not in self.dependents:
            self.dependents[name] = make(self.model)
        return self.dependents[name]

    def drop(self, name: Hashable) -> None:
        """Close and forget one dependent (the model stays)."""
        if name in self.dependents:
            close(self.dependents.pop(name))

    def free(self) -> None:
        """Close what is built on the model, then the model, and give their memory back."""
        if self.model is None and not self.dependents:
            return
        for name in list(self.dependents):
            self.drop(name)
        if self.model is not None:
            log.debug("freeing %s", self.key)
            close(self.model)
        self.model, self.key = None, None
        free_memory()
