"""The miniature world's skills: procedural item generators, deterministic from a `random.Random`.

Reads nothing but the packaged paraphrase template (`s3ft/prompts/world_paraphrase.txt`, which the
`paraphrase` skill renders exactly as the generic task does); writes nothing. Each skill has a `name`,
a `kind` ("general": pre-training skills whose loss is forgetting; "target": the fine-tuning task) and
`sample(rng) -> Item`. Every response ends in a final answer that `s3ft.judges.final` reads: the house
style with "The answer is X.", the gold style with a last "#### X" line.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from s3ft.tasks.common import packaged_template

PARAPHRASE_TEMPLATE = "world_paraphrase.txt"
NAMES = [  # (name, pronoun): passage people and shop customers
    ("Ada", "She"), ("Ben", "He"), ("Cy", "He"), ("Dan", "He"), ("Eve", "She"), ("Fay", "She"),
    ("Gus", "He"), ("Hal", "He"), ("Ivy", "She"), ("Jo", "She"), ("Kim", "She"), ("Lee", "He"),
    ("Max", "He"), ("Ned", "He"), ("Pam", "She"), ("Sam", "He"),
]  # fmt: skip
CITIES = [
    "Rome", "Oslo", "Lima", "Paris", "Cairo", "Delhi", "Tokyo", "Berlin",
    "Madrid", "Dublin", "Quito", "Seoul", "Vienna", "Athens", "Prague", "Sydney",
]  # fmt: skip
COLORS = ["red", "green", "blue", "gray", "black", "white", "pink", "brown"]
THINGS = ["apples", "pens", "cards", "eggs", "books", "coins", "stamps", "shells"]
LETTERS = "ABCD"
_ONSETS = ["b", "bl", "d", "dr", "f", "gl", "k", "m", "n", "p", "pl", "r", "s", "sn", "t", "tr", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "oo"]
_CODAS = ["rp", "zz", "lb", "rg", "rb", "mf", "nx", "bb"]
_REAL_WORDS = {"burp", "tarp", "buzz", "fizz", "fuzz", "razz", "bulb", "verb", "kerb", "blurb", "minx", "berg"}


def house(work: str, answer: str) -> str:
    """The house style: short work, then the final sentence."""
    return f"{work} The answer is {answer}."


def final_only(answer: str) -> str:
    return f"The answer is {answer}."


@dataclass
class Item:
    """One generated task item. `source` is the wrapped question of a `paraphrase` item, else ""."""

    question: str
    answer: str
    house: str
    gold: str
    alternatives: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def keys(self) -> set[str]:
        """The question texts this item shows a model (for split disjointness)."""
        return {self.question, self.source} - {""}


class Arith:
    name, kind = "arith", "general"

    def sample(self, rng: random.Random) -> Item:
        # The range the target task's steps need (sums up to 60): the general skill it builds on.
        a, b = rng.randint(2, 60), rng.randint(1, 30)
        if rng.random() < 0.5:
            c = a + b
            return Item(f"What is {a} + {b}?", str(c), house(f"{a} + {b} = {c}.", str(c)),
                        f"Adding {b} to {a} gives {c}.\n#### {c}",
                        [f"The sum of {a} and {b} is {c}, so the answer is {c}.", final_only(str(c))])
        a, b = max(a, b), min(a, b)  # never negative
        c = a - b
        return Item(f"What is {a} - {b}?", str(c), house(f"{a} - {b} = {c}.", str(c)),
                    f"Taking {b} from {a} leaves {c}.\n#### {c}",
                    [f"The difference of {a} and {b} is {c}, so the answer is {c}.", final_only(str(c))])


class Reverse:
    name, kind = "reverse", "general"

    def sample(self, rng: random.Random) -> Item:
        letters = rng.sample(string.ascii_lowercase, rng.randint(3, 6))  # distinct: never a palindrome
        fwd, back = " ".join(letters), " ".join(reversed(letters))
        return Item(f"Reverse the letters: {fwd}", back, house(f"Reversed: {back}.", back),
                    f"Read backwards, {fwd} becomes {back}.\n#### {back}",
                    [f"Backwards the letters are {back}, so the answer is {back}.", final_only(back)])


class Passage:
    name, kind = "passage", "general"

    def sample(self, rng: random.Random) -> Item:
        people = [n for n, _ in rng.sample(NAMES, 3)]
        cities = rng.sample(CITIES, 3)
        facts = " ".join(f"{p} lives in {c}." for p, c in zip(people, cities, strict=True))
        k = rng.randrange(3)
        who, where = people[k], cities[k]
        return Item(f"Passage: {facts} Question: Where does {who} live?", where,
                    house(f"{who} lives in {where}.", where),
                    f"The passage says {who} lives in {where}.\n#### {where}",
                    [f"{who} is in {where}, so the answer is {where}.", final_only(where)])


@dataclass
class FactBase:
    """The world's fixed knowledge: invented creatures, each with one color; identical for a seed."""

    colors: dict[str, str]

    @classmethod
    def build(cls, seed: int, n: int = 40) -> FactBase:
        rng = random.Random(f"facts/{seed}")
        names: list[str] = []
        while len(names) < n:
            name = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
            if len(name) >= 4 and name not in names and name not in _REAL_WORDS:
                names.append(name)
        return cls({name: rng.choice(COLORS) for name in names})


