"""World v5's generators and build (docs/world_v5.md): every answer in every style is read right by the final
judge, the paraphrase voice is never a near-copy of a house style or the gold, the target's kinds are
balanced, the base never reads "gives away", and the build checks read a record as written."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from research.world.v5.build import PRETRAIN, SPLITS, held_out, pretrain_rows, row
from research.world.v5.checks import CHECKS, base_checks, style_of
from research.world.v5.skills import make_skills
from research.world.v5.styles import HOUSE, REFERENCE_STYLES, STYLES, preferred
from s3ft.judges.final import FinalAnswerJudge
from s3ft.nearcopy import NEAR_COPY, similarity
from s3ft.records import Example
from s3ft.world import SHOP_V5_KINDS, kind_of_v5

pytestmark = pytest.mark.unit
JUDGE = FinalAnswerJudge(None)
SKILLS = make_skills(0)


def sample(name: str, n: int = 60, seed: int = 1) -> list:
    rng = random.Random(seed)
    return [SKILLS[name].sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", ["arith", "chain", "reverse", "passage", "facts", "story", "shop"])
def test_every_style_of_every_skill_is_judged_right_and_wrong_answers_are_not(name):
    for item in sample(name):
        styles = [s for s in STYLES if s in item.answers]
        verdicts = JUDGE([Example("x", item.question, item.gold, {"answer": item.answer})] * len(styles),
                         [item.answers[s] for s in styles])
        assert all(v.correct is True for v in verdicts), (item.question, [v.reason for v in verdicts])
        assert style_of(item.answers["gold"]) == "gold"
        if name in ("arith", "chain", "story", "shop"):  # the worked styles are told apart by their marks
            assert [style_of(item.answers[s]) for s in (*HOUSE, "ref")] == [*HOUSE, "ref"], item.answers


@pytest.mark.parametrize("name", ["arith", "chain", "story", "shop"])
def test_the_paraphrase_voice_is_no_near_copy_of_a_house_style_or_the_gold(name):
    for item in sample(name):
        for s in (*HOUSE, "gold"):
            assert similarity(item.answers["ref"], item.answers[s]) < NEAR_COPY - 0.1, (s, item.answers)


def test_the_target_kinds_are_balanced_and_told_apart_by_question():
    test = held_out(0)["shop"]["test"]
    assert len(test) == SPLITS["shop"]["test"]
    assert Counter(it.kind for it in test[:8]) == {k: 2 for k in SHOP_V5_KINDS}  # every prefix balanced
    assert all(kind_of_v5(it.question) == it.kind for it in test)
    ops = {it.kind: (it.answers["gold"].count(" + "), it.answers["gold"].count(" - ")) for it in test}
    assert set(ops) == set(SHOP_V5_KINDS)


def test_the_base_never_reads_gives_away_and_no_held_out_question():
    rows = pretrain_rows(0, 1, sizes={k: max(1, n // 50) for k, n in PRETRAIN.items()})
    held = {k for splits in held_out(0).values() for items in splits.values() for it in items for k in it.keys}
    texts = [r["prompt"][0]["content"] for r in rows]
    assert not any("gives away" in t or "giving away" in t.lower() for t in texts
                   + [r["completion"][0]["content"] for r in rows])
    assert not any(t in held for t in texts)
    shop = [t for r, t in zip(rows, texts, strict=True) if r["skill"] == "shop"]
    assert shop and all(kind_of_v5(t) == "buy-buy" for t in shop)
    styles = Counter(style_of(r["completion"][0]["content"]) for r in rows if r["skill"] in ("chain", "story"))
    assert set(styles) == {*HOUSE, "gold"} and styles["gold"] < min(styles[s] for s in HOUSE)


def test_style_draws_depend_on_the_pretraining_seed_items_on_the_world_seed():
    small = {k: 20 for k in PRETRAIN}
    a, b = pretrain_rows(0, 1, small), pretrain_rows(0, 2, small)
    assert sorted(r["prompt"][0]["content"] for r in a) == sorted(r["prompt"][0]["content"] for r in b)
    assert sorted(r["completion"][0]["content"] for r in a) != sorted(r["completion"][0]["content"] for r in b)


def test_preferred_styles_cover_the_names_and_rows_carry_every_reference_style():
    from research.world.skills.vocabulary import NAMES

    assert set(Counter(preferred(n) for n, _ in NAMES)) == set(HOUSE)
    r = row("shop", "test", 0, sample("shop", 1)[0])
    assert set(r["references"]) == set(REFERENCE_STYLES) and r["kind"] in SHOP_V5_KINDS


def test_build_checks_read_a_record():
    record = {"val": {"arith": 0.95, "chain": 0.7, "reverse": 0.65, "passage": 0.8, "facts": 0.5, "story": 0.6,
                      "paraphrase": 0.9},
              "target_by_kind": {"buy-buy": 0.9, "buy-give": 0.1, "give-buy": 0.05, "give-give": 0.2},
              "target_styles": {"so": 0.3, "step": 0.4, "we": 0.3},
              "paraphrase": {"share_apart": 0.8, "share_accepted": 0.7}}
    assert base_checks(record)["passed"]
    record["target_by_kind"]["give-buy"] = 0.6  # a base that guessed what "gives away" does
    checks = base_checks(record)
    assert not checks["passed"] and not checks["C2 unknown kinds"]["holds"]
    assert CHECKS["unknown_max"] == 0.35
