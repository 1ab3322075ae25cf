"""A run's numbers, read from its run directory and nothing else: each method's training-set composition and
target NLL (`06_select/<m>/stats.json`), best-of-k resampling where `s3ft-k` is among the methods (`03_resample/manifest.json`), training (`07_train/<m>/manifest.json`), in-domain accuracy, general
skills and benchmarks (`08_evaluate/<model>/metrics.json`), their changes against the base model, and the
tables that show forgetting, and the judge audits where `s3ft audit` sealed one (`10_audit/<judge>/audit.json`).
The report stage, `s3ft export`'s cards and the demo's summary all read it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from s3ft.agreement import label
from s3ft.errors import S3FTError
from s3ft.rundir import audit_root, read_json, stage_root
from s3ft.weights import reused_from


def run_config(run_dir: Path) -> dict:
    """The run's `config.yaml` as written (no defaults filled in, no validation): what it says of itself."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml)")
    return yaml.safe_load(path.read_text()) or {}


def collect(run_dir: Path, methods: list[str] | None = None) -> dict:
    """Every number of the run in `run_dir` for `methods` (default: the run's own), None where not made."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    methods = list(methods if methods is not None else cfg.get("method") or [])
    stage = {s: stage_root(run_dir, s) for s in ("select", "train", "evaluate", "judge", "judge_paraphrase")}
    per, evaluated = {}, {}
    for m in methods:
        stats = read_json(stage["select"] / m / "stats.json") or {}
        train = (read_json(stage["train"] / m / "manifest.json") or {}).get("counts", {})
        if train.get("reused_from"):  # said only while the two models are still one (`reused_from`)
            mode = train.get("mode") or (cfg.get("train") or {}).get("mode", "lora")
            train["reused_from"] = reused_from(run_dir, m, mode)
        ev = evaluated[m] = read_json(stage["evaluate"] / m / "metrics.json")
        per[m] = {
            "composition": stats.get("composition"),
            "target_nll_per_token": stats.get("target_nll_per_token"),
            "target_nll_per_token_by_source": stats.get("target_nll_per_token_by_source"),
            "paraphrase_vs_gold_nll_per_token": stats.get("paraphrase_vs_gold_nll_per_token"),
            "train": {k: train.get(k) for k in ("train_loss", "steps", "runtime_s", "mode",
                                                "trainable_share_non_embedding", "reused_from", "truncated_rows",
                                                "dropped_rows") if k in train},
            "accuracy": decided_accuracy(ev), "n": ev and ev.get("n"),
            "undecided": ev and ev.get("undecided"), "cannot_split": ev and ev.get("cannot_split"),
            "general": general_scores(ev),
            "general_reference_nll": reference_nll_scores(ev),
            "benchmarks": benchmark_scores(ev),
            "curve": (ev or {}).get("curve"),
        }
    base = read_json(stage["evaluate"] / "base" / "metrics.json")
    base_acc, base_general, base_bench = decided_accuracy(base), general_scores(base), benchmark_scores(base)
    for v in per.values():
        v["accuracy_delta_vs_base"] = delta(v["accuracy"], base_acc)
        if v["general"] and base_general:
            v["general_delta_vs_base"], v["general_mean_delta_vs_base"] = deltas(v["general"], base_general)
        v["benchmarks_delta_vs_base"], v["benchmarks_mean_delta_vs_base"] = deltas(v["benchmarks"], base_bench)
        if v["general_reference_nll"]:
            v["general_reference_nll_delta_vs_base"], v["general_reference_nll_mean_delta_vs_base"] = deltas(
                v["general_reference_nll"], reference_nll_scores(base))
    sandbox = {s: (read_json(stage[s] / "manifest.json") or {}).get("counts", {}).get("sandbox")
               for s in ("judge", "judge_paraphrase")}  # fmt: skip
    sandbox |= {f"evaluate ({m}, test set)": (ev or {}).get("sandbox") for m, ev in {"base": base, **evaluated}.items()}
    out = {"task": (cfg.get("data") or {}).get("task"), "model": (cfg.get("model") or {}).get("path"),
           "sandbox": {s: c for s, c in sandbox.items() if c},
           "base": {"accuracy": base_acc, "n": base and base.get("n"), "undecided": base and base.get("undecided"),
                    "cannot_split": base and base.get("cannot_split"), "general": base_general,
                    "general_reference_nll": reference_nll_scores(base), "benchmarks": base_bench,
                    "curve": (base or {}).get("curve")}, "methods": per}
    if "s3ft-k" in methods and (rs := resampled(run_dir)):  # only where s3ft-k is a method and the stage ran
        out["resample"] = rs
    if found := audits(run_dir):  # only where an audit was sealed
        out["audits"] = found
    if failed := failed_alone(run_dir, methods, {"base": base, **evaluated}):  # only where some row failed
        out["failed_alone"] = failed
    if base and base.get("forgetting"):
        f = base["forgetting"]
        out["harness"] = {"settings": f.get("settings"), "versions": f.get("versions"),
                          "metrics": {t: s["metric"] for t, s in f.get("scores", {}).items()}}
    return out


def resampled(run_dir: Path) -> dict | None:
    """The resample stage's counts (rows resampled, k, recovered, samples, the seconds of each pass), its wall time,
    and the generate stage's wall time beside it (the cost of best-of-k against one greedy answer per row)."""
    m = read_json(stage_root(run_dir, "resample") / "manifest.json")
    if not m:
        return None
    gen = read_json(stage_root(run_dir, "generate") / "manifest.json") or {}
    return {**{k: v for k, v in (m.get("counts") or {}).items() if k != "generated"}, "seconds": m.get("seconds"),
            "generate_stage_s": gen.get("seconds")}


