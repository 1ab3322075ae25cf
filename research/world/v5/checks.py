"""A world v5 base's record and build checks (docs/world_v5.md, section 4), from its validation splits.

`base_record(model_dir, splits_dir)` loads the base once: greedy answers on every skill's `val` split and the
target's (400, a hundred of each kind), judged by the final-answer judge; the house style of each target answer;
the base's paraphrase of every target gold (the pipeline's world paraphrase prompt), judged, and compared with
the gold and with the base's own answer (`s3ft.nearcopy`). `base_checks(record)` says whether each of C1..C6
holds. Reads the model and the splits; writes nothing (`research.world.v5.pretrain` writes the record).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from research.world.score import PARAPHRASE_MAX_NEW_TOKENS, skill_scorer
from research.world.v5.build import GENERAL, PRACTISED
from research.world.v5.styles import HOUSE
from s3ft.nearcopy import similarity
from s3ft.world import share_correct

CHECKS = {"practised_min": 0.80, "unknown_max": 0.35, "off_ceiling": (0.60, 0.90), "off_ceiling_skills": 3,
          "learnt_min": 0.40, "not_near_copy_min": 0.50, "paraphrase_accepted_min": 0.50, "style_min": 0.15}
"""The bounds of the build checks, fixed before any base was built (docs/world_v5.md)."""
STYLE_MARKS = {"step": re.compile(r"^Step 1:"), "we": re.compile(r"^We "), "gold": re.compile(r"####"),
               "ref": re.compile(r", so we (add|subtract):"), "so": re.compile(r"\. Now \d+ [+-] \d+ = \d+\.")}
"""How a worked answer (arithmetic, a chain, a word problem) shows its style."""


def style_of(text: str) -> str | None:
    """Which style a worked answer is written in, by its marks; None when none or several match."""
    found = [s for s, mark in STYLE_MARKS.items() if mark.search(text)]
    return found[0] if len(found) == 1 else None


def read_split(splits_dir: Path, skill: str, split: str) -> list[dict]:
    path = Path(splits_dir) / f"{skill}_{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def base_record(model_dir: str | Path, splits_dir: str | Path, batch_size: int = 64) -> dict:
    """Validation scores per skill and per target kind, the target answers' styles, and the paraphrase step."""
    with skill_scorer(model_dir, batch_size) as s:
        skills = {name: share_correct(s.answer(read_split(splits_dir, name, "val"))[1]) for name in GENERAL}
        rows = read_split(splits_dir, "shop", "val")
        answers, right = s.answer(rows)
        kinds: dict[str, list[bool]] = {}
        for r, ok in zip(rows, right, strict=True):
            kinds.setdefault(r["kind"], []).append(ok)
        styles = [style_of(a) for a in answers]
        paraphrases = s.generate([s.render(r["question"], r["gold"]) for r in rows], PARAPHRASE_MAX_NEW_TOKENS)
        accepted = s.correct(rows, paraphrases)
    wrong = [i for i, ok in enumerate(right) if not ok]
    solved = [i for i, ok in enumerate(right) if ok]
    took = [i for i in wrong if accepted[i] and similarity(paraphrases[i], rows[i]["gold"]) < 0.9]
    apart = [i for i in solved if similarity(paraphrases[i], answers[i]) < 0.9]
    return {"world": "v5", "val": skills, "target_by_kind": {k: share_correct(v) for k, v in sorted(kinds.items())},
            "target": share_correct(right),
            "target_styles": {st: round(styles.count(st) / len(styles), 4) for st in (*HOUSE, "ref", "gold", None)},
            "paraphrase": {"wrong": len(wrong), "accepted_not_near_copy": len(took),
                           "share_accepted": round(len(took) / len(wrong), 4) if wrong else None,
                           "solved": len(solved), "not_near_copy_of_own_answer": len(apart),
                           "share_apart": round(len(apart) / len(solved), 4) if solved else None},
            "examples": {"answer": answers[:3], "paraphrase": paraphrases[:3]}}


def base_checks(record: dict) -> dict:
    """C1..C6 (docs/world_v5.md): each with its measured value, its bound and whether it holds; `passed`."""
    c, val, kinds = CHECKS, record["val"], record["target_by_kind"]
    low, high = c["off_ceiling"]
    unknown = {k: v for k, v in kinds.items() if k not in PRACTISED}
    off = [k for k, v in val.items() if v is not None and low <= v <= high]
    para = record["paraphrase"]
    house = {s: record["target_styles"].get(s, 0.0) for s in HOUSE}
    checks = {
        "C1 practised kind": (min(kinds[k] for k in PRACTISED), f">= {c['practised_min']}",
                              min(kinds[k] for k in PRACTISED) >= c["practised_min"]),
        "C2 unknown kinds": (max(unknown.values()), f"each <= {c['unknown_max']}",
                             max(unknown.values()) <= c["unknown_max"]),
        "C3 general skills off the ceiling": (
            {"off": off, "lowest": min(val.values())},
            f">= {c['off_ceiling_skills']} in [{low}, {high}], every one >= {c['learnt_min']}",
            len(off) >= c["off_ceiling_skills"] and min(val.values()) >= c["learnt_min"]),
        "C4 paraphrases are not self answers": (para["share_apart"], f">= {c['not_near_copy_min']}",
                                                (para["share_apart"] or 0) >= c["not_near_copy_min"]),
        "C5 the paraphrase step works": (para["share_accepted"], f">= {c['paraphrase_accepted_min']}",
                                         (para["share_accepted"] or 0) >= c["paraphrase_accepted_min"]),
        "C6 styles vary": (house, f"each >= {c['style_min']}", min(house.values()) >= c["style_min"]),
    }
    out = {k: {"measured": v, "bound": b, "holds": bool(h)} for k, (v, b, h) in checks.items()}
    out["passed"] = all(v["holds"] for v in out.values())
    return out
