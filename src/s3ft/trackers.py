"""The report's numbers, logged to the experiment trackers named in `train.report_to`.

The train stage hands `report_to` to the Hugging Face trainer (training-loss curves); the report stage calls
`log_metrics` with its `metrics.json`, so that the numbers that judge a method reach the same tracker:
in-domain accuracy, the training set's composition, the mean target NLL, and forgetting. One tracker run per
model (`base` and each method), with the scalars of `scalars` and the learning-curve points of `curves`.

- `tensorboard` (tested): event files under `09_report/tensorboard/<model>/`, written with tensorboard's own
  writer (numpy only, no torch). The trainer writes its own under `07_train/<method>/checkpoints/runs/`, so
  `tensorboard --logdir RUN_DIR` shows both.
- `wandb`, `mlflow` (`pip install 's3ft[trackers]'`, the versions tested): one new run per model, `<run_name>/<model>`, in the project or experiment the trainer's
  callbacks use (`WANDB_PROJECT`, `MLFLOW_EXPERIMENT_NAME`, ...), never the trainer's own run that
  `WANDB_RUN_ID` or `MLFLOW_RUN_ID` name. Tested (tests/test_trackers.py) with wandb offline (`WANDB_MODE=offline`,
  the run's `.wandb` log read back) and mlflow-skinny against a local store (read back with `MlflowClient`).
  mlflow-skinny's local store is the file store (`MLFLOW_TRACKING_URI=file:///...`), which MLflow 3 refuses
  unless `MLFLOW_ALLOW_FILE_STORE=true`; its default, `sqlite:///mlflow.db`, needs the full `mlflow` package
  (SQLAlchemy). Where a tracker fails (no login, no server), a warning says so and the report goes on.
- `none` is ignored; `all` is every supported tracker that is installed; any other name is the trainer's
  alone (a warning says so). A tracker named but not installed is a warning naming its package, never an error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger("s3ft.trackers")

SUPPORTED = ("tensorboard", "wandb", "mlflow")
SOURCES = ("self", "self_sample", "paraphrase", "gold")  # as s3ft.methods.sources (self_sample: s3ft-k only)


def _put(d: dict[str, float], tag: str, value) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        d[tag] = float(value)


def scalars(metrics: dict) -> dict[str, tuple[int, dict[str, float]]]:
    """{model: (step, {tag: value})} for the base model (step 0) and each method (at its last training step,
    where its training-loss curve ends). Accuracies and score changes are fractions (0.25, not 25 %);
    `composition/*_percent` are percent. Missing numbers are left out."""
    out: dict[str, tuple[int, dict[str, float]]] = {}
    base = metrics.get("base") or {}
    b: dict[str, float] = {}
    _put(b, "accuracy/in_domain", base.get("accuracy"))
    for kind in ("general", "benchmarks"):
        for name, v in (base.get(kind) or {}).items():
            _put(b, f"{kind}/{name}", v)
    if b:
        out["base"] = (0, b)
    view = "benchmarks" if base.get("benchmarks") else "general" if base.get("general") else None
    for m, v in (metrics.get("methods") or {}).items():
        s: dict[str, float] = {}
        _put(s, "accuracy/in_domain", v.get("accuracy"))
        _put(s, "accuracy/in_domain_delta_vs_base", v.get("accuracy_delta_vs_base"))
        comp = v.get("composition") or {}
        _put(s, "composition/rows", comp.get("n"))
        for src in SOURCES:
            _put(s, f"composition/{src}_count", (comp.get("counts") or {}).get(src))
            _put(s, f"composition/{src}_percent", (comp.get("percent") or {}).get(src))
        _put(s, "composition/near_copies", comp.get("near_copies"))
        _put(s, "composition/truncated", comp.get("truncated"))
        _put(s, "target_nll/per_token", v.get("target_nll_per_token"))
        for src, x in (v.get("target_nll_per_token_by_source") or {}).items():
            _put(s, f"target_nll/{src}", x)
        for kind in ("general", "benchmarks"):
            for name, x in (v.get(kind) or {}).items():
                _put(s, f"{kind}/{name}", x)
            for name, x in (v.get(f"{kind}_delta_vs_base") or {}).items():
                _put(s, f"forgetting/{kind}/{name}", x)
            _put(s, f"forgetting/{kind}_mean", v.get(f"{kind}_mean_delta_vs_base"))
        if view:  # the report's headline forgetting number: benchmarks where scored, else general skills
            _put(s, "forgetting/mean", v.get(f"{view}_mean_delta_vs_base"))
        if s:
            out[m] = (int((v.get("train") or {}).get("steps") or 0), s)
    return out


def curves(metrics: dict) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """{model: [(step, {tag: value})]}: the learning-curve points (validation in-domain accuracy and general
    mean), each method's starting from the base model at step 0, as the report's curves plot does."""
    base = metrics.get("base") or {}
    start = list(base.get("curve") or [])[:1]
    out = {}
    for name, pts in [("base", start)] + [(m, start + v["curve"]) for m, v in (metrics.get("methods") or {}).items()
                                          if v.get("curve")]:
        rows = []
        for p in pts:
            d: dict[str, float] = {}
            _put(d, "curve/in_domain", p.get("in_domain"))
            _put(d, "curve/general_mean", p.get("general_mean"))
            if d and p.get("step") is not None:
                rows.append((int(p["step"]), d))
        if rows:
            out[name] = rows
    return out


def wanted(report_to: list[str] | str | None) -> list[str]:
    """The supported trackers `report_to` names, in order; warns about the rest."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    out: list[str] = []
    for n in names:
        if n == "none":
            continue
        if n == "all":
            out += [t for t in SUPPORTED if importlib.util.find_spec(t) is not None]
        elif n in SUPPORTED:
            out.append(n)
        else:
            log.warning("train.report_to names %s: the trainer logs to it, but the report's metrics go only to "
                        "%s", n, ", ".join(SUPPORTED))
    return list(dict.fromkeys(out))


