"""World v5's preconditions (docs/world_v5.md, section 5), stated for one run on one base from its run directory.

(1) fine-tuning keeps the practised kind: SFT's `buy-buy` test accuracy within 5 points of the base's;
(2) SFT learns the task: at least +20 points in-domain; (3) the paraphrase step carries a real share: of the
training rows the base got wrong, at least half train S3FT on an accepted paraphrase; (4) general skills are off
the ceiling: at least 3 of them between 60% and 90% on the base; (5) SDFT and S3FT train on different sets: of
the rows S3FT trains on the base's own answer, at least half have an SDFT target that is not a near-copy of it.
Reads the run directory; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from s3ft.nearcopy import NEAR_COPY, similarity
from s3ft.rundir import read_jsonl, stage_root
from s3ft.world.targets import kind_of_v5, share_correct

PRACTISED = "buy-buy"


def _test_by_kind(run_dir: Path, model: str) -> dict[str, float | None]:
    questions = {r["id"]: r["question"] for r in read_jsonl(stage_root(run_dir, "data") / "test.jsonl")}
    kinds: dict[str, list[bool]] = {}
    for v in read_jsonl(stage_root(run_dir, "evaluate") / model / "verdicts.jsonl"):
        kinds.setdefault(kind_of_v5(questions[v["id"]]) or "?", []).append(v["correct"] is True)
    return {k: share_correct(r) for k, r in kinds.items()}


def _apart(run_dir: Path) -> tuple[int, int]:
    """(S3FT self rows, those whose SDFT target is no near-copy of them)."""
    select = stage_root(run_dir, "select")
    if not (select / "sdft" / "train.jsonl").is_file() or not (select / "s3ft" / "train.jsonl").is_file():
        return 0, 0
    sdft = {r["id"]: r["completion"][0]["content"] for r in read_jsonl(select / "sdft" / "train.jsonl")}
    own = [r for r in read_jsonl(select / "s3ft" / "train.jsonl") if r["source"] == "self"]
    return len(own), sum(similarity(r["completion"][0]["content"], sdft.get(r["id"], "")) < NEAR_COPY for r in own)


def preconditions_v5(run_dir: Path, report: dict) -> dict[str, dict]:
    """Each precondition: what it is, what was measured, and whether it holds (None where not measurable)."""
    base, methods = report["base"], report["methods"]
    out = {}
    if "sft" in methods:
        kept = (_test_by_kind(run_dir, "base").get(PRACTISED), _test_by_kind(run_dir, "sft").get(PRACTISED))
        ok = None if None in kept else kept[1] >= kept[0] - 0.05 - 1e-9
        out["1"] = {"what": "SFT keeps the practised kind", "holds": ok,
                    "measured": f"buy-buy {100 * (kept[0] or 0):.1f} → {100 * (kept[1] or 0):.1f}%"}
        gain = methods["sft"].get("accuracy_delta_vs_base")
        out["2"] = {"what": "SFT learns the task", "holds": None if gain is None else gain >= 0.20,
                    "measured": f"{100 * (gain or 0):+.1f} pts in-domain"}
    comp = (methods.get("s3ft") or {}).get("composition") or {}
    if comp.get("counts"):
        wrong = comp["n"] - comp["counts"]["self"]
        share = comp["counts"]["paraphrase"] / wrong if wrong else None
        out["3"] = {"what": "the paraphrase step carries a real share", "holds": None if share is None else share >= 0.5,
                    "measured": f"{comp['counts']['paraphrase']} of {wrong} wrong rows on a paraphrase"}
    general = base.get("general") or {}
    off = [k for k, v in general.items() if v is not None and 0.6 <= v <= 0.9]
    out["4"] = {"what": "general skills off the ceiling", "holds": len(off) >= 3 if general else None,
                "measured": f"{len(off)} of {len(general)} in [60, 90]%: {', '.join(off) or 'none'}"}
    n, apart = _apart(run_dir)
    out["5"] = {"what": "SDFT and S3FT train on different sets", "holds": apart >= n / 2 if n else None,
                "measured": f"{apart} of {n} self rows with an SDFT target that is no near-copy"}
    return out
