"""The miniature world's skills: procedural item generators, deterministic from a `random.Random`.

Each skill has a `name`, a `kind` ("general": pre-training skills whose loss is forgetting; "target": a task
to fine-tune for) and `sample(rng) -> Item`. Every answer ends in a final answer that `s3ft.judges.final`
reads (the house style's "The answer is X.", the gold style's last "#### X"), but `lookup`'s golds, which are
the bare answer, read by `s3ft.judges.qa`. Modules: `answers` (the two answer styles, worked arithmetic,
`Item`), `vocabulary` (names, cities, colors, things), `general` (arith, chain, reverse, passage, paraphrase), `invented` (the fact base; facts, story),
`target_items` (shop, lookup). The target tasks' kinds of question live in the package (`s3ft.world`).
"""

from __future__ import annotations

from research.world.skills.answers import Item, annotated, worked
from research.world.skills.general import (
    PARAPHRASE_TEMPLATE,
    Arith,
    Chain,
    OpaqueChain,
    Paraphrase,
    Passage,
    Reverse,
)
from research.world.skills.invented import (
    PROBE_STEMS,
    FactBase,
    Facts,
    Story,
    gerund,
    story_verbs,
    third_person,
)
from research.world.skills.target_items import Lookup, Shop
from research.world.skills.vocabulary import CITIES, COLORS, LETTERS, NAMES, THINGS
from s3ft.world import TARGETS

ALL_SKILLS = ("arith", "chain", "reverse", "passage", "facts", "story", "paraphrase", "shop", "lookup")
GENERAL = tuple(s for s in ALL_SKILLS if s not in TARGETS)
"""The general skills: pre-trained, and a drop on their test splits is forgetting."""
Skill = Arith | Chain | Reverse | Passage | Facts | Story | Paraphrase | Shop | Lookup


def make_skills(seed: int = 0) -> dict[str, Skill]:
    """The world's skills by name, in `ALL_SKILLS` order; `facts` and `story` use the fact base built from
    `seed`. `paraphrase` practises on the skills of build 4 (`story` is not among its sources)."""
    base = FactBase.build(seed)
    basics = [Arith(), Chain(), Reverse(), Passage(), Facts(base)]
    skills = [*basics, Story(base), Paraphrase(basics), Shop(), Lookup()]
    return {s.name: s for s in skills}


__all__ = [
    "ALL_SKILLS", "CITIES", "COLORS", "GENERAL", "LETTERS", "NAMES", "PARAPHRASE_TEMPLATE", "PROBE_STEMS", "THINGS",
    "Arith", "Chain", "FactBase", "Facts", "Item", "Lookup", "OpaqueChain", "Paraphrase", "Passage", "Reverse",
    "Shop", "Skill", "Story", "annotated", "gerund", "make_skills", "story_verbs", "third_person", "worked",
]
