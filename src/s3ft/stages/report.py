"""Stage 9, report: `report.md`, `metrics.json` and PNG plots comparing the methods.

Reads the run's numbers (`s3ft.results.collect`: each method's `06_select/<m>/stats.json`, best-of-k resampling's
counts where `s3ft-k` ran (`03_resample/manifest.json`), `07_train/<m>/`
manifest and `08_evaluate/<model>/metrics.json`, and the judge audits sealed when it runs: `10_audit/<judge>/audit.json`,
which no fingerprint of it holds, so that an audit makes nothing stale: `--force report` shows a later one);
writes into `09_report/`. Plots: training-set composition per
method, in-domain accuracy per model, and target NLL per method (the distribution-distance
argument of the paper as one number per method). With `train.report_to`, the same numbers go to those
trackers too (`s3ft.trackers`: TensorBoard event files under `09_report/tensorboard/<model>/`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from s3ft.config import section_dict
from s3ft.results import audit_lines, benchmarks_table, collect, forgetting_view, general_table, pct
from s3ft.rundir import write_json_atomic
from s3ft.stages import Planned

log = logging.getLogger("s3ft.report")
NAME = "report"


def _fmt(x, as_pct: bool = False) -> str:
    if as_pct:
        return pct(x)
    return "–" if x is None else f"{x:.3f}"


def accuracy_cell(v: dict, unit: str = "") -> str:
    """An accuracy with its undecided verdicts beside it; none where nothing was decided."""
    n, undecided = v.get("n"), v.get("undecided") or 0
    if v.get("accuracy") is None:
        return f"– (all {n} undecided)" if n and undecided == n else "–"
    return f"{pct(v['accuracy'])}{unit}" + (f" ({undecided} of {n} undecided)" if undecided else "")


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit: it reads every select, train and evaluate unit, the report section, and the trackers it
    logs to."""
    upstream = [fp for name, fp in fps.items() if name.split("/")[0] in ("resample", "select", "train", "evaluate")]
    trackers = {"report_to": ctx.cfg.train.report_to} if ctx.cfg.train.report_to else {}
    return [Planned({"upstream": upstream, "report": section_dict(ctx.cfg.report), **trackers},
                    lambda out: run(ctx, out))]


def report_markdown(metrics: dict) -> str:
    shares = [(v["composition"] or {}).get("percent", {}) for v in metrics["methods"].values()]
    sampled = any("self_sample" in p for p in shares)  # s3ft-k: a column of its own
    sources = ("self", "self_sample", "paraphrase", "gold") if sampled else ("self", "paraphrase", "gold")
    lines = [
        f"# s3ft report: {metrics['task']} on {metrics['model']}",
        "",
        f"Base model in-domain accuracy: {accuracy_cell(metrics['base'], '%')}",
        "",
        "| method | accuracy % | Δ vs base | " + " | ".join(f"{s.replace('_', ' ')} %" for s in sources)
        + " | target NLL/token | train loss |",
        "|---|---|---|" + "---|" * len(sources) + "---|---|",
    ]
    for (m, v), share in zip(metrics["methods"].items(), shares, strict=True):
        cells = " | ".join(str(share.get(s, 0.0 if s == "self_sample" and share else "–")) for s in sources)
        lines.append(f"| {m} | {accuracy_cell(v)} | {_fmt(v['accuracy_delta_vs_base'], True)} | {cells} | "
                     f"{_fmt(v['target_nll_per_token'])} | {_fmt(v['train'].get('train_loss'))} |")
    lines += resample_lines(metrics.get("resample"))
    for key, what in (("near_copies", "Accepted paraphrases that nearly copy the gold, trained as the gold"),
                      ("truncated", "Rows whose answer or paraphrase was cut off at max_new_tokens (never a target)")):
        counts = {m: (v["composition"] or {}).get(key) for m, v in metrics["methods"].items()}
        if any(counts.values()):
            lines += ["", f"{what}: " + ", ".join(f"{m} {n}" for m, n in counts.items() if n is not None) + "."]
    lines += failed_lines(metrics)
    reused = {m: v["train"]["reused_from"] for m, v in metrics["methods"].items() if v["train"].get("reused_from")}
    if reused:
        lines += ["", "Trained once for methods whose training rows are the same, in the same order (so are their "
                  "models, and their scores): " + ", ".join(f"{m} is {d}" for m, d in reused.items()) + "."]
    models = {"base": metrics["base"], **metrics["methods"]}
    undecided = {m: v.get("undecided") for m, v in models.items()}
    if any(undecided.values()):
        split = {m: v.get("cannot_split") for m, v in models.items()}
        lines += ["", "Undecided test-set verdicts (counted as not correct: two final answers, a hedge, a judge "
                  "that could not decide, a question too long for the model): " + ", ".join(
                      f"{m} {n}" + (f" ({split[m]} of them tests that cannot be judged outside the program)"
                                    if split.get(m) else "") for m, n in undecided.items() if n) + "."]
    for stage, counts in (metrics.get("sandbox") or {}).items():
        ran = ", ".join(f"`{name}` ({n} verdicts)" for name, n in counts.items())
        lines += ["", f"Model-written code judged in {stage} ran in: {ran} (docs/sandbox.md)."]
    lines += general_table(metrics)
    lines += benchmarks_table(metrics)
    lines += audit_lines(metrics.get("audits") or {})
    lines += [
        "",
        "Composition is the share of training targets taken from the model's own correct answer (self), "
        + ("a correct one of its k samples (self sample, s3ft-k), " if sampled else "")
        + "its accepted paraphrase of the gold, or the gold itself. Target NLL/token is the mean negative "
        "log-likelihood per token of the training targets under the base model: lower means the targets "
        "are closer to what the model would say.",
        "",
        "![composition](composition.png)\n![accuracy](accuracy.png)\n![nll](target_nll.png)"
        + ("\n![gain vs forgetting](gain_vs_forgetting.png)" if forgetting_view(metrics["base"]) else "")
        + ("\n![benchmarks](benchmarks.png)" if metrics["base"].get("benchmarks") else "")
        + ("\n![learning curves](curves.png)" if has_curves(metrics) else ""),
    ]
    return "\n".join(lines) + "\n"


