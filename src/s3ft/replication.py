"""Methods compared over several bases: paired differences with their 95% t-interval (docs/world_v5.md, section 6).

Reads the report metrics of one run per base (`results.collect`'s shape, keyed by base); writes nothing. The
primary outcome is S3FT − SFT in the change of mean general-skill accuracy, paired by base; the secondary
ones are the same for in-domain gain, for the held-out references' NLL per token (a rise is forgetting), for
the skills that share the target's answer template and the others apart, and SSR − SFT and SDFT − SFT.
"""

from __future__ import annotations

import statistics

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
"""The 0.975 quantile of Student's t by degrees of freedom (between rows: the next smaller row's, wider)."""


def t975(df: int) -> float:
    return T975[max(k for k in T975 if k <= df)] if df >= 1 else float("nan")


def interval(diffs: list[float]) -> dict:
    """Mean of paired differences with its 95% t-interval (None bounds with fewer than two)."""
    n = len(diffs)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "low": None, "high": None}
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"n": 1, "mean": round(mean, 4), "sd": None, "low": None, "high": None}
    sd = statistics.stdev(diffs)
    half = t975(n - 1) * sd / n ** 0.5
    return {"n": n, "mean": round(mean, 4), "sd": round(sd, 4), "low": round(mean - half, 4),
            "high": round(mean + half, 4)}


def reading(iv: dict, above: str, below: str) -> str:
    """`above` when the interval lies above 0, `below` when below, else "inconclusive"."""
    if iv["low"] is None:
        return "not known (fewer than two bases)"
    return above if iv["low"] > 0 else below if iv["high"] < 0 else "inconclusive"


def changes(report: dict, method: str, template_sharing: tuple[str, ...]) -> dict[str, float | None]:
    """One base's changes against its base model for `method`: general accuracy (mean; template-sharing skills
    and the others apart), in-domain gain, and the references' NLL per token (mean over skills)."""
    m = report["methods"][method]
    general = m.get("general_delta_vs_base") or {}

    def mean(keys) -> float | None:
        vals = [general[k] for k in keys if general.get(k) is not None]
        return round(statistics.fmean(vals), 4) if vals else None

    return {"general": m.get("general_mean_delta_vs_base"), "gain": m.get("accuracy_delta_vs_base"),
            "template_sharing": mean([k for k in general if k in template_sharing]),
            "other_skills": mean([k for k in general if k not in template_sharing]),
            "reference_nll": m.get("general_reference_nll_mean_delta_vs_base")}


def over_bases(reports: dict[str, dict], template_sharing: tuple[str, ...] = ()) -> dict:
    """Per base and method the changes, and the paired intervals: `primary` (S3FT − SFT, general accuracy) and
    `secondary` (each measure, and SSR and SDFT against SFT)."""
    methods = list(next(iter(reports.values()))["methods"])
    per_base = {b: {m: changes(r, m, template_sharing) for m in methods} for b, r in reports.items()}

    def paired(a: str, b: str, measure: str) -> dict:
        diffs = [v[a][measure] - v[b][measure] for v in per_base.values()
                 if v[a][measure] is not None and v[b][measure] is not None]
        return {**interval(diffs), "diffs": [round(d, 4) for d in diffs]}

    out = {"bases": list(reports), "per_base": per_base, "secondary": {}}
    if {"s3ft", "sft"} <= set(methods):
        out["primary"] = {**paired("s3ft", "sft", "general"), "what": "S3FT − SFT, change of mean general accuracy"}
        out["primary"]["reading"] = reading(out["primary"], "S3FT forgets less than SFT", "S3FT forgets more than SFT")
        for measure in ("gain", "reference_nll", "template_sharing", "other_skills"):
            out["secondary"][f"s3ft-sft {measure}"] = paired("s3ft", "sft", measure)
    for other in ("ssr", "sdft", "s3ft-k"):
        if {other, "sft"} <= set(methods):
            out["secondary"][f"{other}-sft general"] = paired(other, "sft", "general")
    return out


def _pts(x: float | None, scale: float = 100) -> str:
    """Points (a share times 100, one decimal), or at `scale` 1 a raw value (three decimals)."""
    return "–" if x is None else f"{scale * x:+.1f}" if scale == 100 else f"{x:+.3f}"


def interval_text(iv: dict, scale: float = 100, unit: str = "pts") -> str:
    if iv["mean"] is None:
        return "–"
    if iv["low"] is None:
        return f"{_pts(iv['mean'], scale)} {unit} (one base)"
    return f"{_pts(iv['mean'], scale)} {unit}, 95% CI [{_pts(iv['low'], scale)}, {_pts(iv['high'], scale)}]"


def replication_markdown(rep: dict) -> list[str]:
    """The table over bases (general-skill change per method) and the paired intervals, as Markdown lines."""
    methods = list(next(iter(rep["per_base"].values())))
    lines = ["| base | " + " | ".join(f"{m} general (pts)" for m in methods) + " | S3FT − SFT |",
             "|---|" + "---|" * (len(methods) + 1)]
    for b, v in rep["per_base"].items():
        d = (v["s3ft"]["general"] - v["sft"]["general"] if {"s3ft", "sft"} <= set(v)
             and None not in (v["s3ft"]["general"], v["sft"]["general"]) else None)
        lines.append(f"| {b} | " + " | ".join(_pts(v[m]["general"]) for m in methods) + f" | {_pts(d)} |")
    if p := rep.get("primary"):
        lines += ["", f"Primary ({p['what']}, paired over {p['n']} bases): {interval_text(p)}: **{p['reading']}**."]
    for name, iv in rep["secondary"].items():
        nll = "reference_nll" in name
        lines.append(f"- {name}{' (nats/token; below 0: S3FT moved the references less)' if nll else ''}: "
                     + interval_text(iv, 1 if nll else 100, "" if nll else "pts"))
    return lines
