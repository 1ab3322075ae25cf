"""Stage 3b, resample (folder `03_resample`): best-of-k self answers, for the method `s3ft-k`.

Reads the examples, the base model's greedy answers (`02_generate`) and their verdicts (`03_judge`). Each row whose
greedy answer the judge did not accept (wrong, or undecided: the rows plain S3FT paraphrases) gets `resample.k`
samples from the base, sample j drawn with seed `sample_seed(resample.seed, j)` (a hash of ("resample", seed, j),
not `seed + j`, which met `generate.seed`: sample 0 was then the very answer the judge had rejected, from the
cache); the run's judge decides each; the correct ones are scored (mean NLL per token under the base, the
backend's `nll`) and the likeliest is kept (the lowest NLL per token; a tie: the lower index). A sample cut off at max_new_tokens is never kept, and a sample the judge
could not decide counts as not correct, as for greedy answers. A row that failed alone in generate (its prompt
too long for the model) is not resampled: a sample would fail alike.

Writes `rows.jsonl`, a row per resampled example in the data's order: `{id, k, samples: [{index, seed, text,
finish, correct, reason, extracted, nll, tokens} ...], n_correct, kept, nll_per_token}` (`kept`: the index of the
sample kept, or null; `nll_per_token`: the kept one's). It is made in three passes, each a file appended a batch at
a time, so a kill loses at most the batch in flight: `samples.jsonl` (the k samples), `verdicts.jsonl` (the judge's)
and `rows.jsonl` (the NLLs, the choice); the first two are removed once `rows.jsonl` is whole. Samples and NLLs go
through the model-call cache like every generation (keyed by prompt and seed: a rerun draws nothing again).

Determinism: vLLM seeds each request, so a row's samples depend on its prompt and the seed only; `hf` seeds each
batch, so a sample depends on the other rows of its batch too. The rows to resample are therefore cut into batches
once, longest prompt first, over all of them (not only those left to do), so that a resume draws the very batches
an uninterrupted run does, and the cache keys an `hf` sampling call whole (`s3ft.cache`: a batch hits only where the
same batch was drawn before; one miss draws it all again). Another set of rows (`data.train.limit`, a shard) or
`generate.batch_size` cuts other batches: on `hf` other samples, as a fresh run with those settings would draw.
Counts: `rows` resampled, `recovered` (a correct sample kept), `samples` (rows × k), `correct_samples`,
`failed_samples` (too long for the model: not drawn, or not scored), `generated` (samples drawn in this execution,
cached or not), and the seconds of each pass in this execution: `generate_s` (the cost against plain S3FT),
`judge_s`, `nll_s`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from s3ft import methods
from s3ft.backends.base import Failed, GenParams, finish_of
from s3ft.config import section_dict
from s3ft.errors import StageError
from s3ft.records import Verdict
from s3ft.rundir import Rows, rows_by_id
from s3ft.stages import Planned
from s3ft.stages.data import load_examples
from s3ft.stages.generate import task_stop
from s3ft.verify import require_sealed_rows

log = logging.getLogger("s3ft.resample")
NAME = "resample"
PASSES = ("samples.jsonl", "verdicts.jsonl")


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit where `s3ft-k` is among the methods: it reads the data, the greedy answers and their verdicts, the
    base model, the resample section and the decoding it makes of it, and the judge."""
    if not methods.needs_resample(ctx.cfg.method) or "judge" not in fps:
        return []
    decode = {k: v for k, v in params(ctx, 0).to_dict().items() if k in ("max_new_tokens", "stop")}
    return [Planned({"data": fps["data"], "upstream": [fps["generate"], fps["judge"]], "model": ctx.model_parts,
                     "resample": section_dict(ctx.cfg.resample), "decode": decode, "backend": ctx.cfg.generate.backend,
                     "judge": ctx.judge_parts}, lambda out: run(ctx, out))]


