"""The demo's multi-seed summary (pure functions) and the shipped world config."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3ft.config import PACKAGE_DIR, load_config
from s3ft.demo import DEMO_CONFIG, summarize, summary_markdown, summary_plot


def report(gain_sft, gain_s3ft, forget_sft, forget_s3ft):
    def method(gain, forget):
        return {"accuracy": 0.4 + gain, "accuracy_delta_vs_base": gain, "general_mean_delta_vs_base": forget,
                "general_delta_vs_base": {"arith": forget}, "composition": {"percent": {"self": 50.0}},
                "target_nll_per_token": 1.5}

    return {"task": "generic", "model": "m", "base": {"accuracy": 0.4, "general": {"arith": 0.9}},
            "methods": {"sft": method(gain_sft, forget_sft), "s3ft": method(gain_s3ft, forget_s3ft)}}


def test_summary_mean_and_spread_over_seeds(tmp_path):
    s = summarize({0: report(0.10, 0.20, -0.30, -0.10), 1: report(0.20, 0.20, -0.10, -0.10)})
    assert s["seeds"] == [0, 1]
    assert s["methods"]["sft"]["gain"] == {"mean": 0.15, "std": 0.0707, "n": 2}
    assert s["methods"]["sft"]["general_change"]["mean"] == -0.2
    assert s["methods"]["s3ft"]["general_change"] == {"mean": -0.1, "std": 0.0, "n": 2}
    assert s["methods"]["sft"]["general_change_by_skill"]["arith"]["mean"] == -0.2
    md = summary_markdown(s)
    assert "| sft | +15.0 ± 7.1 | -20.0 ± 14.1 | -20.0 ± 14.1 | 50.0 |" in md
    summary_plot(s, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_verdict_names_the_direction_and_judges_it_against_the_spread():
    from s3ft.demo import verdict

    s = summarize({0: report(0.10, 0.20, -0.30, -0.10), 1: report(0.20, 0.20, -0.10, -0.10)})
    v = verdict(s)
    # forgetting: s3ft -10.0 ± 0.0 vs sft -20.0 ± 14.1 -> 10 pts less, within the spread (14.1)
    assert "general-skill change -10.0 ± 0.0 vs -20.0 ± 14.1 pts, so S3FT forgot less than SFT by 10.0 pts" in v
    assert "not clear: within the seeds' spread, 14.1" in v
    # gain: s3ft +20.0 ± 0.0 vs sft +15.0 ± 7.1 -> 5 pts more, within 7.1
    assert "so S3FT did better in-domain than SFT by 5.0 pts (not clear" in v
    worse = verdict(summarize({0: report(0.10, 0.0, -0.10, -0.30), 1: report(0.10, 0.0, -0.11, -0.31)}))
    assert "S3FT forgot more than SFT by 20.0 pts (clear" in worse and "did worse in-domain" in worse
    same = verdict(summarize({0: report(0.1, 0.2, -0.1, -0.1), 1: report(0.1, 0.2, -0.1, -0.1)}))
    assert "so S3FT did the same as SFT (not clear" in same
    assert "no spread" in verdict(summarize({0: report(0.1, 0.2, -0.3, -0.1)}))
    assert verdict({"methods": {"sft": {}}}) is None


def test_summary_reads_forgetting_from_the_harness_when_it_scored_the_base():
    r = report(0.1, 0.2, -0.3, -0.1)  # own general sets say -30 / -10 points
    r["base"]["benchmarks"] = {"s3ft_world_arith": 1.0, "s3ft_world_facts": 0.5}
    for m, d in (("sft", {"s3ft_world_arith": -0.4, "s3ft_world_facts": -0.2}), ("s3ft", {"s3ft_world_arith": 0.0,
                                                                                          "s3ft_world_facts": -0.1})):
        r["methods"][m].update(benchmarks_delta_vs_base=d, benchmarks_mean_delta_vs_base=sum(d.values()) / 2)
    s = summarize({0: r})
    assert s["general_from"] == "lm-evaluation-harness" and s["base_general"] == r["base"]["benchmarks"]
    assert round(s["methods"]["sft"]["general_change"]["mean"], 4) == -0.3
    assert s["methods"]["s3ft"]["general_change_by_skill"]["s3ft_world_facts"]["mean"] == -0.1
    assert "| sft | +10.0 | -30.0 | -40.0 | -20.0 |" in summary_markdown(s)
    assert summarize({0: report(0.1, 0.2, -0.3, -0.1)})["general_from"] == "evaluate.general"


def test_single_seed_has_no_spread():
    s = summarize({3: report(0.1, 0.2, -0.3, -0.1)})
    assert s["methods"]["sft"]["gain"]["std"] is None
    assert "| sft | +10.0 | -30.0 |" in summary_markdown(s)


WORLD_TASKS = [f"s3ft_world_{s}" for s in ("arith", "chain", "reverse", "passage", "facts", "story", "paraphrase")]


def test_world_config_resolves_package_paths():
    cfg = load_config(DEMO_CONFIG)
    assert cfg.model.path == f"{PACKAGE_DIR}/data/world_model"
    assert cfg.evaluate.general == [] and cfg.evaluate.forgetting.tasks == ["s3ft_world"]
    assert cfg.evaluate.forgetting.apply_chat_template  # the world's model answers in its chat template
    assert cfg.data.test.split == "test" and cfg.method == ["sft", "ssr", "sdft", "s3ft"]


def test_override_indexes_lists():
    cfg = load_config(DEMO_CONFIG, ["method.3=sdft", "evaluate.forgetting.tasks.0=s3ft_world_arith"])
    assert cfg.method == ["sft", "ssr", "sdft"] and cfg.evaluate.forgetting.tasks == ["s3ft_world_arith"]
    import pytest

    from s3ft.errors import ConfigError

    with pytest.raises(ConfigError, match="not an index"):
        load_config(DEMO_CONFIG, ["method.9=sft"])


def test_shortened_demo_through_the_cli(tmp_path):
    """`s3ft demo` on the shipped base model, shortened (few rows, one epoch, SFT and S3FT only: every method
    runs through the CLI in test_e2e), two seeds; general skills through lm-evaluation-harness, as the shipped
    config scores them."""
    import json
    import os
    import subprocess
    import sys

    from s3ft.rundir import stage_root
    from s3ft.world import setting_of

    short = ["method=[sft, s3ft]", "data.train.limit=48", "data.test.limit=24", "train.epochs=1", "train.batch_size=16",
             "evaluate.forgetting.limit=16", "evaluate.curve.points=2", "evaluate.curve.in_domain.limit=12",
             *[f"evaluate.curve.general.{i}.source.limit=4" for i in range(7)]]
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--seeds", "0,1", "--run-dir", str(tmp_path / "w"),
                        *short], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and set(summary["methods"]) == {"sft", "s3ft"}
    for m in summary["methods"].values():
        assert m["gain"]["n"] == 2 and m["general_change"]["n"] == 2
        assert set(m["general_change_by_skill"]) == set(WORLD_TASKS)
    base = summary["base_general"]
    assert summary["general_from"] == "lm-evaluation-harness" and set(base) == set(WORLD_TASKS)
    assert all(0 <= acc <= 1 for acc in base.values()), base
    assert base["s3ft_world_facts"] >= 0.8, base  # a skill the shipped base model has learned
    assert "scored through lm-evaluation-harness" in (tmp_path / "w" / "summary.md").read_text()
    assert (tmp_path / "w" / "summary.png").read_bytes()[:4] == b"\x89PNG"
    s3ft = json.loads((stage_root(tmp_path / "w" / "seed-0", "select") / "s3ft" / "stats.json").read_text())
    assert s3ft["composition"]["counts"]["self"] > 0  # the base model solves some target problems itself
    md = (tmp_path / "w" / "summary.md").read_text()
    assert "Paraphrase step (S3FT): of the" in md and "of the base model's non-embedding weights" in md
    assert "Time per stage, all seeds (s): " in md and summary["seconds_by_stage"]["train"] > 0
    assert set(summary["accuracy_by_kind"]) == {"base", "sft", "s3ft"}
    assert summary["curves"] == {"seed": 0, "plot": "seed-0/09_report/curves.png"}  # seed 0 only
    assert (tmp_path / "w" / "seed-0" / "09_report" / "curves.png").is_file()
    assert not (tmp_path / "w" / "seed-1" / "09_report" / "curves.png").exists()
    # the shipped base is a world base: the protocol's preconditions, 1 as recorded in its pretrain.json at the
    # frozen setting; where that is not this shortened run's (1 epoch), not known here
    pre, frozen = summary["preconditions"], load_config(DEMO_CONFIG).train
    assert list(pre) == ["1", "2", "3", "4", "5"] and "- Precondition 2, SFT learns the task" in md
    assert summary["train_setting"] == {**setting_of(frozen), "epochs": 1}
    if frozen.epochs != 1:
        assert pre["1"]["holds"] is None and "not this run's setting" in pre["1"]["measured"]
    assert "identical_training_sets" not in summary  # SFT trains on gold, S3FT mostly on the base's own answers


def test_shortened_demo_of_the_second_task_through_the_cli(tmp_path):
    """`s3ft demo --task lookup`: the same pipeline on the open-answer task, judged by the qa judge."""
    import json
    import os
    import subprocess
    import sys

    from s3ft.rundir import read_jsonl, stage_root
    from s3ft.world import SHIPPED_BASE, task_config

    short = ["method=[sft, s3ft]", "data.train.limit=32", "data.test.limit=12", "train.epochs=1", "train.batch_size=16",
             "evaluate.forgetting.limit=8", "evaluate.curve=null"]
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--task", "lookup", "--seeds", "0", "--run-dir",
                        str(tmp_path / "w"), *short], capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["world_task"] == "lookup" and set(summary["methods"]) == {"sft", "s3ft"}
    assert set(summary["accuracy_by_kind"]["base"]) == {"direct", "via-coat", "via-city"}
    run = tmp_path / "w" / "seed-0"
    assert {r["id"].split("-")[0] for r in read_jsonl(stage_root(run, "data") / "test.jsonl")} == {"lookup"}
    verdicts = read_jsonl(stage_root(run, "judge") / "rows.jsonl")  # the qa judge's reasons, never final's
    assert len(verdicts) == 32 and not any(v["reason"].startswith("extracted ") for v in verdicts), verdicts[:2]
    # precondition 1 as the protocol recorded it in the shipped base's pretrain.json, where this shortened run
    # trains at the frozen setting (lookup's is one epoch); else not known here
    frozen = load_config(task_config("lookup")).train
    recorded = json.loads((SHIPPED_BASE / "pretrain.json").read_text())["protocol_lookup"]
    assert summary["preconditions"]["1"]["holds"] == (recorded["precondition_1"]["holds"] if frozen.epochs == 1
                                                      else None)
    assert "Test accuracy by kind of target problem" in (tmp_path / "w" / "summary.md").read_text()


def test_summary_states_the_trainable_share_and_the_paraphrase_step():
    r = report(0.1, 0.2, -0.3, -0.1)
    r["methods"]["s3ft"].update(composition={"n": 100, "counts": {"self": 40, "paraphrase": 36, "gold": 24},
                                             "percent": {}, "near_copies": 2},
                                paraphrase_vs_gold_nll_per_token={"rows": 36, "paraphrase": 0.25, "gold": 0.9},
                                train={"trainable_share_non_embedding": 0.0057})
    md = summary_markdown(summarize({0: r}))
    assert "Training updates 0.57% of the base model's non-embedding weights" in md
    assert ("of the 60 training rows the base model got wrong, 36 (60.0%) train on an accepted paraphrase of the "
            "gold; 2 accepted paraphrases nearly copied the gold and train as the gold. Under the base model, those "
            "paraphrases cost 0.250 nats/token against 0.900 for the same rows' gold.") in md


def test_accuracy_by_kind_of_target_problem(tmp_path):
    from s3ft.demo import accuracy_by_kind
    from s3ft.rundir import stage_root, write_jsonl

    questions = {"a": "Ada has 3 pens. She buys 2 more and then 1 more. How many pens does she have now?",
                 "b": "Ben has 9 pens. He gives away 2 and then 1 more. How many pens does he have now?",
                 "c": "Cy has 9 pens. He buys 2 more and gives away 1. How many pens does he have now?"}
    runs = []
    for seed, right in ((0, {"a": True, "b": False, "c": True}), (1, {"a": True, "b": True, "c": False})):
        run = tmp_path / f"seed-{seed}"
        write_jsonl(stage_root(run, "data") / "test.jsonl", [{"id": i, "question": q} for i, q in questions.items()])
        for m in ("base", "sft"):
            write_jsonl(stage_root(run, "evaluate") / m / "verdicts.jsonl",
                        [{"id": i, "correct": ok if m == "sft" else i == "a"} for i, ok in right.items()])
        runs.append(run)
    by_kind = accuracy_by_kind(runs, ["base", "sft"])
    assert by_kind == {"base": {"buy-give": 0.0, "buy-buy": 1.0, "give-give": 0.0},
                       "sft": {"buy-give": 0.5, "buy-buy": 1.0, "give-give": 0.5}}
    write_jsonl(stage_root(runs[0], "data") / "test.jsonl", [{"id": "a", "question": "What is 2 + 2?"}])
    assert accuracy_by_kind(runs, ["base"]) is None  # not the world's target task


def test_accuracy_by_kind_of_the_second_target_task(tmp_path):
    from s3ft.demo import accuracy_by_kind, task_of
    from s3ft.rundir import stage_root, write_jsonl

    passage = "Passage: Ada lives in Rome. Ada has 3 pens. Ada's coat is red. Ben has 5 pens. Ben's coat is blue. Ben lives in Oslo."
    questions = {"a": f"{passage} Question: Where does Ben live?",
                 "b": f"{passage} Question: Where does the person with the red coat live?",
                 "c": f"{passage} Question: What color is the coat of the person who lives in Oslo?"}
    run = tmp_path / "seed-0"
    write_jsonl(stage_root(run, "data") / "test.jsonl", [{"id": i, "question": q} for i, q in questions.items()])
    write_jsonl(stage_root(run, "evaluate") / "sft" / "verdicts.jsonl",
                [{"id": "a", "correct": True}, {"id": "b", "correct": False}, {"id": "c", "correct": True}])
    assert task_of([run]) == "lookup"
    assert accuracy_by_kind([run], ["sft"]) == {"sft": {"direct": 1.0, "via-coat": 0.0, "via-city": 1.0}}
    other = tmp_path / "other"
    write_jsonl(stage_root(other, "data") / "test.jsonl", [{"id": "a", "question": "Ada has 3 pens. She buys 2 "
                                                           "more and then 1 more. How many pens does she have now?"}])
    assert task_of([other]) == "shop" and task_of([run, other]) is None  # runs of two tasks: no one task


def test_the_second_tasks_config_differs_from_the_first_only_in_its_data_and_judge():
    from s3ft.world import task_config

    shop, lookup = load_config(task_config("shop")), load_config(task_config("lookup"))
    assert task_config("shop") == DEMO_CONFIG
    assert (lookup.data.judge, shop.data.judge) == ("qa", "final")
    assert Path(lookup.data.train.path).name == "lookup_train.jsonl" and Path(lookup.data.train.path).is_file()
    assert Path(lookup.evaluate.curve.in_domain.path).name == "lookup_val.jsonl"
    same = ("model", "generate", "paraphrase", "method")
    assert all(getattr(lookup, k) == getattr(shop, k) for k in same)
    if "chosen by the world's protocol" not in task_config("lookup").read_text():  # until its own protocol runs
        assert lookup.train == shop.train
    assert lookup.evaluate.forgetting == shop.evaluate.forgetting
    assert lookup.evaluate.curve.general == shop.evaluate.curve.general
    with pytest.raises(ValueError, match="unknown world task 'poetry'"):
        task_config("poetry")


def test_summary_states_each_precondition_of_the_protocol_for_a_world_base(tmp_path):
    """Precondition 1 from the base's pretrain.json (what the protocol recorded there), 2-5 from the demo's
    own numbers, each with its bound; a base with no world record gets no precondition section."""
    import json

    from s3ft.world import preconditions

    runs = {0: report(0.12, 0.2, -0.02, -0.1), 1: report(0.06, 0.2, -0.03, -0.1)}  # SFT: +9 points, -2.5
    for r in runs.values():
        r["model"] = str(tmp_path)
        r["methods"]["s3ft"].update(composition={"n": 10, "counts": {"self": 2, "paraphrase": 4, "gold": 4},
                                                 "percent": {}, "near_copies": 0},
                                    train={"trainable_share_non_embedding": 1.0})
    s = summarize(runs)
    s["train_setting"] = {"mode": "full", "learning_rate": 1e-4, "epochs": 2}
    assert preconditions(s) is None  # no pretrain.json: not a world base
    record = {"checks": {"passed": True}, "protocol": {"precondition_1": {
        "base": 1.0, "sft_all_gold": 0.9567, "sft_buy-buy_gold_only": 0.7, "holds": False}}}
    (tmp_path / "pretrain.json").write_text(json.dumps(record))
    p = preconditions(s)
    assert list(p) == ["1", "2", "3", "4", "5"]
    assert p["1"]["holds"] is False and "on buy-buy gold only 70.0%" in p["1"]["measured"]
    assert p["2"]["holds"] is False and p["2"]["measured"] == "+9.0 points" and "mean of 2 seeds" in p["2"]["what"]
    assert p["3"] == {**p["3"], "measured": "4 of 8 (50.0%)", "holds": True}
    assert p["4"]["holds"] is False and "-2.5 points, a loss smaller than 3 points" in p["4"]["measured"]
    assert p["5"]["holds"] is True and "100.00% of the non-embedding weights" in p["5"]["measured"]
    s["train_setting"]["learning_rate"] = 1e-3  # full fine-tuning above the grid's rates
    assert preconditions(s)["5"]["holds"] is False
    s["preconditions"] = p
    md = summary_markdown(s)
    assert "- Precondition 1, fine-tuning keeps the kind the base solves" in md and md.count("**does not hold**") == 3
    gained = summarize({0: report(0.2, 0.2, 0.05, 0.0)} | {1: report(0.2, 0.2, 0.03, 0.0)})
    gained["model"] = str(tmp_path)
    assert preconditions(gained)["4"]["holds"] is False  # SFT gained general points: no forgetting to measure
    assert "SFT forgets nothing here" in preconditions(gained)["4"]["measured"]
    # precondition 1 measured at another setting than this run's: not known, and said so
    record["protocol"]["setting"] = {"mode": "full", "learning_rate": 1e-4, "epochs": 2}
    (tmp_path / "pretrain.json").write_text(json.dumps(record))
    s["train_setting"] = {"mode": "full", "learning_rate": 1e-4, "epochs": 1}
    assert preconditions(s)["1"]["holds"] is None
    assert "at full-lr0.0001-ep2, not this run's setting" in preconditions(s)["1"]["measured"]
    s["train_setting"]["epochs"] = 2
    assert preconditions(s)["1"]["holds"] is False
    record["protocol"] = {"chosen": None, "precondition_1": None}  # the grid kept the base's kind nowhere
    (tmp_path / "pretrain.json").write_text(json.dumps(record))
    assert preconditions(s)["1"] == {**preconditions(s)["1"], "holds": False,
                                     "measured": "no setting of the grid kept buy-buy"}
    del record["protocol"]
    (tmp_path / "pretrain.json").write_text(json.dumps(record))
    assert preconditions(s)["1"]["holds"] is None and "not measured" in preconditions(s)["1"]["measured"]


def test_the_second_tasks_preconditions_read_its_own_record_in_the_base(tmp_path):
    """`--task lookup`'s outcome, under its own key of the base's pretrain.json (the protocol writes it there:
    tests/research/test_world_protocol.py), read back by its demo's precondition 1."""
    import json

    from s3ft.world import preconditions

    p1 = {"base": 0.8, "sft_all_gold": 0.9, "sft_direct_gold_only": 0.7, "holds": False}
    info = {"checks": {"passed": True}, "protocol": {"chosen": "x"},
            "protocol_lookup": {"setting": {"mode": "full", "learning_rate": 1e-4, "epochs": 2}, "precondition_1": p1}}
    (tmp_path / "pretrain.json").write_text(json.dumps(info))
    s = summarize({0: report(0.1, 0.2, -0.02, -0.01)})
    s["model"], s["train_setting"] = str(tmp_path), {"mode": "full", "learning_rate": 1e-4, "epochs": 2}
    pre = preconditions(s, "lookup")["1"]
    assert pre["holds"] is False and "on direct gold only 70.0%" in pre["measured"] and "(direct," in pre["what"]
    info["protocol_lookup"]["precondition_1"] = {**p1, "base": 0.4, "base_solves": False}  # no kind to keep
    (tmp_path / "pretrain.json").write_text(json.dumps(info))
    assert "the base does not solve direct: under 70%" in preconditions(s, "lookup")["1"]["measured"]
    del info["protocol_lookup"]
    (tmp_path / "pretrain.json").write_text(json.dumps(info))
    assert "--task lookup" in preconditions(s, "lookup")["1"]["measured"]


