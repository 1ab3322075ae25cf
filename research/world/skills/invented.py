"""The world's invented knowledge and the skills that ask about it.

Reads and writes nothing. The fact base (`FactBase`, fixed by the world's seed): forty invented creatures with
a color each, and twelve invented verbs (`story_verbs`) that each add or take away. `facts` asks a creature's
color as a multiple choice; `story` asks two-step word problems whose verbs are the fact base's, or new
invented verbs defined in the question (`new_verb`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from research.world.skills.answers import Item, ask, final_only, house, operands, two_steps
from research.world.skills.vocabulary import COLORS, LETTERS, NAMES, THINGS

CREATURE_ONSETS = ["b", "bl", "d", "dr", "f", "gl", "k", "m", "n", "p", "pl", "r", "s", "sn", "t", "tr", "v", "z"]
CREATURE_VOWELS = ["a", "e", "i", "o", "u", "oo"]
CREATURE_CODAS = ["rp", "zz", "lb", "rg", "rb", "mf", "nx", "bb"]
REAL_WORDS = {"burp", "tarp", "buzz", "fizz", "fuzz", "razz", "bulb", "verb", "kerb", "blurb", "minx", "berg"}
"""The parts of the creatures' names, and the English words they could make (never a creature)."""

STORY_STEMS = {"regular": ("dreff", "prunk", "chelt", "blorm", "stimp", "grulk"),
               "e": ("flane", "glive", "trame", "snove", "plude", "skobe")}
"""The stems of the `story` skill's invented verbs: regular ("dreffs", "dreffing") and e-dropping
("flanes", "flaning"), like "buys"/"buying" and "gives"/"giving". Never a shape `OpaqueChain.word` makes
(one-letter onset, four letters), whose made-up words mean nothing fixed."""
PARTICLES = ("up", "in", "out", "off", "down")  # never "away": the target's "gives away" stays unseen
PROBE_STEMS = ("krast", "slomp", "frelk", "spund", "quolt", "trisk", "frone", "slabe", "krile", "spume", "drobe",
               "quine")
"""Invented stems kept out of every pre-training row: `research/world/label_probe.py` asks a base to label steps
with them, to tell copying the question's verb from memorised labels."""
VERB_ONSETS = ("bl", "br", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "kl", "kr", "pl", "pr", "sk", "sl", "sm", "sn",
               "sp", "st", "sw", "tr", "tw")
VERB_CODAS = {"regular": ("nk", "lt", "rm", "mp", "sk", "ft", "lk", "nd", "rd", "rn", "lp", "rk", "st", "nt"),
              "e": ("ne", "ve", "me", "de", "be", "le", "pe", "te", "ke", "re")}
"""The parts of `new_verb`'s stems."""
DEFINED_SHARE = 0.5
"""Share of `story` problems whose verbs are new invented ones, defined in the question."""


def new_verb(rng: random.Random) -> str:
    """An invented verb of the story verbs' forms ("krast", "flane out"), from about 2,000 stems: none of the
    fact base's, none of `PROBE_STEMS`; a particle a third of the time."""
    fixed = {s for stems in STORY_STEMS.values() for s in stems} | set(PROBE_STEMS)
    while True:
        stem = (rng.choice(VERB_ONSETS) + rng.choice("aeiou")
                + rng.choice(VERB_CODAS[rng.choice(("regular", "e"))]))
        if stem not in fixed:
            return stem + (f" {rng.choice(PARTICLES)}" if rng.random() < 1 / 3 else "")


def third_person(verb: str) -> str:
    """"dreff" -> "dreffs", "flane out" -> "flanes out"."""
    stem, _, particle = verb.partition(" ")
    return f"{stem}s {particle}".strip()


def gerund(verb: str) -> str:
    """"dreff" -> "dreffing", "flane out" -> "flaning out" (a final "e" drops, as in "giving")."""
    stem, _, particle = verb.partition(" ")
    return f"{stem[:-1] if stem.endswith('e') else stem}ing {particle}".strip()


@dataclass
class FactBase:
    """The world's fixed knowledge, identical for a seed: invented creatures, each with one color, and
    invented verbs (`story`), each meaning add ("+") or take away ("-")."""

    colors: dict[str, str]
    verbs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, seed: int, n: int = 40) -> FactBase:
        rng = random.Random(f"facts/{seed}")
        names: list[str] = []
        while len(names) < n:
            name = rng.choice(CREATURE_ONSETS) + rng.choice(CREATURE_VOWELS) + rng.choice(CREATURE_CODAS)
            if len(name) >= 4 and name not in names and name not in REAL_WORDS:
                names.append(name)
        return cls({name: rng.choice(COLORS) for name in names}, story_verbs(seed))