def failed_alone(run_dir: Path, methods: list[str], evaluated: dict[str, dict | None]) -> dict[str, dict]:
    """The rows that failed alone, too long for the model, where some did, by stage (`generate`, `paraphrase`,
    `select NLL (<method>)`, `evaluate (<model>)`, `evaluate (<model>, <general set>)`): `failed`, how many, and
    `failed_rows`, the first few as
    "id: why" (each stage's rows file holds them all)."""
    keep = ("failed", "failed_rows")
    out = {s: {k: c.get(k) for k in keep} for s in ("generate", "paraphrase")
           if (c := (read_json(stage_root(run_dir, s) / "manifest.json") or {}).get("counts") or {}).get("failed")}
    for m in methods:
        if failed := (read_json(stage_root(run_dir, "select") / m / "stats.json") or {}).get("nll_failures"):
            out[f"select NLL ({m})"] = failed
    for name, ev in evaluated.items():
        sets = {name: ev or {}} | {f"{name}, {g}": v for g, v in ((ev or {}).get("general") or {}).items()}
        out |= {f"evaluate ({where})": {k: v.get(k) for k in keep} for where, v in sets.items() if v.get("failed")}
    return out


def benchmark_scores(ev: dict | None) -> dict[str, float]:
    """{task: score} of the lm-evaluation-harness benchmarks in an evaluate stage's metrics."""
    return {t: s["value"] for t, s in (((ev or {}).get("forgetting") or {}).get("scores") or {}).items()}


def decided_accuracy(ev: dict | None) -> float | None:
    """An evaluate unit's in-domain accuracy, None where it has none or where no verdict was decided (every one
    undecided: a judge model that is not there, say): 0% would read as a model that is always wrong."""
    if not ev or ev.get("accuracy") is None:
        return None
    return None if ev.get("n") and ev.get("undecided") == ev["n"] else ev["accuracy"]


def general_scores(ev: dict | None) -> dict[str, float | None]:
    """{skill: accuracy} of the general-skill sets in an evaluate stage's metrics."""
    return {k: v["accuracy"] for k, v in ((ev or {}).get("general") or {}).items()}


def reference_nll_scores(ev: dict | None) -> dict[str, float]:
    """{skill: NLL per token of its held-out references} where the evaluate stage measured it (a rise from the
    base model's is forgetting, on a continuous scale)."""
    return {k: v["reference_nll"]["per_token"] for k, v in ((ev or {}).get("general") or {}).items()
            if (v.get("reference_nll") or {}).get("per_token") is not None}


