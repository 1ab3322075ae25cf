"""Stage 6, select: build one method's training set from the shared generations and verdicts.

Reads the examples, the model's answers and verdicts, and the paraphrases and their verdicts (for `s3ft-k`, the
samples of `03_resample` too); writes `<method>/train.jsonl` in TRL's conversational prompt–completion format, each
row with its provenance (source and both verdicts; for a resampled row of `s3ft-k`, `resample`: k, how many samples
were correct, the index and seed of the one kept, its NLL per token and verdict; for a paraphrase, its similarity to the gold, and a near-copy of
the gold trains as the gold, flagged `near_copy`; an answer or paraphrase cut off at max_new_tokens is
never a target, flagged `truncated`), and `<method>/stats.json` with the composition (the shape
of the paper's Table 3) and the mean per-token NLL of the chosen targets under the base model.
NLLs are cached in `nll.jsonl` beside the method folders, so methods share each target's score. A row whose
prompt and target are too long for the model is not scored but kept, flagged `nll_failed` (why, in tokens),
left out of the means and counted in `stats.json` (`nll_failures`); the rest are scored.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from s3ft.config import section_dict
from s3ft.methods import METHOD_NEEDS, SOURCES, choose_source, sources
from s3ft.nearcopy import similarity
from s3ft.records import Failed
from s3ft.rundir import Rows, rows_by_id, write_json_atomic, write_jsonl
from s3ft.stages import Planned
from s3ft.stages.data import load_examples
from s3ft.stages.generate import failures
from s3ft.verify import require_sealed_rows

log = logging.getLogger("s3ft.select")
NAME = "select"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit per method: it reads the data, the verdicts its method uses, the select section, and the base
    model where it scores the targets' NLL."""
    out = []
    for m in ctx.cfg.method:
        needs_gen, para = METHOD_NEEDS[m]
        inputs = {"method": m, "data": fps["data"], "judge": fps.get("judge") if needs_gen else None,
                  "judge_paraphrase": fps.get("judge_paraphrase") if para else None,
                  "select": section_dict(ctx.cfg.select), "model": ctx.model_parts if ctx.cfg.select.nll else None,
                  **({"resample": fps.get("resample")} if m == "s3ft-k" else {})}
        out.append(Planned(inputs, lambda o, m=m: run(ctx, o, m), sub=m))
    return out


def build_rows(ctx, method: str) -> list[dict]:
    """The training rows for `method`, with provenance; the target text is in `completion`."""
    task = ctx.task
    preds = rows_by_id(ctx.stage_dir("generate") / "rows.jsonl")
    verdicts = rows_by_id(ctx.stage_dir("judge") / "rows.jsonl")
    paras = rows_by_id(ctx.stage_dir("paraphrase") / "rows.jsonl")
    para_verdicts = rows_by_id(ctx.stage_dir("judge_paraphrase") / "rows.jsonl")
    samples = rows_by_id(ctx.stage_dir("resample") / "rows.jsonl") if method == "s3ft-k" else {}
    threshold = ctx.cfg.select.near_copy
    out = []
    read = (("generate", preds), ("judge", verdicts), ("paraphrase", paras), ("judge_paraphrase", para_verdicts))
    for stage, rows in read + ((("resample", samples),) if method == "s3ft-k" else ()):
        require_sealed_rows(ctx.stage_dir(stage) / "rows.jsonl", rows)  # a file that lost rows would change targets
    for ex in load_examples(ctx.stage_dir("data"), "train"):
        v, pv = verdicts.get(ex.id), para_verdicts.get(ex.id)
        # an answer cut off at max_new_tokens is never a target, whatever its verdict
        cut = [name for name, rows in (("prediction", preds), ("paraphrase", paras))
               if rows.get(ex.id, {}).get("finish") == "length"]
        resampled = samples.get(ex.id)
        source = choose_source(method, v and v["correct"] and "prediction" not in cut,
                               pv and pv["correct"] and "paraphrase" not in cut,
                               resampled is not None and resampled["kept"] is not None)
        gold, target, sim = task.gold_target(ex), None, None
        if source == "self":
            target = preds[ex.id]["prediction"]
        elif source == "self_sample":
            target = resampled["samples"][resampled["kept"]]["text"]
        elif source == "paraphrase":
            target = paras[ex.id]["paraphrase"]
        else:
            target = gold
        target = task.target(ex, target)  # every source ends as the task's format needs (MBPP: "\n[DONE]")
        if source == "paraphrase" and threshold is not None:
            sim = similarity(target, gold)
            if sim >= threshold:  # the gold in the model's mouth: train on the gold, and say so
                source, target = "gold", gold
        out.append(
            {
                "id": ex.id,
                "prompt": task.prompt(ex),
                "completion": [{"role": "assistant", "content": target}],
                "source": source,
                "self_verdict": v and {k: v[k] for k in ("correct", "reason", "extracted")},
                "paraphrase_verdict": pv and {k: pv[k] for k in ("correct", "reason", "extracted")},
                **({"paraphrase_similarity": sim, "near_copy": sim >= threshold} if sim is not None else {}),
                **({"truncated": cut} if cut else {}),
                **({"resample": resample_provenance(resampled)} if resampled else {}),
            }
        )
    return out


