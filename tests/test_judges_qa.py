"""QA judge on Natural-Questions-style examples with several gold aliases: the short answer it reads, SQuAD
normalisation, exact match, token F1 and token recall against a threshold, and hedges (undecided)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3ft.config import JudgeConfig, SplitSource
from s3ft.judges.qa import QAJudge, exact_match, normalize_answer, short_answers, token_f1, token_recall
from s3ft.records import Example
from s3ft.tasks.nq import NaturalQuestions

FIX = Path(__file__).parent / "fixtures"

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


def test_token_f1() -> None:
    assert token_f1("Wilhelm Röntgen", "Wilhelm Conrad Röntgen") == pytest.approx(0.8)  # P 1, R 2/3
    assert token_f1("in December 1972", "December 1972") == pytest.approx(0.8)  # P 2/3, R 1
    assert token_f1("1944 or 1945", "1945") == pytest.approx(0.5)  # why hedges are decided before scoring
    assert token_f1("the Beatles", "Beatles") == 1.0 and token_f1("1944", "1945") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0 and token_f1("x", "the") == 0.0


@pytest.mark.parametrize(
    ("prediction", "answers"),
    [
        ("Neil Armstrong", ["Neil Armstrong"]),
        ("Neil Armstrong.", ["Neil Armstrong"]),
        ("Neil Armstrong. He landed in 1969.", ["Neil Armstrong"]),  # the first sentence
        ("Neil Armstrong was the first, in 1969.", ["Neil Armstrong was the first, in 1969"]),  # kept whole
        ("\n\n**Neil Armstrong**\nHe was the commander of Apollo 11.", ["Neil Armstrong"]),  # the first line
        ("- Neil Armstrong", ["Neil Armstrong"]),
        ("Answer: Neil Armstrong", ["Neil Armstrong"]),
        ("Based on the records, the answer is Neil Armstrong.", ["Neil Armstrong"]),
        ("The short answer is: \"Canberra\".", ["Canberra"]),
        ("J. K. Rowling. She wrote seven books.", ["J. K. Rowling"]),  # initials end no sentence
        ("St. Louis, Missouri. It is on the Mississippi.", ["St. Louis, Missouri"]),
        ("The answer is 1944. No, the answer is 1945.", ["1944", "1945"]),
        ("The passage says: Ivy has 23 stamps.\n#### 23", ["23"]),  # GSM8K's final-answer line is a label
        ("Ivy lives in Rome.\n####Rome.", ["Rome"]),
        ("It says 5 #### 7", ["It says 5 #### 7"]),  # "####" labels only at the start of a line
        ("3.5 million", ["3.5 million"]),
        ("1945. The war in Europe ended in May.", ["1945"]),  # a leading number is no list marker
        ("", []),
        ("  \n ** \n", []),
    ],
)
def test_short_answers(prediction: str, answers: list[str]) -> None:
    assert short_answers(prediction) == answers


def nq_judged() -> list[tuple[Example, str, dict]]:
    """The fixture's rows, loaded as the NQ task loads them (question, aliases), with a prediction and the
    verdict each metric should give (null: undecided)."""
    path = FIX / "nq_judged.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    task = NaturalQuestions()
    return [(task.example(r, SplitSource(path=str(path)), n), r["prediction"], r) for n, r in enumerate(rows, 1)]


@pytest.mark.parametrize("match", ["em", "f1", "recall"])
def test_nq_style_predictions_under_each_metric(match: str) -> None:
    cases = nq_judged()
    judge = QAJudge(JudgeConfig(qa_match=match))  # the default threshold, 0.8
    verdicts = judge([ex for ex, _, _ in cases], [p for _, p, _ in cases])
    got = [(p, v.correct) for (_, p, _), v in zip(cases, verdicts, strict=True)]
    assert got == [(p, want[match]) for _, p, want in cases]
    for v in verdicts:
        assert v.reason.endswith("undecided") == (v.correct is None)


def test_hedges_and_disagreeing_answers_are_undecided_unless_an_alias_has_an_or() -> None:
    judge = QAJudge(JudgeConfig(qa_match="recall", qa_threshold=1.0))
    (v,) = judge([EAGLES], ["2016 or 2017"])  # recall of '2017' would be 1.0
    assert (v.correct, v.extracted) == (None, "2016 or 2017")
    assert v.reason == "'2016 or 2017' is a hedge between '2016', '2017': undecided"
    (v,) = judge([EAGLES], ["The answer is 2016. Sorry, the answer is 2017."])
    assert v.correct is None and v.reason == "answers disagree: '2016', '2017': undecided"
    (v,) = judge([EAGLES], ["The answer is 2017. Yes, the answer is 2017."])  # they agree
    assert v.correct is True
    either = Example(id="nq-3", question="q", gold="Dead or Alive", meta={"answers": ["Dead or Alive"]})
    assert [v.correct for v in judge([either, either], ["Dead or Alive", "Dead or Living"])] == [True, False]


def test_recall_mode_with_aliases() -> None:
    judge = QAJudge(JudgeConfig(qa_match="recall", qa_threshold=1.0))
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
    assert verdicts[1].reason == "'Wilhelm Röntgen', best alias 'Wilhelm Conrad Röntgen': token recall 0.67 < 1.00"
    assert verdicts[2].reason == "'They won in 2017', best alias '2017': token recall 1.00 >= 1.00"
    assert verdicts[4].reason == "'23', best alias '23': token recall 1.00 >= 1.00"  # ex.gold when no aliases


def test_thresholds() -> None:
    judge = QAJudge(JudgeConfig(qa_match="recall", qa_threshold=0.6))
    (v,) = judge([NOBEL], ["Wilhelm Röntgen"])
    assert v.correct is True and "0.67 >= 0.60" in v.reason
    (v,) = QAJudge(JudgeConfig(qa_match="f1", qa_threshold=0.9))([NOBEL], ["Wilhelm Röntgen"])
    assert v.correct is False and v.reason.endswith("token F1 0.80 < 0.90")


def test_em_is_the_default_and_strict() -> None:
    assert (JudgeConfig().qa_match, JudgeConfig().qa_threshold) == ("em", 0.8)
    judge = QAJudge(JudgeConfig())
    verdicts = judge(
        [EAGLES, EAGLES, EAGLES, EAGLES],
        ["super bowl LII", "2017", "The Eagles won Super Bowl LII in 2017.", "Answer: Super Bowl LII."],
    )
    assert [v.correct for v in verdicts] == [True, True, False, True]
    assert verdicts[0].reason == "'super bowl LII': exact match with alias 'Super Bowl LII,'"
    assert verdicts[2].reason.startswith("'The Eagles won Super Bowl LII in 2017': no exact match with any of 2 alias(es)")
    assert verdicts[0].extracted == "super bowl LII" and verdicts[3].extracted == "Super Bowl LII"
    assert (judge.name, judge.version) == ("qa", "3")
