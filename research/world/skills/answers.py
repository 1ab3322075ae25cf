"""How the world's answers are written, and the pieces its skills share.

Reads and writes nothing. The house style (short work, then "The answer is X."), the gold (reference) style
(labelled lines with GSM8K's `<<a+b=c>>` annotations, then "#### X"), column arithmetic worked digit by digit,
and the `Item` every skill's `sample` returns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


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
    that what the base model knows is tied to the content and not to one wording."""
    return rng.choice(phrasings).format(**fields)


OP_WORDS = {"+": ("Adding", "add"), "-": ("Subtracting", "subtract")}


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

