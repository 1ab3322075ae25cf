"""A miniature world for an embedded forgetting demo: procedural skills a tiny model can learn on CPU.

A tiny (~2-5M parameter) Llama model is pre-trained from scratch on the world's GENERAL skills, all
answered in one HOUSE STYLE (short work, then "The answer is X."):

- `arith`: two-digit addition and subtraction ("What is 47 + 38?");
- `reverse`: reversing space-separated letters ("Reverse the letters: k p a m");
- `passage`: reading one of three facts about a person from a short passage ("... How many pens does Ben have?");
- `facts`: multiple-choice knowledge over a fixed fact base of invented creatures and their colors;
- `chain`: two-step arithmetic ("What is 12 + 5 - 3?");
- `story`: two-step word problems whose verbs are the fact base's invented ones, each adding or taking
  away ("Kim has 12 shells. She dreffs 5 and then flanes out 3. ..."), whose gold style labels each step
  with the question's verb and number ("Dreffing 5: ...");
- `paraphrase`: rewriting another general skill's reference answer in the house style, with the
  exact prompt of `s3ft/prompts/world_paraphrase.txt` (the skill S3FT's paraphrase step relies on).

It is then fine-tuned on the TARGET task `shop` (two-step word problems) whose gold answers are valid
but written in a different, GSM8K-like style (`<<a+b=c>>` annotations, a final `#### N`); the base
model sees only a small share of `shop`, in house style. Forgetting is the drop in accuracy on the
general skills' test splits. Every answer is checked by `s3ft.judges.final.FinalAnswerJudge`, but for the
second target task's: `lookup`, open-answer questions over a passage about two people whose golds are the bare
answer ("Rome", as Natural Questions' short spans), judged by `s3ft.judges.qa` (`s3ft demo --task lookup`).

Modules: `skills` (the generators and the fact base; reads the paraphrase template), `build` (splits,
the shipped files in `s3ft/data/world/`, and `pretrain_rows`, which regenerates the unshipped
pre-training set from the seed). Nothing here needs torch or a network.
"""

from __future__ import annotations

from typing import Any

from s3ft.world.skills import ALL_SKILLS, FactBase, Item, make_skills

_FROM_BUILD = ("DEFAULT_SIZES", "pretrain_rows", "world_items", "write_world")


def __getattr__(name: str) -> Any:
    """`s3ft.world.build`'s API, imported on first use (so `python -m s3ft.world.build` runs cleanly)."""
    if name in _FROM_BUILD:
        from s3ft.world import build

        return getattr(build, name)
    raise AttributeError(f"module 's3ft.world' has no attribute {name!r}")


__all__ = [
    "ALL_SKILLS",
    "DEFAULT_SIZES",
    "FactBase",
    "Item",
    "make_skills",
    "pretrain_rows",
    "world_items",
    "write_world",
]
