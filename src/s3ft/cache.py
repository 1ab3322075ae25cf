"""A SQLite cache of model calls, so re-running a stage (or another method) does not re-generate.

Reads and writes one SQLite file (by default `<run_dir>/cache.sqlite`), table `calls`: each row is
keyed by the sha256 of a canonical JSON of {model_id, messages, params, kind} and holds the JSON
result (a generation: its text and why it ended). A backend's `model_id` names the weights and everything
else that changes outputs (backend and version, dtype, device type, attention kernel). WAL mode with a busy timeout: a second process may read and write the same file.

`CachedBackend` wraps any backend. Greedy and seeded-sampling generations are cached (greedy keys
ignore `seed` and `top_p`, which greedy decoding does not use); sampled
generations without a seed (temperature > 0, seed None) bypass the cache entirely, neither read nor
written, since each call is meant to draw a fresh sample. A backend that seeds a batch rather than a request
(`seeds_batches`, the `hf` backend) samples a row differently beside other rows, so its seeded samples are keyed
by the whole call (every prompt in it, in order, the row's place and the backend's `batch_size`) and cached all or
nothing: a call hits only where the very same call was made before, and one miss draws the whole call again (never
a smaller batch of the missing prompts). NLL results are cached too (kind "nll"). A row the
backend did not run (`Failed`: too long for the model) is passed on and never cached: another context may fit it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3ft.records import Completion, Failed, GenParams, Messages, finish_of

if TYPE_CHECKING:
    from s3ft.backends.base import Backend

_CHUNK = 500  # keys per SELECT (SQLite limits the number of bound variables)


def cache_key(model_id: str, messages: Messages, params: dict | None, kind: str = "generate") -> str:
    """sha256 of the canonical JSON of one call."""
    payload = {"model_id": model_id, "messages": messages, "params": params, "kind": kind}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def generation_key(model_id: str, messages: Messages, params: GenParams) -> str:
    """The key of one generation; greedy keys ignore `seed` and `top_p`, which greedy does not use."""
    p = params.to_dict()
    if not params.sampled:
        p.update(seed=None, top_p=1.0)
    return cache_key(model_id, messages, p, "generate")


class GenerationCache:
    """Key -> JSON value store in SQLite (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, kind TEXT, model_id TEXT, "
                "value TEXT NOT NULL, created REAL)"
            )

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of those `keys` that are present."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                q = f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
                found.update((k, json.loads(v)) for k, v in self._conn.execute(q, chunk))
        return found

    def put_many(self, items: Iterable[tuple[str, Any]], kind: str = "", model_id: str = "") -> None:
        """Store (key, JSON-serialisable value) pairs in one transaction (replacing existing keys)."""
        now = time.time()
        rows = [(k, kind, model_id, json.dumps(v, ensure_ascii=False), now) for k, v in items]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedBackend:
    """A backend whose calls go through a `GenerationCache`; counts `hits`, `misses` and `bypassed`."""

    def __init__(self, backend: Backend, cache: GenerationCache, own_cache: bool = False):
        self.backend, self.cache, self.own_cache = backend, cache, own_cache
        self.hits = self.misses = self.bypassed = 0

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def _cached(self, kind: str, keys: list[str], compute: Callable[[list[int]], list], whole: bool = False) -> list:
        """The values of `keys`, computing the missing ones (`whole`: all of them, in one call, if any is missing)."""
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if whole and missing:
            missing = list(range(len(keys)))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            first: dict[str, int] = {}  # each distinct missing call is computed once
            for i in missing:
                first.setdefault(keys[i], i)
            results = compute(list(first.values()))
            if len(results) != len(first):
                raise RuntimeError(f"backend returned {len(results)} results for {len(first)} inputs")
            fresh = dict(zip(first, results, strict=True))
            self.cache.put_many(((k, v) for k, v in fresh.items() if not isinstance(v, Failed)), kind=kind,
                                model_id=self.model_id)
            found.update(fresh)
        return [found[k] for k in keys]

    def generate(self, prompts: list[Messages], params: GenParams, **kwargs) -> list[str]:
        if params.temperature > 0 and params.seed is None:
            self.bypassed += len(prompts)
            return self.backend.generate(prompts, params, **kwargs)
        whole = params.sampled and getattr(self.backend, "seeds_batches", False)
        if whole:  # a row's sample depends on the other rows of its call: the call is part of the key
            call = cache_key(self.model_id, prompts, {"batch_size": getattr(self.backend, "batch_size", None)}, "call")
            keys = [cache_key(self.model_id, m, {**params.to_dict(), "call": call, "row": i}, "generate")
                    for i, m in enumerate(prompts)]
        else:
            keys = [generation_key(self.model_id, m, params) for m in prompts]

        def compute(idx: list[int]) -> list[dict]:
            texts = self.backend.generate([prompts[i] for i in idx], params, **kwargs)
            return [t if isinstance(t, Failed) else {"text": str(t), "finish": finish_of(t)} for t in texts]

        return [_completion(v) for v in self._cached("generate", keys, compute, whole)]

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        keys = [
            cache_key(self.model_id, [*m, {"role": "assistant", "content": c}], None, "nll")
            for m, c in zip(prompts, completions, strict=True)
        ]

        def compute(idx: list[int]) -> list[tuple[float, int]]:
            return self.backend.nll([prompts[i] for i in idx], [completions[i] for i in idx])

        return [v if isinstance(v, Failed) else (float(v[0]), int(v[1])) for v in self._cached("nll", keys, compute)]

    def close(self) -> None:
        """Close the wrapped backend, and the cache if this wrapper opened it."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        if self.own_cache:
            self.cache.close()


def _completion(v) -> Completion | Failed:
    """A generation as the cache keeps it ({text, finish}; a plain string: an entry written before finish reasons
    were kept), or a `Failed` just made (never stored)."""
    if isinstance(v, Failed):
        return v
    return Completion(v) if isinstance(v, str) else Completion(v["text"], v["finish"])


def unwrapped(backend):
    """The backend a `CachedBackend` wraps (any other backend: itself)."""
    return backend.backend if isinstance(backend, CachedBackend) else backend


def maybe_cached(backend: Backend, path: str | Path | None) -> Backend:
    """`backend` wrapped in a cache stored at `path`, or `backend` itself when `path` is None."""
    if path is None:
        return backend
    return CachedBackend(backend, GenerationCache(path), own_cache=True)
