"""Final-answer judge: reads the final answer out of a response and compares it with `ex.meta["answer"]`.

Reads every final answer of the response: each "The answer is X" (to the end of its sentence or line) and
each "#### X" line; writes one `Verdict` per prediction with the extracted answer and a reason that names
both sides. Answers are compared after normalisation: case-insensitive, whitespace collapsed, surrounding
punctuation stripped (so "(B)" == "B)" == "B"), and numerically when both sides are numbers
("14" == "14.0", "$1,400" == "1400", "-3" == "-3.00"). Undecided (`correct` None, see `s3ft.judges.hedge`):
several final answers that disagree ("The answer is 7.\n#### 9", whatever the order; "The answer is 2. No
wait, the answer is 5."), and a hedge ("The answer is 7 or 9."). Final answers that agree ("The answer is
72.\n#### 72") are one answer. Used by the miniature world (`s3ft.world`).
"""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from s3ft.judges.hedge import distinct, hedge
from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_ANSWER_IS = re.compile(r"\bthe answer is\b:?", re.IGNORECASE)
_HASHES = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_QUOTES = "\"'“”‘’*"
_EDGE = string.punctuation + _QUOTES + " "


def _answer_is(text: str) -> list[tuple[int, str]]:
    out = []
    for match in _ANSWER_IS.finditer(text):
        rest = text[match.end() :].split("\n", 1)[0]
        end = _SENTENCE_END.search(rest)
        answer = (rest[: end.start()] if end else rest).strip().strip(_QUOTES + " ").rstrip(".").strip()
        if answer:  # an empty "The answer is" is skipped
            out.append((match.start(), answer))
    return out


def _hashes(text: str) -> list[tuple[int, str]]:
    return [(m.start(), a) for m in _HASHES.finditer(text) if (a := m.group(1).strip().rstrip(".").strip())]


def final_answers(text: str) -> list[str]:
    """Every final answer in `text`, in text order: each non-empty "The answer is X" and "#### X"."""
    text = text or ""
    return [a for _, a in sorted(_answer_is(text) + _hashes(text))]


def extract_final(text: str) -> str | None:
    """The final answer of `text`, or None when it has none or its final answers disagree (`same_answer`).

    Where they agree, the answer as written in the last "The answer is X" (else the last "#### X")."""
    text = text or ""
    if len(distinct(final_answers(text), answer_key)) != 1:
        return None
    return (_answer_is(text) or _hashes(text))[-1][1]


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


def answer_key(answer: str) -> tuple[str, object]:
    """What two answers share when they are the same answer: the number, else the normalised text."""
    number = as_number(answer)
    return ("number", number) if number is not None else ("text", normalize(answer))


def same_answer(extracted: str, expected: str) -> bool:
    return answer_key(extracted) == answer_key(expected)


class FinalAnswerJudge:
    name = "final"
    version = "2"  # 2: several final answers that disagree, and hedges, are undecided

    def __init__(self, cfg: JudgeConfig | None = None) -> None:
        self.cfg = cfg

    def judge_one(self, ex: Example, prediction: str) -> Verdict:
        expected = str(ex.meta.get("answer", "")).strip()
        if not expected:
            return Verdict(None, "no expected answer (meta 'answer' is missing or empty)")
        answers = distinct(final_answers(prediction), answer_key)
        if not answers:
            return Verdict(False, f"no final answer found (expected {expected!r})")
        if len(answers) > 1:
            shown = ", ".join(repr(a) for a in answers)
            return Verdict(None, f"final answers disagree: {shown} (expected {expected!r}): undecided")
        extracted = extract_final(prediction)
        if alts := hedge(extracted, [expected], answer_key):
            shown = ", ".join(repr(a) for a in alts)
            return Verdict(None, f"extracted {extracted!r}, a hedge between {shown} (expected {expected!r}): "
                                 "undecided", extracted)  # fmt: skip
        ok = same_answer(extracted, expected)
        how = "equal" if ok else "different"
        return Verdict(ok, f"extracted {extracted!r}, expected {expected!r}: {how}", extracted)

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        return [self.judge_one(ex, p) for ex, p in zip(examples, predictions, strict=True)]
