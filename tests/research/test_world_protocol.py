"""The world's settings protocol (`research.world.protocol`): the rule, the base checks, a shortened grid on
the shipped base, precondition 1 live, the chosen setting and its record; writes only to tmp_path."""

from __future__ import annotations

import json

import pytest
import yaml

from research.world.protocol import (
    GRID,
    choose,
    chosen_train,
    config_task_mismatch,
    failed_base_checks,
    frozen_setting,
    grid_markdown,
    kept_kind_train,
    record_in_base,
)
from research.world.score import base_checks
from research.world.skills import ALL_SKILLS
from s3ft.config import load_config
from s3ft.world import FULL_LR_MAX, KEEP_MARGIN, KEPT_KIND, LORA_SHARE_MAX, SHIPPED_BASE, TARGET, task_config

DEMO_CONFIG = task_config("shop")


@pytest.mark.parametrize("gold", ["kept kind only", pytest.param("all", marks=pytest.mark.slow)])
def test_precondition_1_fine_tuning_keeps_the_kind_the_shipped_base_solves(tmp_path, gold):
    """Precondition 1, live at the frozen demo setting on the shipped base, through the protocol's own run:
    SFT on the 400 gold rows of the kind the base practised (the check builds 4 and 5 failed; about a
    minute), and on all 1,200 (marked slow: three), each loses at most 5 points of that kind, here on the
    first 64 buy-buy validation problems (as recorded, on all 300)."""
    from research.world.protocol import sft_run
    from s3ft.world import shipped_split, target

    val = tmp_path / "val_kept.jsonl"
    lines = [line for line in shipped_split("shop", "val").read_text().splitlines()
             if target("shop").kind_of(json.loads(line)["question"]) == KEPT_KIND][:64]
    val.write_text("".join(line + "\n" for line in lines))
    train = str(kept_kind_train(tmp_path)) if gold == "kept kind only" else None
    r = sft_run(tmp_path, "p1", frozen_setting(DEMO_CONFIG), None, train, [f"data.test.path={val}"])
    base = r["base"]["by_kind"][KEPT_KIND]
    assert r["n"] == r["base"]["n"] == 64 and base >= 0.95, r  # the base solves it (the recorded 100% on 300)
    assert r["by_kind"][KEPT_KIND] >= base - KEEP_MARGIN, r
    recorded = json.loads((SHIPPED_BASE / "pretrain.json").read_text())["protocol"]["precondition_1"]
    assert recorded["holds"] is True and min(recorded["sft_all_gold"], recorded[f"sft_{KEPT_KIND}_gold_only"]) >= (
        recorded["base"] - KEEP_MARGIN), recorded


def test_settings_rule_keeps_the_base_kind_then_best_accuracy_then_the_cheaper_setting():
    def result(name, acc, kept, mode="full", lr=1e-4, epochs=1):
        return {"name": name, "accuracy": acc, "by_kind": {"buy-buy": kept, "buy-give": 0, "give-give": 0},
                "setting": {"mode": mode, "learning_rate": lr, "epochs": epochs}}

    best_but_forgets = result("a", 0.80, 0.80)  # base keeps 0.90: 10 points lost, not eligible
    assert choose([best_but_forgets], 0.90) is None
    runs = [best_but_forgets, result("b", 0.60, 0.86), result("c", 0.595, 0.90, "lora", 3e-3, 1),
            result("d", 0.605, 0.88, epochs=2), result("e", 0.50, 0.95)]
    assert choose(runs, 0.90)["name"] == "c"  # b, c, d tie within a point: 1 epoch, then LoRA first
    assert choose(runs[:2] + runs[3:], 0.90)["name"] == "b"
    assert choose([result("x", 0.5, 0.9, lr=3e-5), result("y", 0.5, 0.9, lr=1e-5)], 0.9)["name"] == "y"
    # the grid holds only small updates: LoRA r 1, or full fine-tuning at learning rates up to 1e-4, the bounds
    # of precondition 5 as the demo summary states it
    assert all(s.get("lora_r") == 1 if s["mode"] == "lora" else s["learning_rate"] <= 1e-4 for s in GRID)
    assert max(s["learning_rate"] for s in GRID if s["mode"] == "full") == FULL_LR_MAX and LORA_SHARE_MAX == 0.01