def sample_seed(seed: int, j: int) -> int:
    """The seed of sample `j`: a stable hash of ("resample", `seed`, j) into 31 bits. Not `seed + j`: that met
    `generate.seed`, so that with equal settings sample 0 was generate's own (rejected) answer, from the cache."""
    digest = hashlib.sha256(json.dumps(["resample", seed, j]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def params(ctx, j: int) -> GenParams:
    """The decoding of sample `j`: the resample section's, seeded `sample_seed(seed, j)`, with generate's stop
    strings."""
    r, g = ctx.cfg.resample, ctx.cfg.generate
    return GenParams(max_new_tokens=r.max_new_tokens or g.max_new_tokens, temperature=r.temperature, top_p=r.top_p,
                     seed=sample_seed(r.seed, j), stop=tuple(dict.fromkeys([*task_stop(ctx), *g.stop])))


def resample_ids(ctx) -> list[str]:
    """The rows to resample, in the data's order: the greedy answer not accepted, and no failure of its own."""
    preds = rows_by_id(ctx.stage_dir("generate") / "rows.jsonl")
    verdicts = rows_by_id(ctx.stage_dir("judge") / "rows.jsonl")
    require_sealed_rows(ctx.stage_dir("judge") / "rows.jsonl", verdicts)
    ids = [ex.id for ex in load_examples(ctx.stage_dir("data"), "train") if ctx.owns(ex.id)]
    return [i for i in ids if verdicts.get(i, {}).get("correct") is not True and not preds.get(i, {}).get("failed")]


def batches(ctx, examples: dict, ids: list[str]) -> list[list[str]]:
    """`ids` cut into batches of `generate.batch_size`, longest prompt first: the same batches on every start."""
    size = {i: sum(len(m["content"]) for m in ctx.task.prompt(examples[i])) for i in ids}
    order = sorted(ids, key=lambda i: -size[i])
    return [order[s : s + ctx.chunk] for s in range(0, len(order), ctx.chunk)]


def draw(ctx, rows: Rows, examples: dict, parts: list[list[str]], done: set[str]) -> int:
    """Pass 1: the k samples of every batch with a row not yet drawn nor `done` (a batch partly written, as a kill
    mid-append leaves it, is drawn whole again: from the cache, or, with it off, the same batch and seeds draw the
    same samples). Returns how many were drawn."""
    k, drawn = ctx.cfg.resample.k, 0
    for n, part in enumerate(parts, 1):
        if all(i in rows or i in done for i in part):
            continue
        prompts = [ctx.task.prompt(examples[i]) for i in part]
        per = [[] for _ in part]
        for j in range(k):
            try:
                texts = list(ctx.backend().generate(prompts, params(ctx, j)))
            except Exception as e:
                log.debug("resample: the backend's traceback", exc_info=True)
                raise StageError("resample", n, len(parts), part, len(rows),
                                 f"the backend raised {type(e).__name__}: {e}") from e
            if len(texts) != len(part):
                raise StageError("resample", n, len(parts), part, len(rows),
                                 f"the backend returned {len(texts)} texts for {len(part)} prompts")
            for got, t in zip(per, texts, strict=True):
                got.append({"index": j, "seed": params(ctx, j).seed, **(
                    {"text": None, "finish": None, "failed": f"question too long for the model: {t.reason}"}
                    if isinstance(t, Failed) else {"text": str(t), "finish": finish_of(t)})})
        rows.append({"id": i, "samples": s} for i, s in zip(part, per, strict=True))
        drawn += k * len(part)
    return drawn


def judge_samples(ctx, rows: Rows, examples: dict, samples: Rows, done: set[str]) -> None:
    """Pass 2: the run's judge on every sample of a row not yet judged nor `done`, a batch of rows at a time (a
    failed sample: undecided, saying why)."""
    todo = [i for i in samples.rows if i not in rows and i not in done]
    for n, start in enumerate(range(0, len(todo), ctx.chunk), 1):
        part = todo[start : start + ctx.chunk]
        pairs = [(i, s) for i in part for s in samples.rows[i]["samples"] if not s.get("failed")]
        verdicts = []
        if pairs:
            try:
                verdicts = list(ctx.judge()([examples[i] for i, _ in pairs], [s["text"] for _, s in pairs]))
            except Exception as e:
                log.debug("resample: the judge's traceback", exc_info=True)
                raise StageError("resample (judge)", n, -(-len(todo) // ctx.chunk), part, len(rows),
                                 f"the judge raised {type(e).__name__}: {e}") from e
            if len(verdicts) != len(pairs) or not all(isinstance(v, Verdict) for v in verdicts):
                raise StageError("resample (judge)", n, -(-len(todo) // ctx.chunk), part, len(rows),
                                 f"the judge returned {len(verdicts)} verdicts for {len(pairs)} samples")
        got = dict(zip(((i, s["index"]) for i, s in pairs), verdicts, strict=True))
        rows.append({"id": i, "verdicts": [
            (got.get((i, s["index"])) or Verdict(None, f"nothing to judge: {s.get('failed')}")).to_dict()
            for s in samples.rows[i]["samples"]]} for i in part)


def score(ctx, rows: Rows, examples: dict, samples: Rows, verdicts: Rows) -> None:
    """Pass 3: the NLL of every correct sample that was not cut off, and the choice; a row at a time in batches."""
    todo = [i for i in verdicts.rows if i not in rows]
    chunks = -(-len(todo) // ctx.chunk)
    for n, start in enumerate(range(0, len(todo), ctx.chunk), 1):
        part = todo[start : start + ctx.chunk]
        merged = {i: [{**s, **{k: v[k] for k in ("correct", "reason", "extracted")}, "nll": None, "tokens": None}
                      for s, v in zip(samples.rows[i]["samples"], verdicts.rows[i]["verdicts"], strict=True)]
                  for i in part}
        cands = [(i, s) for i in part for s in merged[i] if s["correct"] is True and s["finish"] != "length"]
        if cands:
            try:
                scores = list(ctx.scorer().nll([ctx.task.prompt(examples[i]) for i, _ in cands],
                                               [s["text"] for _, s in cands]))
            except Exception as e:
                log.debug("resample: the scorer's traceback", exc_info=True)
                raise StageError("resample (nll)", n, chunks, part, len(rows),
                                 f"the scorer raised {type(e).__name__}: {e}") from e
            if len(scores) != len(cands):
                raise StageError("resample (nll)", n, chunks, part, len(rows),
                                 f"the scorer returned {len(scores)} scores for {len(cands)} samples")
            for (_, s), x in zip(cands, scores, strict=True):
                if isinstance(x, Failed):
                    s["nll_failed"] = f"question and sample too long for the model: {x.reason}"
                else:
                    s["nll"], s["tokens"] = round(float(x[0]), 6), int(x[1])
        rows.append(choose(i, merged[i]) for i in part)


def choose(id_: str, samples: list[dict]) -> dict:
    """A row's record: its samples, how many were correct, and the one kept: the correct sample (not cut off) with
    the lowest NLL per token (a tie: the lower index; none scored, e.g. too long to score: the first correct)."""
    ok = [s for s in samples if s["correct"] is True and s["finish"] != "length"]
    per_token = {s["index"]: s["nll"] / s["tokens"] for s in ok if s["nll"] is not None and s["tokens"]}
    kept = min(per_token, key=lambda j: (per_token[j], j)) if per_token else (ok[0]["index"] if ok else None)
    return {"id": id_, "k": len(samples), "samples": samples, "n_correct": sum(s["correct"] is True for s in samples),
            "kept": kept, "nll_per_token": round(per_token[kept], 6) if kept in per_token else None}


def run(ctx, out: Path) -> dict:
    examples = {ex.id: ex for ex in load_examples(ctx.stage_dir("data"), "train")}
    ids = resample_ids(ctx)
    rows = Rows(out / "rows.jsonl")
    samples, verdicts = Rows(out / PASSES[0]), Rows(out / PASSES[1])
    done = set(rows.rows)  # made already (resumed, or merged from shards)
    if done:
        log.info("resuming, %d of %d rows already made", len(done), len(ids))
    t0 = time.monotonic()
    drawn = draw(ctx, samples, examples, batches(ctx, examples, ids), done)
    t1 = time.monotonic()
    judge_samples(ctx, verdicts, examples, samples, done)
    t2 = time.monotonic()
    score(ctx, rows, examples, samples, verdicts)
    t3 = time.monotonic()
    rows.reorder(ids)  # the data's order, however the rows were batched or resumed
    for name in PASSES:
        (out / name).unlink(missing_ok=True)  # every row is whole in rows.jsonl
    made = list(rows.rows.values())
    counts = {"rows": len(made), "k": ctx.cfg.resample.k, "recovered": sum(r["kept"] is not None for r in made),
              "samples": sum(r["k"] for r in made), "correct_samples": sum(r["n_correct"] for r in made),
              "failed_samples": sum(bool(s.get("failed") or s.get("nll_failed")) for r in made for s in r["samples"]),
              "generated": drawn, "generate_s": round(t1 - t0, 2), "judge_s": round(t2 - t1, 2),
              "nll_s": round(t3 - t2, 2)}
    log.info("%d rows resampled (k=%d), %d recovered by a correct sample; %d samples drawn now in %.1f s",
             counts["rows"], counts["k"], counts["recovered"], drawn, counts["generate_s"])
    return counts
