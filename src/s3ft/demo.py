"""`s3ft demo`: the miniature world, every method, several seeds, one summary.

Runs the shipped config `s3ft/configs/world.yaml` (the demo is a config: same pipeline, same stages; `s3ft
demo --task lookup`: `world_lookup.yaml`, the second target task) once per seed into `<run_dir>/seed-<n>/`,
sharing one model-call cache so that the seeds share the
generation pass, then writes `<run_dir>/summary.md`, `summary.json` and `summary.png`: per method the
mean and standard deviation over seeds of in-domain accuracy gain and of the change on general skills.
The general skills are read as the report reads them (`results.forgetting_view`): from lm-evaluation-harness
when the config has `evaluate.forgetting` (the shipped demo does: the world's skills are harness tasks),
else from `evaluate.general`.
"""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path

from s3ft.config import PACKAGE_DIR, load_config
from s3ft.errors import S3FTError
from s3ft.replication import over_bases, replication_markdown
from s3ft.results import forgetting_view
from s3ft.rundir import read_json, stage_root, write_json_atomic
from s3ft.world import TEMPLATE_SHARING_V5, V5_BASES, kind_rates, preconditions, setting_of, target_of
from s3ft.world.conditions_v5 import preconditions_v5

log = logging.getLogger("s3ft.demo")
DEMO_CONFIG = Path(PACKAGE_DIR) / "configs" / "world.yaml"
V5_CONFIG = Path(PACKAGE_DIR) / "configs" / "world_v5.yaml"


def demo(seeds: list[int], run_dir: str = "runs/world", overrides: list[str] = (), config: Path = DEMO_CONFIG) -> Path:
    from s3ft import run  # the pipeline, its log also in each run's run.log

    for seed in seeds:
        cfg = load_config(config, [*overrides, f"seed={seed}", f"run_dir={run_dir}/seed-{seed}",
                                   f"cache.path={run_dir}/cache.sqlite"])
        log.info("seed %d: %s", seed, cfg.run_dir)
        run(cfg)
    return write_summary(Path(run_dir), seeds, cfg)


def demo_bases(bases: list[str] | None, run_dir: str = "runs/world-v5", overrides: list[str] = (),
               config: Path = V5_CONFIG, seed: int = 0) -> Path:
    """World v5: the config once per base (`<run_dir>/<base folder name>/`, one fine-tuning seed, one shared
    model-call cache), then `<run_dir>/summary.md` and `summary.json`: each method's changes per base and the
    paired differences over bases with their 95% t-interval (`s3ft.replication`)."""
    from s3ft import run  # the pipeline, its log also in each run's run.log

    bases = [Path(b) for b in bases] if bases else sorted(p for p in V5_BASES.glob("*") if p.is_dir())
    if not bases:
        raise S3FTError(f"no world v5 base shipped in {V5_BASES} yet: build one (python -m research.world.v5.pretrain "
                        "DIR --train-seed N, from the repository) and pass --base DIR")
    names = [b.name for b in bases]
    if len(set(names)) != len(names):
        raise S3FTError(f"--base: folder names must differ (they name the runs): {', '.join(names)}")
    out = Path(run_dir)
    for base in bases:
        cfg = load_config(config, [*overrides, f"model.path={base}", f"seed={seed}", f"run_dir={out / base.name}",
                                   f"cache.path={out / 'cache.sqlite'}"])
        log.info("base %s: %s", base, cfg.run_dir)
        run(cfg)
    rep = over_bases({n: read_json(stage_root(out / n, "report") / "metrics.json") for n in names},
                     TEMPLATE_SHARING_V5)
    rep["seconds_by_stage"] = seconds_by_stage([out / n for n in names])
    rep["preconditions"] = {n: preconditions_v5(out / n, read_json(stage_root(out / n, "report") / "metrics.json"))
                            for n in names}
    write_json_atomic(out / "summary.json", rep)
    secs = rep["seconds_by_stage"]
    (out / "summary.md").write_text("\n".join([
        f"# s3ft demo: world v5, {len(names)} base(s), fine-tuning seed {seed}", "",
        "Change of each method's mean general-skill accuracy against its base (points), per base; then S3FT − SFT "
        "paired by base with its 95% t-interval (illustrative with few bases; the full replication: docs/world_v5.md).",
        "", *replication_markdown(rep), "", "Preconditions (docs/world_v5.md), per base:", "",
        *[f"- {b}: " + "; ".join(f"{k} {c['what']}: {c['measured']}, "
                                + {True: "holds", False: "**does not hold**", None: "not known"}[c["holds"]]
                                for k, c in pre.items()) for b, pre in rep["preconditions"].items()], "",
        "Time per stage, all bases (s): " + ", ".join(f"{k} {v:.0f}" for k, v in secs.items() if v)
        + f"; total {sum(secs.values()):.0f} s.", ""]))
    log.info("wrote %s", out / "summary.md")
    return out / "summary.md"


