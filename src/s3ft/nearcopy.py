"""Is a paraphrase a near-copy of the gold? A word-level normalised edit similarity.

`similarity(a, b) = 1 - levenshtein(words(a), words(b)) / max(len(words(a)), len(words(b)))`, where words
are whitespace-separated tokens (so a change of layout costs nothing, a changed, added or dropped word one
edit). 1.0 is identical text, 0.0 shares nothing in place. A paraphrase with similarity >= `NEAR_COPY`
(0.9: at most one word in ten differs) is a near-copy: it is the gold, not the model's own wording.
Reads and writes nothing.
"""

from __future__ import annotations

NEAR_COPY = 0.9


def levenshtein(a: list[str], b: list[str]) -> int:
    """Edit distance (insertions, deletions, substitutions) between two token lists."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def similarity(a: str, b: str) -> float:
    wa, wb = a.split(), b.split()
    if not wa and not wb:
        return 1.0
    return round(1 - levenshtein(wa, wb) / max(len(wa), len(wb)), 4)


def is_near_copy(paraphrase: str, gold: str, threshold: float = NEAR_COPY) -> bool:
    return similarity(paraphrase, gold) >= threshold