def test_methods_whose_training_sets_are_identical_in_every_seed_are_named_together(tmp_path):
    from s3ft.demo import identical_training_sets
    from s3ft.rundir import stage_root, write_jsonl

    def rows(targets, source):
        return [{"id": str(i), "prompt": [{"role": "user", "content": f"q{i}"}],
                 "completion": [{"role": "assistant", "content": t}], "source": source} for i, t in enumerate(targets)]

    runs = [tmp_path / "seed-0", tmp_path / "seed-1"]
    for run in runs:
        sel = stage_root(run, "select")
        write_jsonl(sel / "sft" / "train.jsonl", rows(["gold a", "gold b"], "gold"))
        write_jsonl(sel / "sdft" / "train.jsonl", rows(["mine a", "mine b"], "paraphrase"))
        write_jsonl(sel / "s3ft" / "train.jsonl", rows(["mine a", "mine b"], "self"))  # provenance may differ
    assert identical_training_sets(runs, ["sft", "sdft", "s3ft", "ssr"]) == [["sdft", "s3ft"]]  # ssr: no set
    write_jsonl(stage_root(runs[1], "select") / "s3ft" / "train.jsonl", rows(["mine a", "mine b"], "self")[::-1])
    assert identical_training_sets(runs, ["sft", "sdft", "s3ft"]) == []  # same rows, another order: another model
    write_jsonl(stage_root(runs[1], "select") / "s3ft" / "train.jsonl", rows(["mine a", "mine c"], "self"))
    assert identical_training_sets(runs, ["sft", "sdft", "s3ft"]) == []  # one seed differs: not the same


