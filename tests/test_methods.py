"""Tests of the methods' one rule: which target each example trains on, and what each method needs."""

from __future__ import annotations

import itertools

import pytest

from s3ft.config import METHODS
from s3ft.methods import METHOD_NEEDS, choose_source, needs_generation, paraphrase_scope

VERDICTS = (True, False, None)


def expected(method: str, self_ok: bool | None, para_ok: bool | None) -> str:
    """The module docstring's table, written out by hand; None counts as not correct."""
    table = {
        # (self correct, paraphrase correct) -> source
        "sft": {(s, p): "gold" for s in (1, 0) for p in (1, 0)},
        "ssr": {(1, 1): "self", (1, 0): "self", (0, 1): "gold", (0, 0): "gold"},
        "sdft": {(1, 1): "paraphrase", (1, 0): "gold", (0, 1): "paraphrase", (0, 0): "gold"},
        "s3ft": {(1, 1): "self", (1, 0): "self", (0, 1): "paraphrase", (0, 0): "gold"},
        "s3ft-k": {(1, 1): "self", (1, 0): "self", (0, 1): "paraphrase", (0, 0): "gold"},  # no correct sample
    }
    return table[method][(int(self_ok is True), int(para_ok is True))]


@pytest.mark.parametrize("method,self_ok,para_ok", list(itertools.product(METHODS, VERDICTS, VERDICTS)))
def test_choose_source_full_table(method, self_ok, para_ok):
    assert choose_source(method, self_ok, para_ok) == expected(method, self_ok, para_ok)


@pytest.mark.parametrize("self_ok,para_ok,sample_ok", list(itertools.product(VERDICTS, VERDICTS, VERDICTS)))
def test_s3ft_k_takes_a_correct_sample_before_the_paraphrase(self_ok, para_ok, sample_ok):
    want = ("self" if self_ok is True else "self_sample" if sample_ok is True
            else "paraphrase" if para_ok is True else "gold")
    assert choose_source("s3ft-k", self_ok, para_ok, sample_ok) == want
    assert choose_source("s3ft", self_ok, para_ok, sample_ok) == expected("s3ft", self_ok, para_ok)  # s3ft ignores it


def test_choose_source_spot_checks():
    assert choose_source("s3ft", None, True) == "paraphrase"  # undecided answer is never trained on
    assert choose_source("s3ft", True, None) == "self"
    assert choose_source("ssr", None, None) == "gold"
    assert choose_source("sdft", True, None) == "gold"
    assert choose_source("sdft", True, True) == "paraphrase"


def test_choose_source_unknown_method():
    with pytest.raises(ValueError, match="s4ft"):
        choose_source("s4ft", True, True)


def test_every_config_method_has_needs():
    assert set(METHOD_NEEDS) == set(METHODS)


@pytest.mark.parametrize(
    "methods,gen,scope",
    [
        (["sft"], False, None),
        (["ssr"], True, None),
        (["sdft"], False, "all"),
        (["s3ft"], True, "wrong"),
        (["sft", "ssr"], True, None),
        (["sft", "sdft"], False, "all"),
        (["s3ft", "sdft"], True, "all"),
        (["sdft", "s3ft"], True, "all"),
        (["ssr", "s3ft"], True, "wrong"),
        (["sft", "ssr", "sdft", "s3ft"], True, "all"),
        (["s3ft-k"], True, "unrecovered"),  # only the wrong rows no sample recovered
        (["sft", "s3ft-k"], True, "unrecovered"),
        (["s3ft", "s3ft-k"], True, "wrong"),  # the union: s3ft paraphrases every wrong row
        (["s3ft-k", "sdft"], True, "all"),
        ([], False, None),
    ],
)
def test_needs_generation_and_paraphrase_scope(methods, gen, scope):
    assert needs_generation(methods) is gen
    assert paraphrase_scope(methods) == scope