def resample_provenance(row: dict) -> dict:
    """What a training row keeps of its resampling: k, how many samples were correct, and the one kept (its index,
    seed, NLL per token under the base, verdict), or `kept` null."""
    kept = row["samples"][row["kept"]] if row["kept"] is not None else None
    return {"k": row["k"], "n_correct": row["n_correct"], "kept": row["kept"],
            **({"seed": kept["seed"], "nll_per_token": row["nll_per_token"],
                "verdict": {k: kept[k] for k in ("correct", "reason", "extracted")}} if kept else {})}


def target_nll(ctx, rows: list[dict], cache_path: Path) -> None:
    """Add `target_nll` (summed) and `target_tokens` to each row, scoring uncached targets once; to a row too long
    for the model, `nll_failed` (why) instead."""
    cache = Rows(cache_path)

    def key(r: dict) -> str:
        blob = repr((ctx.model_ref, r["prompt"], r["completion"][0]["content"]))
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    todo = {key(r): r for r in rows if key(r) not in cache}
    items = list(todo.items())
    from tqdm.auto import tqdm

    with tqdm(total=len(items), desc="select NLL", unit="ex", disable=not items) as bar:
        for start in range(0, len(items), ctx.chunk):
            part = items[start : start + ctx.chunk]
            scores = ctx.scorer().nll([r["prompt"] for _, r in part], [r["completion"][0]["content"] for _, r in part])
            cache.append({"id": k, **({"failed": x.reason} if isinstance(x, Failed) else {"nll": x[0], "tokens": x[1]})}
                         for (k, _), x in zip(part, scores, strict=True))
            bar.update(len(part))
    for r in rows:
        hit = cache.rows[key(r)]
        if hit.get("failed"):
            r["nll_failed"] = f"prompt and {r['source']} target too long for the model: {hit['failed']}"
        else:
            r["target_nll"], r["target_tokens"] = hit["nll"], hit["tokens"]


def composition(rows: list[dict], kinds: tuple[str, ...] = SOURCES) -> dict:
    """Counts and shares of each target source (`kinds`: the method's, `methods.sources`); `near_copies`:
    accepted paraphrases trained as gold because they nearly copy it (counted in `gold`); `truncated`: rows whose
    answer or paraphrase was cut off at max_new_tokens (never a target)."""
    n = len(rows)
    counts = {s: sum(r["source"] == s for r in rows) for s in kinds}
    return {"n": n, "counts": counts, "percent": {s: round(100 * c / n, 2) if n else 0.0 for s, c in counts.items()},
            "near_copies": sum(bool(r.get("near_copy")) for r in rows),
            "truncated": sum(bool(r.get("truncated")) for r in rows)}


def mean_nll(rows: list[dict]) -> float | None:
    """Token-weighted mean NLL per token (nats) over rows that have a score."""
    tokens = sum(r.get("target_tokens", 0) for r in rows)
    return round(sum(r["target_nll"] for r in rows if "target_nll" in r) / tokens, 4) if tokens else None


def paraphrase_vs_gold(ctx, paraphrased: list[dict], cache_path: Path) -> dict:
    """How much closer to the model the paraphrases sit than their golds: the mean NLL per token of each, over the
    same rows, those where both were scored (`rows`; a paraphrase or a gold too long to score leaves its row out)."""
    examples = {ex.id: ex for ex in load_examples(ctx.stage_dir("data"), "train")}
    golds = [{"id": r["id"], "prompt": r["prompt"], "source": "gold",
              "completion": [{"role": "assistant", "content": ctx.task.gold_target(examples[r["id"]])}]}
             for r in paraphrased]
    target_nll(ctx, golds, cache_path)
    both = [(p, g) for p, g in zip(paraphrased, golds, strict=True) if "target_nll" in p and "target_nll" in g]
    return {"rows": len(both), "paraphrase": mean_nll([p for p, _ in both]), "gold": mean_nll([g for _, g in both])}


def run(ctx, out: Path, method: str) -> dict:
    rows = build_rows(ctx, method)
    stats = {"method": method, "composition": composition(rows, sources(method))}
    if ctx.cfg.select.nll:
        target_nll(ctx, rows, out.parent / "nll.jsonl")
        stats["target_nll_per_token"] = mean_nll(rows)
        if failed := failures(rows, "nll_failed"):
            stats["nll_failures"] = failed
            log.warning("%s: %d target(s) too long for the model to score, e.g. %s", method, failed["failed"],
                        failed["failed_rows"][0])
        stats["target_nll_per_token_by_source"] = {
            s: mean_nll([r for r in rows if r["source"] == s]) for s in sources(method)
        }
        paraphrased = [r for r in rows if r["source"] == "paraphrase"]
        if paraphrased:
            stats["paraphrase_vs_gold_nll_per_token"] = paraphrase_vs_gold(ctx, paraphrased, out.parent / "nll.jsonl")
    write_jsonl(out / "train.jsonl", rows)
    write_json_atomic(out / "stats.json", stats)
    pct = stats["composition"]["percent"]
    log.info("%s: %d rows, %s, target NLL/token %s", method, len(rows),
             " / ".join(f"{s} {p:.1f}%" for s, p in pct.items()), stats.get("target_nll_per_token"))
    failed = {"nll_failed": stats["nll_failures"]["failed"]} if "nll_failures" in stats else {}
    return {"rows": len(rows), **stats["composition"]["counts"], **failed}
