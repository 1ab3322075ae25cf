"""The final-answer judge (`s3ft.judges.final`): the last "The answer is X." or "#### X", hedges and
disagreeing answers undecided."""

from __future__ import annotations

import pytest

from s3ft.judges.final import FinalAnswerJudge, extract_final
from s3ft.records import Example
from s3ft.registry import resolve

JUDGE = FinalAnswerJudge(None)


def verdict(answer: str, response: str):
    return JUDGE([Example("x", "q", "g", {"answer": answer})], [response])[0]



@pytest.mark.parametrize("text, expected", [
    ("47 + 38 = 85. The answer is 85.", "85"),
    ("Reversed: m a p k. The answer is m a p k.", "m a p k"),
    ("the answer is: **Oslo**.", "Oslo"),
    ('The answer is "B".', "B"),
    ("The answer is 14.0.", "14.0"),
    ("The answer is 3. Then more text follows", "3"),
    ("Adding 38 to 47 gives 85.\n#### 85", "85"),
    ("The answer is $1,400.\n#### 1400", "$1,400"),  # they agree: the "The answer is" one as written
    ("The answer is 5. Yes, the answer is 5.", "5"),
    ("The answer is 7 or 9.", "7 or 9"),  # one answer (a hedge: the judge calls it undecided)
    ("The answer is .\n#### 6", "6"),  # an empty "The answer is" is skipped
    # several final answers that disagree: none is THE final answer, whatever their order
    ("The answer is 4.\n#### 9", None),
    ("#### 9\nThe answer is 4.", None),
    ("The answer is 2.\nNo wait, the answer is 5.", None),
    ("#### 3\nmore work\n####  7 ", None),
    ("47 + 38 = 85.", None),
    ("", None),
])  # fmt: skip
def test_extract_final(text, expected):
    assert extract_final(text) == expected


# The undecided table: (expected, response, correct) for several final answers and for hedges.
UNDECIDED = [
    ("7", "The answer is 7.\n#### 9", None),  # the old rule took 7 and called it right
    ("9", "The answer is 7.\n#### 9", None),
    ("7", "#### 9\nThe answer is 7.", None),
    ("9", "#### 9\nThe answer is 7.", None),
    ("5", "The answer is 2. No wait, the answer is 5.", None),
    ("5", "The answer is 5. No, the answer is 6.", None),
    ("7", "#### 7\n#### 8", None),
    ("1945", "The answer is 1944 or 1945.", None),
    ("B", "The answer is either B or C.", None),
    ("Oslo", "The answer is Oslo or Lima.", None),
    ("9", "#### 7 or 9", None),
    ("12", "The answer is 12 or so.", None),
    # not a conflict: final answers that agree, and an "or" that offers no second answer
    ("72", "The answer is 72.\n#### 72", True),
    ("72", "The answer is 72.00.\n#### 72", True),
    ("5", "The answer is 5. Checking again, the answer is 5.", True),
    ("1400", "The answer is $1,400.\n#### 1,400", True),
    ("6", "The answer is 6.\n#### 6", True),
    ("6", "The answer is 5.\n#### 5", False),  # two answers, agreed and wrong: simply wrong
    ("7", "The answer is 7 or 7.", False),  # no choice offered, so no hedge; but not "7" as written either
    ("black or white", "The answer is black or white.", True),  # the expected answer itself has an "or"
    ("black or white", "The answer is black.", False),
]


@pytest.mark.parametrize("answer, response, ok", UNDECIDED)
def test_several_or_hedged_final_answers_are_undecided(answer, response, ok):
    v = verdict(answer, response)
    assert v.correct is ok, v.reason
    if ok is None:
        assert v.reason.endswith("undecided")


@pytest.mark.parametrize("answer, response, ok", [
    ("14", "The answer is 14.0.", True),
    ("14", "#### 14.00", True),
    ("1400", "The answer is $1,400.", True),
    ("14", "The answer is 41.", False),
    ("B", "The answer is (B).", True),
    ("B", "The answer is B).", True),
    ("B", "The answer is b.", True),
    ("B", "The answer is C.", False),
    ("Oslo", "The answer is  oslo .", True),
    ("Oslo", "The answer is Lima.", False),
    ("m a p k", "The answer is m  a p k.", True),
    ("m a p k", "The answer is k p a m.", False),
])  # fmt: skip
def test_judge_normalises(answer, response, ok):
    assert verdict(answer, response).correct is ok


def test_judge_reasons_and_edge_cases():
    v = verdict("Oslo", "Ben lives in Oslo. The answer is Oslo.")
    assert (v.correct, v.extracted, v.reason) == (True, "Oslo", "extracted 'Oslo', expected 'Oslo': equal")
    v = verdict("14", "12 + 7 = 19.")
    assert v.correct is False and v.reason.startswith("no final answer found") and v.extracted is None
    v = verdict("5", "The answer is 5. No, the answer is 6.")  # neither the first nor the last one counts
    assert (v.correct, v.extracted, v.reason) == (None, None, "final answers disagree: '5', '6' (expected '5'): undecided")
    v = verdict("7", "The answer is 7 or 9.")
    assert (v.correct, v.extracted) == (None, "7 or 9")
    assert v.reason == "extracted '7 or 9', a hedge between '7', '9' (expected '7'): undecided"
    assert verdict("", "The answer is 5.").correct is None
    with pytest.raises(ValueError, match="1 examples but 0 predictions"):
        JUDGE([Example("x", "q", "g", {"answer": "1"})], [])
    assert resolve("judge", "final") is FinalAnswerJudge
    assert (JUDGE.name, JUDGE.version) == ("final", "2")