def write_summary(out: Path, seeds: list[int], cfg) -> Path:
    """`summary.md`, `summary.json` and `summary.png` in `out` from the finished runs `out/seed-<n>/`; `cfg`
    is one of their configs (the training setting, the same in every seed)."""
    reports = {seed: read_json(stage_root(out / f"seed-{seed}", "report") / "metrics.json") for seed in seeds}
    summary = summarize(reports)
    summary["train_setting"] = setting_of(cfg.train)
    curve_seed = next((seed for seed, r in reports.items() if any(v.get("curve") for v in r["methods"].values())),
                      None)
    if curve_seed is not None:
        summary["curves"] = {"seed": curve_seed, "plot": f"seed-{curve_seed}/09_report/curves.png"}
    runs = [out / f"seed-{seed}" for seed in seeds]
    summary["seconds_by_stage"] = seconds_by_stage(runs)
    task = task_of(runs)
    summary["world_task"] = task
    if checks := preconditions(summary, task or "shop"):
        summary["preconditions"] = checks
    if same := identical_training_sets(runs, list(summary["methods"])):
        summary["identical_training_sets"] = same
    if by_kind := accuracy_by_kind(runs, ["base", *summary["methods"]]):
        summary["accuracy_by_kind"] = by_kind
    write_json_atomic(out / "summary.json", summary)
    (out / "summary.md").write_text(summary_markdown(summary))
    summary_plot(summary, out / "summary.png")
    log.info("wrote %s", out / "summary.md")
    return out / "summary.md"


def seconds_by_stage(run_dirs: list[Path]) -> dict[str, float]:
    """Wall time of each stage, summed over its units in every run, from the manifests (a unit skipped
    because a previous run had done it counts its original time)."""
    from s3ft.rundir import STAGES

    total: dict[str, float] = {}
    for run_dir in run_dirs:
        for stage in STAGES:
            for m in stage_root(run_dir, stage).rglob("manifest.json"):
                total[stage] = round(total.get(stage, 0.0) + (read_json(m) or {}).get("seconds", 0.0), 1)
    return total


def identical_training_sets(run_dirs: list[Path], methods: list[str]) -> list[list[str]]:
    """Groups of methods whose training sets held the same prompts and targets in the same order in every run
    (they then train the same model, seed for seed): e.g. SDFT and S3FT where the base's paraphrase of
    each gold it already answered right is its own answer, word for word."""
    from s3ft.rundir import read_jsonl

    def targets(method: str) -> list | None:
        rows = []
        for run_dir in run_dirs:
            path = stage_root(run_dir, "select") / method / "train.jsonl"
            if not path.is_file():
                return None
            rows.append([(r["id"], json.dumps(r["prompt"]), json.dumps(r["completion"])) for r in read_jsonl(path)])
        return rows

    groups: dict[str, list[str]] = {}
    for m in methods:
        if (t := targets(m)) is not None:
            groups.setdefault(json.dumps(t), []).append(m)
    return [g for g in groups.values() if len(g) > 1]


def task_of(run_dirs: list[Path]) -> str | None:
    """The miniature world's target task (`shop`, `lookup`) whose questions every run's test set holds, or
    None (not the world)."""
    from s3ft.rundir import read_jsonl

    tasks = set()
    for run_dir in run_dirs:
        path = stage_root(run_dir, "data") / "test.jsonl"
        t = target_of([r["question"] for r in read_jsonl(path)]) if path.is_file() else None
        tasks.add(t and t.name)
    return tasks.pop() if len(tasks) == 1 else None


