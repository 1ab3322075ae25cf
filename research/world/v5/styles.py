"""How world v5 writes an answer, in each style.

Three house styles (`so`, `step`, `we`) say in words what each step does; the paraphrase voice `ref` follows a
gold-style reference's own steps and labels, in words, its annotations dropped; `gold` is GSM8K's style
(`<<a+b=c>>`, a final `#### N`). Every answer but the gold ends "The answer is X." (`s3ft.judges.final` reads
both). A question's preferred house style is a function of one of its words (`preferred`), so that the base's
greedy style varies across questions. Reads and writes nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from research.world.skills.answers import digit_steps
from research.world.skills.vocabulary import NAMES

HOUSE = ("so", "step", "we")
STYLES = (*HOUSE, "ref", "gold")
REFERENCE_STYLES = (*HOUSE, "gold")
"""The styles of the held-out references whose NLL measures forgetting: no method's own style alone."""
OP = {"+": ("add", "adding"), "-": ("subtract", "subtracting")}


NAME_STYLES = {name: HOUSE[i % len(HOUSE)] for i, (name, _) in enumerate(NAMES)}
"""A person's preferred house style: the names in turn, so that each style is preferred by a third of them (a hash
put 3 of the 16 names on `so`: the target's questions, all about a person, then preferred it in 16% of rows, at
the bound of check C6; pilot base 101, docs/world_v5.md)."""


def preferred(key: str) -> str:
    """The house style a question whose deciding word is `key` prefers: a person's by `NAME_STYLES`, any other
    word's by a stable hash (the same everywhere)."""
    return NAME_STYLES.get(key) or HOUSE[zlib.crc32(key.encode()) % len(HOUSE)]


def final(answer: str) -> str:
    return f"The answer is {answer}."


@dataclass(frozen=True)
class Step:
    """One worked step `x op n = y` of an answer: `does` says what happens in the question's words ("she buys
    7"), or is empty where the question is bare arithmetic; `label` is the gold's label of the step."""

    x: int
    op: str
    n: int
    label: str
    does: str = ""

    @property
    def y(self) -> int:
        return self.x + self.n if self.op == "+" else self.x - self.n

    @property
    def eq(self) -> str:
        return f"{self.x} {self.op} {self.n} = {self.y}"

    @property
    def digits(self) -> str:
        return digit_steps(self.x, self.op, self.n)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def step_sentence(style: str, s: Step, k: int) -> str:
    word, gerund = OP[s.op]
    if style == "so":
        head = f"{cap(s.does)}: {word} it" if s.does else cap(f"{word} {s.n}")
        return f"{head}. {cap(s.digits)}. Now {s.eq}."
    if style == "step":
        what = f"{s.label.removeprefix('Then ').lower()} means {gerund} {s.n}" if s.does else f"{gerund} {s.n}"
        return f"Step {k}: {what}. {cap(s.digits)}, giving {s.eq}."
    if style == "we":
        why = f" because {s.does}" if s.does else ""
        return f"We {word} {s.n}{why}: {s.digits}, and {s.eq}."
    if style == "ref":
        return f"{s.label}, so we {word}: {s.digits}, so {s.eq}."
    if style == "gold":
        return f"{s.label}: {s.digits}, and {s.x} {s.op} {s.n} = <<{s.x}{s.op}{s.n}={s.y}>>{s.y}."
    raise ValueError(f"unknown style {style!r}")


def worked(style: str, steps: list[Step], result: str) -> str:
    """A worked answer of one or more steps; `result` is what the `we` style's closing says ("she has 14
    shells", "the result is 14")."""
    answer = str(steps[-1].y)
    lines = [step_sentence(style, s, k) for k, s in enumerate(steps, 1)]
    if style == "gold":
        return "\n".join(lines) + f"\n#### {answer}"
    closing = f" So {result}." if style == "we" else ""
    return " ".join(lines) + closing + " " + final(answer)


def stated(style: str, facts: str, answer: str, gold: str) -> str:
    """An answer that states what it read or knows (`facts`, whole sentences), then the answer: `reverse`,
    `passage` and `facts` answers; `gold` is the gold style's first line."""
    if style == "so":
        return f"{facts} {final(answer)}"
    if style == "step":
        return f"Step 1: {facts} {final(answer)}"
    if style == "we":
        return f"We find: {facts} So it is {answer}. {final(answer)}"
    if style == "ref":
        return f"{gold} {final(answer)}"
    if style == "gold":
        return f"{gold}\n#### {answer}"
    raise ValueError(f"unknown style {style!r}")