def test_base_checks_read_what_record_measured_and_the_protocol_refuses_a_failed_base(tmp_path):
    scores = {"scores": {s: 0.95 for s in ALL_SKILLS} | {"shop": 0.3, "lookup": 0.0},
              "shop_by_kind": {"buy-buy": 0.91, "buy-give": 0.0, "give-give": 0.2},
              "paraphrase_step": {"share_of_wrong": 0.5}}
    checks = base_checks(scores)
    assert checks["passed"] and "skill shop" not in checks  # the target's overall score is no check
    assert "skill lookup" not in checks  # nor the second target's: it never gates the first task's protocol
    assert checks["shop give-give"] == {"value": 0.2, "bound": "<= 0.2", "ok": True}
    for key, path, value in [("skill arith", ("scores", "arith"), 0.89), ("shop buy-buy", ("shop_by_kind", "buy-buy"), 0.69),
                             ("shop buy-give", ("shop_by_kind", "buy-give"), 0.21),
                             ("paraphrase share_of_wrong", ("paraphrase_step", "share_of_wrong"), None)]:
        bad = json.loads(json.dumps(scores))
        bad[path[0]][path[1]] = value
        failed = base_checks(bad)
        assert not failed["passed"] and [k for k, c in failed.items() if k != "passed" and not c["ok"]] == [key]

    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": base_checks(bad)}))
    assert failed_base_checks(tmp_path) == ["paraphrase share_of_wrong None (>= 0.5)"]
    assert failed_base_checks(tmp_path, "lookup") == []  # a shop check: not lookup's to refuse
    worse = json.loads(json.dumps(bad))
    worse["scores"]["facts"] = 0.5
    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": base_checks(worse)}))
    assert failed_base_checks(tmp_path, "lookup") == ["skill facts 0.5 (>= 0.9)"]
    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": checks}))
    assert failed_base_checks(tmp_path) == []
    (tmp_path / "pretrain.json").write_text("{}")  # scored before the checks existed
    assert failed_base_checks(tmp_path) == []


def test_settings_protocol_runs_sft_on_validation_and_checks_precondition_1(tmp_path, monkeypatch):
    """The protocol's code path on the shipped base, shortened (two settings, a few rows): every setting's
    validation accuracy per kind, the base's, the choice by the rule, and precondition 1 at the choice (the
    rule itself: test_settings_rule_...; here it is made to pick the first setting, so that precondition 1
    always runs on so few rows)."""
    from research.world import protocol
    from research.world.protocol import grid

    rule = protocol.choose
    monkeypatch.setattr(protocol, "choose", lambda results, base_kept, kept="buy-buy": rule(results, base_kept, kept) or results[0])

    settings = [{"mode": "full", "learning_rate": 1e-5, "epochs": 1},
                {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 1e-3, "epochs": 1}]
    summary = grid(tmp_path, settings=settings, extra_overrides=["data.train.limit=16", "data.test.limit=12"])
    assert [r["name"] for r in summary["grid"]] == ["full-lr1e-05-ep1", "lora-r1-lr0.001-ep1"]
    for r in summary["grid"]:
        assert r["n"] == 12 and set(r["by_kind"]) == {"buy-give", "buy-buy", "give-give"}
    assert summary["grid"][0]["trainable_share_non_embedding"] == 1.0
    assert 0 < summary["grid"][1]["trainable_share_non_embedding"] <= 0.01  # LoRA r 1: under 1%
    chosen = next(r for r in summary["grid"] if r["name"] == summary["chosen"])
    p = summary["precondition_1"]
    assert p["base"] == summary["base"]["by_kind"][KEPT_KIND] and p["sft_all_gold"] == chosen["by_kind"][KEPT_KIND]
    only = protocol.validation_scores(tmp_path / f"{chosen['name']}-{KEPT_KIND}-only", "sft")
    assert p[f"sft_{KEPT_KIND}_gold_only"] == only["by_kind"][KEPT_KIND]
    assert p["holds"] is (min(p["sft_all_gold"], p[f"sft_{KEPT_KIND}_gold_only"]) >= p["base"] - KEEP_MARGIN - 1e-9)
    kept = [json.loads(line)["question"] for line in (tmp_path / f"shop_train_{KEPT_KIND}.jsonl").open()]
    assert kept and all(" buys " in q and "gives away" not in q for q in kept)
    assert f"Precondition 1 ({KEPT_KIND}, validation)" in (tmp_path / "grid.md").read_text()
    assert (tmp_path / "grid.md").read_text().startswith("| setting |")


