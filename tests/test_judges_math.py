"""Math judge on GSM8K- and MATH-style golds: answer extraction, the in-process numeric path, the
math-verify worker path and its timeout (a worker stuck on a pathological expression is killed)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import pytest

import s3ft.judges.math as mj
from s3ft.config import JudgeConfig
from s3ft.judges.math import (
    MathJudge,
    as_number,
    extract_answer,
    extract_answer_with_source,
    final_answers,
    gold_answer,
)
from s3ft.records import Example

NATALIA = Example(
    id="gsm8k-0",
    question=(
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?"
    ),
    gold=(
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
    ),
)
BETTY = Example(
    id="gsm8k-1",
    question=(
        "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
        "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her "
        "parents. How much more money does Betty need to buy the wallet?"
    ),
    gold=(
        "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\n"
        "Betty's grandparents gave her 15 * 2 = $<<15*2=30>>30.\n"
        "This means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.\n#### 5"
    ),
)
SALARY = Example(
    id="gsm8k-2", question="How much does he earn in a year?", gold="12 * 90 = <<12*90=1080>>1080\n#### 1080"
)
MATH_HALF = Example(
    id="math-0",
    question="If $2x = 1$, what is $x$?",
    gold="Dividing both sides by 2 gives $x = \\boxed{\\frac{1}{2}}$.",
)
MATH_POLY = Example(id="math-1", question="Expand $(x+1)^2 - 2x$.", gold="...", meta={"answer": "x^2+1"})
HANG = Example(id="math-2", question="Compute it.", gold="It is $\\boxed{9^{9^{9}}}$.")


@pytest.mark.parametrize(
    ("text", "answer", "source"),
    [
        ("She sold 24 in May, so 48 + 24 = 72 in total. The answer is 72.", "72", "The answer is"),
        ("Half of 100 is 50. The final answer is $5$.", "5", "The answer is"),
        ("He earns 12 * 90 = 1,080 a year. The answer is $1,080.", "1,080", "The answer is"),
        ("**The answer is 18**", "18", "The answer is"),
        ("The answer is: **18 dollars**.", "18", "The answer is"),
        ("The answer is 3? No wait, 4 * 2 = 8. The answer is 8.", "8", "The answer is"),
        (
            "The final answer is $\\boxed{\\frac{1}{2}}$. I hope it is correct.",
            "\\frac{1}{2}",
            "The answer is",
        ),
        ("So the answer is:\n\n$$\n\\boxed{72}\n$$", "72", "The answer is"),
        ("48 + 24 = <<48+24=72>>72\n#### 72", "72", "####"),
        (
            "We get $\\boxed{2}$ first, then $x = \\boxed{\\frac{\\sqrt{3}}{2}}$ overall.",
            "\\frac{\\sqrt{3}}{2}",
            "boxed",
        ),
        ("The answer is 5. Check: $\\boxed{6}$", "5", "The answer is"),
        ("#### 12\n\\boxed{13}", "12", "####"),
        ("She has 3 apples, then buys 4, so she has 7 apples now", "7", "fallback"),
        ("Prices went from 2020-2021 up by -3.5 points", "-3.5", "fallback"),
        ("From 1,000 she spends 250", "250", "fallback"),
    ],
)
def test_extract_answer(text: str, answer: str, source: str) -> None:
    assert extract_answer(text) == answer
    assert source in extract_answer_with_source(text)[1]


@pytest.mark.parametrize("text", ["", "I am not sure how to solve this.", "\\boxed{}"])
def test_extract_answer_none(text: str) -> None:
    assert extract_answer(text) is None


def test_gold_answer() -> None:
    assert gold_answer(NATALIA) == "72"
    assert gold_answer(MATH_HALF) == "\\frac{1}{2}"
    assert gold_answer(MATH_POLY) == "x^2+1"  # meta["answer"] wins over the gold text
    assert gold_answer(Example(id="x", question="q", gold="\\frac{3}{4}")) == "\\frac{3}{4}"  # a bare answer
    assert gold_answer(Example(id="x", question="q", gold="", meta={"answer": 7})) == "7"


@pytest.mark.parametrize(
    ("text", "value"),
    [("72", 72), ("72.00", 72), ("72.", 72), ("1,000", 1000), ("-0.5", Fraction(-1, 2)), (".25", Fraction(1, 4)),
     ("50%", 50), ("50\\%", 50), ("1{,}000", 1000), ("\\frac{1}{2}", None), ("1,00", None), ("x", None),
     ("1e2", 100), ("1.5E3", 1500), ("2.5e-1", Fraction(1, 4)), ("-3e+2", -300), ("1e", None), ("e2", None),
     ("1e2000", None)],
)  # fmt: skip
def test_as_number(text: str, value) -> None:
    assert as_number(text) == value


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a, **k):
        raise AssertionError("plain numbers must not need a math-verify worker")

    monkeypatch.setattr(mj.WorkerPool, "verify", fail)


def test_numbers_compared_in_process(no_workers: None) -> None:
    cases = [
        (NATALIA, "Natalia sold 48 / 2 = 24 clips in May, so 48 + 24 = 72 in total. The answer is 72.", True),
        (NATALIA, "The answer is 72.00", True),
        (NATALIA, "48 + 48 / 2 = 96 clips.\n#### 96", False),
        (BETTY, "She still needs 100 - 50 - 15 - 30 = $5. The answer is $5.", True),
        (SALARY, "He earns 12 * 90 = $1,080 per year. The answer is $1,080.", True),
        (SALARY, "The final answer is $\\boxed{1080}$.", True),
        (SALARY, "He makes 90 a month, 1080 in a year", True),
        (SALARY, "I cannot work this out.", False),
    ]
    verdicts = MathJudge(JudgeConfig())([c[0] for c in cases], [c[1] for c in cases])
    assert [v.correct for v in verdicts] == [c[2] for c in cases]
    assert verdicts[0].reason == "extracted 72 (from 'The answer is'), gold 72: equal"
    assert verdicts[0].extracted == "72"
    assert verdicts[2].reason == "extracted 96 (from '####'), gold 72: not equal"
    assert verdicts[4].extracted == "1,080"
    assert "fallback" in verdicts[6].reason
    assert verdicts[7].reason == "no final answer found" and verdicts[7].extracted is None


SEVEN = Example(id="x-7", question="q", gold="#### 7")
NINE = Example(id="x-9", question="q", gold="#### 9")
FOURTEEN = Example(id="x-14", question="q", gold="#### 14")

# (example, prediction, verdict): several final answers, hedges, and what is not a conflict.
UNDECIDED = [
    (NINE, "The answer is 7.\n#### 9", None),  # the old rule read 7 ("The answer is" first)
    (SEVEN, "The answer is 7.\n#### 9", None),
    (NINE, "#### 9\nThe answer is 7.", None),
    (SEVEN, "The answer is 5. Check: $\\boxed{7}$", None),
    (FOURTEEN, "#### 12\n\\boxed{14}", None),
    (NATALIA, "The answer is 3? No wait, 48 + 24 = 72. The answer is 72.", None),
    (NATALIA, "The answer is 70.\n#### 71", None),  # both wrong, still two answers
    (NATALIA, "The answer is 71 or 72.", None),
    (NATALIA, "The answer is either 72 or 73.", None),
    (NATALIA, "#### 72 or 73", None),
    (NATALIA, "It is 71 or 72", None),  # no explicit answer: the fallback sees the hedge too
    (NATALIA, "The answer is 72.\n#### 72", True),
    (NATALIA, "The answer is 72. Checking: 48 + 24 = 72, so the answer is 72.00.", True),
    (SALARY, "The answer is $1,080.\n#### 1080", True),
    (SALARY, "The final answer is $\\boxed{1080}$.", True),  # "The answer is" and \\boxed read one answer
    (NATALIA, "The answer is 70.\n#### 70", False),  # two answers that agree, and are wrong
    (FOURTEEN, "So 3 + 4 = 7, then 7 * 2 = 14", True),  # the fallback is kept: the last number
    (SEVEN, "So 3 + 4 = 7, then 7 * 2 = 14", False),
    (NATALIA, "She has 48 or more clips in April and 72 in all", True),  # an "or" between no two answers
]


@pytest.mark.parametrize(("ex", "text", "correct"), UNDECIDED)
def test_several_or_hedged_final_answers_are_undecided(no_workers: None, ex: Example, text: str, correct) -> None:
    (v,) = MathJudge(JudgeConfig())([ex], [text])
    assert v.correct is correct, v.reason
    assert v.reason.endswith("undecided") == (correct is None)


def test_undecided_reasons(no_workers: None) -> None:
    judge = MathJudge(JudgeConfig())
    v, h, fb = judge([NINE, NATALIA, NATALIA], ["The answer is 7.\n#### 9", "The answer is 71 or 72.", "It is 71 or 72"])
    assert v.reason == "2 final answers, disagree (gold 9): 7 (from 'The answer is'); 9 (from '####'): undecided"
    assert v.extracted is None
    assert h.reason == "extracted 71 or 72 (from 'The answer is'), a hedge between 71, 72, gold 72: undecided"
    assert h.extracted == "71 or 72" and fb.extracted == "71 or 72" and "fallback" in fb.reason
    assert final_answers("The answer is 72.\n#### 72.00\n\\boxed{72}") == [("72", "from 'The answer is'")]


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="1 examples but 0 predictions"):
        MathJudge(JudgeConfig())([NATALIA], [])


@pytest.fixture(scope="module")
def symbolic() -> Iterator[list]:
    cases = [
        (MATH_HALF, "So $x = \\boxed{0.5}$."),
        (MATH_HALF, "The answer is 0.5."),
        (MATH_HALF, "The answer is $\\frac{2}{3}$."),
        (MATH_POLY, "Expanding gives $x^2 + 2x + 1 - 2x$, so the answer is $1 + x^2$."),
        (MATH_POLY, "The answer is $x^2 - 1$."),
        (MATH_HALF, "The answer is $\\frac{1}{2}$.\n#### 0.5"),  # two forms of one answer
        (MATH_HALF, "The answer is $\\frac{1}{2}$.\n#### 0.6"),  # one right, one wrong: undecided
    ]
    judge = MathJudge(JudgeConfig(workers=2, timeout_s=20.0))
    yield judge([c[0] for c in cases], [c[1] for c in cases])
    judge.close()


def test_math_verify_equivalence(symbolic: list) -> None:
    assert [v.correct for v in symbolic] == [True, True, False, True, False, True, None]
    assert symbolic[0].reason == "extracted 0.5 (from \\boxed), gold \\frac{1}{2}: equivalent (math-verify)"
    assert symbolic[2].reason.endswith("not equivalent (math-verify)")
    assert symbolic[3].extracted == "1 + x^2"
    assert symbolic[5].reason.startswith("2 final answers, each equal to gold")
    assert symbolic[6].reason.startswith("2 final answers, disagree")


def test_timeout_kills_the_worker_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list = []

    class Recorded(mj._Worker):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    monkeypatch.setattr(mj, "_Worker", Recorded)
    judge = MathJudge(JudgeConfig(workers=1, timeout_s=2.0))
    # math-verify compares 9^(9^9) with 5 for minutes: only our own timeout can end it.
    verdicts = judge([HANG, MATH_HALF], ["The answer is 5.", "The answer is $\\frac{2}{4}$."])
    assert verdicts[0].correct is None and verdicts[0].reason.startswith("timeout after 2.0s")
    assert verdicts[1].correct is True  # judged by the worker started in place of the killed one
    assert len(started) == 2 and started[0].proc.returncode == -9 and started[1].proc.poll() is None
    (again,) = judge([MATH_POLY], ["The answer is $x^2+1+0$."])  # the idle worker is reused
    assert again.correct is True and len(started) == 2
    judge.close()
    assert started[1].proc.returncode == 0  # told to stop, it exited by itself
