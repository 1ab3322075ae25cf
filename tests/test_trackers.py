"""The report's numbers logged to the trackers of `train.report_to` (s3ft.trackers), each read back: TensorBoard
event files with TensorBoard's own EventAccumulator; wandb offline (no network, no login), its run's transaction
log; mlflow (mlflow-skinny) with a local file store, through MlflowClient. Needs only tensorboard, wandb and
mlflow (no torch); the wandb and mlflow tests skip where their package is not installed."""

from __future__ import annotations

import json
import logging
import os
import struct
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


S3FT_FINAL = {  # s3ft's one point per tag, at its last training step
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


def assert_the_report(models: dict[str, dict[str, list[tuple[int, float]]]]) -> None:
    """What every tracker must hold for METRICS: {model: {tag: [(step, value)]}}, read back from it."""
    assert sorted(models) == ["base", "s3ft", "sft"]  # ssr has no number at all

    base = dict(models["base"])
    assert base.pop("curve/in_domain") == [(0, pytest.approx(0.2))]
    assert base.pop("curve/general_mean") == [(0, pytest.approx(0.5))]
    assert final(base) == {"accuracy/in_domain": (0, 0.25), "benchmarks/mmlu": (0, 0.6),
                           "benchmarks/arc_challenge": (0, 0.4)}

    assert final(models["s3ft"]) == S3FT_FINAL  # no learning curve of its own: no curve tags

    sft = models["sft"]  # its curve starts from the base model at step 0, as the report's plot
    assert sft["curve/in_domain"] == [(0, pytest.approx(0.2)), (5, pytest.approx(0.4)), (9, pytest.approx(0.5))]
    assert sft["curve/general_mean"] == [(0, pytest.approx(0.5)), (5, pytest.approx(0.45)), (9, pytest.approx(0.4))]
    assert sft["composition/gold_percent"] == [(9, pytest.approx(100.0))]
    assert sft["forgetting/mean"] == [(9, pytest.approx(-0.1))]
    assert "target_nll/self" not in sft  # None is left out, never logged as 0


def test_tensorboard_gets_accuracy_composition_nll_and_forgetting(tmp_path):
    assert trackers.log_metrics(METRICS, ["tensorboard"], tmp_path, run_name="run") == ["tensorboard"]
    root = tmp_path / "tensorboard"
    assert_the_report({p.name: read_tb(p) for p in root.iterdir()})


def wandb_records(path: Path):
    """The protobuf records of a wandb run's transaction log (`run-<id>.wandb`): a ":W&B" header, then the
    LevelDB log format (32 KiB blocks of chunks, each with a 7-byte header: crc32, length, type)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    block, pos, chunk = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zeroed: the end of what was written
            break
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL, LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def read_wandb(root: Path) -> dict[str, dict]:
    """{run name: {"run": RunRecord, "history": {tag: [(step, value)]}, "summary": {tag: value},
    "exit": exit code or None}} of every offline run under WANDB_DIR `root`."""
    out = {}
    for path in root.glob("wandb/offline-run-*/run-*.wandb"):
        run, history, summary, exit_code = None, {}, {}, None
        for r in wandb_records(path):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                run = r.run
            elif kind == "history":
                for item in r.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if not key.startswith("_"):  # _step, _runtime, _timestamp: wandb's own
                        history.setdefault(key, []).append((r.history.step.num, json.loads(item.value_json)))
            elif kind == "summary":
                summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                for item in r.summary.update})
            elif kind == "exit":
                exit_code = r.exit.exit_code
        assert run is not None and run.display_name not in out, path
        out[run.display_name] = {"run": run, "history": history, "summary": summary, "exit": exit_code}
    return out


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """wandb in offline mode, everything it writes under tmp_path; no network, no login."""
    wandb = pytest.importorskip("wandb", reason="wandb is not installed (pip install 's3ft[trackers]')")
    for var, sub in (("WANDB_DIR", "wandb_dir"), ("WANDB_CONFIG_DIR", "wandb_config"),
                     ("WANDB_CACHE_DIR", "wandb_cache"), ("WANDB_DATA_DIR", "wandb_data")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield tmp_path / "wandb_dir"
    wandb.teardown()  # the next test's wandb starts afresh, with its own settings


def test_wandb_gets_one_run_per_model_with_the_report_numbers(wandb_offline, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "s3ft-tests")
    monkeypatch.setenv("WANDB_RUN_ID", "trainer1")  # the trainer's run (resumed): not one to log into
    monkeypatch.setenv("WANDB_RESUME", "allow")
    assert trackers.log_metrics(METRICS, ["wandb"], tmp_path / "09_report", run_name="run") == ["wandb"]
    # run.finish() returns before wandb's service process has written the last run's log to disk (seen in CI:
    # a file with no records yet); teardown waits for the service to end, as the interpreter's exit does
    import wandb
    wandb.teardown()

    runs = read_wandb(wandb_offline)
    assert sorted(runs) == ["run/base", "run/s3ft", "run/sft"]
    ids = {r["run"].run_id for r in runs.values()}
    assert len(ids) == 3 and "trainer1" not in ids  # a new run each
    for r in runs.values():
        assert (r["run"].project, r["run"].run_group, r["run"].job_type) == ("s3ft-tests", "run", "s3ft-report")
        assert r["exit"] == 0  # finished
    assert_the_report({name.split("/", 1)[1]: r["history"] for name, r in runs.items()})

    # the summary: the final numbers, the learning curve's last point
    s3ft = runs["run/s3ft"]["summary"]
    assert {t: s3ft[t] for t in S3FT_FINAL} == {t: pytest.approx(v) for t, (_, v) in S3FT_FINAL.items()}
    assert runs["run/sft"]["summary"]["accuracy/in_domain"] == pytest.approx(0.5)
    assert runs["run/sft"]["summary"]["curve/in_domain"] == pytest.approx(0.5)
    assert runs["run/base"]["summary"]["accuracy/in_domain"] == pytest.approx(0.25)


def test_mlflow_gets_one_run_per_model_with_the_report_numbers(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 's3ft[trackers]')")
    from mlflow import MlflowClient

    # mlflow-skinny's local store: the file store, which MLflow 3 takes only when allowed (sqlite needs the
    # full mlflow package)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "s3ft-tests")
    client = MlflowClient()
    trainer = client.create_run(client.create_experiment("s3ft-tests"), run_name="trainer").info.run_id
    client.set_terminated(trainer)
    monkeypatch.setenv("MLFLOW_RUN_ID", trainer)  # the trainer's run (resumed): not one to log into

    assert trackers.log_metrics(METRICS, ["mlflow"], tmp_path / "09_report", run_name="run") == ["mlflow"]

    assert os.environ["MLFLOW_RUN_ID"] == trainer  # left as it was
    exp = client.get_experiment_by_name("s3ft-tests")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == ["run/base", "run/s3ft", "run/sft", "trainer"]
    assert runs.pop("trainer").data.metrics == {}  # untouched
    models = {}
    for name, r in runs.items():
        assert r.info.status == "FINISHED"
        model = name.split("/", 1)[1]
        assert r.data.tags["s3ft.model"] == model
        models[model] = {tag: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, tag))
                         for tag in r.data.metrics}
    assert_the_report(models)
    assert runs["run/s3ft"].data.metrics["accuracy/in_domain"] == 0.75  # the run's latest value


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