def test_the_chosen_setting_is_printed_as_the_demo_configs_train_keys(tmp_path):
    """The chosen setting as YAML `train:` keys, with a comment naming the grid: written into a copy of the demo
    config (as a user freezes it), the copy loads with that setting and every other key as before."""
    lora = {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 3e-3, "epochs": 2}
    summary = {"chosen": "lora-r1-lr0.003-ep2", "grid": [{"name": "lora-r1-lr0.003-ep2", "setting": lora}]}
    text = chosen_train(summary, "grids/v4/grid.json")
    assert text.startswith("# chosen by the world's protocol: lora-r1-lr0.003-ep2 (grids/v4/grid.json)\n")
    assert yaml.safe_load(text) == {"train": lora}
    config = tmp_path / "world.yaml"
    frozen = yaml.safe_load(DEMO_CONFIG.read_text())
    frozen["train"].update(yaml.safe_load(text)["train"])
    config.write_text(yaml.safe_dump(frozen))
    cfg = load_config(config)
    assert (cfg.train.mode, cfg.train.lora_r, cfg.train.lora_alpha, cfg.train.learning_rate, cfg.train.epochs) == (
        "lora", 1, 2, 3e-3, 2)
    assert cfg.train.batch_size == 16 and cfg.train.max_length == 256 and cfg.method == ["sft", "ssr", "sdft", "s3ft"]
    assert frozen_setting(config) == lora  # what --frozen reads back
    full = {"mode": "full", "learning_rate": 1e-5, "epochs": 1}
    assert yaml.safe_load(chosen_train({"chosen": "f", "grid": [{"name": "f", "setting": full}]}, "g.json")) == {
        "train": full}
    with pytest.raises(SystemExit, match="no setting was chosen"):
        chosen_train({"chosen": None, "grid": []}, "g.json")


def test_the_frozen_setting_is_read_from_the_demo_config_and_the_outcome_recorded_in_the_base(tmp_path):
    cfg = load_config(DEMO_CONFIG)
    lora_keys = {"lora_r": cfg.train.lora_r, "lora_alpha": cfg.train.lora_alpha} if cfg.train.mode == "lora" else {}
    assert frozen_setting(DEMO_CONFIG) == {"mode": cfg.train.mode, "learning_rate": cfg.train.learning_rate,
                                           "epochs": cfg.train.epochs, **lora_keys}
    (tmp_path / "pretrain.json").write_text(json.dumps({"steps": 3000}))
    summary = {"rule": "frozen: ...", "chosen": "full-lr0.0001-ep2", "precondition_1": {"holds": True},
               "grid": [{"name": "full-lr0.0001-ep2", "setting": {"mode": "full"}}]}
    record_in_base(summary, tmp_path, "g/grid.json")
    info = json.loads((tmp_path / "pretrain.json").read_text())
    assert info == {"steps": 3000, "protocol": {"grid": "g/grid.json", "rule": "frozen", "chosen": "full-lr0.0001-ep2",
                                                "setting": {"mode": "full"}, "precondition_1": {"holds": True}}}


def test_the_second_tasks_protocol_keeps_its_own_record_kind_and_training_rows(tmp_path):
    """`--task lookup`: its kept kind (`direct`), its kept-kind training rows, its outcome under its own key of
    the base's pretrain.json (the first task's stays); the demo reading it back: test_demo."""
    rows = [json.loads(line) for line in kept_kind_train(tmp_path, "lookup").read_text().splitlines()]
    assert 300 < len(rows) < 500 and all(TARGET["lookup"].kind_of(r["question"]) == "direct" for r in rows)
    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": {"passed": True}, "protocol": {"chosen": "x"}}))
    p1 = {"base": 0.8, "sft_all_gold": 0.9, "sft_direct_gold_only": 0.7, "holds": False}
    record_in_base({"task": "lookup", "rule": "...", "chosen": "c", "precondition_1": p1,
                    "grid": [{"name": "c", "setting": {"mode": "full", "learning_rate": 1e-4, "epochs": 2}}]},
                   tmp_path, "g.json")
    info = json.loads((tmp_path / "pretrain.json").read_text())
    assert info["protocol"] == {"chosen": "x"} and info["protocol_lookup"]["precondition_1"] == p1
    md = grid_markdown({"kept_kind": "direct", "base": {"accuracy": 0.2, "by_kind": {"direct": 0.4}}, "grid": [],
                        "chosen": None, "precondition_1": {**p1, "base": 0.4, "base_solves": False}})
    assert "The base does not solve direct (40.0% on validation, under 70%)" in md and "does NOT hold" in md


def test_the_protocol_writes_only_under_its_out_dir_and_records_in_a_base_only_when_asked(tmp_path):
    """`--record` needs `--base`; without `--record` the base's pretrain.json is never written (the shipped
    base's least of all)."""
    from research.world.protocol import main

    with pytest.raises(SystemExit):
        main([str(tmp_path / "out"), "--record"])  # no --base: refused before anything runs
    assert not (tmp_path / "out").exists()


def test_the_protocol_refuses_a_config_of_another_task():
    assert config_task_mismatch(task_config("lookup"), "lookup") is None
    assert config_task_mismatch(task_config("shop"), "shop") is None
    assert "trains on shop_train.jsonl, not lookup_train.jsonl" in config_task_mismatch(task_config("shop"), "lookup")
