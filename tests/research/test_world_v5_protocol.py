"""World v5's settings protocol on a stand-in base: SFT alone per setting, scored on the validation split, the
pre-registered rule, and the chosen setting written where the demo config can take it (never into the package)."""

from __future__ import annotations

import json

import yaml

from research.world.v5.protocol import GRID, grid


def test_the_grid_runs_sft_alone_on_validation_and_writes_the_choice(tiny_model_dir, tmp_path):
    settings = [{"mode": "lora", "lora_r": 2, "lora_alpha": 4, "learning_rate": 1e-3, "epochs": 1},
                {"mode": "full", "learning_rate": 1e-4, "epochs": 1}]
    extra = ["data.train.limit=8", "data.test.limit=8", "generate.max_new_tokens=8", "train.batch_size=4"]
    summary = grid(tmp_path / "g", str(tiny_model_dir), settings, extra)
    assert [r["name"] for r in summary["results"]] == ["lora-r2-lr0.001-ep1", "full-lr0.0001-ep1"]
    for r in summary["results"]:
        assert r["n"] == 8 and set(r["by_kind"]) == {"buy-buy", "buy-give", "give-buy", "give-give"}
        run = tmp_path / "g" / r["name"]
        assert not (run / "07_train" / "ssr").exists()  # SFT alone
        data = [json.loads(line) for line in (run / "01_data" / "test.jsonl").read_text().splitlines()]
        assert all(d["id"].startswith("shop-val-") for d in data)  # the validation split, never the test split
    assert (tmp_path / "g" / "grid.md").read_text().startswith("| setting | val % |")
    if summary["chosen"]:
        assert yaml.safe_load((tmp_path / "g" / "chosen.yaml").read_text())["train"]["mode"] in ("lora", "full")
    assert len(GRID) == 7


def test_the_replication_scores_every_test_item_of_the_frozen_config():
    from research.world.v5.replicate import full_size_overrides
    from s3ft.config import load_config
    from s3ft.demo import V5_CONFIG

    demo = load_config(V5_CONFIG)
    full = load_config(V5_CONFIG, full_size_overrides(len(demo.evaluate.general)))
    assert demo.data.test.limit == 150 and {g.source.limit for g in demo.evaluate.general} == {60}
    assert full.data.test.limit is None and {g.source.limit for g in full.evaluate.general} == {None}
    assert full.train == demo.train and full.method == demo.method  # the demo's frozen setting, unchanged
