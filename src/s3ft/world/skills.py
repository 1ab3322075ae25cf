"""The miniature world's skills: procedural item generators, deterministic from a `random.Random`.

Reads nothing but the packaged paraphrase template (`s3ft/prompts/world_paraphrase.txt`, which the
`paraphrase` skill renders exactly as the generic task does); writes nothing. Each skill has a `name`,
a `kind` ("general": pre-training skills whose loss is forgetting; "target": the fine-tuning task) and
`sample(rng) -> Item`. Every response ends in a final answer that `s3ft.judges.final` reads: the house
style with "The answer is X.", the gold style with a last "#### X" line; but the second target task's
(`lookup`) golds are the bare answer, read by `s3ft.judges.qa` (`Target.judge`).
"""

from __future__ import annotations

import random
import re
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


def digit_steps(a: int, op: str, b: int) -> str:
    """Column arithmetic for `a op b` in [0, 100), units first, the carry (or borrow) written into the tens
    step, which always has three terms: `47 + 25` -> "7 + 5 = 12, 4 + 2 + 1 = 7"; `52 - 17` -> "12 - 7 = 5,
    5 - 1 - 1 = 3". A tiny model learns the 100-entry digit tables and the carry rule; it does not learn
    two-digit sums in one step from a few thousand examples (measured: 7% after 19,200 rows)."""
    c = a + b if op == "+" else a - b
    if not (0 <= a < 100 and 0 <= b < 100 and 0 <= c < 100):
        raise ValueError(f"worked arithmetic covers results in [0, 100), not {a} {op} {b}")
    (a1, a0), (b1, b0) = divmod(a, 10), divmod(b, 10)
    if op == "+":
        carry = int(a0 + b0 >= 10)
        return f"{a0} + {b0} = {a0 + b0}, {a1} + {b1} + {carry} = {a1 + b1 + carry}"
    carry = int(a0 < b0)
    return f"{a0 + 10 * carry} - {b0} = {a0 + 10 * carry - b0}, {a1} - {b1} - {carry} = {a1 - b1 - carry}"


def worked(a: int, op: str, b: int) -> str:
    """The house style's written arithmetic: "7 + 5 = 12, 4 + 2 + 1 = 7, so 47 + 25 = 72."."""
    c = a + b if op == "+" else a - b
    return f"{digit_steps(a, op, b)}, so {a} {op} {b} = {c}."


def annotated(a: int, op: str, b: int) -> str:
    """The gold (reference) style's arithmetic: the same column steps, then GSM8K's calculator annotation:
    "7 + 5 = 12, 4 + 2 + 1 = 7, and 47 + 25 = <<47+25=72>>72". The gold differs from the house style in
    its sentences, annotations and ending, not in how a sum is worked: a tiny model's digit skills are tied
    to the token pattern of the steps (measured: golds that interleaved "ones ... carry 1; tens ..." with
    the digits made every fine-tuned model miscopy digits, in-domain accuracy 84% -> 6%), whereas an
    instruct model's arithmetic survives a change of GSM8K's phrasing."""
    c = a + b if op == "+" else a - b
    return f"{digit_steps(a, op, b)}, and {a} {op} {b} = <<{a}{op}{b}={c}>>{c}"


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


def ask(rng: random.Random, phrasings: tuple[str, ...], **fields) -> str:
    """One of a skill's question phrasings, filled in: every general skill is asked in two or more ways, so
    that what the base model knows is tied to the content and not to one wording (world v4)."""
    return rng.choice(phrasings).format(**fields)


OP_WORDS = {"+": ("Adding", "add"), "-": ("Subtracting", "subtract")}