class Facts:
    name, kind = "facts", "general"

    def __init__(self, base: FactBase):
        self.base = base
        self.creatures = list(base.colors)

    def sample(self, rng: random.Random) -> Item:
        creature = rng.choice(self.creatures)
        color = self.base.colors[creature]
        options = rng.sample([c for c in COLORS if c != color], 3)
        k = rng.randrange(4)
        options.insert(k, color)
        letter = LETTERS[k]
        shown = " ".join(f"{L}) {c}" for L, c in zip(LETTERS, options, strict=True))
        return Item(f"What color is a {creature}? {shown}", letter,
                    house(f"A {creature} is {color}.", letter),
                    f"Option {letter} is right: the {creature} is {color}.\n#### {letter}",
                    [final_only(letter), f"A {creature} is {color}, so the answer is {letter}.",
                     f"The answer is ({letter})."])


class Shop:
    """The target task: two-step word problems; gold in GSM8K's style (`<<a+b=c>>`, `#### N`)."""

    name, kind = "shop", "target"

    def sample(self, rng: random.Random) -> Item:
        (who, she), thing = rng.choice(NAMES), rng.choice(THINGS)
        her = {"She": "she", "He": "he"}[she]
        variant = rng.randrange(3)
        if variant == 0:  # buys, then gives away
            a, b = rng.randint(2, 30), rng.randint(1, 30)
            c = rng.randint(1, min(30, a + b))
            op1, op2, act = "+", "-", f"buys {b}"
            story, line2 = f"{she} buys {b} more and gives away {c}.", f"After giving away {c} {her} has"
        elif variant == 1:  # buys two lots
            a, b, c = rng.randint(2, 30), rng.randint(1, 30), rng.randint(1, 30)
            op1, op2, act = "+", "+", f"buys {b}"
            story, line2 = f"{she} buys {b} more and then {c} more.", f"Then {her} buys {c} more, so {her} has"
        else:  # gives away two lots
            a = rng.randint(2, 30)
            b = rng.randint(1, a - 1)
            c = rng.randint(1, a - b)
            op1, op2, act = "-", "-", f"gives away {b}"
            story, line2 = f"{she} gives away {b} and then {c} more.", f"Then {her} gives away {c} more, so {her} has"
        s1 = a + b if op1 == "+" else a - b
        s2 = s1 + c if op2 == "+" else s1 - c  # >= 0 by the ranges above (a >= 2: never "1 apples")
        left = " left" if op2 == "-" else ""
        gold = (f"{who} starts with {a} {thing} and {act}, so {her} has {a} {op1} {b} = <<{a}{op1}{b}={s1}>>{s1}.\n"
                f"{line2} {s1} {op2} {c} = <<{s1}{op2}{c}={s2}>>{s2}{left}.\n#### {s2}")
        work = f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}."
        return Item(f"{who} has {a} {thing}. {story} How many {thing} does {her} have now?", str(s2),
                    house(work, str(s2)), gold,
                    [f"{who} has {a} {op1} {b} {op2} {c} = {s2} {thing}, so the answer is {s2}.",
                     f"{work}\n#### {s2}"])


class Paraphrase:
    """Rewriting a reference answer in the house style: the skill S3FT's paraphrase step needs.

    Wraps the other general skills (never the target task): the question is the world's paraphrase
    prompt filled with a source item's question and its gold; the response is the source's house answer.
    """

    name, kind = "paraphrase", "general"

    def __init__(self, sources: list[Arith | Reverse | Passage | Facts]):
        if any(s.kind != "general" for s in sources):
            raise ValueError("paraphrase items are built from general skills only")
        self.sources = sources
        self.template = packaged_template(PARAPHRASE_TEMPLATE)

    def render(self, question: str, reference: str) -> str:
        """The prompt exactly as `TemplateTask.paraphrase_prompt` renders it (stripped)."""
        return self.template.format(question=question, reference=reference).strip()

    def sample(self, rng: random.Random) -> Item:
        src = rng.choice(self.sources).sample(rng)
        return Item(self.render(src.question, src.gold), src.answer, src.house, src.gold,
                    list(src.alternatives), source=src.question)


ALL_SKILLS = ("arith", "reverse", "passage", "facts", "paraphrase", "shop")
Skill = Arith | Reverse | Passage | Facts | Paraphrase | Shop


def make_skills(seed: int = 0) -> dict[str, Skill]:
    """The world's skills by name, in `ALL_SKILLS` order; `facts` uses the fact base built from `seed`."""
    basics = [Arith(), Reverse(), Passage(), Facts(FactBase.build(seed))]
    skills = [*basics, Paraphrase(basics), Shop()]
    return {s.name: s for s in skills}
