"""The SQLite model-call cache and the caching backend wrapper (with a counting fake backend)."""

from __future__ import annotations

import subprocess
import sys

from s3ft.backends.base import GenParams
from s3ft.cache import CachedBackend, GenerationCache, cache_key, generation_key, maybe_cached

GREEDY = GenParams(max_new_tokens=8)


class CountingBackend:
    """Echoes each prompt's content (with a call counter for sampled runs) and records every call."""

    def __init__(self, model_id: str = "fake@1"):
        self.model_id = model_id
        self.calls: list[list[str]] = []
        self.closed = False

    def generate(self, prompts, params, **kwargs):
        self.calls.append([p[-1]["content"] for p in prompts])
        tag = f"#{len(self.calls)}" if params.sampled else ""
        return [f"{self.model_id}:{p[-1]['content']}{tag}" for p in prompts]

    def nll(self, prompts, completions):
        self.calls.append(list(completions))
        return [(float(len(c)), len(c) + 1) for c in completions]

    def close(self):
        self.closed = True


def _msgs(*texts: str):
    return [[{"role": "user", "content": t}] for t in texts]


def test_hits_skip_the_wrapped_backend(tmp_path):
    fake = CountingBackend()
    cb = CachedBackend(fake, GenerationCache(tmp_path / "c.sqlite"))
    first = cb.generate(_msgs("a", "b", "c"), GREEDY)
    assert first == ["fake@1:a", "fake@1:b", "fake@1:c"] and fake.calls == [["a", "b", "c"]]
    again = cb.generate(_msgs("c", "new", "a", "new"), GREEDY)
    assert again == ["fake@1:c", "fake@1:new", "fake@1:a", "fake@1:new"]
    assert fake.calls[1:] == [["new"]]  # only the miss, once, in one batched call
    assert (cb.hits, cb.misses) == (2, 5)
    assert cb.generate(_msgs("a", "b"), GREEDY) == first[:2] and len(fake.calls) == 2
    assert cb.model_id == "fake@1"


def test_key_depends_on_params_model_and_kind():
    m = _msgs("q")[0]
    base = cache_key("m@1", m, GREEDY.to_dict())
    assert base == cache_key("m@1", [{"content": "q", "role": "user"}], GREEDY.to_dict())  # canonical JSON
    others = [
        cache_key("m@2", m, GREEDY.to_dict()),
        cache_key("m@1", m, GenParams(max_new_tokens=9).to_dict()),
        cache_key("m@1", m, GenParams(max_new_tokens=8, stop=("x",)).to_dict()),
        cache_key("m@1", m, GREEDY.to_dict(), kind="nll"),
        cache_key("m@1", _msgs("q ")[0], GREEDY.to_dict()),
    ]
    assert len({base, *others}) == 6


def test_greedy_key_ignores_seed_and_top_p(tmp_path):
    fake = CountingBackend()
    cb = CachedBackend(fake, GenerationCache(tmp_path / "c.sqlite"))
    cb.generate(_msgs("a"), GREEDY)
    cb.generate(_msgs("a"), GenParams(max_new_tokens=8, seed=5, top_p=0.5))
    assert len(fake.calls) == 1
    cb.generate(_msgs("a"), GenParams(max_new_tokens=8, temperature=0.5, seed=5))
    cb.generate(_msgs("a"), GenParams(max_new_tokens=8, temperature=0.5, seed=6))
    assert len(fake.calls) == 3


def test_params_and_model_id_miss(tmp_path):
    cache = GenerationCache(tmp_path / "c.sqlite")
    fake = CountingBackend()
    cb = CachedBackend(fake, cache)
    cb.generate(_msgs("a"), GREEDY)
    cb.generate(_msgs("a"), GenParams(max_new_tokens=9))
    assert len(fake.calls) == 2
    other = CountingBackend("fake@2")
    assert CachedBackend(other, cache).generate(_msgs("a"), GREEDY) == ["fake@2:a"] and other.calls == [["a"]]


def test_unseeded_sampling_is_never_cached(tmp_path):
    fake = CountingBackend()
    cache = GenerationCache(tmp_path / "c.sqlite")
    cb = CachedBackend(fake, cache)
    unseeded = GenParams(temperature=0.7, seed=None)
    assert cb.generate(_msgs("a"), unseeded) != cb.generate(_msgs("a"), unseeded)
    assert len(fake.calls) == 2 and len(cache) == 0 and cb.bypassed == 2 and cb.hits == cb.misses == 0
    seeded = GenParams(temperature=0.7, seed=3)
    assert cb.generate(_msgs("a"), seeded) == cb.generate(_msgs("a"), seeded)
    assert len(fake.calls) == 3 and len(cache) == 1


def test_cache_survives_reopen_and_a_second_process(tmp_path):
    path = tmp_path / "sub" / "c.sqlite"
    cb = CachedBackend(CountingBackend(), GenerationCache(path))
    assert cb.cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cb.generate(_msgs("a", "b"), GREEDY)
    key = generation_key("fake@1", _msgs("a")[0], GREEDY)
    code = (
        "import sys; from s3ft.cache import GenerationCache as G; c = G(sys.argv[1]);"
        "v = c.get_many([sys.argv[2]]); c.put_many([('other', {'x': 1})]); print(v[sys.argv[2]]['text'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), key], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "fake@1:a"
    assert cb.cache.get_many(["other", "absent"]) == {"other": {"x": 1}}  # written while we held it open
    cb.close()

    fresh = CountingBackend()
    reopened = maybe_cached(fresh, path)
    assert reopened.generate(_msgs("b", "a"), GREEDY) == ["fake@1:b", "fake@1:a"] and fresh.calls == []
    reopened.close()
    assert fresh.closed


def test_many_keys_and_nll(tmp_path):
    cache = GenerationCache(tmp_path / "c.sqlite")
    cache.put_many((f"k{i}", i) for i in range(1200))  # more than one SELECT chunk
    assert cache.get_many(f"k{i}" for i in range(0, 1300, 7)) == {f"k{i}": i for i in range(0, 1200, 7)}
    fake = CountingBackend()
    cb = CachedBackend(fake, cache)
    prompts = _msgs("p", "p")
    assert cb.nll(prompts, ["xy", "z"]) == [(2.0, 3), (1.0, 2)]
    assert cb.nll(prompts, ["z", "xy"]) == [(1.0, 2), (2.0, 3)] and fake.calls == [["xy", "z"]]


def test_maybe_cached_none_is_the_backend():
    fake = CountingBackend()
    assert maybe_cached(fake, None) is fake


def test_a_generation_keeps_why_it_ended_through_the_cache(tmp_path):
    from s3ft.backends.base import Completion, finish_of

    class Finishing(CountingBackend):
        def generate(self, prompts, params, **kwargs):
            return [Completion(t, "length" if "long" in t else "stop") for t in super().generate(prompts, params)]

    fake = Finishing()
    cached = CachedBackend(fake, GenerationCache(tmp_path / "c.sqlite"))
    first = cached.generate(_msgs("long one", "short"), GREEDY)
    again = cached.generate(_msgs("long one", "short"), GREEDY)
    assert len(fake.calls) == 1 and again == first
    assert [finish_of(t) for t in again] == ["length", "stop"]
    # an entry written before finish reasons were kept (a plain string) reads back with finish unknown
    cached.cache.put_many([(generation_key(fake.model_id, _msgs("old")[0], GREEDY), "old text")])
    old = cached.generate(_msgs("old"), GREEDY)[0]
    assert (old, finish_of(old)) == ("old text", None) and len(fake.calls) == 1
