"""Pre-training a world base (`research.world.pretrain`): its batches, its options, and a build killed and
resumed; writes only to tmp_path."""

from __future__ import annotations

import json
import random
import re

import pytest

from research.world.build import pretrain_rows


def test_only_the_shipped_world_seed_is_comparable_with_the_shipped_test_sets():
    from research.world.pretrain import PretrainConfig, world_seed_mismatch

    assert world_seed_mismatch(0) is None
    assert "--train-seed" in world_seed_mismatch(1)
    assert PretrainConfig().seed == 0 and PretrainConfig().train_seed == 0  # the shipped build's seeds


def test_the_base_practises_only_the_shop_kinds_asked_for():
    from research.world.pretrain import keep_shop_kinds
    from s3ft.world import SHOP_KINDS

    rows = pretrain_rows(0, n_per_skill=30)
    shop = [r for r in rows if re.search(r" (buys|gives away) \d", r["prompt"][0]["content"])]
    assert keep_shop_kinds(rows, list(SHOP_KINDS)) == rows
    kept = keep_shop_kinds(rows, ["buy-buy"])
    assert len(rows) - len(kept) == sum(not SHOP_KINDS["buy-buy"].search(r["prompt"][0]["content"]) for r in shop) > 0
    assert all(" buys " in r["prompt"][0]["content"] and " more and then " in r["prompt"][0]["content"]
               for r in kept if r in shop)
    assert any("have now?" in r["prompt"][0]["content"] for r in kept if r not in shop)  # `story` is kept
    with pytest.raises(ValueError, match="unknown kind.*buy-sell"):
        keep_shop_kinds(rows, ["buy-sell"])


def test_per_skill_rows_from_the_command_line():
    import argparse

    from research.world.pretrain import per_skill_arg

    assert per_skill_arg("shop=4500,passage=30000") == {"shop": 4500, "passage": 30000}
    assert per_skill_arg("") == {}
    for bad in ("shopping=3", "shop=many", "shop"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected SKILL=ROWS"):
            per_skill_arg(bad)


def test_length_buckets_keep_every_row_and_cut_padding():
    from research.world.pretrain import bucket_by_length

    rng = random.Random(0)
    rows = list(range(1000))
    lengths = [rng.randint(10, 200) for _ in rows]
    out = bucket_by_length(rows, lengths, 16, 8, random.Random(1))
    assert sorted(out) == rows and out != rows
    assert bucket_by_length(rows, lengths, 16, 0, random.Random(1)) == rows

    def padded(order):
        return sum(16 * max(lengths[i] for i in order[j:j + 16]) for j in range(0, len(order), 16))

    assert padded(out) < 0.8 * padded(rows)
    assert out == bucket_by_length(rows, lengths, 16, 8, random.Random(1))  # seeded


def test_steps_are_random_draws_sorted_within_each_step():
    from research.world.pretrain import sort_within_steps

    rng = random.Random(0)
    lengths = [rng.randint(10, 200) for _ in range(100)]
    order = sort_within_steps(100, lengths, 16, 15, random.Random(1))  # 240 rows: 2.4 passes
    assert len(order) == 240
    first, second = order[:96], order[96:192]  # whole steps within the first two passes
    assert sorted(set(first)) == sorted(first) and first != second
    steps = [order[s:s + 16] for s in range(0, 240, 16)]
    assert all([lengths[i] for i in st] == sorted(lengths[i] for i in st) for st in steps)
    assert len({tuple(sorted(st)) for st in steps}) == 15  # each step its own random draw
    counts = [order.count(i) for i in range(100)]
    assert min(counts) >= 2 and max(counts) <= 3  # every row in every pass
    assert order == sort_within_steps(100, lengths, 16, 15, random.Random(1))  # seeded


def test_a_killed_pre_training_build_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A small build killed after its first checkpoint, run again: it resumes there, ends with the weights of
    the uninterrupted build, and removes its work folder; another config for the unfinished build is refused."""
    import transformers
    import trl

    from research.world.pretrain import PER_SKILL, WORK, PretrainConfig, pretrain

    cfg = PretrainConfig(hidden_size=32, num_layers=1, num_heads=2, vocab_size=400, steps=4, batch_size=8,
                         micro_batch_size=4, save_steps=2, per_skill={s: 20 for s in PER_SKILL})
    whole = pretrain(tmp_path / "whole", cfg, score=False)

    class Kill(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise KeyboardInterrupt  # killed right after its first checkpoint is written

    class Killed(trl.SFTTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.add_callback(Kill())

    with monkeypatch.context() as m:
        m.setattr(trl, "SFTTrainer", Killed)
        with pytest.raises(KeyboardInterrupt):
            pretrain(tmp_path / "resumed", cfg, score=False)
    work = tmp_path / "resumed" / WORK
    assert (work / "train" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    with pytest.raises(SystemExit, match=r"other settings \(steps\)"):
        pretrain(tmp_path / "resumed", PretrainConfig(**{**cfg.__dict__, "steps": 6}), score=False)
    out = pretrain(tmp_path / "resumed", cfg, score=False)
    info = json.loads((out / "pretrain.json").read_text())
    assert info["resumed_from"] == "checkpoint-2" and not work.exists()
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