def resample_lines(r: dict | None) -> list[str]:
    """Best-of-k (s3ft-k): how many rows were resampled and recovered, and what it cost in time."""
    if not r:
        return []
    failed = f", {r['failed_samples']} too long for the model (not drawn, or not scored)" if r.get("failed_samples") else ""
    return ["", f"Best-of-k self answers (s3ft-k, `03_resample`): of the {r.get('rows')} training rows whose greedy "
            f"answer the judge did not accept, {r.get('recovered')} were recovered by a correct sample (k={r.get('k')}: "
            f"{r.get('samples')} samples drawn, {r.get('correct_samples')} correct{failed}); the likeliest correct sample "
            f"under the base is the target (`self sample`), the others go on to the paraphrase. Time: sampling "
            f"{r.get('generate_s')} s, judging {r.get('judge_s')} s, scoring {r.get('nll_s')} s ({r.get('seconds')} s "
            f"in all), against {r.get('generate_stage_s')} s for the greedy answers (generate)."]


def failed_lines(metrics: dict) -> list[str]:
    """The rows that failed alone (too long for the model: not run, the rest went on), by stage with the first
    few and why; and the training rows longer than `train.max_length` (cut to it, or dropped)."""
    lines = []
    failed = metrics.get("failed_alone") or {}
    if failed:
        lines += ["", "Rows that failed alone, too long for the model (the other rows went on; each stage's rows "
                  "file says why for every one; a failed answer is judged undecided, so not correct):", ""]
        lines += [f"- {where}: {v['failed']} ({'; '.join(v.get('failed_rows') or [])}"
                  f"{'; …' if v['failed'] > len(v.get('failed_rows') or []) else ''})" for where, v in failed.items()]
    cut = {m: v["train"] for m, v in metrics["methods"].items() if v["train"].get("truncated_rows")}
    if cut:
        lines += ["", "Training rows longer than train.max_length, cut to it (dropped where the prompt alone fills "
                  "it): " + ", ".join(f"{m} {t['truncated_rows']} ({t.get('dropped_rows', 0)} dropped)"
                                      for m, t in cut.items()) + "."]
    return lines