def accuracy_by_kind(run_dirs: list[Path], models: list[str]) -> dict | None:
    """Test accuracy per kind of target problem (the miniature world's task's `Target.kinds`), each model's
    mean over the runs: {model: {kind: mean}}. None when the test sets are not one world task's."""
    from s3ft.rundir import read_jsonl

    if task_of(run_dirs) is None:
        return None
    out: dict[str, dict[str, list[float]]] = {}
    for run_dir in run_dirs:
        questions = {r["id"]: r["question"] for r in read_jsonl(stage_root(run_dir, "data") / "test.jsonl")}
        for m in models:
            verdicts = read_jsonl(stage_root(run_dir, "evaluate") / m / "verdicts.jsonl")
            rates = kind_rates([{"id": v["id"], "question": questions[v["id"]]} for v in verdicts],
                               [v["correct"] is True for v in verdicts])
            for kind, rate in rates.items():
                out.setdefault(m, {}).setdefault(kind, []).append(rate)
    return {m: {k: round(statistics.fmean(v), 4) for k, v in kinds.items() if None not in v}
            for m, kinds in out.items()}


def _stats(values: list[float | None]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": round(statistics.fmean(vals), 4), "std": round(statistics.stdev(vals), 4) if len(vals) > 1 else None,
            "n": len(vals)}


def summarize(reports: dict[int, dict]) -> dict:
    """Mean and spread over seeds of each method's in-domain accuracy, gain, and general-skill change."""
    first = next(iter(reports.values()))
    view = forgetting_view(first["base"]) or "general"
    methods = {}
    for m in first["methods"]:
        per = [r["methods"][m] for r in reports.values()]
        methods[m] = {
            "accuracy": _stats([p["accuracy"] for p in per]),
            "gain": _stats([p["accuracy_delta_vs_base"] for p in per]),
            "general_change": _stats([p.get(f"{view}_mean_delta_vs_base") for p in per]),
            "general_change_by_skill": {
                k: _stats([(p.get(f"{view}_delta_vs_base") or {}).get(k) for p in per])
                for k in (first["base"].get(view) or {})
            },
            "composition": per[0]["composition"],
            "target_nll_per_token": per[0]["target_nll_per_token"],
            "paraphrase_vs_gold_nll_per_token": per[0].get("paraphrase_vs_gold_nll_per_token"),
            "trainable_share_non_embedding": (per[0].get("train") or {}).get("trainable_share_non_embedding"),
        }
    return {"seeds": list(reports), "task": first["task"], "model": first["model"], "base": first["base"],
            "general_from": {"benchmarks": "lm-evaluation-harness", "general": "evaluate.general"}[view],
            "base_general": first["base"].get(view) or {}, "methods": methods}


def _pm(s: dict, pct: bool = True) -> str:
    if s["mean"] is None:
        return "–"
    k = 100 if pct else 1
    return f"{k * s['mean']:+.1f}" + (f" ± {k * s['std']:.1f}" if s["std"] is not None else "")


