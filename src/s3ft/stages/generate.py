"""Stage 2, generate: the frozen base model answers every training prompt.

Reads `01_data/train.jsonl`; appends `{id, prediction, finish}` rows to `rows.jsonl` a chunk at a time, so
a killed run resumes where it stopped, and when every row is made writes the file in the data's order (a
shard run, `s3ft.shards`, makes its own examples' rows only). `generate_into` is the shared loop that the
paraphrase and evaluate stages use too; a backend that fails on a chunk (raises, or returns too few texts or
a non-text) stops it with a `StageError` naming the stage and the chunk, and the rows written before it are
kept. A row too long for the model (its prompt and `max_new_tokens` over the model's context: the backend gives
`Failed`) fails alone: it is written `{id, prediction: null, finish: null, failed: why}`, so that a rerun does
not try it again, the unit's counts say how many (`failed`, and the first few as `failed_rows`), and the rest
go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm

from s3ft import methods
from s3ft.backends.base import Backend, Failed, GenParams, Messages, finish_of
from s3ft.config import DecodeConfig, section_dict
from s3ft.errors import StageError
from s3ft.rundir import Rows
from s3ft.stages import Planned
from s3ft.stages.data import load_examples

log = logging.getLogger("s3ft.generate")
NAME = "generate"


def decode_settings(cfg) -> dict:
    """The `generate` section but for what does not change outputs (batch size, process isolation)."""
    return {k: v for k, v in section_dict(cfg.generate).items() if k not in ("batch_size", "isolate")}


def task_stop(ctx) -> list[str]:
    return list(getattr(ctx.task, "stop", ()))


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit where a method trains on the base model's own answers: it reads the data, the base model and
    the decoding settings."""
    if not methods.needs_generation(ctx.cfg.method):
        return []
    return [Planned({"data": fps["data"], "model": ctx.model_parts, "generate": decode_settings(ctx.cfg),
                     "stop": task_stop(ctx)}, lambda out: run(ctx, out))]


def gen_params(section: DecodeConfig, task_stop: tuple[str, ...] = (), max_new_tokens: int | None = None) -> GenParams:
    return GenParams(
        max_new_tokens=max_new_tokens or section.max_new_tokens,
        temperature=section.temperature,
        top_p=section.top_p,
        seed=section.seed,
        stop=tuple(dict.fromkeys([*task_stop, *section.stop])),
    )


def _bad_reply(texts: list, ids: list[str]) -> str | None:
    """What is wrong with a backend's texts for a chunk (too few or too many, or not text), or None."""
    if len(texts) != len(ids):
        return f"{len(texts)} texts for {len(ids)} prompts"
    return next((f"a {type(t).__name__} for id {i!r}" for i, t in zip(ids, texts, strict=True)
                 if not isinstance(t, (str, Failed))), None)  # fmt: skip


def _row(i: str, t: str | Failed, field: str, source: str, extra: Callable[[str, str], dict] | None) -> dict:
    """The row of one id: its text and why it ended, or, where the backend did not run it, why it failed."""
    if isinstance(t, Failed):
        return {"id": i, field: None, "finish": None, "failed": f"{source} too long for the model: {t.reason}"}
    return {"id": i, field: str(t), "finish": finish_of(t), **(extra(i, t) if extra else {})}


def failures(rows: Iterable[dict], key: str = "failed") -> dict:
    """A unit's counts of the rows that failed alone (`key` holds why): `failed`, how many, and `failed_rows`,
    the first few as "id: why" (the rows file has them all); nothing where none failed."""
    failed = [f"{r['id']}: {r[key]}" for r in rows if r.get(key)]
    return {"failed": len(failed), "failed_rows": failed[:3]} if failed else {}


def generate_into(
    rows: Rows,
    backend: Backend | None,
    items: list[tuple[str, Messages]],
    params: GenParams,
    chunk: int,
    field: str,
    desc: str,
    extra: Callable[[str, str], dict] | None = None,
    source: str = "question",
) -> int:
    """Generate for every (id, prompt) not yet in `rows`, appending `{id, field: text, finish, **extra}`
    (`finish`: "stop", "length" when cut off at max_new_tokens, or null when the backend did not say), or, for a
    prompt too long for the model, `{id, field: null, finish: null, failed: why}` (`source`: what the prompt is
    made of, for the reason).
    Prompts go longest first, `chunk` (the batch size) at a time, each chunk's rows flushed as it ends: the
    batches are of similar lengths, and a kill loses at most the one batch in flight. `backend` may be None
    when every row is written already."""
    todo = sorted(((i, p) for i, p in items if i not in rows), key=lambda x: -sum(len(m["content"]) for m in x[1]))
    if len(todo) < len(items):
        log.info("%s: resuming, %d of %d rows already written", desc, len(items) - len(todo), len(items))
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=desc, unit="ex") as bar:
        chunks = -(-len(todo) // chunk)
        for k, start in enumerate(range(0, len(todo), chunk), 1):
            part = todo[start : start + chunk]
            ids = [i for i, _ in part]
            try:
                texts = list(backend.generate([p for _, p in part], params))
            except Exception as e:
                log.debug("%s: the backend's traceback", desc, exc_info=True)
                raise StageError(desc, k, chunks, ids, len(rows), f"the backend raised {type(e).__name__}: {e}") from e
            if problem := _bad_reply(texts, ids):
                raise StageError(desc, k, chunks, ids, len(rows), f"the backend returned {problem}")
            rows.append(_row(i, t, field, source, extra) for (i, _), t in zip(part, texts, strict=True))
            for i, t in zip(ids, texts, strict=True):
                if isinstance(t, Failed):
                    log.warning("%s: row %s failed alone (%s too long for the model): %s", desc, i, source, t.reason)
            bar.update(len(part))
    return len(todo)


def run(ctx, out: Path) -> dict:
    examples = [ex for ex in load_examples(ctx.stage_dir("data"), "train") if ctx.owns(ex.id)]
    rows = Rows(out / "rows.jsonl")
    params = gen_params(ctx.cfg.generate, getattr(ctx.task, "stop", ()))
    items = [(ex.id, ctx.task.prompt(ex)) for ex in examples]
    backend = ctx.backend() if any(i not in rows for i, _ in items) else None  # none to make (merged): no load
    new = generate_into(rows, backend, items, params, ctx.chunk, "prediction", "generate")
    rows.reorder(ex.id for ex in examples)  # the data's order, however the rows were batched or resumed
    counts = failures(rows.rows.values())
    log.info("%d predictions (%d generated now)%s", len(rows), new, f", {counts['failed']} failed" if counts else "")
    return {"rows": len(rows), "generated": new, **counts}
