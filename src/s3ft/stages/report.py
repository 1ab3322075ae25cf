"""Stage 9, report: `report.md`, `metrics.json` and PNG plots comparing the methods.

Reads each method's `06_select/<m>/stats.json`, `07_train/<m>/` manifest and
`08_evaluate/<model>/metrics.json`; writes into `09_report/`. Plots: training-set composition per
method, in-domain accuracy per model, and target NLL per method (the distribution-distance
argument of the paper as one number per method).
"""

from __future__ import annotations

import logging
from pathlib import Path

from s3ft.rundir import read_json, write_json_atomic

log = logging.getLogger("s3ft.report")


def collect(ctx) -> dict:
    methods = {}
    for m in ctx.cfg.method:
        stats = read_json(ctx.stage_dir("select") / m / "stats.json") or {}
        train = (read_json(ctx.stage_dir("train") / m / "manifest.json") or {}).get("counts", {})
        ev = read_json(ctx.stage_dir("evaluate") / m / "metrics.json")
        methods[m] = {
            "composition": stats.get("composition"),
            "target_nll_per_token": stats.get("target_nll_per_token"),
            "target_nll_per_token_by_source": stats.get("target_nll_per_token_by_source"),
            "train": {k: train.get(k) for k in ("train_loss", "steps", "runtime_s", "mode") if k in train},
            "accuracy": ev and ev["accuracy"],
        }
    base = read_json(ctx.stage_dir("evaluate") / "base" / "metrics.json")
    base_acc = base and base["accuracy"]
    for v in methods.values():
        v["accuracy_delta_vs_base"] = (
            round(v["accuracy"] - base_acc, 4) if v["accuracy"] is not None and base_acc is not None else None
        )
    return {"task": ctx.task.name, "model": ctx.cfg.model.path, "base": {"accuracy": base_acc}, "methods": methods}


def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def markdown(metrics: dict) -> str:
    lines = [
        f"# s3ft report: {metrics['task']} on {metrics['model']}",
        "",
        f"Base model in-domain accuracy: {_fmt(metrics['base']['accuracy'], pct=True)}%",
        "",
        "| method | accuracy % | Δ vs base | self % | paraphrase % | gold % | target NLL/token | train loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, v in metrics["methods"].items():
        pct = (v["composition"] or {}).get("percent", {})
        lines.append(
            f"| {m} | {_fmt(v['accuracy'], True)} | {_fmt(v['accuracy_delta_vs_base'], True)} | "
            f"{pct.get('self', '–')} | {pct.get('paraphrase', '–')} | {pct.get('gold', '–')} | "
            f"{_fmt(v['target_nll_per_token'])} | {_fmt(v['train'].get('train_loss'))} |"
        )
    lines += [
        "",
        "Composition is the share of training targets taken from the model's own correct answer (self), "
        "its accepted paraphrase of the gold, or the gold itself. Target NLL/token is the mean negative "
        "log-likelihood per token of the training targets under the base model: lower means the targets "
        "are closer to what the model would say.",
        "",
        "![composition](composition.png)\n![accuracy](accuracy.png)\n![nll](target_nll.png)",
    ]
    return "\n".join(lines) + "\n"


def plots(metrics: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = list(metrics["methods"])
    written = []
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bottom = [0.0] * len(ms)
    for source, color in (("self", "#4c72b0"), ("paraphrase", "#55a868"), ("gold", "#c44e52")):
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
    return written


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def run(ctx, out: Path) -> dict:
    metrics = collect(ctx)
    write_json_atomic(out / "metrics.json", metrics)
    (out / "report.md").write_text(markdown(metrics))
    files = plots(metrics, out) if ctx.cfg.report.plots else []
    log.info("wrote %s", out / "report.md")
    return {"methods": len(metrics["methods"]), "plots": len(files)}
