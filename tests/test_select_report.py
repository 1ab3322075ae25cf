"""Tests of the select and report stages on a hand-built run directory, with a fake NLL backend.

Six GSM8K examples with every combination that matters (the paraphrase stage ran with scope `all`):

| ex | self verdict  | paraphrase                 | sft  | ssr  | sdft       | s3ft       |
|----|---------------|----------------------------|------|------|------------|------------|
| 0  | True          | accepted, correct          | gold | self | paraphrase | self       |
| 1  | False         | accepted, correct          | gold | gold | paraphrase | paraphrase |
| 2  | None          | rejected (verdict False)   | gold | gold | gold       | gold       |
| 3  | False         | accepted, undecided (None) | gold | gold | gold       | gold       |
| 4  | True          | none                       | gold | self | gold       | self       |
| 5  | none (no row) | accepted, correct          | gold | gold | paraphrase | paraphrase |
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from s3ft.config import DataConfig, SplitSource, load_config
from s3ft.pipeline import save_config
from s3ft.rundir import Rows, read_json, read_jsonl, stage_root, write_json_atomic, write_jsonl
from s3ft.stages import report, select
from s3ft.tasks.gsm8k import GSM8K

FIX = Path(__file__).parent / "fixtures"
TRAIN = str(FIX / "gsm8k_train.jsonl")
PNG = b"\x89PNG\r\n\x1a\n"

SELF = {0: True, 1: False, 2: None, 3: False, 4: True}
PARA = {0: True, 1: True, 2: False, 3: None, 5: True}
SOURCES = {
    "sft": ["gold"] * 6,
    "ssr": ["self", "gold", "gold", "gold", "self", "gold"],
    "sdft": ["paraphrase", "paraphrase", "gold", "gold", "gold", "paraphrase"],
    "s3ft": ["self", "paraphrase", "gold", "gold", "self", "paraphrase"],
}
# the fake backend's (summed NLL, tokens) for a target, by source
SCORES = {"self": (2.0, 4), "paraphrase": (3.0, 2), "gold": (12.0, 3)}


class FakeBackend:
    """Scores a completion by its source (read from its text); records every completion scored."""

    def __init__(self):
        self.scored: list[str] = []
        self.calls = 0

    def nll(self, prompts, completions):
        assert len(prompts) == len(completions) <= 4
        self.calls += 1
        self.scored += completions
        return [SCORES[source_of(c)] for c in completions]


def source_of(text: str) -> str:
    return "self" if text.startswith("SELF") else "paraphrase" if text.startswith("PARA") else "gold"


def make_run(tmp_path: Path, methods=("sft", "ssr", "sdft", "s3ft"), nll=True, **raw):
    cfg = load_config(
        raw={
            "run_dir": str(tmp_path / "run"),
            "method": list(methods),
            "data": {"task": "gsm8k", "train": {"path": TRAIN}},
            "select": {"nll": nll},
            "model": {"path": "fake/model"},
            **raw,
        }
    )
    run_dir = Path(cfg.run_dir)
    save_config(cfg)  # as every run does first: the report reads the run directory, config.yaml included
    task = GSM8K(DataConfig(train=SplitSource(path=TRAIN)))
    examples = list(task.load(cfg.data.train))[:6]
    write_jsonl(stage_root(run_dir, "data") / "train.jsonl", (e.to_dict() for e in examples))
    ids = [e.id for e in examples]
    write_jsonl(
        stage_root(run_dir, "generate") / "rows.jsonl",
        ({"id": i, "prediction": f"SELF answer {n}"} for n, i in enumerate(ids)),
    )
    write_jsonl(
        stage_root(run_dir, "judge") / "rows.jsonl",
        (
            {"id": ids[n], "correct": c, "reason": f"self reason {n}", "extracted": str(n)}
            for n, c in SELF.items()
        ),
    )
    write_jsonl(
        stage_root(run_dir, "paraphrase") / "rows.jsonl",
        (
            {"id": ids[n], "paraphrase": f"PARA rewrite {n}", "rejected": "mentions /x/" if n == 2 else None}
            for n in PARA
        ),
    )
    write_jsonl(
        stage_root(run_dir, "judge_paraphrase") / "rows.jsonl",
        (
            {"id": ids[n], "correct": c, "reason": f"para reason {n}", "extracted": None}
            for n, c in PARA.items()
        ),
    )
    backend = FakeBackend()
    ctx = SimpleNamespace(
        cfg=cfg,
        task=task,
        run_dir=run_dir,
        model_ref="model-A",
        chunk=4,  # NLLs are scored this many at a time
        stage_dir=lambda stage: stage_root(run_dir, stage),
        backend=lambda: backend,
        scorer=lambda: backend,
        fake=backend,
        examples=examples,
    )
    return ctx


def run_select(ctx, method: str) -> tuple[dict, list[dict], dict]:
    out = ctx.stage_dir("select") / method
    counts = select.run(ctx, out, method)
    return counts, read_jsonl(out / "train.jsonl"), read_json(out / "stats.json")


@pytest.fixture
def ctx(tmp_path):
    return make_run(tmp_path)


@pytest.mark.parametrize("method", ["sft", "ssr", "sdft", "s3ft"])
def test_select_targets_and_provenance(ctx, method):
    counts, rows, stats = run_select(ctx, method)
    want = SOURCES[method]
    assert [r["source"] for r in rows] == want
    assert counts == {"rows": 6, **{s: want.count(s) for s in ("self", "paraphrase", "gold")}}
    assert stats["method"] == method and stats["composition"]["n"] == 6
    assert stats["composition"]["counts"] == {s: want.count(s) for s in ("self", "paraphrase", "gold")}
    for n, (ex, row) in enumerate(zip(ctx.examples, rows, strict=True)):
        assert row["id"] == ex.id
        assert row["prompt"] == ctx.task.prompt(ex)
        assert row["prompt"][0]["role"] == "user" and ex.question in row["prompt"][0]["content"]
        text = {
            "self": f"SELF answer {n}",
            "paraphrase": f"PARA rewrite {n}",
            "gold": ctx.task.gold_target(ex),
        }[row["source"]]
        assert row["completion"] == [{"role": "assistant", "content": text}]
        if row["source"] == "gold":
            assert "The answer is " in text and "####" not in text and "<<" not in text
        if n in SELF:
            assert row["self_verdict"] == {
                "correct": SELF[n],
                "reason": f"self reason {n}",
                "extracted": str(n),
            }
        else:
            assert row["self_verdict"] is None
        if n in PARA:
            assert row["paraphrase_verdict"] == {
                "correct": PARA[n],
                "reason": f"para reason {n}",
                "extracted": None,
            }
        else:
            assert row["paraphrase_verdict"] is None


def test_select_percent_and_token_weighted_nll(ctx):
    _, rows, stats = run_select(ctx, "s3ft")
    comp = stats["composition"]
    assert comp["percent"] == {"self": 33.33, "paraphrase": 33.33, "gold": 33.33}
    assert [(r["target_nll"], r["target_tokens"]) for r in rows] == [SCORES[s] for s in SOURCES["s3ft"]]
    # self 2x(2.0, 4) + paraphrase 2x(3.0, 2) + gold 2x(12.0, 3): 34 nats / 18 tokens
    # (the unweighted mean of per-row means would be (0.5 + 1.5 + 4.0) / 3 = 2.0)
    assert stats["target_nll_per_token"] == pytest.approx(round(34 / 18, 4))
    assert stats["target_nll_per_token_by_source"] == {"self": 0.5, "paraphrase": 1.5, "gold": 4.0}

    _, _, ssr = run_select(ctx, "ssr")  # self 2x(2.0, 4) + gold 4x(12.0, 3): 52 / 20
    assert ssr["composition"]["percent"] == {"self": 33.33, "paraphrase": 0.0, "gold": 66.67}
    assert ssr["target_nll_per_token"] == 2.6
    assert ssr["target_nll_per_token_by_source"] == {"self": 0.5, "paraphrase": None, "gold": 4.0}


def test_select_nll_cache_is_shared_and_reused(ctx):
    for m in ("sft", "ssr", "sdft", "s3ft"):
        run_select(ctx, m)
    # 6 golds (sft) + 2 self answers (ssr) + 3 paraphrases (sdft); s3ft's targets were all scored already
    assert len(ctx.fake.scored) == 11 and len(set(ctx.fake.scored)) == 11
    assert ctx.fake.calls == 2 + 1 + 1  # in chunks of 4: sft 4 + 2, ssr 2, sdft 3
    cache = ctx.stage_dir("select") / "nll.jsonl"
    assert len(read_jsonl(cache)) == 11
    _, _, stats = run_select(ctx, "s3ft")  # a second run scores nothing
    assert len(ctx.fake.scored) == 11 and stats["target_nll_per_token"] == pytest.approx(1.8889)
    assert len(Rows(cache)) == 11

    ctx.model_ref = "model-B"  # another base model: every target is scored again
    run_select(ctx, "sft")
    assert len(ctx.fake.scored) == 17


def test_select_without_nll_never_calls_the_backend(tmp_path):
    ctx = make_run(tmp_path, nll=False)
    ctx.backend = ctx.scorer = lambda: pytest.fail("no model may be loaded with select.nll=false")
    counts, rows, stats = run_select(ctx, "s3ft")
    assert counts == {"rows": 6, "self": 2, "paraphrase": 2, "gold": 2}
    assert "target_nll_per_token" not in stats and all("target_nll" not in r for r in rows)
    assert not (ctx.stage_dir("select") / "nll.jsonl").exists()


def test_select_sft_needs_no_upstream_rows(tmp_path):
    ctx = make_run(tmp_path, methods=("sft",), nll=False)
    for stage in ("generate", "judge", "paraphrase", "judge_paraphrase"):
        (ctx.stage_dir(stage) / "rows.jsonl").unlink()
    counts, rows, _ = run_select(ctx, "sft")
    assert counts["gold"] == 6 and all(r["self_verdict"] is None for r in rows)


# --- report -----------------------------------------------------------------------------------


def add_train_and_eval(ctx, acc: dict):
    for m in ctx.cfg.method:
        write_json_atomic(
            ctx.stage_dir("train") / m / "manifest.json",
            {
                "counts": {
                    "train_loss": 0.42,
                    "steps": 9,
                    "runtime_s": 1.5,
                    "mode": "lora",
                    "log_history": [{"loss": 0.5}],
                }
            },
        )
    for name, a in acc.items():
        write_json_atomic(
            ctx.stage_dir("evaluate") / name / "metrics.json",
            {"model": name, "n": 12, "correct": 0, "undecided": 0, "accuracy": a},
        )


def test_report_metrics_markdown_and_plots(ctx):
    for m in ctx.cfg.method:
        run_select(ctx, m)
    # ssr was never evaluated
    add_train_and_eval(ctx, {"base": 0.25, "sft": 0.5, "sdft": 0.3333, "s3ft": 0.75})
    out = ctx.stage_dir("report")
    out.mkdir(parents=True)
    assert report.run(ctx, out) == {"methods": 4, "plots": 3}

    metrics = read_json(out / "metrics.json")
    assert metrics["task"] == "gsm8k" and metrics["model"] == "fake/model"
    assert metrics["base"] == {"accuracy": 0.25, "n": 12, "undecided": 0, "cannot_split": None, "general": {},
                               "general_reference_nll": {}, "benchmarks": {}, "curve": None}
    assert "harness" not in metrics and "General benchmarks" not in (out / "report.md").read_text()
    ms = metrics["methods"]
    assert list(ms) == ["sft", "ssr", "sdft", "s3ft"]
    assert {m: v["accuracy"] for m, v in ms.items()} == {
        "sft": 0.5,
        "ssr": None,
        "sdft": 0.3333,
        "s3ft": 0.75,
    }
    assert {m: v["accuracy_delta_vs_base"] for m, v in ms.items()} == {
        "sft": 0.25,
        "ssr": None,
        "sdft": 0.0833,
        "s3ft": 0.5,
    }
    assert ms["s3ft"]["train"] == {"train_loss": 0.42, "steps": 9, "runtime_s": 1.5, "mode": "lora"}
    assert ms["s3ft"]["composition"]["counts"] == {"self": 2, "paraphrase": 2, "gold": 2}
    assert ms["sft"]["target_nll_per_token"] == 4.0 and ms["sdft"]["target_nll_per_token"] == 3.0
    assert ms["s3ft"]["target_nll_per_token_by_source"]["gold"] == 4.0

    md = (out / "report.md").read_text()
    assert md.startswith("# s3ft report: gsm8k on fake/model")
    assert "Base model in-domain accuracy: 25.0%" in md
    assert "| sft | 50.0 | 25.0 | 0.0 | 0.0 | 100.0 | 4.000 | 0.420 |" in md
    assert "| ssr | – | – | 33.33 | 0.0 | 66.67 | 2.600 | 0.420 |" in md
    assert "| sdft | 33.3 | 8.3 | 0.0 | 50.0 | 50.0 | 3.000 | 0.420 |" in md
    assert "| s3ft | 75.0 | 50.0 | 33.33 | 33.33 | 33.33 | 1.889 | 0.420 |" in md

    for name in ("composition.png", "accuracy.png", "target_nll.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG and len(data) > 1000, name
        assert f"]({name})" in md


def test_report_without_base_or_stats(tmp_path):
    ctx = make_run(tmp_path, methods=("sft", "s3ft"), evaluate={"base": False}, report={"plots": False})
    run_select(ctx, "s3ft")  # sft has no select stats, no training and no evaluation yet
    write_json_atomic(ctx.stage_dir("evaluate") / "s3ft" / "metrics.json", {"accuracy": 0.5})
    out = ctx.stage_dir("report")
    out.mkdir(parents=True)
    assert report.run(ctx, out) == {"methods": 2, "plots": 0}
    metrics = read_json(out / "metrics.json")
    assert metrics["base"] == {"accuracy": None, "n": None, "undecided": None, "cannot_split": None, "general": {},
                               "general_reference_nll": {}, "benchmarks": {}, "curve": None}
    assert metrics["methods"]["s3ft"]["accuracy"] == 0.5
    assert metrics["methods"]["s3ft"]["accuracy_delta_vs_base"] is None
    assert metrics["methods"]["sft"]["composition"] is None and metrics["methods"]["sft"]["train"] == {}
    md = (out / "report.md").read_text()
    assert "| sft | – | – | – | – | – | – | – |" in md
    assert "| s3ft | 50.0 | – | 33.33 | 33.33 | 33.33 | 1.889 | – |" in md
    assert not list(out.glob("*.png"))


def test_report_plots_with_missing_values(tmp_path):
    ctx = make_run(tmp_path, methods=("sft", "s3ft"), nll=False)
    out = ctx.stage_dir("report")
    out.mkdir(parents=True)
    assert report.run(ctx, out) == {"methods": 2, "plots": 3}  # nothing upstream: plots of zeros
    assert all(
        (out / n).read_bytes()[:8] == PNG for n in ("composition.png", "accuracy.png", "target_nll.png")
    )


def test_report_general_skills_forgetting(ctx):
    """General-skill deltas against the base, their mean, the table and the gain-vs-forgetting plot."""
    for m in ctx.cfg.method:
        run_select(ctx, m)
    add_train_and_eval(ctx, {})
    general = {"base": {"add": 0.8, "facts": 0.6}, "sft": {"add": 0.7, "facts": 0.3},
               "ssr": {"add": 0.8, "facts": 0.5}, "sdft": {"add": 0.75, "facts": 0.55},
               "s3ft": {"add": 0.85, "facts": 0.55}}
    indomain = {"base": 0.2, "sft": 0.5, "ssr": 0.4, "sdft": 0.45, "s3ft": 0.6}
    for name, g in general.items():
        write_json_atomic(ctx.stage_dir("evaluate") / name / "metrics.json",
                          {"accuracy": indomain[name], "general": {k: {"accuracy": a} for k, a in g.items()}})
    out = ctx.stage_dir("report")
    out.mkdir(parents=True)
    assert report.run(ctx, out) == {"methods": 4, "plots": 4}
    ms = read_json(out / "metrics.json")["methods"]
    assert ms["sft"]["general_delta_vs_base"] == {"add": -0.1, "facts": -0.3}
    assert ms["sft"]["general_mean_delta_vs_base"] == -0.2
    assert ms["s3ft"]["general_delta_vs_base"] == {"add": 0.05, "facts": -0.05}
    assert ms["s3ft"]["general_mean_delta_vs_base"] == 0.0
    md = (out / "report.md").read_text()
    assert "| base | 80.0 | 60.0 | |" in md
    assert "| sft | 70.0 (-10.0) | 30.0 (-30.0) | -20.0 |" in md
    assert (out / "gain_vs_forgetting.png").read_bytes()[:8] == PNG


def test_a_paraphrase_that_nearly_copies_the_gold_trains_as_the_gold_and_is_counted(tmp_path):
    ctx = make_run(tmp_path)
    gold1 = ctx.task.gold_target(ctx.examples[1])
    rows = read_jsonl(stage_root(ctx.run_dir, "paraphrase") / "rows.jsonl")
    for r in rows:
        if r["id"] == ctx.examples[1].id:  # example 1: accepted; its "paraphrase" is the gold, re-spaced
            r["paraphrase"] = "  " + gold1.replace(" ", "\n", 2)
    write_jsonl(stage_root(ctx.run_dir, "paraphrase") / "rows.jsonl", rows)
    _, out, stats = run_select(ctx, "s3ft")
    assert [r["source"] for r in out] == ["self", "gold", "gold", "gold", "self", "paraphrase"]
    assert out[1]["near_copy"] is True and out[1]["paraphrase_similarity"] == 1.0
    assert out[1]["completion"][0]["content"] == gold1
    assert out[5]["near_copy"] is False and out[5]["paraphrase_similarity"] < 0.9
    assert "near_copy" not in out[0] and stats["composition"]["near_copies"] == 1
    assert stats["composition"]["counts"] == {"self": 2, "paraphrase": 1, "gold": 3}
    # the paraphrases kept, and the same rows' golds, scored under the base model
    assert stats["paraphrase_vs_gold_nll_per_token"] == {"rows": 1, "paraphrase": 1.5, "gold": 4.0}

    ctx.cfg = ctx.cfg.model_copy(update={"select": ctx.cfg.select.model_copy(update={"near_copy": None})})
    _, out, stats = run_select(ctx, "s3ft")  # the rule switched off: the copy counts as a paraphrase
    assert out[1]["source"] == "paraphrase" and "near_copy" not in out[1]
    assert stats["composition"]["near_copies"] == 0


def test_every_mbpp_target_ends_with_done_whatever_its_source(tmp_path):
    """Generation stops before MBPP's `[DONE]` and the gold carries it: every method's targets end with it."""
    from s3ft.tasks.mbpp import MBPP

    mbpp = str(FIX / "mbpp_train.jsonl")
    ctx = make_run(tmp_path, nll=False)
    ctx.task = MBPP(DataConfig(task="mbpp", train=SplitSource(path=mbpp)))
    examples = list(ctx.task.load(SplitSource(path=mbpp)))
    ids = [e.id for e in examples]  # 4 examples: self right; self wrong + paraphrase right; both wrong; no rows
    write_jsonl(stage_root(ctx.run_dir, "data") / "train.jsonl", (e.to_dict() for e in examples))
    write_jsonl(stage_root(ctx.run_dir, "generate") / "rows.jsonl",
                ({"id": i, "prediction": f"[BEGIN]\ndef own_{n}():\n    return {n}\n"} for n, i in enumerate(ids)))
    write_jsonl(stage_root(ctx.run_dir, "judge") / "rows.jsonl",
                ({"id": ids[n], "correct": c, "reason": "r", "extracted": None} for n, c in enumerate([True, False, False])))
    write_jsonl(stage_root(ctx.run_dir, "paraphrase") / "rows.jsonl",
                ({"id": ids[n], "paraphrase": f"[BEGIN]\ndef para_{n}(x):\n    return [x] * {n}\n  \n", "rejected": None}
                 for n in range(3)))
    write_jsonl(stage_root(ctx.run_dir, "judge_paraphrase") / "rows.jsonl",
                ({"id": ids[n], "correct": c, "reason": "r", "extracted": None} for n, c in enumerate([True, True, False])))
    seen = set()
    for method in ("sft", "ssr", "sdft", "s3ft"):
        _, rows, _ = run_select(ctx, method)
        for ex, r in zip(examples, rows, strict=True):
            text, source = r["completion"][0]["content"], r["source"]
            seen.add(source)
            assert text.endswith("\n[DONE]") and text.count("[DONE]") == 1, (method, source, text)
            assert text.startswith("[BEGIN]\n")
            if source == "gold":
                assert text == ctx.task.gold_target(ex)  # the gold target as it was
            else:  # the model's text, cut before [DONE], given it back on a line of its own
                kind = "own" if source == "self" else "para"
                assert f"def {kind}_" in text and "\n\n[DONE]" not in text and " \n[DONE]" not in text
    assert seen == {"self", "paraphrase", "gold"}
    # a task whose gold carries no stop string keeps every target as it is
    gsm = GSM8K(DataConfig(train=SplitSource(path=TRAIN)))
    assert gsm.target(ctx.examples[0], "So 3 + 4 = 7. The answer is 7.\n") == "So 3 + 4 = 7. The answer is 7.\n"


def test_an_answer_cut_off_at_max_new_tokens_is_never_a_target(tmp_path):
    ctx = make_run(tmp_path)
    for stage, n in (("generate", 0), ("paraphrase", 1)):  # example 0's answer, example 1's paraphrase
        path = stage_root(ctx.run_dir, stage) / "rows.jsonl"
        rows = read_jsonl(path)
        for r in rows:
            r["finish"] = "length" if r["id"] == ctx.examples[n].id else "stop"
        write_jsonl(path, rows)
    _, out, stats = run_select(ctx, "s3ft")
    # example 0 (judged right, cut off) falls back to its paraphrase; example 1 (paraphrase cut off) to gold
    assert [r["source"] for r in out] == ["paraphrase", "gold", "gold", "gold", "self", "paraphrase"]
    assert out[0]["truncated"] == ["prediction"] and out[1]["truncated"] == ["paraphrase"]
    assert "truncated" not in out[4] and stats["composition"]["truncated"] == 2
    md = report.report_markdown({"task": "t", "model": "m", "base": {"accuracy": None},
                          "methods": {"s3ft": {"composition": stats["composition"], "accuracy": None,
                                               "accuracy_delta_vs_base": None, "target_nll_per_token": None,
                                               "train": {}}}})
    assert "cut off at max_new_tokens (never a target): s3ft 2." in md


def test_the_report_names_a_method_trained_once_for_an_earlier_methods_rows():
    row = {"composition": None, "accuracy": 0.5, "accuracy_delta_vs_base": 0.1, "target_nll_per_token": None}
    metrics = {"task": "t", "model": "m", "base": {"accuracy": 0.4},
               "methods": {"sdft": {**row, "train": {"train_loss": 0.3}},
                           "s3ft": {**row, "train": {"train_loss": 0.3, "reused_from": "sdft"}}}}
    assert "the same, in the same order (so are their models, and their scores): s3ft is sdft." in report.report_markdown(metrics)
    metrics["methods"]["s3ft"]["train"].pop("reused_from")
    assert "Trained once" not in report.report_markdown(metrics)


def test_methods_with_the_same_learning_curve_share_one_line():
    from s3ft.stages.report import curve_lines

    base = {"step": 0, "in_domain": 0.3, "general_mean": 1.0}
    a = [{"step": 10, "in_domain": 0.9, "general_mean": 0.99}]
    metrics = {"base": {"curve": [base]}, "methods": {"sft": {"curve": [{"step": 10, "in_domain": 0.6}]},
                                                      "sdft": {"curve": a}, "s3ft": {"curve": [dict(p) for p in a]},
                                                      "ssr": {}, "x": {"curve": None}}}
    lines = curve_lines(metrics)
    assert [names for names, _ in lines] == [["sft"], ["sdft", "s3ft"], ["ssr"], ["x"]]  # no curve: never joined
    assert lines[1][1] == [base, *a] and lines[2][1] == [base]
