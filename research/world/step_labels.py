"""How a fine-tuned world model's wrong answers to the kind of problem the base solves begin: in the gold's
style, and with the gold's step label or not (`research/world/NOTES.md`, "Why precondition 1 fails").

    python -m research.world.step_labels RUN_DIR [--model sft]

RUN_DIR is a run of the world's target task, e.g. one of the protocol's (`python -m research.world.protocol`):
`OUT/full-lr0.0001-ep2-buy-buy-only`. Reads its test questions and the model's predictions and verdicts;
prints the counts, writes nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def main() -> None:
    from s3ft.rundir import read_jsonl, stage_root
    from s3ft.world import KEPT_KIND, SHOP_KINDS

    p = argparse.ArgumentParser(prog="python -m research.world.step_labels", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--model", default="sft")
    args = p.parse_args()
    questions = {r["id"]: r for r in read_jsonl(stage_root(args.run_dir, "data") / "test.jsonl")}
    ev = stage_root(args.run_dir, "evaluate") / args.model
    said = {r["id"]: r["prediction"] for r in read_jsonl(ev / "predictions.jsonl")}
    kept = [v for v in read_jsonl(ev / "verdicts.jsonl") if SHOP_KINDS[KEPT_KIND].search(questions[v["id"]]["question"])]
    wrong = [v for v in kept if v["correct"] is not True]
    label = {i: q["gold"].split(":")[0] for i, q in questions.items()}  # the gold's first step label: "Buying 7"
    out = {"kind": KEPT_KIND, "problems": len(kept), "right": len(kept) - len(wrong),
           "in_gold_style": sum("<<" in said[v["id"]] for v in kept),
           "wrong": len(wrong), "wrong_in_gold_style": sum("<<" in said[v["id"]] for v in wrong),
           "wrong_with_the_golds_first_label": sum(said[v["id"]].startswith(label[v["id"]]) for v in wrong),
           "wrong_first_labels": collections.Counter(said[v["id"]].split(":")[0][:24] for v in wrong).most_common(8)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