def log_metrics(metrics: dict, report_to: list[str] | str | None, out: Path, run_name: str = "s3ft") -> list[str]:
    """Log the report's metrics to each supported tracker in `report_to`; returns those that logged.
    `out` is the report stage's folder (TensorBoard writes under `out/tensorboard/`); `run_name` names the
    runs of wandb and mlflow (`<run_name>/<model>`)."""
    done = []
    for t in wanted(report_to):
        try:
            if importlib.util.find_spec(t) is None:
                raise ImportError(f"No module named '{t}'")
            {"tensorboard": _tensorboard, "wandb": _wandb, "mlflow": _mlflow}[t](metrics, Path(out), run_name)
        except ImportError as e:
            log.warning("train.report_to names %s, but the package %s is not installed or cannot be imported (%s; "
                        "pip install %s): the report's metrics are not logged to it", t, t, e, t)
            continue
        except Exception as e:  # wandb, mlflow: a login or server error must not lose the report
            if t == "tensorboard":
                raise
            log.warning("logging the report's metrics to %s failed: %s: %s", t, type(e).__name__, e)
            continue
        done.append(t)
    return done


def _points(metrics: dict) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """Every model's points in step order: its curve, then its final numbers."""
    pts = curves(metrics)
    for name, (step, s) in scalars(metrics).items():
        pts.setdefault(name, []).append((step, s))
    return {n: sorted(p, key=lambda x: x[0]) for n, p in pts.items()}


def _tensorboard(metrics: dict, out: Path, run_name: str) -> None:
    from tensorboard.summary import Writer  # numpy only, no torch

    root = out / "tensorboard"
    if root.exists():
        shutil.rmtree(root)  # a rerun replaces the points, never repeats them
    for name, pts in _points(metrics).items():
        w = Writer(str(root / name))
        try:
            for step, d in pts:
                for tag, value in d.items():
                    w.add_scalar(tag, value, step)
        finally:
            w.close()
    log.info("tensorboard: %s (tensorboard --logdir %s)", root, out.parent)


def _wandb(metrics: dict, out: Path, run_name: str) -> None:
    import wandb

    project = os.getenv("WANDB_PROJECT", "huggingface")  # where the trainer's WandbCallback logs
    final = scalars(metrics)
    for name, pts in _points(metrics).items():
        # A new run each, with an id of its own: WANDB_RUN_ID (and WANDB_RESUME) name the trainer's run, which
        # every model would otherwise resume. "finish_previous": the trainer's run, if still open, is finished
        # rather than logged into.
        run = wandb.init(project=project, group=run_name, name=f"{run_name}/{name}", job_type="s3ft-report",
                         id=uuid.uuid4().hex[:16], resume="never", reinit="finish_previous")
        try:
            for step, d in pts:
                run.log(d, step=step)
            run.summary.update(final.get(name, (0, {}))[1])
        finally:
            run.finish()


def _mlflow(metrics: dict, out: Path, run_name: str) -> None:
    import mlflow

    if os.getenv("MLFLOW_EXPERIMENT_NAME"):  # as the trainer's MLflowCallback
        mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
    # MLFLOW_RUN_ID names the run the trainer resumes: start_run would resume it for the first model (renaming
    # it and logging into it) and delete the variable. New runs here; the variable is left as it was.
    resume = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        for name, pts in _points(metrics).items():
            with mlflow.start_run(run_name=f"{run_name}/{name}", nested=mlflow.active_run() is not None):
                mlflow.set_tag("s3ft.model", name)
                for step, d in pts:
                    mlflow.log_metrics(d, step=step)
    finally:
        if resume is not None:
            os.environ["MLFLOW_RUN_ID"] = resume
