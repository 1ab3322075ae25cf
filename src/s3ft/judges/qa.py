"""QA judge: reads the short answer out of a prediction and scores it against the gold aliases (SQuAD-style).

Reads `ex.meta["answers"]` (a list of gold aliases, as in Natural Questions or TriviaQA), else
`[ex.gold]`; writes one `Verdict` per prediction with the short answer it read and the best-matching alias.

- The short answer (`short_answers`): what follows each "The answer is X" / "Answer: X" label, or a
  GSM8K-style "#### X" line, to the end of its sentence or line; with no label, the first sentence of the
  first non-empty line. Markdown and surrounding quotes and punctuation are dropped. A sentence ends at
  `.`, `!` or `?` before a space or the end, except after an initial ("J. K.") or a common abbreviation
  ("St.", "Dr.", "Mt.").
- Scoring, after SQuAD normalisation (lowercase, punctuation and the articles a/an/the dropped), against
  the best alias (`judge.qa_match`): `em`, the short answer equals an alias; `f1`, SQuAD token F1 reaches
  `judge.qa_threshold`; `recall`, the share of the alias's tokens found in the short answer reaches it.
- Undecided (`correct` None, `s3ft.judges.hedge`): a hedge ("1944 or 1945"), unless an alias itself has
  an "or"; and several labelled answers that disagree ("The answer is 1944. No, the answer is 1945.").
  Without the first rule, recall and F1 would pass "1944 or 1945" for the gold 1945.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import TYPE_CHECKING

from s3ft.judges.hedge import distinct, hedge
from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_PUNCT = str.maketrans("", "", string.punctuation)
_LABEL = re.compile(r"\b(?:the\s+)?(?:(?:short|final|correct)\s+)?answer\s*(?:is\b\s*:?|:)|^[ \t]*####",
                    re.IGNORECASE | re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "vs", "co", "inc", "ft", "gen", "gov", "sen"}
_EDGES = re.compile(r"^[\s*_`\"'“”‘’.,;:!?-]+|[\s*_`\"'“”‘’.,;:!?-]+$")


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, and collapse whitespace (SQuAD)."""
    s = s.lower().translate(_PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _first_sentence(line: str) -> str:
    for end in _SENTENCE_END.finditer(line):
        word = re.search(r"(\w+)$", line[: end.start()])
        w = word.group(1) if word else ""
        if line[end.start()] == "." and ((len(w) == 1 and w.isalpha()) or w.lower() in _ABBREVIATIONS):
            continue  # "J. K. Rowling", "St. Louis"
        return line[: end.start()]
    return line


def _tidy(s: str) -> str:
    return _EDGES.sub("", re.sub(r"^\s*[-*+]\s+", "", s.replace("**", "")))


def short_answers(prediction: str) -> list[str]:
    """The short answers a prediction gives, in order: each labelled one, else its first sentence."""
    text = prediction or ""
    labelled = [_tidy(_first_sentence(text[m.end() :].lstrip(" \t*_:").split("\n", 1)[0])) for m in _LABEL.finditer(text)]
    if labelled := [a for a in labelled if a]:
        return labelled
    first = next((line for line in text.splitlines() if _tidy(line)), "")
    return [a] if (a := _tidy(_first_sentence(_tidy(first)))) else []


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def _overlap(prediction: str, gold: str) -> tuple[int, int, int]:
    """(shared tokens, prediction tokens, gold tokens), counting repeated tokens (multisets)."""
    pred_tokens, gold_tokens = Counter(normalize_answer(prediction).split()), Counter(normalize_answer(gold).split())
    return sum((pred_tokens & gold_tokens).values()), sum(pred_tokens.values()), sum(gold_tokens.values())


def token_recall(prediction: str, gold: str) -> float:
    """|gold tokens ∩ prediction tokens| / |gold tokens|, counting repeated tokens (multisets).

    A gold that normalises to nothing is recalled only by a prediction that does too."""
    shared, n_pred, n_gold = _overlap(prediction, gold)
    return float(not n_pred) if not n_gold else shared / n_gold


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 (harmonic mean of token precision and recall; 1.0 when both normalise to nothing)."""
    shared, n_pred, n_gold = _overlap(prediction, gold)
    if not n_pred or not n_gold:
        return float(n_pred == n_gold)
    return 0.0 if not shared else 2 * shared / (n_pred + n_gold)


def gold_aliases(ex: Example) -> list[str]:
    answers = ex.meta.get("answers")
    if isinstance(answers, str):
        answers = [answers]
    return [str(a) for a in answers if a is not None] if answers else [ex.gold]


SCORES = {"f1": token_f1, "recall": token_recall}


class QAJudge:
    name = "qa"
    version = "3"  # 2: the short answer is scored (em by default, or f1 / recall); hedges are undecided;
    # 3: a "#### X" line is a label (version 2 read such a prediction's first line instead)

    def __init__(self, cfg: JudgeConfig) -> None:
        self.match, self.threshold = cfg.qa_match, cfg.qa_threshold

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        aliases = gold_aliases(ex)
        if not aliases:
            return Verdict(None, "no gold answer")
        answers = distinct(short_answers(prediction), normalize_answer)
        if not answers:
            return Verdict(False, "no answer given")
        if len(answers) > 1:
            shown = ", ".join(repr(a) for a in answers)
            return Verdict(None, f"answers disagree: {shown}: undecided")
        (answer,) = answers
        if alts := hedge(answer, aliases, normalize_answer):
            return Verdict(None, f"{answer!r} is a hedge between {', '.join(map(repr, alts))}: undecided", answer)
        if self.match == "em":
            hit = next((a for a in aliases if exact_match(answer, a)), None)
            if hit is not None:
                return Verdict(True, f"{answer!r}: exact match with alias {hit!r}", answer)
            return Verdict(False, f"{answer!r}: no exact match with any of {len(aliases)} alias(es), e.g. "
                                  f"{aliases[0]!r}", answer)  # fmt: skip
        scores = [SCORES[self.match](answer, a) for a in aliases]
        score = max(scores)
        best = aliases[scores.index(score)]
        ok = score >= self.threshold
        cmp = ">=" if ok else "<"
        what = "token F1" if self.match == "f1" else "token recall"
        return Verdict(ok, f"{answer!r}, best alias {best!r}: {what} {score:.2f} {cmp} {self.threshold:.2f}", answer)

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        return [self.judge_one(ex, p) for ex, p in zip(examples, predictions, strict=True)]