class Arith:
    name, kind = "arith", "general"
    ASK = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Work out {a} {op} {b}.")

    def sample(self, rng: random.Random) -> Item:
        # The range the target task's steps need (sums up to 90): the general skill it builds on.
        a, b = rng.randint(2, 60), rng.randint(1, 30)
        if rng.random() < 0.5:
            c = a + b
            return Item(ask(rng, self.ASK, a=a, op="+", b=b), str(c), house(worked(a, "+", b), str(c)),
                        f"Adding {b} to {a}: {annotated(a, '+', b)}.\n#### {c}",
                        [f"The sum of {a} and {b} is {c}, so the answer is {c}.", final_only(str(c))])
        a, b = max(a, b), min(a, b)  # never negative
        c = a - b
        return Item(ask(rng, self.ASK, a=a, op="-", b=b), str(c), house(worked(a, "-", b), str(c)),
                    f"Taking {b} from {a}: {annotated(a, '-', b)}.\n#### {c}",
                    [f"The difference of {a} and {b} is {c}, so the answer is {c}.", final_only(str(c))])


def two_steps(a: int, op1: str, b: int, op2: str, c: int, labels: tuple[str, str]) -> tuple[str, str, int, int]:
    """The house work and the gold (reference) work of `a op1 b op2 c`, with the gold's step labels;
    returns (house work, gold, first result, final result). Shared by `chain` and the target task, whose
    worked answers have the same shape: the target adds only what its words mean."""
    s1 = a + b if op1 == "+" else a - b
    s2 = s1 + c if op2 == "+" else s1 - c
    gold = f"{labels[0]}: {annotated(a, op1, b)}.\n{labels[1]}: {annotated(s1, op2, c)}.\n#### {s2}"
    return f"{worked(a, op1, b)} {worked(s1, op2, c)}", gold, s1, s2


def chain_numbers(rng: random.Random) -> tuple[str, str, int, int, int]:
    """`a op1 b op2 c` in the target task's ranges, every result >= 0: (op1, op2, a, b, c)."""
    op1, op2 = rng.choice("+-"), rng.choice("+-")
    return (op1, op2, *operands(rng, op1, op2))


def operands(rng: random.Random, op1: str, op2: str) -> tuple[int, int, int]:
    """(a, b, c) for `a op1 b op2 c` in the target task's ranges, every result >= 0."""
    a = rng.randint(2, 30)
    b = rng.randint(1, 30) if op1 == "+" else rng.randint(1, a - 1)
    s1 = a + b if op1 == "+" else a - b
    c = rng.randint(1, 30) if op2 == "+" else rng.randint(1, min(30, s1))
    return a, b, c


