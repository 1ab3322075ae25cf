"""Property-based tests (hypothesis) of the selection rule and the answer extractors of the final, math and QA
judges: what must hold for every input, not only for the tables of cases beside each module's own tests.

Runs are derandomized (the same examples on every run, so CI does not flake) and keep no example database.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from s3ft.config import METHODS, JudgeConfig
from s3ft.judges.final import FinalAnswerJudge, answer_key, extract_final, final_answers, same_answer
from s3ft.judges.math import MathJudge
from s3ft.judges.math import answer_key as math_key
from s3ft.judges.math import final_answers as math_answers
from s3ft.judges.qa import QAJudge, normalize_answer, short_answers, token_f1, token_recall
from s3ft.methods import choose_source
from s3ft.records import Example

PROPS = settings(deadline=None, database=None, derandomize=True, max_examples=150)

# Prose that holds no final-answer marker, no "or" and no sentence end: words, and numbers where asked.
WORDS = ["she", "sold", "clips", "in", "april", "then", "half", "as", "many", "so", "total", "we", "add", "and",
         "get", "first", "apples", "each", "box", "holds", "left", "over", "is", "was"]  # fmt: skip
prose = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
numbers = st.integers(min_value=-10**6, max_value=10**6)
word_answers = st.lists(st.sampled_from(["oslo", "lima", "red", "blue", "b", "c", "neil", "armstrong", "canberra"]),
                        min_size=1, max_size=3).map(" ".join)  # fmt: skip
answers = st.one_of(numbers.map(str), word_answers)
# Text built from the pieces extractors look for, to reach their corners more often than random text does.
PIECES = ["The answer is ", "the answer is: ", "Answer: ", "####", "\\boxed{", "}", "$", " or ", "either ", "7", "-3",
          "1,000", "0.5", ".", "\n", " ", "**", "\\text{ or }", "Oslo", "b", "?", "\\frac{1}{2}", "J. ", "St. "]  # fmt: skip
tricky = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(PIECES), max_size=25).map("".join))
verdicts = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["yes", "True", ""]))


def final_verdict(expected: str, response: str):
    return FinalAnswerJudge().judge_one(Example("x", "q", "g", {"answer": expected}), response)


def math_verdicts(gold: str, responses: list[str]):
    judge = MathJudge(JudgeConfig())
    try:
        return judge([Example("x", "q", f"#### {gold}")] * len(responses), responses)
    finally:
        judge.close()


# --- the selection rule ---------------------------------------------------------------------------------------


@PROPS
@given(st.sampled_from(METHODS), verdicts, verdicts)
def test_only_a_true_verdict_counts_and_only_what_it_approves_is_trained_on(method, self_ok, para_ok):
    source = choose_source(method, self_ok, para_ok)
    assert source == choose_source(method, self_ok is True, para_ok is True)  # None, 1, "yes": not correct
    assert source in ("self", "paraphrase", "gold")
    if source == "self":
        assert self_ok is True and method in ("ssr", "s3ft", "s3ft-k")
    if source == "paraphrase":
        assert para_ok is True and method in ("sdft", "s3ft", "s3ft-k")


@PROPS
@given(verdicts, verdicts, verdicts)
def test_s3ft_k_is_s3ft_but_where_a_correct_sample_was_kept(self_ok, para_ok, sample_ok):
    source = choose_source("s3ft-k", self_ok, para_ok, sample_ok)
    assert source == choose_source("s3ft-k", self_ok is True, para_ok is True, sample_ok is True)
    if source == "self_sample":
        assert self_ok is not True and sample_ok is True
    else:  # no sample kept, or the greedy answer was right: as S3FT
        assert source == choose_source("s3ft", self_ok, para_ok)
    assert choose_source("s3ft", self_ok, para_ok, sample_ok) != "self_sample"  # only s3ft-k trains on samples


@PROPS
@given(st.lists(st.tuples(verdicts, verdicts), max_size=30))
def test_s3ft_is_ssr_where_the_model_was_right_and_sdft_elsewhere(rows):
    pick = {m: [choose_source(m, s, p) for s, p in rows] for m in METHODS}
    assert set(pick["sft"]) <= {"gold"}
    for s3ft, ssr, sdft in zip(pick["s3ft"], pick["ssr"], pick["sdft"], strict=True):
        assert s3ft == (ssr if ssr == "self" else sdft)
    # S3FT trains on the gold only where neither the model's answer nor its paraphrase was judged right
    assert pick["s3ft"].count("gold") == sum(s is not True and p is not True for s, p in rows)


@PROPS
@given(st.sampled_from(METHODS), verdicts, verdicts)
def test_a_verdict_turning_right_never_moves_a_row_back_to_the_gold(method, self_ok, para_ok):
    before = choose_source(method, self_ok, para_ok)
    for after in (choose_source(method, True, para_ok), choose_source(method, self_ok, True)):
        assert before == "gold" or after != "gold"


@PROPS
@given(st.text(max_size=10).filter(lambda m: m not in METHODS), verdicts, verdicts)
def test_an_unknown_method_is_an_error(method, self_ok, para_ok):
    with pytest.raises(ValueError, match="unknown method"):
        choose_source(method, self_ok, para_ok)


# --- the final judge ---------------------------------------------------------------------------------------------


@PROPS
@given(tricky, answers)
def test_final_judge_never_raises_and_is_right_only_on_an_agreed_equal_answer(text, expected):
    v = final_verdict(expected, text)
    assert v.correct in (True, False, None)
    if v.correct is True:
        assert len({answer_key(a) for a in final_answers(text)}) == 1
        assert same_answer(extract_final(text), expected)


@PROPS
@given(prose, answers, st.sampled_from(["The answer is {}.", "the answer is: {}", "\n#### {}", "The answer is {}!"]))
def test_one_final_answer_in_any_form_is_read_back(before, answer, form):
    text = f"{before}. {form.format(answer)}"
    assert same_answer(extract_final(text), answer)
    assert final_verdict(answer, text).correct is True


@PROPS
@given(prose, answers, answers, st.booleans())
def test_two_final_answers_decide_only_when_they_agree(before, a, b, hashes_first):
    forms = [f"The answer is {a}.", f"#### {b}"]
    text = before + "\n" + "\n".join(forms[::-1] if hashes_first else forms)
    for expected in (a, b):
        v = final_verdict(expected, text)
        if same_answer(a, b):
            assert v.correct is True
        else:
            assert v.correct is None and extract_final(text) is None  # whatever the order


@PROPS
@given(prose, answers, answers)
def test_an_or_answer_is_a_hedge(before, a, b):
    assume(not same_answer(a, b))
    for expected in (a, b):
        assert final_verdict(expected, f"{before}. The answer is {a} or {b}.").correct is None


# --- the math judge ----------------------------------------------------------------------------------------------


@PROPS
@given(tricky)
def test_math_answers_never_raise_and_are_distinct(text):
    found = math_answers(text)
    assert all(a and src.startswith(("from", "fallback")) for a, src in found)
    assert len({math_key(a) for a, _ in found}) == len(found)


@PROPS
@given(prose, numbers, st.sampled_from(["The answer is {}.", "#### {}", "So $\\boxed{{{}}}$.", "The answer is ${}."]),
       st.booleans())  # fmt: skip
def test_math_reads_one_final_answer_in_any_form(before, n, form, commas):
    shown = f"{n:,}" if commas else str(n)
    text = f"{before} {form.format(shown)}"
    assert [a.replace(",", "") for a, _ in math_answers(text)] == [str(n)]
    (v,) = math_verdicts(str(n), [text])
    assert v.correct is True, v.reason


@PROPS
@given(prose, numbers, numbers)
def test_math_two_final_answers_are_undecided_unless_equal(before, a, b):
    texts = [f"{before}. The answer is {a}.\n#### {b}", f"#### {b}\n{before}. The answer is {a}."]
    for gold in (a, b):
        for v in math_verdicts(str(gold), texts):
            assert v.correct is (True if a == b else None), v.reason


@PROPS
@given(st.lists(st.tuples(prose, numbers), min_size=1, max_size=6))
def test_math_falls_back_to_the_last_number(parts):
    text = " ".join(f"{words} {n}" for words, n in parts)
    last = parts[-1][1]
    assert math_answers(text) == [(str(last), "fallback: last number in the text")]
    (v,) = math_verdicts(str(last), [text])
    assert v.correct is True


@PROPS
@given(prose, numbers, numbers, st.sampled_from(["The answer is {} or {}.", "It is {} or {}", "#### either {} or {}"]))
def test_math_or_answers_are_undecided(before, a, b, form):
    assume(a != b)
    (v,) = math_verdicts(str(b), [f"{before} {form.format(a, b)}"])
    assert v.correct is None and v.reason.endswith("undecided")


# --- the QA judge ------------------------------------------------------------------------------------------------


@PROPS
@given(st.text(max_size=100))
def test_normalize_is_idempotent(text):
    assert normalize_answer(normalize_answer(text)) == normalize_answer(text)


@PROPS
@given(st.text(max_size=60), st.text(max_size=60))
def test_f1_and_recall_are_bounded_and_f1_symmetric(a, b):
    assert 0.0 <= token_f1(a, b) <= 1.0 and 0.0 <= token_recall(a, b) <= 1.0
    assert token_f1(a, b) == token_f1(b, a)
    if normalize_answer(a) and normalize_answer(a) == normalize_answer(b):
        assert token_f1(a, b) == 1.0 == token_recall(a, b)


@PROPS
@given(tricky)
def test_short_answers_are_non_empty_single_lines(text):
    found = short_answers(text)
    assert all(a and "\n" not in a and a == a.strip() for a in found)
    assert QAJudge(JudgeConfig()).judge_one(Example("x", "q", "g"), text).correct in (True, False, None)


@PROPS
@given(word_answers, st.sampled_from(["{}", "{}.", "The answer is {}.", "Answer: {}", "**{}**\n\nMore text here.",
                                          "Some working first.\n#### {}"]),
       st.sampled_from(["em", "f1", "recall"]))  # fmt: skip
def test_the_short_answer_is_read_back_and_matches_its_alias(alias, form, match):
    text = form.format(alias)
    assert [normalize_answer(a) for a in short_answers(text)] == [normalize_answer(alias)]
    ex = Example("nq-x", "q", alias, {"answers": ["something else", alias]})
    assert QAJudge(JudgeConfig(qa_match=match)).judge_one(ex, text).correct is True


@PROPS
@given(word_answers, word_answers, st.sampled_from(["em", "f1", "recall"]))
def test_qa_or_answers_are_undecided(a, b, match):
    assume(normalize_answer(a) != normalize_answer(b) and not re.search(r"\bor\b", a + " " + b))
    ex = Example("nq-x", "q", b, {"answers": [b]})
    assert QAJudge(JudgeConfig(qa_match=match)).judge_one(ex, f"{a} or {b}").correct is None
