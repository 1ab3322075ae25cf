"""Answers a judge cannot take at their word: hedges ("1944 or 1945") and several final answers that disagree.

Shared by the final, math and QA judges, which read no files and write nothing. The rule, the same in each:

- A hedge is an answer that offers alternatives: split around the word "or" (also LaTeX `\\text{or}`; a
  leading "either" dropped), it gives two or more non-empty parts that the judge's own equality tells apart
  ("7 or 9", "either B or C", "1944 or 1945"; for the final and QA judges "12 or so" too, while the math
  judge has already read that as 12, as it reads "18 dollars" as 18). A hedge is undecided
  (`Verdict.correct` None), never right, unless the gold itself is written with "or" (then the judge
  compares as usual).
- A response with several explicit final answers that disagree ("The answer is 7.\\n#### 9") is undecided
  too, whatever their order: the judge cannot tell which one the model meant.

Undecided verdicts are counted apart by the judge stage and never become a training target
(`s3ft.methods.choose_source`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable

_OR = re.compile(r"\\text\{\s*or\s*\}|(?<![\w\\])or(?!\w)", re.IGNORECASE)
_EITHER = re.compile(r"^\s*either\s+", re.IGNORECASE)
_EDGE = " \t\n,;:.!?\"'*()[]$"


def alternatives(answer: str) -> list[str]:
    """The parts of `answer` around each "or" (edge punctuation stripped, empty parts dropped);
    `[answer]` when it has fewer than two."""
    parts = [p.strip(_EDGE) for p in _OR.split(_EITHER.sub("", answer))]
    parts = [p for p in parts if p]
    return parts if len(parts) > 1 else [answer]


def has_or(text: str) -> bool:
    """Whether `text` is written with the word "or" (a gold that is, cannot be hedged against)."""
    return _OR.search(text) is not None


def distinct(items: Iterable[str], key: Callable[[str], Hashable]) -> list[str]:
    """`items` without repeats under `key` (the judge's equality), first occurrences in order."""
    seen: dict[Hashable, str] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def hedge(answer: str, golds: Iterable[str], key: Callable[[str], Hashable]) -> list[str] | None:
    """The alternatives `answer` offers, when it is a hedge against `golds`; None when it is not."""
    alts = distinct(alternatives(answer), key)
    if len(alts) < 2 or any(has_or(g) for g in golds):
        return None
    return alts
