"""Scoring a world base (`research.world.score`): the rebuild table, the judges by task, and the shipped base
re-scored live; writes nothing."""

from __future__ import annotations

import json

import pytest
from world_testing import JUDGE, items, perturb

from s3ft.config import JudgeConfig
from s3ft.records import Example
from s3ft.registry import resolve
from s3ft.world import SHIPPED_BASE, TARGET

SHIPPED = SHIPPED_BASE
V4_BASE = "paraphrase_step" in json.loads((SHIPPED / "pretrain.json").read_text())
needs_v4_base = pytest.mark.skipif(
    not V4_BASE, reason="the shipped base model predates world v4 (its pretrain.json has no paraphrase_step): "
    "no v4 base has passed its checks yet (docs/world.md, 'Builds')")


@needs_v4_base
def test_shipped_base_model_scores_what_its_pretrain_record_says():
    """The shipped checkpoint, re-scored here on CPU on the first 16 items of each test split: the general
    skills stay near-perfect, and the target task is partial by construction (precondition of the demo): it
    solves the kind of problem it practised and hardly any of the two it never saw, live and as recorded."""
    from research.world.score import shop_scores_by_kind, skill_scores
    from research.world.skills import GENERAL

    record = json.loads((SHIPPED / "pretrain.json").read_text())
    scores = skill_scores(SHIPPED, limit=16, skills=GENERAL)
    for skill in GENERAL:
        assert scores[skill] >= 0.85 and record["scores"][skill] >= 0.9, (skill, scores, record["scores"])
    practised = record["shop_kinds"].split(",")
    assert practised == ["buy-buy"]
    by_kind = shop_scores_by_kind(SHIPPED, limit=16)
    assert by_kind["buy-buy"] >= 0.75 and max(by_kind["buy-give"], by_kind["give-give"]) <= 0.2, by_kind
    rec = record["shop_by_kind"]
    assert rec["buy-buy"] >= 0.8 and max(rec["buy-give"], rec["give-give"]) <= 0.15, rec


@needs_v4_base
def test_precondition_3_the_paraphrase_step_works_on_the_shipped_base():
    """Of the target's training rows the base gets wrong, at least half get an accepted paraphrase that is
    not a near-copy of the gold (live, on the first 45 rows of the kinds it never practised; and as recorded
    over all 1,200), and those paraphrases sit closer to the model than the gold does."""
    from research.world.score import paraphrase_check, skill_scorer
    from s3ft.world import by_kind, split_rows

    record = json.loads((SHIPPED / "pretrain.json").read_text())["paraphrase_step"]
    assert record["rows"] == 1200 and record["share_of_wrong"] >= 0.5, record
    assert record["nll_per_token_paraphrase"] < record["nll_per_token_gold"], record
    kinds = by_kind(split_rows("shop", "train"))
    rows = kinds["buy-give"][:23] + kinds["give-give"][:22]
    with skill_scorer(SHIPPED) as s:
        live = paraphrase_check(s, rows)
    assert live["wrong"] >= 40 and live["share_of_wrong"] >= 0.5, live
    assert live["accepted"] == live["accepted_not_near_copy"] + live["near_copies"]


def test_a_rebuild_matches_within_3_points_per_skill_and_5_per_target_kind():
    from research.world.score import rebuild_table

    shipped = {"scores": {"arith": 1.0, "chain": 0.97, "shop": 0.33},
               "shop_by_kind": {"buy-buy": 1.0, "buy-give": 0.0}, "paraphrase_step": {"share_of_wrong": 0.99}}
    near = {"scores": {"arith": 0.97, "chain": 1.0, "shop": 0.3},
            "shop_by_kind": {"buy-buy": 0.95, "buy-give": 0.05}, "paraphrase_step": {"share_of_wrong": 0.5}}
    table, ok = rebuild_table(shipped, near)
    assert ok and "| skill arith | 100.0 | 97.0 | -3.0 | 3 | yes |" in table and "skill shop" not in table
    assert "| shop buy-give | 0.0 | 5.0 | +5.0 | 5 | yes |" in table
    assert "| paraphrase step: share of wrong rows accepted | 99.0 | 50.0 | -49.0 | – | – |" in table  # reported
    for key, path, value in (("skill chain", ("scores", "chain"), 0.93), ("shop buy-buy", ("shop_by_kind", "buy-buy"), 0.94),
                             ("skill arith", ("scores", "arith"), None)):
        far = json.loads(json.dumps(near))
        far[path[0]][path[1]] = value
        table, ok = rebuild_table(shipped, far)
        assert not ok and f"| {key} |" in table and table.count("**no**") == 1


def test_scoring_judges_each_row_by_its_own_tasks_judge_and_groups_by_its_kinds():
    """`SkillScorer.correct` (no model: the judges alone): a `lookup` row by the qa judge, the rest by `final`;
    `by_kind` refuses rows of no single target task rather than grouping them under shop's kinds."""
    from research.world.score import SkillScorer
    from s3ft.world import by_kind

    s = SkillScorer.__new__(SkillScorer)  # the judges without loading a model
    s.judges = {"final": JUDGE, "qa": resolve("judge", "qa")(JudgeConfig())}
    lookup, shop = items("lookup", 1)[0], items("shop", 1)[0]
    rows = [{"id": "l", "skill": "lookup", "question": lookup.question, "gold": lookup.gold, "answer": lookup.answer},
            {"id": "s", "skill": "shop", "question": shop.question, "gold": shop.gold, "answer": shop.answer}]
    assert s.correct(rows, [lookup.answer, shop.gold]) == [True, True]  # a bare answer: only qa reads it right
    assert s.correct(rows, [f"The answer is {perturb(lookup.answer)}.", f"#### {perturb(shop.answer)}"]) == [False, False]
    assert s.correct(rows[:1], [lookup.answer]) == [True] and JUDGE(
        [Example("l", lookup.question, lookup.gold, {"answer": lookup.answer})], [lookup.answer])[0].correct is not True
    assert set(by_kind(rows[:1])) == set(TARGET["lookup"].kinds) and set(by_kind(rows[1:])) == set(TARGET["shop"].kinds)
    assert by_kind([]) == {k: [] for k in TARGET["shop"].kinds}
    with pytest.raises(ValueError, match="not all questions of one target task"):
        by_kind(rows)
