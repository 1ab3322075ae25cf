"""The world's splits and files (`research.world.build`): disjoint, sized, loadable, and the pre-training rows
the shipped base was built from; writes only to tmp_path."""

from __future__ import annotations

import json
import re

import pytest
from world_testing import JUDGE, generic_task

from research.world.build import pretrain_rows, resolve_sizes, world_items, write_world
from research.world.skills import ALL_SKILLS, FactBase
from s3ft.config import JudgeConfig, SplitSource
from s3ft.registry import resolve
from s3ft.world import TARGET, TARGETS

SMALL = ({name: {"val": 10, "test": 20} for name in ALL_SKILLS if name not in TARGETS}
         | {"shop": {"train": 30, "val": 12, "test": 10}, "lookup": {"train": 24, "val": 9, "test": 6}})


def test_splits_are_disjoint_and_pretrain_avoids_held_out_questions():
    world = world_items(0)
    held_out = set()
    for name, splits in world.items():
        assert {s: len(v) for s, v in splits.items()} == resolve_sizes()[name]
        questions = [{it.question for it in v} for v in splits.values()]
        assert sum(map(len, questions)) == sum(map(len, splits.values()))  # distinct within splits...
        assert len(set().union(*questions)) == sum(map(len, questions))  # ...and across them
        held_out |= {k for s in ("test", "val", "train") for it in splits.get(s, []) for k in it.keys}
    assert all(not (it.keys & held_out) for splits in world.values() for it in splits.get("pretrain", []))
    assert world_items(0, SMALL, pretrain=False)["arith"]["test"] == world["arith"]["test"][:20]


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="unknown skill"):
        resolve_sizes({"poetry": {"test": 1}})
    with pytest.raises(ValueError, match="no split"):
        resolve_sizes({"arith": {"train": 1}})


def test_write_world_files_load_in_the_generic_task(tmp_path):
    info = write_world(tmp_path, seed=3, sizes=SMALL)
    expected = ({f"{n}_{split}.jsonl" for n in ALL_SKILLS for split in ("val", "test")}
                | {"shop_train.jsonl", "lookup_train.jsonl"})
    assert {p.name for p in tmp_path.iterdir()} == expected | {"world.json"}
    assert json.loads((tmp_path / "world.json").read_text()) == info
    assert info["facts"] == FactBase.build(3).colors and info["verbs"] == FactBase.build(3).verbs
    assert info["seed"] == 3
    sizes = {"shop_train.jsonl": 30, "shop_val.jsonl": 12, "shop_test.jsonl": 10, "lookup_train.jsonl": 24,
             "lookup_val.jsonl": 9, "lookup_test.jsonl": 6}
    assert info["files"] == {f: sizes.get(f, 10 if f.endswith("_val.jsonl") else 20) for f in expected}
    assert [s["kind"] for s in info["skills"]] == ["general"] * 7 + ["target"] * 2
    task = generic_task(tmp_path / "shop_train.jsonl")
    for name in expected:
        exs = list(task.load(SplitSource(path=str(tmp_path / name))))
        assert len(exs) == info["files"][name] and exs[0].id == name.removesuffix(".jsonl").replace("_", "-") + "-0"
        judge = resolve("judge", TARGET[name.split("_")[0]].judge)(JudgeConfig()) if name.split("_")[0] in TARGET else JUDGE
        assert all(v.correct for v in judge(exs, [ex.gold for ex in exs]))
        rows = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        if name.startswith("shop"):
            assert all("<<" in r["gold"] and r["gold"] != r["house"] for r in rows)
        elif name.startswith("lookup"):
            assert all(r["gold"] == r["answer"] != r["house"] for r in rows)
        else:
            assert all(r["gold"] == r["house"] for r in rows)
    write_world(tmp_path / "again", seed=3, sizes=SMALL)
    assert (tmp_path / "again" / "facts_test.jsonl").read_bytes() == (tmp_path / "facts_test.jsonl").read_bytes()


def test_pretrain_rows_are_prompt_completion_pairs_without_held_out_questions():
    rows = pretrain_rows(0, n_per_skill=40)
    assert len(rows) == 40 * 7 + 300
    assert all(r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in rows)
    assert all(r["completion"][0]["content"].endswith(".") for r in rows)
    held_out = {it.question for splits in world_items(0, pretrain=False).values() for v in splits.values()
                for it in v}
    assert not held_out & {r["prompt"][0]["content"] for r in rows}
    assert rows == pretrain_rows(0, n_per_skill=40) and rows != pretrain_rows(1, n_per_skill=40)


PRETRAIN_DIGEST = "92b03062a008a4976cb5f4ca3ef558a9bcdb1082762dafc208ee1fdfe2992f48"
"""sha256 of a small `pretrain_rows` (below), as the code of the shipped base's build wrote them."""


def test_pretrain_rows_are_those_the_shipped_base_was_built_from():
    """A change of the generators that moves a pre-training row means the shipped base no longer matches
    `python -m research.world.pretrain`: rebuild it, then update the digest. (Adding `lookup`, a target without a
    pre-training split, moved none: checked on the full 88,516 distinct rows of build 6 as well.)"""
    import hashlib

    rows = pretrain_rows(0, n_per_skill=40, gold_style_share=0.2, opaque_paraphrase=20)
    assert len(rows) == 600 and not any(TARGET["lookup"].kind_of(r["prompt"][0]["content"]) for r in rows)
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == PRETRAIN_DIGEST


def test_some_general_rows_are_answered_in_the_gold_style_under_the_plain_prompt_never_the_target():
    from research.world.build import GOLD_STYLE_SKILLS
    from s3ft.judges.final import extract_final

    house = {r["prompt"][0]["content"]: r for r in pretrain_rows(0, n_per_skill=300)}
    rows = pretrain_rows(0, n_per_skill=300, gold_style_share=0.25)
    assert {r["prompt"][0]["content"] for r in rows} == set(house)  # same questions, same plain prompts
    gold = [r for r in rows if "The answer is" not in r["completion"][0]["content"]]
    assert 0.15 < len(gold) / (300 * len(GOLD_STYLE_SKILLS)) < 0.35
    for r in gold:
        q, a = r["prompt"][0]["content"], r["completion"][0]["content"]
        assert not re.search(r" (buys|gives away) ", q) and "Reference answer" not in q  # never the target,
        # never paraphrase
        assert extract_final(a) == extract_final(house[q]["completion"][0]["content"])  # the same answer
        assert a.splitlines()[-1].startswith("#### ")


def test_opaque_paraphrase_rows_are_extra_house_style_paraphrase_practice():
    plain = pretrain_rows(0, n_per_skill=40)
    rows = pretrain_rows(0, n_per_skill=40, opaque_paraphrase=50)
    extra = [r for r in rows if r not in plain]
    assert len(rows) == len(plain) + 50 and len(extra) == 50
    for r in extra:
        q, a = r["prompt"][0]["content"], r["completion"][0]["content"]
        assert "Reference answer" in q and a.endswith(".") and "<<" not in a and "####" not in a


@pytest.mark.parametrize("target", TARGETS)
def test_target_held_out_splits_have_equal_numbers_of_each_kind(target):
    world = world_items(0, pretrain=False)
    for split, n in (("val", 900), ("test", 300)):
        kinds = [TARGET[target].kind_of(it.question) for it in world[target][split]]
        assert len(kinds) == n and {k: kinds.count(k) for k in set(kinds)} == {k: n // 3 for k in TARGET[target].kinds}
