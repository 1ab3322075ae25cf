"""The report's numbers logged to the trackers of `train.report_to` (s3ft.trackers): TensorBoard event files,
read back with TensorBoard's own EventAccumulator. Needs only tensorboard (no torch)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from s3ft import trackers

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

COMP = {"n": 6, "counts": {"self": 2, "paraphrase": 2, "gold": 2},
        "percent": {"self": 33.33, "paraphrase": 33.33, "gold": 33.33}, "near_copies": 1, "truncated": 0}
METRICS = {
    "task": "gsm8k", "model": "fake/model",
    "base": {"accuracy": 0.25, "general": {}, "benchmarks": {"mmlu": 0.6, "arc_challenge": 0.4},
             "curve": [{"step": 0, "in_domain": 0.2, "general_mean": 0.5}]},
    "methods": {
        "sft": {"composition": {"n": 6, "counts": {"self": 0, "paraphrase": 0, "gold": 6},
                                "percent": {"self": 0.0, "paraphrase": 0.0, "gold": 100.0}},
                "target_nll_per_token": 4.0, "target_nll_per_token_by_source": {"self": None, "gold": 4.0},
                "train": {"train_loss": 0.42, "steps": 9}, "accuracy": 0.5, "accuracy_delta_vs_base": 0.25,
                "general": {}, "benchmarks": {"mmlu": 0.5, "arc_challenge": 0.3},
                "benchmarks_delta_vs_base": {"mmlu": -0.1, "arc_challenge": -0.1},
                "benchmarks_mean_delta_vs_base": -0.1,
                "curve": [{"step": 5, "in_domain": 0.4, "general_mean": 0.45},
                          {"step": 9, "in_domain": 0.5, "general_mean": 0.4}]},
        "s3ft": {"composition": COMP, "target_nll_per_token": 1.889,
                 "target_nll_per_token_by_source": {"self": 0.5, "paraphrase": 1.5, "gold": 4.0},
                 "train": {"steps": 9}, "accuracy": 0.75, "accuracy_delta_vs_base": 0.5, "general": {},
                 "benchmarks": {"mmlu": 0.6, "arc_challenge": 0.38},
                 "benchmarks_delta_vs_base": {"mmlu": 0.0, "arc_challenge": -0.02},
                 "benchmarks_mean_delta_vs_base": -0.01, "curve": None},
        "ssr": {"composition": None, "target_nll_per_token": None, "train": {}, "accuracy": None,
                "accuracy_delta_vs_base": None, "general": {}, "benchmarks": {}, "curve": None},
    },
}


def read_tb(path: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} of every scalar in a TensorBoard run folder."""
    acc = EventAccumulator(str(path), size_guidance={"tensors": 0, "scalars": 0}).Reload()
    tags = acc.Tags()
    out = {t: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(t)]
           for t in tags["tensors"]}
    out.update({t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]})
    return out


def final(series: dict[str, list[tuple[int, float]]]) -> dict[str, tuple[int, float]]:
    """Each tag's one point (asserting there is one)."""
    assert all(len(v) == 1 for v in series.values()), series
    return {t: (v[0][0], pytest.approx(v[0][1], rel=1e-6)) for t, v in series.items()}


