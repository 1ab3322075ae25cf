"""World v5's generators: each skill's `sample(rng) -> Item` gives a question, its answer, and that answer in
every style (`styles.STYLES`), with the house style the question prefers. Deterministic from the `rng`;
reads the packaged paraphrase template only.

General skills: `arith`, `chain`, `reverse`, `passage`, `facts`, `story`, `paraphrase` (which wraps the
others). The target `shop`: two-step word problems of four kinds, addition and subtraction in both steps; the
base practises `buy-buy` only and never reads "gives away".
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from research.world.skills.answers import chain_numbers, operands
from research.world.skills.invented import (
    DEFINED_SHARE,
    FactBase,
    gerund,
    multiple_choice,
    new_verb,
    third_person,
)
from research.world.skills.vocabulary import CITIES, COLORS, NAMES, THINGS
from research.world.v5.styles import OP, STYLES, Step, preferred, stated, worked
from s3ft.tasks.common import packaged_template

PARAPHRASE_TEMPLATE = "world_paraphrase.txt"
CREATURES = 120
"""Invented creatures in the fact base: more than a tiny model recalls from the rows it sees (`facts` off the
ceiling)."""


@dataclass
class Item:
    """A question, its answer, the answer in every style, the preferred house style; `kind` (the target's
    kind of problem) and `source` (a paraphrase item's wrapped question) where they apply."""

    question: str
    answer: str
    answers: dict[str, str]
    prefer: str
    kind: str = ""
    source: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def gold(self) -> str:
        return self.answers["gold"]

    @property
    def keys(self) -> set[str]:
        """The question texts this item shows a model (for split disjointness)."""
        return {self.question, self.source} - {""}


def styled(steps: list[Step], result: str) -> dict[str, str]:
    return {s: worked(s, steps, result) for s in STYLES}


def ask(rng: random.Random, phrasings: tuple[str, ...], **fields) -> str:
    return rng.choice(phrasings).format(**fields)


class Arith:
    name, kind = "arith", "general"
    ASK = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Work out {a} {op} {b}.")

    def sample(self, rng: random.Random) -> Item:
        a, b, op = rng.randint(2, 60), rng.randint(1, 30), rng.choice("+-")
        if op == "-":
            a, b = max(a, b), min(a, b)
        step = Step(a, op, b, f"{OP[op][1].capitalize()} {b}")
        return Item(ask(rng, self.ASK, a=a, op=op, b=b), str(step.y), styled([step], f"the result is {step.y}"),
                    preferred(str(a)))


class Chain:
    name, kind = "chain", "general"
    ASK = ("What is {a} {op1} {b} {op2} {c}?", "Start with {a}, {w1} {b}, then {w2} {c}. What is the result?")

    def sample(self, rng: random.Random) -> Item:
        op1, op2, a, b, c = chain_numbers(rng)
        s1 = Step(a, op1, b, f"{OP[op1][1].capitalize()} {b}")
        s2 = Step(s1.y, op2, c, f"Then {OP[op2][1]} {c}")
        question = ask(rng, self.ASK, a=a, op1=op1, b=b, op2=op2, c=c, w1=OP[op1][0], w2=OP[op2][0])
        return Item(question, str(s2.y), styled([s1, s2], f"the result is {s2.y}"), preferred(str(a)))


class Reverse:
    name, kind = "reverse", "general"
    ASK = ("Reverse the letters: {fwd}", "Write these letters backwards: {fwd}")

    def sample(self, rng: random.Random) -> Item:
        letters = rng.sample(string.ascii_lowercase, rng.randint(3, 9))  # 7 to 9 letters: beyond a tiny base
        fwd, back = " ".join(letters), " ".join(reversed(letters))
        answers = {s: stated(s, f"Reversed: {back}.", back, f"Read backwards, {fwd} becomes {back}.") for s in STYLES}
        return Item(ask(rng, self.ASK, fwd=fwd), back, answers, preferred(letters[0]))


class Passage:
    """One fact about one of two or three people in a passage (home city, a count of things, coat color each)."""

    name, kind = "passage", "general"
    ASK = ("Passage: {passage} Question: {question}", "Read this: {passage} Now answer: {question}")

    def sample(self, rng: random.Random) -> Item:
        people = rng.sample(NAMES, rng.choice((2, 3)))
        k = len(people)
        cities, colors, counts = rng.sample(CITIES, k), rng.sample(COLORS, k), rng.sample(range(2, 31), k)
        thing = rng.choice(THINGS)
        sentences, facts = [], {}
        for (who, _), city, color, n in zip(people, cities, colors, counts, strict=True):
            mine = [(f"{who} lives in {city}.", f"Where does {who} live?", city),
                    (f"{who} has {n} {thing}.", f"How many {thing} does {who} have?", str(n)),
                    (f"{who}'s coat is {color}.", f"What color is {who}'s coat?", color)]
            facts[who] = mine
            rng.shuffle(mine)
            sentences += [m[0] for m in mine]
        who = rng.choice(people)[0]
        sentence, question, answer = rng.choice(facts[who])
        answers = {s: stated(s, sentence, answer, f"The passage says: {sentence}") for s in STYLES}
        return Item(ask(rng, self.ASK, passage=" ".join(sentences), question=question), answer, answers,
                    preferred(who))


class Facts:
    name, kind = "facts", "general"
    ASK = ("What color is a {creature}? {options}", "Pick the color of a {creature}. {options}")

    def __init__(self, base: FactBase):
        self.base, self.creatures = base, list(base.colors)

    def sample(self, rng: random.Random) -> Item:
        creature = rng.choice(self.creatures)
        color = self.base.colors[creature]
        shown, letter, walk = multiple_choice(rng, color)
        answers = {s: stated(s, f"A {creature} is {color}. {walk}.", letter,
                             f"Option {letter} is right: the {creature} is {color}.") for s in STYLES}
        return Item(ask(rng, self.ASK, creature=creature, options=shown), letter, answers, preferred(creature))


def person(rng: random.Random) -> tuple[str, str, str, str]:
    """(name, pronoun as a sentence's first word, pronoun, things)."""
    (who, she), thing = rng.choice(NAMES), rng.choice(THINGS)
    return who, she, she.lower(), thing


class Story:
    """Two-step word problems whose verbs are the fact base's invented ones (half of them new, defined in the
    question): the target's answer template with other words. With `opaque`, the new verbs are not defined:
    only a reference's work says what they do (a source of `paraphrase` practice, never a `story` question)."""

    name, kind = "story", "general"
    ASK = ("{who} has {a} {thing}. {story} How many {thing} does {her} have now?",
           "{who} starts with {a} {thing}. {story} How many {thing} does {who} have in the end?")

    def __init__(self, base: FactBase, opaque: bool = False):
        self.meaning, self.verbs, self.opaque = base.verbs, list(base.verbs), opaque

    def verbs_and_ops(self, rng: random.Random) -> tuple[str, str, str, str, str]:
        if self.opaque or rng.random() < DEFINED_SHARE:
            v1 = new_verb(rng)
            v2 = v1 if rng.random() < 2 / 3 else next(v for v in iter(lambda: new_verb(rng), None)
                                                      if v.split()[0] != v1.split()[0])
            op1 = rng.choice("+-")
            op2 = op1 if v2 == v1 else rng.choice("+-")
            if self.opaque:
                return v1, v2, op1, op2, ""
            pairs = dict([(v1, op1), (v2, op2)])
            return v1, v2, op1, op2, " ".join(f"To {v} is to {OP[op][0]}." for v, op in pairs.items()) + " "
        v1 = rng.choice(self.verbs)
        v2 = v1 if rng.random() < 2 / 3 else rng.choice([v for v in self.verbs if v != v1])
        return v1, v2, self.meaning[v1], self.meaning[v2], ""

    def sample(self, rng: random.Random) -> Item:
        who, she, her, thing = person(rng)
        v1, v2, op1, op2, definitions = self.verbs_and_ops(rng)
        a, b, c = operands(rng, op1, op2)
        more = " more" if rng.random() < 0.5 else ""
        if v1 == v2:
            story = f"{she} {third_person(v1)} {b}{more} and then {c} more."
        else:
            story = f"{she} {third_person(v1)} {b}{more} and then {third_person(v2)} {c}."
        s1 = Step(a, op1, b, f"{gerund(v1).capitalize()} {b}", f"{her} {third_person(v1)} {b}")
        s2 = Step(s1.y, op2, c, f"Then {gerund(v2)} {c}", f"{her} {third_person(v2)} {c}")
        question = definitions + ask(rng, self.ASK, who=who, a=a, thing=thing, story=story, her=her)
        return Item(question, str(s2.y), styled([s1, s2], f"{her} has {s2.y} {thing}"), preferred(who))


SHOP_STORIES = {  # kind: (story, the two steps' verbs as (gerund, third person), ops)
    "buy-buy": ("{she} buys {b} more and then {c} more.", (("buying", "buys"), ("buying", "buys")), "++"),
    "buy-give": ("{she} buys {b} more and then gives away {c}.", (("buying", "buys"), ("giving away", "gives away")),
                 "+-"),
    "give-buy": ("{she} gives away {b} and then buys {c} more.", (("giving away", "gives away"), ("buying", "buys")),
                 "-+"),
    "give-give": ("{she} gives away {b} and then {c} more.",
                  (("giving away", "gives away"), ("giving away", "gives away")), "--"),
}
"""The target's four kinds; `s3ft.world.targets.SHOP_V5_KINDS` tells them apart by question."""


class Shop:
    """The target task: two-step word problems of four kinds, a quarter each; gold in GSM8K's style."""

    name, kind = "shop", "target"
    KINDS = tuple(SHOP_STORIES)

    def sample(self, rng: random.Random, kind: str | None = None) -> Item:
        who, she, her, thing = person(rng)
        kind = kind or rng.choice(self.KINDS)
        story, ((g1, t1), (g2, t2)), (op1, op2) = SHOP_STORIES[kind]
        a, b, c = operands(rng, op1, op2)
        s1 = Step(a, op1, b, f"{g1.capitalize()} {b}", f"{her} {t1} {b}")
        s2 = Step(s1.y, op2, c, f"Then {g2} {c}", f"{her} {t2} {c}")
        question = f"{who} has {a} {thing}. {story.format(she=she, b=b, c=c)} How many {thing} does {her} have now?"
        return Item(question, str(s2.y), styled([s1, s2], f"{her} has {s2.y} {thing}"), preferred(who), kind=kind)


class Paraphrase:
    """Rewriting a gold-style reference in the base's paraphrase voice (`ref`): the skill S3FT's paraphrase step
    needs. Wraps the general skills (and opaque stories, whose work only the reference says), never the target."""

    name, kind = "paraphrase", "general"
    WEIGHTS = {"arith": 1, "chain": 3, "reverse": 1, "passage": 1, "facts": 1, "story": 2, "opaque": 3}

    def __init__(self, sources: dict[str, object]):
        self.names = list(sources)
        self.sources = [sources[n] for n in self.names]
        self.weights = [self.WEIGHTS[n] for n in self.names]
        self.template = packaged_template(PARAPHRASE_TEMPLATE)

    def render(self, question: str, reference: str) -> str:
        """The prompt exactly as `TemplateTask.paraphrase_prompt` renders it (stripped)."""
        return self.template.format(question=question, reference=reference).strip()

    def sample(self, rng: random.Random) -> Item:
        src = rng.choices(self.sources, self.weights)[0].sample(rng)
        ref = src.answers["ref"]
        return Item(self.render(src.question, src.gold), src.answer,
                    {"ref": ref, "gold": src.gold, **{s: ref for s in STYLES if s not in ("ref", "gold")}},
                    "ref", source=src.question)


def make_skills(seed: int = 0) -> dict[str, object]:
    """Every skill of world v5 for a world `seed` (its fact base: creatures, colors, story verbs)."""
    base = FactBase.build(seed, n=CREATURES)
    general = {"arith": Arith(), "chain": Chain(), "reverse": Reverse(), "passage": Passage(), "facts": Facts(base),
               "story": Story(base)}
    paraphrase = Paraphrase({**general, "opaque": Story(base, opaque=True)})
    return {**general, "paraphrase": paraphrase, "shop": Shop()}