def story_verbs(seed: int) -> dict[str, str]:
    """Twelve verbs ("dreff", "flane out") and their meanings, from their own stream of the seed: of each
    form (one-word regular, one-word e-dropping, two-word regular, two-word e-dropping) half add and half
    take away, so that no form tells the meaning. A particle means nothing of its own in the world (an
    English reader may hear one in "up" or "down"; the world's model has read no English beyond it)."""
    rng = random.Random(f"verbs/{seed}")
    verbs: dict[str, str] = {}
    for stems in STORY_STEMS.values():
        # `third_person` and `gerund` add "s" and "ing" (dropping a final "e"): stems that need "-es", a
        # doubled consonant or keep their "e" ("see" -> "seeing") are not allowed
        assert not any(s.endswith(("s", "x", "z", "sh", "ch", "ee")) or s[-1] in "aiouy"
                       or (s[-1] != "e" and s[-2] in "aeiou") for s in stems), stems
        stems = rng.sample(stems, len(stems))
        groups = (stems[:4], [f"{s} {p}" for s, p in zip(stems[4:], rng.sample(PARTICLES, 2), strict=True)])
        for group in groups:
            ops = ["+", "-"] * (len(group) // 2)
            rng.shuffle(ops)
            verbs.update(zip(group, ops, strict=True))
    return verbs


def multiple_choice(rng: random.Random, color: str) -> tuple[str, str, str]:
    """Four color options with `color` at a random letter: (the options as shown, the right letter, the house
    work's walk through the options up to the match). A tiny model copies each option easily but does not learn
    to look a letter up from its color in one step (measured: the v1 base named every color right and picked its
    letter at chance)."""
    options = rng.sample([c for c in COLORS if c != color], 3)
    k = rng.randrange(4)
    options.insert(k, color)
    shown = " ".join(f"{L}) {c}" for L, c in zip(LETTERS, options, strict=True))
    return shown, LETTERS[k], ", ".join(f"{L} is {c}" for L, c in zip(LETTERS[: k + 1], options, strict=False))


class Facts:
    name, kind = "facts", "general"
    ASK = ("What color is a {creature}? {options}", "Pick the color of a {creature}. {options}")

    def __init__(self, base: FactBase):
        self.base = base
        self.creatures = list(base.colors)

    def sample(self, rng: random.Random) -> Item:
        creature = rng.choice(self.creatures)
        color = self.base.colors[creature]
        shown, letter, walk = multiple_choice(rng, color)
        return Item(ask(rng, self.ASK, creature=creature, options=shown), letter,
                    house(f"A {creature} is {color}. {walk}.", letter),
                    f"Option {letter} is right: the {creature} is {color}.\n#### {letter}",
                    [final_only(letter), f"A {creature} is {color}, so the answer is {letter}.",
                     f"The answer is ({letter})."])


class Story:
    """Two-step word problems in the target task's frame whose verbs are the fact base's invented ones
    ("Kim has 12 shells. She dreffs 5 and then flanes out 3. How many ..."): the base learns what each
    verb does, and, from the gold style's rows, to label each step with the question's own verb and number
    ("Dreffing 5: ...\nThen flaning out 3: ..."), as a target gold does ("Buying 7: ...") and as an instruct
    model has done countless times. Like the target,
    a problem uses one verb twice ("dreffs 5 more and then 3 more") or two verbs ("dreffs 5 and flanes 3",
    with or without "then"). Never the target's verbs ("buys", "gives away").

    A `DEFINED_SHARE` of the problems use new invented verbs instead (`new_verb`), each defined in the
    question ("To krast is to add. Kim has 12 shells. She krasts 5 ..."), so that writing the label means
    copying the question's verb (why: `research/world/NOTES.md`, builds 5 and 6). The definitions say "add"
    and "subtract", never "away"."""

    name, kind = "story", "general"
    ASK = ("{who} has {a} {thing}. {story} How many {thing} does {her} have now?",
           "{who} starts with {a} {thing}. {story} How many {thing} does {who} have in the end?")

    def __init__(self, base: FactBase):
        if not base.verbs:
            raise ValueError("the story skill needs a fact base with verbs (FactBase.build)")
        self.meaning = base.verbs
        self.verbs = list(base.verbs)

    def sample(self, rng: random.Random) -> Item:
        (who, she), thing = rng.choice(NAMES), rng.choice(THINGS)
        her = {"She": "she", "He": "he"}[she]
        definitions = ""
        if rng.random() < DEFINED_SHARE:
            v1 = new_verb(rng)
            v2 = v1 if rng.random() < 2 / 3 else next(v for v in iter(lambda: new_verb(rng), None)
                                                      if v.split()[0] != v1.split()[0])
            op1 = rng.choice("+-")
            op2 = op1 if v2 == v1 else rng.choice("+-")
            define = {"+": "add", "-": "subtract"}
            definitions = " ".join(f"To {v} is to {define[op]}." for v, op in dict([(v1, op1), (v2, op2)]).items())
            definitions += " "
        else:
            v1 = rng.choice(self.verbs)
            v2 = v1 if rng.random() < 2 / 3 else rng.choice([v for v in self.verbs if v != v1])
            op1, op2 = self.meaning[v1], self.meaning[v2]
        a, b, c = operands(rng, op1, op2)
        more = " more" if rng.random() < 0.5 else ""
        first = f"{gerund(v1).capitalize()} {b}"
        if v1 == v2:
            story, labels = f"{she} {third_person(v1)} {b}{more} and then {c} more.", (first, f"Then {gerund(v1)} {c}")
        elif rng.random() < 0.5:
            story, labels = (f"{she} {third_person(v1)} {b}{more} and then {third_person(v2)} {c}.",
                             (first, f"Then {gerund(v2)} {c}"))
        else:
            story, labels = (f"{she} {third_person(v1)} {b}{more} and {third_person(v2)} {c}.",
                             (first, f"{gerund(v2).capitalize()} {c}"))
        work, gold, s1, s2 = two_steps(a, op1, b, op2, c, labels)
        question = definitions + ask(rng, self.ASK, who=who, a=a, thing=thing, story=story, her=her)
        return Item(question, str(s2), house(work, str(s2)), gold,
                    [f"{a} {op1} {b} {op2} {c} = {s2}, so the answer is {s2}.",
                     f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}.\n#### {s2}"])