def delta(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def deltas(scores: dict[str, float], base: dict[str, float]) -> tuple[dict[str, float | None], float | None]:
    """Each score's change from the base model's, and their unweighted mean (the paper's "average")."""
    if not scores or not base:
        return {}, None
    d = {t: delta(v, base.get(t)) for t, v in scores.items()}
    vals = [x for x in d.values() if x is not None]
    return d, (round(sum(vals) / len(vals), 4) if vals else None)


def forgetting_view(base: dict) -> str | None:
    """Which scores a run's forgetting is read from: "benchmarks" (lm-evaluation-harness) when they scored
    the base model, else "general" (s3ft's own general-skill sets), else None. Each has, per method,
    `<view>_delta_vs_base` and `<view>_mean_delta_vs_base`."""
    return next((k for k in ("benchmarks", "general") if base.get(k)), None)


def pct(x: float | None, signed: bool = False) -> str:
    """A share as percent with one decimal (`+` on a change), "–" where there is none."""
    if x is None:
        return "–"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def general_table(metrics: dict) -> list[str]:
    """The general-skills table: each skill's accuracy and its change from the base (the shape of the
    paper's Table 4); a negative average change is forgetting."""
    names = list(metrics["base"].get("general") or {})
    if not names:
        return []
    lines = ["", "## General skills (forgetting)", "",
             "| model | " + " | ".join(f"{n} %" for n in names) + " | mean Δ vs base |",
             "|---|" + "---|" * (len(names) + 1)]
    lines.append("| base | " + " | ".join(pct(metrics["base"]["general"][n]) for n in names) + " | |")
    for m, v in metrics["methods"].items():
        d = v.get("general_delta_vs_base") or {}
        cells = [f"{pct((v['general'] or {}).get(n))} ({pct(d.get(n))})" for n in names]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {pct(v.get('general_mean_delta_vs_base'))} |")
    return lines


def benchmarks_table(metrics: dict) -> list[str]:
    """The lm-evaluation-harness table: each benchmark's score, its change from the base, and the mean
    change per model (the paper's Table 4), with the harness settings beneath."""
    names = list(metrics["base"].get("benchmarks") or {})
    if not names:
        return []
    h = metrics.get("harness") or {}
    used = h.get("metrics") or {}
    lines = ["", "## General benchmarks (lm-evaluation-harness)", "",
             "| model | " + " | ".join(f"{n} ({used.get(n, 'score')}) %" for n in names) + " | mean Δ vs base |",
             "|---|" + "---|" * (len(names) + 1),
             "| base | " + " | ".join(pct(metrics["base"]["benchmarks"][n]) for n in names) + " | |"]
    for m, v in metrics["methods"].items():
        d = v.get("benchmarks_delta_vs_base") or {}
        cells = [f"{pct((v['benchmarks'] or {}).get(n))} ({pct(d.get(n))})" for n in names]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {pct(v.get('benchmarks_mean_delta_vs_base'))} |")
    s = h.get("settings") or {}
    shots = s.get("num_fewshot")
    if shots is None:
        shots = "task default"
    elif isinstance(shots, dict):
        shots = ", ".join(f"{t} {k}" for t, k in shots.items()) + ", others task default"
    lines += ["", f"lm-eval {s.get('lm_eval', '?')}, backend {s.get('backend', '?')}, few-shot {shots}, limit "
              f"{s.get('limit') or 'none'}, chat template {'on' if s.get('apply_chat_template') else 'off'}; "
              "every setting and task version is in metrics.json under `harness`."]
    return lines


# --- judge audits (`s3ft audit`, `s3ft.judge_audit`): read where sealed, shown in the report and the cards ------------


def audits(run_dir: Path) -> dict[str, dict]:
    """Each sealed audit's numbers (`10_audit/<judge>/audit.json`, where its manifest is written), by folder name."""
    root = audit_root(run_dir)
    found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return {p.name: a for p in found if (p / "manifest.json").is_file() and (a := read_json(p / "audit.json"))}


def share_text(s: dict | None) -> str:
    """An estimated share with its 95% interval: `6.7% (95% CI 2.1–19.3)`; `–` where there is none."""
    if not s:
        return "–"
    return f"{pct(s['share'])}% (95% CI {pct(s['low'])}–{pct(s['high'])})"


def _kappa(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"


def audit_lines(found: dict[str, dict], method: str | None = None) -> list[str]:
    """The short "Judge audit" section of report.md (every method) or of a card (`method`): per audit, kappa and
    the share of targets the second judge rejects. Empty where the run has no sealed audit."""
    lines = []
    for name, a in found.items():
        k, targets = a.get("kappa") or {}, a.get("targets") or {}
        lines.append(f"- `10_audit/{name}/audit.md`: `{a.get('first_judge')}` re-judged by `{a.get('second_judge')}` "
                     f"on {a.get('rows')} sampled verdicts (seed {a.get('seed')}), {a.get('agree')} agreeing; Cohen's "
                     f"kappa {_kappa(k.get('decided'))} over the rows both decided "
                     f"({_kappa(k.get('with_undecided'))} with undecided as a category).")
        for m, t in targets.items():
            if method is None or m == method:
                lines.append(f"  {m}: of its {t['targets']} self and paraphrase targets, the second judge rejects an "
                             f"estimated {share_text(t.get('rejected'))}, and does not confirm "
                             f"{share_text(t.get('not_confirmed'))}.")
    if not lines:
        return []
    return ["", "## Judge audit", "", *lines, "", "Shares weighted by stratum, with a stratified Wilson interval "
            "(docs/audit.md)."]


def _cell(text: object, n: int = 90) -> str:
    """Text for a Markdown table cell: one line, pipes escaped, what cannot be shown (control characters, text UTF-8
    cannot hold) as escapes, cut to `n` characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in " ".join(str(text).split()))
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def audit_markdown(a: dict, rows: list[dict], most: int = 10) -> str:
    """audit.md: the sample by stratum, the confusion table, kappa, each method's rejected targets, and the first
    `most` disagreements."""
    k = a["kappa"]
    lines = [f"# Judge audit: `{a['first_judge']}` re-judged by `{a['second_judge']}`", "",
             f"Run `{a['run']}` (task `{a['task']}`): {a['rows']} of {sum(a['population'].values())} verdicts "
             f"re-judged (`--n {a['n']} --seed {a['seed']}`), drawn per stratum (text kind / first verdict):", "",
             "| stratum | verdicts | sampled | weight |", "|---|---|---|---|"]
    lines += [f"| {s} | {a['population'][s]} | {a['sampled'][s]} | {a['weights'][s]:.2f} |" for s in a["population"]]
    left = {kind: c for kind, c in (a.get("not_audited") or {}).items() if c}
    if left:
        lines += ["", "Not audited (no verdict of the judge's: a row too long for the model, a paraphrase rejected "
                  "before judging): " + ", ".join(f"{kind} {c}" for kind, c in left.items()) + "."]
    lines += ["", "## Agreement", "", "Sampled verdicts, first judge (rows) by second judge (columns):", "",
              "| first \\ second | correct | wrong | undecided |", "|---|---|---|---|"]
    lines += [f"| {f} | " + " | ".join(str(a["confusion"][f][s]) for s in a["confusion"][f]) + " |"
              for f in a["confusion"]]
    lines += ["", f"The judges agree on {a['agree']} of {a['rows']} rows. Cohen's kappa, weighted to the run's "
              f"verdicts: **{_kappa(k['decided'])}** over the {k['decided_rows']} rows both judges decided (the "
              f"primary number), {_kappa(k['with_undecided'])} with undecided as a third category (unweighted, on "
              f"the sample: {_kappa(k['sample_decided'])} and {_kappa(k['sample_with_undecided'])})."]
    lines += ["", "## Training targets the second judge rejects", ""]
    if not a["targets"]:
        lines.append("No method of this run trains on the model's own answers or paraphrases.")
    else:
        lines += ["| method | self targets | paraphrase targets | sampled | rejected (wrong) | not confirmed "
                  "(wrong or undecided) |", "|---|---|---|---|---|---|"]
        lines += [f"| {m} | {t['self']} | {t['paraphrase']} | {t['sampled']} | {share_text(t['rejected'])} | "
                  f"{share_text(t['not_confirmed'])} |" for m, t in a["targets"].items()]
        lines += ["", "Each share is estimated stratum by stratum from the sampled targets and weighted by the "
                  "stratum's targets; the 95% interval is Wilson's on the stratified estimate's effective sample "
                  "size (docs/audit.md)."]
        fallback = sorted({s for t in a["targets"].values() for s in t.get("fallback") or ()})
        if fallback:
            lines.append("No target was sampled in " + ", ".join(fallback) + ": the stratum's sampled rows stand "
                         "for its targets there.")
    differ = [r for r in rows if r["first"]["correct"] is not r["second"]["correct"]]
    if differ:
        lines += ["", f"## Disagreements ({min(most, len(differ))} of {len(differ)}; all in rows.jsonl)", "",
                  "| id | targets | first | second | second's reason |", "|---|---|---|---|---|"]
        lines += [f"| {_cell(r['id'], 40)} | {', '.join(r.get('targets') or []) or '–'} | "
                  f"{label(r['first']['correct'])} | {label(r['second']['correct'])} | {_cell(r['second']['reason'])} |"
                  for r in differ[:most]]
    return "\n".join(lines) + "\n"