def test_tensorboard_gets_accuracy_composition_nll_and_forgetting(tmp_path):
    assert trackers.log_metrics(METRICS, ["tensorboard"], tmp_path, run_name="run") == ["tensorboard"]
    root = tmp_path / "tensorboard"
    assert sorted(p.name for p in root.iterdir()) == ["base", "s3ft", "sft"]  # ssr has no number at all

    base = read_tb(root / "base")
    assert base.pop("curve/in_domain") == [(0, pytest.approx(0.2))]
    assert base.pop("curve/general_mean") == [(0, pytest.approx(0.5))]
    assert final(base) == {"accuracy/in_domain": (0, 0.25), "benchmarks/mmlu": (0, 0.6),
                           "benchmarks/arc_challenge": (0, 0.4)}

    s3ft = read_tb(root / "s3ft")
    assert final(s3ft) == {  # no learning curve of its own: no curve tags
        "accuracy/in_domain": (9, 0.75), "accuracy/in_domain_delta_vs_base": (9, 0.5),
        "composition/rows": (9, 6), "composition/near_copies": (9, 1), "composition/truncated": (9, 0),
        "composition/self_count": (9, 2), "composition/paraphrase_count": (9, 2), "composition/gold_count": (9, 2),
        "composition/self_percent": (9, 33.33), "composition/paraphrase_percent": (9, 33.33),
        "composition/gold_percent": (9, 33.33),
        "target_nll/per_token": (9, 1.889), "target_nll/self": (9, 0.5), "target_nll/paraphrase": (9, 1.5),
        "target_nll/gold": (9, 4.0),
        "benchmarks/mmlu": (9, 0.6), "benchmarks/arc_challenge": (9, 0.38),
        "forgetting/benchmarks/mmlu": (9, 0.0), "forgetting/benchmarks/arc_challenge": (9, -0.02),
        "forgetting/benchmarks_mean": (9, -0.01), "forgetting/mean": (9, -0.01),
    }

    sft = read_tb(root / "sft")  # its curve starts from the base model at step 0, as the report's plot
    assert sft["curve/in_domain"] == [(0, pytest.approx(0.2)), (5, pytest.approx(0.4)), (9, pytest.approx(0.5))]
    assert sft["curve/general_mean"] == [(0, pytest.approx(0.5)), (5, pytest.approx(0.45)), (9, pytest.approx(0.4))]
    assert sft["composition/gold_percent"] == [(9, pytest.approx(100.0))]
    assert sft["forgetting/mean"] == [(9, pytest.approx(-0.1))]
    assert "target_nll/self" not in sft  # None is left out, never logged as 0


def test_a_rerun_replaces_the_points(tmp_path):
    trackers.log_metrics(METRICS, ["tensorboard"], tmp_path)
    trackers.log_metrics(METRICS, ["tensorboard", "none"], tmp_path)
    assert len(list((tmp_path / "tensorboard" / "s3ft").iterdir())) == 1
    assert read_tb(tmp_path / "tensorboard" / "s3ft")["accuracy/in_domain"] == [(9, 0.75)]


def test_none_and_nothing_log_nothing(tmp_path):
    for report_to in ([], ["none"], "none", None):
        assert trackers.log_metrics(METRICS, report_to, tmp_path) == []
    assert not (tmp_path / "tensorboard").exists()


def test_a_tracker_not_installed_is_a_warning_naming_its_package(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard: ImportError
    caplog.set_level(logging.WARNING, "s3ft.trackers")
    assert trackers.log_metrics(METRICS, ["tensorboard"], tmp_path) == []
    assert "package tensorboard is not installed" in caplog.text
    assert not (tmp_path / "tensorboard").exists()


def test_an_unsupported_tracker_is_left_to_the_trainer_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "s3ft.trackers")
    assert trackers.log_metrics(METRICS, ["comet_ml", "tensorboard"], tmp_path) == ["tensorboard"]
    assert "comet_ml" in caplog.text


def test_the_report_stage_logs_to_tensorboard(tmp_path):
    from test_select_report import add_train_and_eval, make_run, run_select

    from s3ft.rundir import read_json
    from s3ft.stages import report

    ctx = make_run(tmp_path, methods=("sft", "s3ft"), report={"plots": False}, train={"report_to": ["tensorboard"]})
    for m in ctx.cfg.method:
        run_select(ctx, m)
    add_train_and_eval(ctx, {"base": 0.25, "sft": 0.5, "s3ft": 0.75})
    out = ctx.stage_dir("report")
    out.mkdir(parents=True)
    assert report.run(ctx, out) == {"methods": 2, "plots": 0, "trackers": ["tensorboard"]}
    metrics = read_json(out / "metrics.json")
    tb = out / "tensorboard"
    assert out.name == "09_report" and sorted(p.name for p in tb.iterdir()) == ["base", "s3ft", "sft"]
    s3ft = read_tb(tb / "s3ft")
    steps = metrics["methods"]["s3ft"]["train"]["steps"]
    assert s3ft["accuracy/in_domain"] == [(steps, 0.75)]
    assert s3ft["composition/self_count"] == [(steps, 2.0)]
    assert s3ft["target_nll/per_token"] == [(steps, pytest.approx(metrics["methods"]["s3ft"]["target_nll_per_token"]))]
    assert read_tb(tb / "base")["accuracy/in_domain"] == [(0, 0.25)]