def plots(metrics: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = list(metrics["methods"])
    written = []
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bottom = [0.0] * len(ms)
    for source, color in (("self", "#4c72b0"), ("self_sample", "#64b5cd"), ("paraphrase", "#55a868"),
                          ("gold", "#c44e52")):
        vals = [((metrics["methods"][m]["composition"] or {}).get("percent") or {}).get(source, 0) for m in ms]
        ax.bar(ms, vals, bottom=bottom, label=source, color=color)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("% of training targets")
    ax.set_title("Training-set composition")
    ax.legend(fontsize=8)
    written.append(_save(fig, out / "composition.png"))

    names = (["base"] if metrics["base"]["accuracy"] is not None else []) + ms
    accs = [metrics["base"]["accuracy"]] if names[:1] == ["base"] else []
    accs += [metrics["methods"][m]["accuracy"] for m in ms]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(names, [100 * (a or 0) for a in accs], color="#4c72b0")
    ax.set_ylabel("in-domain accuracy %")
    ax.set_title(f"{metrics['task']}: accuracy")
    written.append(_save(fig, out / "accuracy.png"))

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(ms, [metrics["methods"][m]["target_nll_per_token"] or 0 for m in ms], color="#8172b2")
    ax.set_ylabel("NLL / token under base model")
    ax.set_title("Distance of training targets from the base model")
    written.append(_save(fig, out / "target_nll.png"))

    view = forgetting_view(metrics["base"])
    points = [(m, v[f"{view}_mean_delta_vs_base"], v["accuracy_delta_vs_base"])
              for m, v in metrics["methods"].items() if v.get(f"{view}_mean_delta_vs_base") is not None
              and v["accuracy_delta_vs_base"] is not None]
    if points:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for m, forget, gain in points:
            ax.scatter(100 * forget, 100 * gain, s=40)
            ax.annotate(m, (100 * forget, 100 * gain), textcoords="offset points", xytext=(5, 4), fontsize=9)
        ax.axhline(0, color="gray", lw=0.6)
        ax.axvline(0, color="gray", lw=0.6)
        ax.set_xlabel("mean change on general " + ("benchmarks" if view == "benchmarks" else "skills") + " (points)")
        ax.set_ylabel("in-domain gain (points)")
        ax.set_title("In-domain gain vs forgetting")
        written.append(_save(fig, out / "gain_vs_forgetting.png"))

    bench = list(metrics["base"].get("benchmarks") or {})
    if bench:
        fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(bench) + 2), 3.4))
        width = 0.8 / max(1, len(ms))
        for i, m in enumerate(ms):
            d = metrics["methods"][m].get("benchmarks_delta_vs_base") or {}
            xs = [j + i * width for j in range(len(bench))]
            ax.bar(xs, [100 * (d.get(b) or 0) for b in bench], width=width, label=m)
        ax.set_xticks([j + width * (len(ms) - 1) / 2 for j in range(len(bench))], bench, fontsize=8)
        ax.axhline(0, color="gray", lw=0.6)
        ax.set_ylabel("change vs base (points)")
        ax.set_title("General benchmarks: change from the base model")
        ax.legend(fontsize=8)
        written.append(_save(fig, out / "benchmarks.png"))
    if has_curves(metrics):
        written.append(curves_plot(metrics, out / "curves.png"))
    return written


def has_curves(metrics: dict) -> bool:
    return any(v.get("curve") for v in metrics["methods"].values())


def curve_lines(metrics: dict) -> list[tuple[list[str], list[dict]]]:
    """The learning curves to draw: (methods, points from the base model's), one per distinct curve, so that
    methods with the very same curve (e.g. SDFT and S3FT trained on identical sets) share one line."""
    base = (metrics["base"].get("curve") or [None])[0]
    lines: dict[str, list[str]] = {}
    for m, v in metrics["methods"].items():
        curve = v.get("curve") or []
        lines.setdefault(json.dumps(curve, sort_keys=True) if curve else f"none:{m}", []).append(m)
    return [(names, ([base] if base else []) + (metrics["methods"][names[0]].get("curve") or []))
            for names in lines.values()]


def curves_plot(metrics: dict, path: Path) -> str:
    """Learning curves: validation in-domain accuracy and general-skill mean against training step, one line
    per method (methods with identical curves share one, labelled "a = b"), each from the base model (step 0)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for names, pts in curve_lines(metrics):
        for ax, key in zip(axes, ("in_domain", "general_mean"), strict=True):
            xy = [(p["step"], 100 * p[key]) for p in pts if p.get(key) is not None]
            if xy:
                ax.plot(*zip(*xy, strict=True), marker="o", ms=3, label=" = ".join(names))
    for ax, title in zip(axes, ("in-domain accuracy (validation) %", "general skills, mean (validation) %"),
                         strict=True):
        ax.set_xlabel("training step")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def run(ctx, out: Path) -> dict:
    metrics = collect(ctx.run_dir, ctx.cfg.method)
    write_json_atomic(out / "metrics.json", metrics)
    (out / "report.md").write_text(report_markdown(metrics))
    files = plots(metrics, out) if ctx.cfg.report.plots else []
    log.info("wrote %s", out / "report.md")
    counts = {"methods": len(metrics["methods"]), "plots": len(files)}
    if ctx.cfg.train.report_to:  # the trackers the trainer logs to get the report's numbers too
        from s3ft.trackers import log_metrics

        logged = log_metrics(metrics, ctx.cfg.train.report_to, out, run_name=Path(ctx.cfg.run_dir).name)
        if logged:
            counts["trackers"] = logged
    return counts
