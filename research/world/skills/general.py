"""The general skills without invented knowledge: `arith`, `chain`, `reverse`, `passage`, `paraphrase`, and
`OpaqueChain`, a source of paraphrase practice only.

Reads the packaged paraphrase template (`s3ft/prompts/world_paraphrase.txt`, which `paraphrase` renders
exactly as the generic task does); writes nothing.
"""

from __future__ import annotations

import random
import string

from research.world.skills.answers import (
    OP_WORDS,
    Item,
    annotated,
    ask,
    chain_numbers,
    final_only,
    house,
    two_steps,
    worked,
)
from research.world.skills.invented import Facts
from research.world.skills.vocabulary import CITIES, COLORS, NAMES, THINGS
from s3ft.tasks.common import packaged_template

PARAPHRASE_TEMPLATE = "world_paraphrase.txt"


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
    reference rather than solve the question (why: `research/world/NOTES.md`, build 4). Its words are never
    the target's ("buys", "gives away")."""

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
    not read the passage is right a third of the time at best (an earlier version, with three people and
    one fact each, was never learned: `research/world/NOTES.md`, v1-v3)."""

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



class Paraphrase:
    """Rewriting a reference answer in the house style: the skill S3FT's paraphrase step needs.

    Wraps the other general skills (never the target task): the question is the world's paraphrase
    prompt filled with a source item's question and its gold; the response is the source's house answer.
    Sources are drawn by `weights`: two-step `chain` references (two labelled lines of work, like a
    target-task gold) most often, so that the skill covers multi-step worked references (a base that
    practised one-step references only accepted a paraphrase for 9% of the target rows it got wrong:
    `research/world/NOTES.md`, v3).
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