def summary_markdown(summary: dict) -> str:
    base_gen = summary["base_general"]
    skills = list(base_gen)
    sampled = any("self_sample" in ((v["composition"] or {}).get("percent") or {}) for v in summary["methods"].values())
    sources = ("self", "self_sample", "paraphrase", "gold") if sampled else ("self", "paraphrase", "gold")
    lines = [
        f"# s3ft demo: {summary['task']} on {summary['model']}",
        "",
        f"Seeds: {', '.join(map(str, summary['seeds']))} (mean ± standard deviation over seeds; training is "
        "what the seed changes). Base model: in-domain accuracy "
        f"{100 * (summary['base']['accuracy'] or 0):.1f}%"
        + (", general skills " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in base_gen.items()) if base_gen else "")
        + ".",
        "",
        "| method | in-domain gain (pts) | general-skill change (pts) | "
        + " | ".join(f"{k} (pts)" for k in skills) + " | " + " | ".join(f"{s.replace('_', ' ')} %" for s in sources)
        + " | target NLL/token |",
        "|---|---|---|" + "---|" * len(skills) + "---|" * len(sources) + "---|",
    ]
    for m, v in summary["methods"].items():
        pct = (v["composition"] or {}).get("percent", {})
        nll = v["target_nll_per_token"]
        lines.append(
            f"| {m} | {_pm(v['gain'])} | {_pm(v['general_change'])} | "
            + " | ".join(_pm(v["general_change_by_skill"][k]) for k in skills)
            + "".join(f" | {pct.get(s, '–')}" for s in sources) + " | "
            + (f"{nll:.3f}" if nll is not None else "–") + " |"
        )
    lines += ["", f"A negative general-skill change is forgetting (scored through {summary['general_from']}).", ""]
    lines += [x for x in (training_line(summary), paraphrase_line(summary)) if x]
    if by_kind := summary.get("accuracy_by_kind"):
        kinds = list(next(iter(by_kind.values())))
        lines += ["Test accuracy by kind of target problem (%, mean over seeds):", "",
                  "| model | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        lines += [f"| {m} | " + " | ".join(f"{100 * v[k]:.1f}" for k in kinds) + " |" for m, v in by_kind.items()]
        lines.append("")
    if (v := verdict(summary)) is not None:
        lines += [v, ""]
    if (w := where_s3ft_forgot(summary)) is not None:
        lines += [w, ""]
    for group in summary.get("identical_training_sets", []):
        lines += [f"{' and '.join(group)} trained on identical training sets (every row's prompt and target, "
                  "every seed), so they trained the same model: their rows above are one result.", ""]
    if checks := summary.get("preconditions"):
        lines += ["Preconditions of the world's protocol (docs/world.md), on this base:", ""]
        lines += [f"- Precondition {n}, {c['what']}: {c['measured']}: "
                  + {True: "holds", False: "**does not hold**", None: "not known"}[c["holds"]] + "."
                  for n, c in checks.items()]
        lines.append("")
    if secs := summary.get("seconds_by_stage"):
        lines += ["Time per stage, all seeds (s): " + ", ".join(f"{k} {v:.0f}" for k, v in secs.items() if v)
                  + f"; total {sum(secs.values()):.0f} s.", ""]
    lines += ["![summary](summary.png)", ""]
    if summary.get("curves"):
        lines += [f"Learning curves (seed {summary['curves']['seed']}; validation samples; step 0 is the base model):",
                  "", f"![learning curves]({summary['curves']['plot']})", ""]
    return "\n".join(lines)


def training_line(summary: dict) -> str | None:
    shares = {m: v.get("trainable_share_non_embedding") for m, v in summary["methods"].items()}
    share = next((s for s in shares.values() if s is not None), None)
    if share is None:
        return None
    return (f"Training updates {100 * share:.2f}% of the base model's non-embedding weights "
            "(LoRA r 16 on Mistral-7B: about 0.6%).\n")


def paraphrase_line(summary: dict) -> str | None:
    """The paraphrase step in S3FT's training set: of the rows the base got wrong, how many trained on an
    accepted paraphrase (not a near-copy of the gold), and how close those paraphrases sit to the model."""
    v = summary["methods"].get("s3ft")
    comp = v and v["composition"]
    if not comp or "counts" not in comp:
        return None
    counts = comp["counts"]
    wrong = comp["n"] - counts["self"]
    line = (f"Paraphrase step (S3FT): of the {wrong} training rows the base model got wrong, {counts['paraphrase']} "
            f"({100 * counts['paraphrase'] / wrong:.1f}%) train on an accepted paraphrase of the gold"
            if wrong else "Paraphrase step (S3FT): the base model got every training row right")
    if wrong and comp.get("near_copies") is not None:
        line += f"; {comp['near_copies']} accepted paraphrases nearly copied the gold and train as the gold"
    nll = v.get("paraphrase_vs_gold_nll_per_token")
    if nll:
        line += (f". Under the base model, those paraphrases cost {nll['paraphrase']:.3f} nats/token against "
                 f"{nll['gold']:.3f} for the same rows' gold")
    return line + ".\n"


def verdict(summary: dict) -> str | None:
    """One plain sentence on whether S3FT forgot less than SFT, and gained more, judged against the seed spread.

    A difference counts as clear only when it exceeds the sum of the two standard deviations over seeds
    (with one seed there is no spread, and the sentence says so). None without both methods.
    """
    ms = summary["methods"]
    if not {"sft", "s3ft"} <= set(ms):
        return None
    parts = []
    for key, what, better, worse in (("general_change", "general-skill change", "forgot less", "forgot more"),
                                     ("gain", "in-domain gain", "did better in-domain", "did worse in-domain")):
        a, b = ms["s3ft"][key], ms["sft"][key]
        if a["mean"] is None or b["mean"] is None:
            continue
        diff = 100 * (a["mean"] - b["mean"])
        word = f"{better if diff > 0 else worse} than SFT by {abs(diff):.1f} pts" if diff else "did the same as SFT"
        if a["std"] is None or b["std"] is None:
            how = "one seed: no spread to judge it by"
        else:
            spread = 100 * (a["std"] + b["std"])
            how = (f"clear: more than the seeds' spread, {spread:.1f}" if abs(diff) > spread
                   else f"not clear: within the seeds' spread, {spread:.1f}")
        parts.append(f"{what} {_pm(a)} vs {_pm(b)} pts, so S3FT {word} ({how})")
    return ("S3FT against SFT: " + "; ".join(parts) + ".") if parts else None


def where_s3ft_forgot(summary: dict, top: int = 3) -> str | None:
    """Where to look when S3FT did not clearly forget less than SFT: the skills it lost most on, beside SFT's
    change on them, and what its targets were. None when it clearly forgot less, or lost nothing beyond the spread.

    It locates the loss; why it happened is read from the trained models' answers on those skills (for the
    world: docs/world.md reads them for every base it reports).
    """
    ms = summary["methods"]
    if not {"sft", "s3ft"} <= set(ms):
        return None
    a, b = ms["s3ft"]["general_change"], ms["sft"]["general_change"]
    if a["mean"] is None or b["mean"] is None:
        return None
    if a["std"] is not None and b["std"] is not None and a["mean"] - b["mean"] > a["std"] + b["std"]:
        return None
    by_skill = ms["s3ft"]["general_change_by_skill"]
    # a loss: below zero by more than its own spread over seeds
    lost = sorted((k for k, s in by_skill.items() if (s["mean"] or 0) < 0 and -s["mean"] > (s["std"] or 0)),
                  key=lambda k: by_skill[k]["mean"])[:top]
    if not lost:
        return None
    sft_by_skill = ms["sft"]["general_change_by_skill"]
    where = ", ".join(f"{k} {_pm(by_skill[k])} (SFT {_pm(sft_by_skill.get(k) or {'mean': None})})" for k in lost)
    pct = (ms["s3ft"]["composition"] or {}).get("percent", {})
    made_of = ", ".join(f"{pct[k]}% {k}" for k in ("self", "paraphrase", "gold") if pct.get(k))
    line = f"S3FT did not forget clearly less than SFT. Its largest losses (pts): {where}."
    if made_of:
        line += f" Its training targets: {made_of}."
    if curves := summary.get("curves"):
        line += (" Its answers on those skills, on validation samples: "
                 f"seed-{curves['seed']}/08_evaluate/s3ft/curve/STEP/general/SKILL/predictions.jsonl.")
    return line


def summary_plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    labels: dict[tuple[float, float], list[str]] = {}  # methods at the same point share one label: "sdft = s3ft"
    for m, v in summary["methods"].items():
        g, f = v["gain"], v["general_change"]
        if g["mean"] is None or f["mean"] is None:
            continue
        ax.errorbar(100 * f["mean"], 100 * g["mean"], xerr=100 * (f["std"] or 0), yerr=100 * (g["std"] or 0),
                    fmt="o", capsize=3)
        labels.setdefault((round(100 * f["mean"], 1), round(100 * g["mean"], 1)), []).append(m)
    for (x, y), names in labels.items():
        ax.annotate(" = ".join(names), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.axhline(0, color="gray", lw=0.6)
    ax.axvline(0, color="gray", lw=0.6)
    ax.set_xlabel("change on general skills (points; < 0 is forgetting)")
    ax.set_ylabel("in-domain gain (points)")
    ax.set_title(f"{len(summary['seeds'])} seed(s): gain vs forgetting")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
