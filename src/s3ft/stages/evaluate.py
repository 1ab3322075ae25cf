"""Stage 8, evaluate: in-domain accuracy, and general-skill accuracy, for the base model and each method.

Reads `01_data/test.jsonl` and (for a method) its trained model from `07_train/<method>/`; writes
`<model>/predictions.jsonl` and `<model>/verdicts.jsonl` (same judge as the judge stage), the same
for each general-skill set under `<model>/general/<name>/`, and `<model>/metrics.json`. The drop of
a general skill from the base model's score is forgetting. With `evaluate.forgetting`, the model is
also scored on general benchmarks through lm-evaluation-harness (`s3ft.harness`), saved under
`forgetting` in `metrics.json` with every harness setting. A test row too long for the model fails alone
(`s3ft.stages.generate`): its verdict is undecided, saying why, so it counts as not correct, and `metrics.json`
counts it (`failed`, `failed_rows`); a reference answer too long to score is left out of its mean, and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from s3ft.backends.base import batch_size
from s3ft.config import section_dict
from s3ft.errors import InputError
from s3ft.records import Example, Failed
from s3ft.registry import resolve
from s3ft.rundir import Rows, write_json_atomic
from s3ft.stages import Planned
from s3ft.stages.data import load_examples
from s3ft.stages.generate import decode_settings, failures, gen_params, generate_into
from s3ft.stages.judge import judge_into, summarize, unjudged
from s3ft.weights import load_from

log = logging.getLogger("s3ft.evaluate")
NAME = "evaluate"


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """Where there is a test split: one unit for the base model (`evaluate.base`) and one per method, each
    reading the test data, the base model, decoding, the judge, the evaluate section, the general-skill sets'
    files and versions, and for a method its trained model."""
    cfg = ctx.cfg
    if cfg.data.test is None:
        return []
    general = [{"templates": t.templates(), "version": t.version,
                "files": ctx.ref(g.source.path, g.source.revision, "dataset"),
                "judge": getattr(resolve("judge", g.judge or t.default_judge), "version", "0")}
               for g, t in ctx.general_sets + ctx.curve_sets]
    if cfg.evaluate.curve is not None:
        curve_data = cfg.evaluate.curve.in_domain
        general.append({"curve_in_domain": ctx.ref(curve_data.path, curve_data.revision, "dataset"),
                        "curve_points": cfg.curve_points()})
    inputs = {"data": fps["data"], "model": ctx.model_parts, "generate": decode_settings(cfg),
              "judge": ctx.judge_parts, "evaluate": section_dict(cfg.evaluate), "general": general}
    out = [Planned(inputs, lambda o: run(ctx, o, "base"), sub="base")] if cfg.evaluate.base else []
    return out + [Planned({**inputs, "train": fps[f"train/{m}"]}, lambda o, m=m: run(ctx, o, m), sub=m)
                  for m in cfg.method]


@dataclass
class ScoreSet:
    """One set of examples to score a model on: its prompt (`task`), judge (None: the task's) and output folder."""

    out: Path
    examples: list[Example]
    task: object
    judge: str | None
    max_new_tokens: int | None
    label: str


def score_all(ctx, model_name: str, sets: list[ScoreSet], snapshot: Path | None = None) -> list[dict]:
    """Generate (resumably) the answers of the model to every set, then judge them: accuracy and counts per
    set. The model is the base, a method's trained model, or one of its learning-curve `snapshot`s. The
    judges are fetched after all generating: one with a model of its own (or the base model, judging a
    trained one) is loaded once the model under test is freed, never beside it. Batches hold
    `evaluate.batch_size` prompts (default: `generate.batch_size`)."""
    size = ctx.cfg.evaluate.batch_size or ctx.cfg.generate.batch_size
    for s in sets:
        params = gen_params(ctx.cfg.generate, getattr(s.task, "stop", ()), s.max_new_tokens)
        preds = Rows(s.out / "predictions.jsonl")
        todo = [(ex.id, s.task.prompt(ex)) for ex in s.examples if ex.id not in preds]
        if todo:
            backend = ctx.evaluated(model_name, snapshot)
            with batch_size(backend, size):
                generate_into(preds, backend, todo, params, size, "prediction", f"evaluate {s.label}")
    results = []
    for s in sets:
        preds, verdicts = Rows(s.out / "predictions.jsonl"), Rows(s.out / "verdicts.jsonl")
        made = [preds.rows[ex.id] for ex in s.examples]
        verdicts.append({"id": r["id"], **v.to_dict()} for r in made if (v := unjudged(r)))  # failed: undecided
        pairs = [(ex, r["prediction"]) for ex, r in zip(s.examples, made, strict=True) if not r.get("failed")]
        judge_into(verdicts, ctx.judge(s.judge), pairs, size, f"judge {s.label}")
        verdicts.reorder(ex.id for ex in s.examples)  # the data's order (failed rows were written first)
        counts = summarize(verdicts)
        n = counts["rows"]
        results.append({"n": n, "correct": counts["correct"], "undecided": counts["undecided"],
                        "cannot_split": counts["cannot_split"], "sandbox": counts["sandbox"],
                        "accuracy": round(counts["correct"] / n, 4) if n else None, **failures(made)})
    return results


def run(ctx, out: Path, model_name: str) -> dict:
    ecfg = ctx.cfg.evaluate
    max_new = ecfg.max_new_tokens
    sets = [ScoreSet(out, load_examples(ctx.stage_dir("data"), "test"), ctx.task, None, max_new, model_name)]
    sets += [ScoreSet(out / "general" / g.name, list(task.load(g.source)), task, g.judge or task.default_judge,
                     g.max_new_tokens or max_new, f"{model_name} {g.name}") for g, task in ctx.general_sets]
    in_domain, *general_scores = score_all(ctx, model_name, sets)
    metrics = {"model": model_name, **in_domain}
    log.info("%s: in-domain accuracy %s (%d/%d)", model_name, metrics["accuracy"], metrics["correct"], metrics["n"])
    general = {g.name: r for (g, _), r in zip(ctx.general_sets, general_scores, strict=True)}
    for (g, _), s in zip(ctx.general_sets, sets[1:], strict=True):
        if g.reference_nll:
            general[g.name]["reference_nll"] = reference_nll(ctx, model_name, s, g.reference_nll)
    for name, r in general.items():
        log.info("%s: %s accuracy %s", model_name, name, r["accuracy"])
    if general:
        accs = [v["accuracy"] for v in general.values() if v["accuracy"] is not None]
        metrics["general"] = general
        metrics["general_mean"] = round(sum(accs) / len(accs), 4) if accs else None
    if ctx.cfg.curve_points():
        metrics["curve"] = curve(ctx, out / "curve", model_name)
    if ecfg.forgetting is not None:
        metrics["forgetting"] = forgetting(ctx, model_name)
        log.info("%s: %s", model_name, ", ".join(f"{t} {v['metric']} {v['value']:.4f}"
                                                 for t, v in metrics["forgetting"].get("scores", {}).items()))
    write_json_atomic(out / "metrics.json", metrics)
    return {k: metrics[k] for k in ("n", "correct", "accuracy", "failed") if k in metrics} | (
        {"general_mean": metrics["general_mean"]} if general else {})


def reference_nll(ctx, model_name: str, s: ScoreSet, key: str) -> dict:
    """Mean NLL per token, under the model, of each example's held-out reference answers (`meta[key]`: a list of
    texts, or a dict of them by style), given the set's prompt: in all, and per style. Scores are kept in
    `reference_nll.jsonl` beside the set's predictions (a resumed run scores only what is missing)."""
    rows, items = Rows(s.out / "reference_nll.jsonl"), []
    for ex in s.examples:
        refs = ex.meta.get(key)
        if refs is None:
            raise InputError(s.label, f"no reference answers under meta key {key!r} (evaluate.general reference_nll)",
                             field=key)
        named = refs.items() if isinstance(refs, dict) else enumerate(refs)
        items += [(f"{ex.id}/{style}", str(style), s.task.prompt(ex), text) for style, text in named]
    todo = [it for it in items if it[0] not in rows]
    size = ctx.cfg.evaluate.batch_size or ctx.cfg.generate.batch_size
    for start in range(0, len(todo), size):
        part = todo[start : start + size]
        scores = ctx.evaluated(model_name).nll([p for _, _, p, _ in part], [t for _, _, _, t in part])
        rows.append({"id": i, "style": st, **({"failed": f"reference too long for the model: {x.reason}"}
                                               if isinstance(x, Failed) else {"nll": x[0], "tokens": x[1]})}
                    for (i, st, _, _), x in zip(part, scores, strict=True))
    done = [rows.rows[i] for i, *_ in items if not rows.rows[i].get("failed")]

    def per_token(rs: list[dict]) -> float | None:
        tokens = sum(r["tokens"] for r in rs)
        return round(sum(r["nll"] for r in rs) / tokens, 4) if tokens else None

    styles = sorted({r["style"] for r in done})
    return {"per_token": per_token(done), "by_style": {st: per_token([r for r in done if r["style"] == st])
                                                      for st in styles}, "references": len(done),
            **failures(rows.rows[i] for i, *_ in items)}


def curve(ctx, out: Path, model_name: str) -> list[dict]:
    """The learning curve of one model on `evaluate.curve`'s validation samples: for the base model one
    point, step 0; for a method, one point per snapshot its training saved (`07_train/<m>/curve/step-N`)."""
    c = ctx.cfg.evaluate.curve
    max_new = ctx.cfg.evaluate.max_new_tokens
    snaps = [(0, None)] if model_name == "base" else sorted(
        (int(p.name.split("-")[1]), p) for p in (ctx.stage_dir("train") / model_name / "curve").glob("step-*"))
    examples = list(ctx.task.load(c.in_domain))
    points = []
    for step, snap in snaps:
        where = out / f"step-{step}"
        label = f"{model_name} step {step}"
        sets = [ScoreSet(where / "in_domain", examples, ctx.task, None, max_new, label)]
        sets += [ScoreSet(where / "general" / g.name, list(task.load(g.source)), task, g.judge or task.default_judge,
                         g.max_new_tokens or max_new, f"{label} {g.name}") for g, task in ctx.curve_sets]
        in_domain, *general = score_all(ctx, model_name, sets, snap)
        point = {"step": step, "in_domain": in_domain["accuracy"],
                 "general": {g.name: r["accuracy"] for (g, _), r in zip(ctx.curve_sets, general, strict=True)}}
        accs = [a for a in point["general"].values() if a is not None]
        point["general_mean"] = round(sum(accs) / len(accs), 4) if accs else None
        log.info("%s: validation in-domain %s, general mean %s", label, point["in_domain"], point["general_mean"])
        points.append(point)
    return points


def forgetting(ctx, model_name: str) -> dict:
    """The general benchmarks through lm-evaluation-harness (`s3ft.harness`) for the base ("base") or a method's
    trained model, with the run's settings, beside the run's model-call cache."""
    from s3ft import harness

    ctx.release()  # the harness loads its own copy: never two on one GPU
    model, adapter, mode = ctx.cfg.model, None, ctx.cfg.train.mode
    if model_name != "base":
        weights = load_from(ctx.run_dir, model_name, mode)  # the donor's, if reused
        if mode == "lora":
            adapter = str(weights)
        else:
            model = model.model_copy(update={"path": str(weights)})
    c = ctx.cfg.cache
    cache_dir = Path(c.path or ctx.run_dir / "cache.sqlite").parent if c.enabled else None
    return harness.score_model(ctx.cfg.evaluate.forgetting, model, adapter, cache_dir, ctx.cfg.train.lora_r,
                               ctx.cfg.generate.engine)