def test_where_s3ft_forgot_names_its_largest_losses_only_when_it_did_not_clearly_forget_less():
    from s3ft.demo import where_s3ft_forgot

    def seeds(sft_by, s3ft_by):
        out = {}
        for i, jitter in enumerate((0.0, 0.01)):
            r = report(0.1, 0.1, 0.0, 0.0)
            for m, by in (("sft", sft_by), ("s3ft", s3ft_by)):
                d = {k: v - jitter for k, v in by.items()}
                r["methods"][m].update(general_delta_vs_base=d, general_mean_delta_vs_base=sum(d.values()) / len(d))
            r["base"]["general"] = {k: 1.0 for k in sft_by}
            out[i] = r
        return summarize(out)

    # S3FT loses as much as SFT, on other skills: its two losses are named, largest first, beside SFT's
    s = seeds({"story": -0.2, "chain": -0.1, "facts": 0.0}, {"story": -0.4, "chain": -0.27, "facts": 0.0})
    line = where_s3ft_forgot(s)
    assert line.startswith("S3FT did not forget clearly less than SFT.")
    assert "story -40.5 ± 0.7 (SFT -20.5 ± 0.7), chain -27.5 ± 0.7 (SFT -10.5 ± 0.7)." in line
    assert "facts" not in line and "50.0% self" in line  # facts -0.5 ± 0.7: within its spread, not a loss
    assert "predictions.jsonl" not in line  # no learning curves in this summary
    s["curves"] = {"seed": 0, "plot": "seed-0/09_report/curves.png"}
    assert "seed-0/08_evaluate/s3ft/curve/" in where_s3ft_forgot(s)
    assert where_s3ft_forgot(s) in summary_markdown(s)
    # S3FT clearly forgot less: nothing to locate
    clear = seeds({"story": -0.3, "chain": -0.2}, {"story": -0.05, "chain": 0.0})
    assert where_s3ft_forgot(clear) is None and "did not forget clearly less" not in summary_markdown(clear)
    # nothing lost at all, or no SFT to compare with
    assert where_s3ft_forgot(seeds({"story": 0.0}, {"story": 0.0})) is None
    assert where_s3ft_forgot({"methods": {"s3ft": {}}}) is None


def test_the_summary_shows_self_samples_when_s3ft_k_ran():
    r = report(0.1, 0.2, -0.3, -0.1)
    assert "self sample %" not in summary_markdown(summarize({0: r}))  # the four methods alone: as before
    r["methods"]["s3ft-k"] = {**r["methods"]["s3ft"], "composition": {"percent": {"self": 50.0, "self_sample": 10.0,
                                                                                   "paraphrase": 30.0, "gold": 10.0}}}
    md = summary_markdown(summarize({0: r}))
    assert "| self % | self sample % | paraphrase % | gold % |" in md
    assert "| s3ft-k | +20.0 | -10.0 | -10.0 | 50.0 | 10.0 | 30.0 | 10.0 | 1.500 |" in md
    assert "| sft | +10.0 | -30.0 | -30.0 | 50.0 | – | – | – | 1.500 |" in md
