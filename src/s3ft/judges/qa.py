"""QA judge: compares a short-answer prediction with the gold aliases after SQuAD-style normalisation.

Reads `ex.meta["answers"]` (a list of gold aliases, as in Natural Questions or TriviaQA), else
`[ex.gold]`; writes one `Verdict` per prediction naming the best-matching alias and its score.
`qa_match: em` wants the normalised prediction to equal an alias; `qa_match: recall` wants the share
of an alias's tokens found in the prediction (multiset overlap) to reach `qa_recall_threshold`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import TYPE_CHECKING

from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, and collapse whitespace (SQuAD)."""
    s = s.lower().translate(_PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def token_recall(prediction: str, gold: str) -> float:
    """|gold tokens ∩ prediction tokens| / |gold tokens|, counting repeated tokens (multisets).

    A gold that normalises to nothing is recalled only by a prediction that does too."""
    gold_tokens, pred_tokens = (
        Counter(normalize_answer(gold).split()),
        Counter(normalize_answer(prediction).split()),
    )
    if not gold_tokens:
        return float(not pred_tokens)
    return sum((gold_tokens & pred_tokens).values()) / sum(gold_tokens.values())


def gold_aliases(ex: Example) -> list[str]:
    answers = ex.meta.get("answers")
    if isinstance(answers, str):
        answers = [answers]
    return [str(a) for a in answers if a is not None] if answers else [ex.gold]


class QAJudge:
    name = "qa"
    version = "1"

    def __init__(self, cfg: JudgeConfig) -> None:
        self.match, self.threshold = cfg.qa_match, cfg.qa_recall_threshold

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        aliases, prediction = gold_aliases(ex), prediction or ""
        extracted = normalize_answer(prediction)
        if not aliases:
            return Verdict(None, "no gold answer", extracted)
        if self.match == "em":
            hit = next((a for a in aliases if exact_match(prediction, a)), None)
            if hit is not None:
                return Verdict(True, f"exact match with alias {hit!r}", extracted)
            return Verdict(
                False, f"no exact match with any of {len(aliases)} alias(es), e.g. {aliases[0]!r}", extracted
            )
        scores = [token_recall(prediction, a) for a in aliases]
        score = max(scores)
        best = aliases[scores.index(score)]
        ok = score >= self.threshold
        cmp = ">=" if ok else "<"
        return Verdict(
            ok, f"best alias {best!r}: token recall {score:.2f} {cmp} {self.threshold:.2f}", extracted
        )

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        return [self.judge_one(ex, p) for ex, p in zip(examples, predictions, strict=True)]
