"""QA judge on Natural-Questions-style examples with several gold aliases: SQuAD normalisation,
exact match, and token recall against a threshold."""

from __future__ import annotations

import pytest

from s3ft.config import JudgeConfig
from s3ft.judges.qa import QAJudge, exact_match, normalize_answer, token_recall
from s3ft.records import Example

NOBEL = Example(
    id="nq-0",
    question="who got the first nobel prize in physics",
    gold="Wilhelm Conrad Röntgen",
    meta={"answers": ["Wilhelm Conrad Röntgen"]},
)
EAGLES = Example(
    id="nq-1",
    question="when was the last time the philadelphia eagles won the super bowl",
    gold="Super Bowl LII",
    meta={"answers": ["Super Bowl LII,", "2017"]},
)
CHICAGO = Example(id="nq-2", question="how many episodes are in chicago fire season 4", gold="23")


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Beatles", "beatles"),
        ("  Super Bowl LII, ", "super bowl lii"),
        ("an Apple a day", "apple day"),
        ("U.S.A.", "usa"),
        ("Theatre of the Absurd", "theatre of absurd"),  # 'the' inside 'Theatre' is no article
        ("Wilhelm Conrad Röntgen!", "wilhelm conrad röntgen"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_match() -> None:
    assert exact_match("the Super Bowl LII.", "Super Bowl LII,")
    assert not exact_match("Super Bowl LII in 2018", "Super Bowl LII")


def test_token_recall() -> None:
    assert token_recall("Wilhelm Röntgen", "Wilhelm Conrad Röntgen") == pytest.approx(2 / 3)
    assert token_recall("It was won by the Eagles in Super Bowl LII.", "Super Bowl LII") == 1.0
    assert token_recall("new york", "New York New York") == 0.5  # multisets: each token counts once per copy
    assert token_recall("", "23") == 0.0
    assert token_recall("a", "The") == 1.0 and token_recall("x", "The") == 0.0  # a gold of only articles


def test_recall_mode_with_aliases() -> None:
    judge = QAJudge(JudgeConfig(qa_match="recall", qa_recall_threshold=1.0))
    verdicts = judge(
        [NOBEL, NOBEL, EAGLES, EAGLES, CHICAGO, CHICAGO],
        [
            "The first Nobel Prize in Physics went to Wilhelm Conrad Röntgen in 1901.",
            "Wilhelm Röntgen",
            "They won in 2017.",
            "Super Bowl 52",
            "23",
            "There are 22 episodes.",
        ],
    )
    assert [v.correct for v in verdicts] == [True, False, True, False, True, False]
    assert verdicts[1].reason == "best alias 'Wilhelm Conrad Röntgen': token recall 0.67 < 1.00"
    assert verdicts[2].reason == "best alias '2017': token recall 1.00 >= 1.00"
    assert verdicts[4].reason == "best alias '23': token recall 1.00 >= 1.00"  # ex.gold when no aliases


def test_recall_threshold() -> None:
    judge = QAJudge(JudgeConfig(qa_match="recall", qa_recall_threshold=0.6))
    (v,) = judge([NOBEL], ["Wilhelm Röntgen"])
    assert v.correct is True and "0.67 >= 0.60" in v.reason


def test_em_mode_is_strict() -> None:
    judge = QAJudge(JudgeConfig(qa_match="em"))
    verdicts = judge(
        [EAGLES, EAGLES, EAGLES], ["super bowl LII", "2017", "The Eagles won Super Bowl LII in 2017."]
    )
    assert [v.correct for v in verdicts] == [True, True, False]
    assert verdicts[0].reason == "exact match with alias 'Super Bowl LII,'"
    assert verdicts[2].reason.startswith("no exact match with any of 2 alias(es)")
    assert verdicts[0].extracted == "super bowl lii"
