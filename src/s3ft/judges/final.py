"""Final-answer judge: reads the final answer out of a response and compares it with `ex.meta["answer"]`.

Reads the LAST "The answer is X" (to the end of its sentence or line), else the last "#### X" line;
writes one `Verdict` per prediction with the extracted answer and a reason that names both sides.
Answers are compared after normalisation: case-insensitive, whitespace collapsed, surrounding
punctuation stripped (so "(B)" == "B)" == "B"), and numerically when both sides are numbers
("14" == "14.0", "$1,400" == "1400", "-3" == "-3.00"). Used by the miniature world (`s3ft.world`).
"""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_ANSWER_IS = re.compile(r"\bthe answer is\b:?", re.IGNORECASE)
_HASHES = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_QUOTES = "\"'“”‘’*"
_EDGE = string.punctuation + _QUOTES + " "


def extract_final(text: str) -> str | None:
    """The final answer of `text`: the last "The answer is X" (else the last "#### X"), or None."""
    text = text or ""
    for match in reversed(list(_ANSWER_IS.finditer(text))):
        rest = text[match.end() :].split("\n", 1)[0]
        end = _SENTENCE_END.search(rest)
        answer = (rest[: end.start()] if end else rest).strip().strip(_QUOTES + " ").rstrip(".")
        if answer.strip():
            return answer.strip()
    hashes = [h for h in _HASHES.findall(text) if h.strip()]
    return hashes[-1].strip().rstrip(".").strip() if hashes else None


def normalize(answer: str) -> str:
    """Lowercase, whitespace collapsed, surrounding punctuation and quotes stripped."""
    return " ".join(answer.lower().split()).strip(_EDGE)


def as_number(answer: str) -> Decimal | None:
    """The numeric value of an answer ("$1,400." -> 1400), or None when it is not a number."""
    s = answer.strip().strip(_QUOTES + "$ ").rstrip(".")
    s = s.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s) else s
    if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", s):
        return None
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return None


def same_answer(extracted: str, expected: str) -> bool:
    na, nb = as_number(extracted), as_number(expected)
    if na is not None and nb is not None:
        return na == nb
    return normalize(extracted) == normalize(expected)


class FinalAnswerJudge:
    name = "final"
    version = "1"

    def __init__(self, cfg: JudgeConfig | None = None) -> None:
        self.cfg = cfg

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        expected = str(ex.meta.get("answer", "")).strip()
        if not expected:
            return Verdict(None, "no expected answer (meta 'answer' is missing or empty)")
        extracted = extract_final(prediction)
        if extracted is None:
            return Verdict(False, f"no final answer found (expected {expected!r})")
        ok = same_answer(extracted, expected)
        how = "equal" if ok else "different"
        return Verdict(ok, f"extracted {extracted!r}, expected {expected!r}: {how}", extracted)

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        return [self.judge_one(ex, p) for ex, p in zip(examples, predictions, strict=True)]