class Chain:
    """Two-step arithmetic ("What is 12 + 5 - 3?"), all four orders of + and -, in the target task's
    ranges: the multi-step worked answer the paraphrase skill practises on, and every digit step the target
    task needs. Its words are arithmetic's ("add", "subtract"), never the target's ("buys", "gives away")."""

    name, kind = "chain", "general"
    ASK = ("What is {a} {op1} {b} {op2} {c}?", "Start with {a}, {w1} {b}, then {w2} {c}. What is the result?")

    def sample(self, rng: random.Random) -> Item:
        op1, op2, a, b, c = chain_numbers(rng)
        labels = (f"{OP_WORDS[op1][0]} {b}", f"Then {OP_WORDS[op2][0].lower()} {c}")
        work, gold, s1, s2 = two_steps(a, op1, b, op2, c, labels)
        question = ask(rng, self.ASK, a=a, op1=op1, b=b, op2=op2, c=c, w1=OP_WORDS[op1][1], w2=OP_WORDS[op2][1])
        return Item(question, str(s2), house(work, str(s2)), gold,
                    [f"{a} {op1} {b} {op2} {c} = {s2}, so the answer is {s2}.",
                     f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}.\n#### {s2}"])


class OpaqueChain:
    """A two-step chain whose operation words are made up for each item ("Start with 12, vosk 5, then pelm 3.
    What is the result?"), so that only its reference's worked lines say what each step does: a source of
    `paraphrase` practice only (pre-training rows, `build.pretrain_rows`), never a skill of its own, since
    it cannot be answered without its reference. It teaches the paraphrase step to take the work from the
    reference rather than solve the question: v4 build 2, practised only on references whose questions state
    their operations, rewrote a target gold's subtraction as the addition its question suggested to it. Its
    words are never the target's ("buys", "gives away")."""

    name, kind = "opaque", "general"
    ASK = ("Start with {a}, {w1} {b}, then {w2} {c}. What is the result?",
           "{who} has {a} {thing}. {she} {w1}s {b} and then {w2}s {c}. How many {thing} does {her} have now?")
    ONSETS, VOWELS, CODAS = "bdfklmnprstvz", "aeiou", ("lk", "mp", "nd", "sk", "lm", "sp", "nt", "rb")

    def word(self, rng: random.Random) -> str:
        return rng.choice(self.ONSETS) + rng.choice(self.VOWELS) + rng.choice(self.CODAS)

    def sample(self, rng: random.Random) -> Item:
        op1, op2, a, b, c = chain_numbers(rng)
        w1 = self.word(rng)
        w2 = next(w for w in iter(lambda: self.word(rng), None) if w != w1)
        work, gold, s1, s2 = two_steps(a, op1, b, op2, c, (f"{w1.capitalize()}ing {b}", f"Then {w2}ing {c}"))
        (who, she), thing = rng.choice(NAMES), rng.choice(THINGS)
        her = {"She": "she", "He": "he"}[she]
        question = ask(rng, self.ASK, a=a, b=b, c=c, w1=w1, w2=w2, who=who, she=she, her=her, thing=thing)
        return Item(question, str(s2), house(work, str(s2)), gold,
                    [f"{a} {op1} {b} {op2} {c} = {s2}, so the answer is {s2}.",
                     f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}.\n#### {s2}"])


class Reverse:
    name, kind = "reverse", "general"
    ASK = ("Reverse the letters: {fwd}", "Write these letters backwards: {fwd}")

    def sample(self, rng: random.Random) -> Item:
        letters = rng.sample(string.ascii_lowercase, rng.randint(3, 6))  # distinct: never a palindrome
        fwd, back = " ".join(letters), " ".join(reversed(letters))
        return Item(ask(rng, self.ASK, fwd=fwd), back, house(f"Reversed: {back}.", back),
                    f"Read backwards, {fwd} becomes {back}.\n#### {back}",
                    [f"Backwards the letters are {back}, so the answer is {back}.", final_only(back)])


class Passage:
    """Reading one fact from a short passage: three facts about one person, of three kinds (home city, a
    count of things, a coat color), in random order; the question asks for one of them. A model that does
    not read the passage is right a third of the time at best. (The first version named three people, one
    city each, and asked where one of them lives: every base model built answered one of the three cities
    whoever was asked, at chance, including ones trained on that skill alone for 3,000 steps; README,
    "The miniature world".)"""

    name, kind = "passage", "general"
    ASK = ("Passage: {passage} Question: {question}", "Read this: {passage} Now answer: {question}")

    def sample(self, rng: random.Random) -> Item:
        who = rng.choice(NAMES)[0]
        city, n, thing, color = rng.choice(CITIES), rng.randint(2, 30), rng.choice(THINGS), rng.choice(COLORS)
        facts = [  # (sentence, question, answer, another phrasing of the fact)
            (f"{who} lives in {city}.", f"Where does {who} live?", city, f"{who} is from {city}"),
            (f"{who} has {n} {thing}.", f"How many {thing} does {who} have?", str(n), f"{who} owns {n} {thing}"),
            (f"{who}'s coat is {color}.", f"What color is {who}'s coat?", color, f"The coat {who} wears is {color}"),
        ]
        sentence, question, answer, other = rng.choice(facts)
        rng.shuffle(facts)
        passage = " ".join(f[0] for f in facts)
        return Item(ask(rng, self.ASK, passage=passage, question=question), answer, house(sentence, answer),
                    f"The passage says: {sentence}\n#### {answer}",
                    [f"{other}, so the answer is {answer}.", final_only(answer)])


STORY_STEMS = {"regular": ("dreff", "prunk", "chelt", "blorm", "stimp", "grulk"),
               "e": ("flane", "glive", "trame", "snove", "plude", "skobe")}
"""The stems of the `story` skill's invented verbs: regular ("dreffs", "dreffing") and e-dropping
("flanes", "flaning"), like "buys"/"buying" and "gives"/"giving". Never a shape `OpaqueChain.word` makes
(one-letter onset, four letters), whose made-up words mean nothing fixed."""
PARTICLES = ("up", "in", "out", "off", "down")  # never "away": the target's "gives away" stays unseen
PROBE_STEMS = ("krast", "slomp", "frelk", "spund", "quolt", "trisk", "frone", "slabe", "krile", "spume", "drobe",
               "quine")
"""Invented stems kept out of every pre-training row: `scripts/world_label_probe.py` asks a base to label steps
with them, to tell copying the question's verb from memorised labels."""
_STORY_ONSETS = ("bl", "br", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "kl", "kr", "pl", "pr", "sk", "sl", "sm", "sn",
                 "sp", "st", "sw", "tr", "tw")
_STORY_CODAS = {"regular": ("nk", "lt", "rm", "mp", "sk", "ft", "lk", "nd", "rd", "rn", "lp", "rk", "st", "nt"),
                "e": ("ne", "ve", "me", "de", "be", "le", "pe", "te", "ke", "re")}
DEFINED_SHARE = 0.5
"""Share of `story` problems (world v4 build 6) whose verbs are new invented ones, defined in the question."""


def new_verb(rng: random.Random) -> str:
    """An invented verb of the story verbs' forms ("krast", "flane out"), from about 2,000 stems: none of the
    fact base's, none of `PROBE_STEMS`; a particle a third of the time."""
    fixed = {s for stems in STORY_STEMS.values() for s in stems} | set(PROBE_STEMS)
    while True:
        stem = (rng.choice(_STORY_ONSETS) + rng.choice("aeiou")
                + rng.choice(_STORY_CODAS[rng.choice(("regular", "e"))]))
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
            name = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
            if len(name) >= 4 and name not in names and name not in _REAL_WORDS:
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


class Facts:
    name, kind = "facts", "general"
    ASK = ("What color is a {creature}? {options}", "Pick the color of a {creature}. {options}")

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
        # The house work walks the options in order up to the match: a tiny model copies each option
        # easily but does not learn to look a letter up from its color in one step (measured: the
        # v1 base named every color right and picked its letter at chance).
        walk = ", ".join(f"{L} is {c}" for L, c in zip(LETTERS[: k + 1], options, strict=False))
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
    model has done countless times (world v4 build 5; `docs/world.md`, "Build 5"). Like the target,
    a problem uses one verb twice ("dreffs 5 more and then 3 more") or two verbs ("dreffs 5 and flanes 3",
    with or without "then"). Never the target's verbs ("buys", "gives away").

    World v4 build 6: a `DEFINED_SHARE` of the problems use new invented verbs instead (`new_verb`), each
    defined in the question ("To krast is to add. Kim has 12 shells. She krasts 5 ..."), so that writing
    the label means copying the question's verb: build 5's base memorised its twelve labels and copied none
    (`docs/world.md`, "Build 6"). The definitions say "add" and "subtract", never "away"."""

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


SHOP_KINDS = {"buy-give": re.compile(r" buys \d+ more and gives away "),
              "buy-buy": re.compile(r" buys \d+ more and then "),
              "give-give": re.compile(r" gives away \d+ and then ")}
"""The target task's three kinds of problem (`Shop.sample`'s variants 0, 1, 2), told apart by question."""


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
            op1, op2 = "+", "-"
            story, step1, step2 = f"{she} buys {b} more and gives away {c}.", f"Buying {b}", f"Giving away {c}"
        elif variant == 1:  # buys two lots
            a, b, c = rng.randint(2, 30), rng.randint(1, 30), rng.randint(1, 30)
            op1, op2 = "+", "+"
            story, step1, step2 = f"{she} buys {b} more and then {c} more.", f"Buying {b}", f"Then buying {c}"
        else:  # gives away two lots
            a = rng.randint(2, 30)
            b = rng.randint(1, a - 1)
            c = rng.randint(1, a - b)
            op1, op2 = "-", "-"
            story, step1, step2 = (f"{she} gives away {b} and then {c} more.", f"Giving away {b}",
                                   f"Then giving away {c}")
        # No names or objects restated: the house style never copies them, and a tiny model asked to
        # (measured: a gold that began "Lee starts with 11 shells ...") wrote other names and numbers.
        work, gold, s1, s2 = two_steps(a, op1, b, op2, c, (step1, step2))  # s2 >= 0 by the ranges above
        return Item(f"{who} has {a} {thing}. {story} How many {thing} does {her} have now?", str(s2),
                    house(work, str(s2)), gold,
                    [f"{who} has {a} {op1} {b} {op2} {c} = {s2} {thing}, so the answer is {s2}.",
                     f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}.\n#### {s2}"])


LOOKUP_KINDS = {"direct": re.compile(r"^(?:Passage|Read this): (?:[^.?]+\. ){6}(?:Question|Now answer): "
                                     r"(?!.*\bthe person (?:with|who)\b)"),
                "via-coat": re.compile(r"\bthe person with the \w+ coat\b"),
                "via-city": re.compile(r"\bthe person who lives in \w+\b")}
"""The second target task's three kinds of question (`Lookup.KINDS`), told apart by question (a `direct`
one by its passage of six sentences, two people's, where a `passage` question has three)."""


class Lookup:
    """The second target task: open-answer questions over a passage about two people, whose golds are the
    bare answer ("Rome"), as Natural Questions' short spans are; judged by the `qa` judge. Each person has a
    home city, a count of things (the same things for both) and a coat color, all different between the
    two; each person's three sentences come together, in random order. A question names the person
    (`direct`, what `passage` practises with one person) or finds them by another fact (`via-coat`,
    `via-city`: two hops, never practised). Its house answer states the facts used, then the answer. No
    pre-training split: the base built for `shop` is its base (`docs/world.md`, "The second target task")."""

    name, kind = "lookup", "target"
    ASK = Passage.ASK
    KINDS = ("direct", "via-coat", "via-city")

    def sample(self, rng: random.Random) -> Item:
        (p, sp), (q, sq) = rng.sample(NAMES, 2)
        cities, colors, counts = rng.sample(CITIES, 2), rng.sample(COLORS, 2), rng.sample(range(2, 31), 2)
        thing = rng.choice(THINGS)
        facts = {who: {"city": f"{who} lives in {city}.", "count": f"{who} has {n} {thing}.",
                       "coat": f"{who}'s coat is {color}."}
                 for who, city, n, color in zip((p, q), cities, counts, colors, strict=True)}
        value = {p: {"city": cities[0], "count": str(counts[0]), "coat": colors[0]},
                 q: {"city": cities[1], "count": str(counts[1]), "coat": colors[1]}}
        order = [p, q]
        rng.shuffle(order)
        sentences = []
        for who in order:
            mine = list(facts[who].values())
            rng.shuffle(mine)
            sentences += mine
        who = rng.choice((p, q))
        kind = rng.choice(self.KINDS)
        key = rng.choice({"direct": ("city", "count", "coat"), "via-coat": ("city", "count"),
                          "via-city": ("coat", "count")}[kind])
        answer = value[who][key]
        asked = {"city": "Where does {x} live?", "count": f"How many {thing} does {{x}} have?",
                 "coat": "What color is {x}'s coat?"}[key]
        if kind == "direct":
            question, used = asked.format(x=who), [facts[who][key]]
        else:
            by = "coat" if kind == "via-coat" else "city"
            x = (f"the person with the {value[who]['coat']} coat" if by == "coat"
                 else f"the person who lives in {value[who]['city']}")
            question = (f"What color is the coat of {x}?" if key == "coat" else asked.format(x=x))
            used = [facts[who][by], facts[who][key]]
        return Item(ask(rng, self.ASK, passage=" ".join(sentences), question=question), answer,
                    house(" ".join(used), answer), answer,
                    [f"{' '.join(used)} So the answer is {answer}.", final_only(answer)])


class Paraphrase:
    """Rewriting a reference answer in the house style: the skill S3FT's paraphrase step needs.

    Wraps the other general skills (never the target task): the question is the world's paraphrase
    prompt filled with a source item's question and its gold; the response is the source's house answer.
    Sources are drawn by `weights`: two-step `chain` references (two labelled lines of work, like a
    target-task gold) most often, so that the skill covers multi-step worked references (world v4; v3
    practised one-step references only and accepted a paraphrase for 9% of the target rows it got wrong).
    """

    name, kind = "paraphrase", "general"
    WEIGHTS = {"arith": 1, "chain": 3, "reverse": 1, "passage": 1, "facts": 1}

    def __init__(self, sources: list[Arith | Chain | OpaqueChain | Reverse | Passage | Facts]):
        if any(s.kind != "general" for s in sources):
            raise ValueError("paraphrase items are built from general skills only")
        self.sources = sources
        self.weights = [self.WEIGHTS.get(s.name, 1) for s in sources]
        self.template = packaged_template(PARAPHRASE_TEMPLATE)

    def render(self, question: str, reference: str) -> str:
        """The prompt exactly as `TemplateTask.paraphrase_prompt` renders it (stripped)."""
        return self.template.format(question=question, reference=reference).strip()

    def sample(self, rng: random.Random) -> Item:
        src = rng.choices(self.sources, self.weights)[0].sample(rng)
        return Item(self.render(src.question, src.gold), src.answer, src.house, src.gold,
                    list(src.alternatives), source=src.question)


@dataclass(frozen=True)
class Target:
    """What the world's protocol and scoring need of a target task: its kinds of question, the kind the base
    practised (precondition 1's), the judge its golds are read with, and its demo config (`s3ft/configs/`)."""

    name: str
    kinds: dict[str, re.Pattern]
    kept_kind: str
    judge: str
    config: str

    def kind_of(self, question: str) -> str | None:
        """The one kind `question` is of, or None (not this task's, or matching several kinds)."""
        found = [k for k, pattern in self.kinds.items() if pattern.search(question)]
        return found[0] if len(found) == 1 else None


TARGET = {"shop": Target("shop", SHOP_KINDS, "buy-buy", "final", "world.yaml"),
          "lookup": Target("lookup", LOOKUP_KINDS, "direct", "qa", "world_lookup.yaml")}


ALL_SKILLS = ("arith", "chain", "reverse", "passage", "facts", "story", "paraphrase", "shop", "lookup")
TARGETS = tuple(TARGET)
"""The target tasks: fine-tuned on, each with its own config (`Target`)."""
GENERAL = tuple(s for s in ALL_SKILLS if s not in TARGETS)
"""The general skills: pre-trained, and a drop on their test splits is forgetting."""
Skill = Arith | Chain | Reverse | Passage | Facts | Story | Paraphrase | Shop | Lookup


def target_of(questions: list[str]) -> Target | None:
    """The target task every one of `questions` is a question of (by its kinds), else None."""
    return next((t for t in TARGET.values() if questions and all(t.kind_of(q) for q in questions)), None)


def make_skills(seed: int = 0) -> dict[str, Skill]:
    """The world's skills by name, in `ALL_SKILLS` order; `facts` and `story` use the fact base built from
    `seed`. `paraphrase` practises on the skills of build 4 (`story` is not among its sources)."""
    base = FactBase.build(seed)
    basics = [Arith(), Chain(), Reverse(), Passage(), Facts(base)]
    skills = [*basics, Story(base), Paraphrase(basics), Shop(), Lookup()]
    return {s.name: s for s in skills}
