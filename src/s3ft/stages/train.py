"""Stage 7, train: fine-tune the base model on each method's training set (`s3ft.training`), LoRA or full.

Reads `06_select/<method>/train.jsonl`; writes `07_train/<method>/` (what `s3ft.training.loop` writes:
`adapter/` or `model/`, checkpoints, `train_metrics.json`, learning-curve snapshots, `merged/`). A method
whose training rows are an earlier method's, in the same order, takes that method's trained model
(`s3ft.weights.reuse_training`) instead of training again. With `train.num_processes` above 1 or
`train.accelerate_config`, training runs under `accelerate launch` (`s3ft.training.launcher`).

Its fingerprint policy: what changes the trained weights makes a unit stale (`weights_settings`); logging,
saving and tracking settings do not.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from s3ft.config import section_dict
from s3ft.device import free_memory
from s3ft.rundir import UnitDir, unit_fingerprint, write_json_atomic
from s3ft.stages import Planned
from s3ft.training import same_rows, train_model
from s3ft.training.model import merge_trained
from s3ft.weights import clear_partial_reuse, reuse_training

NAME = "train"
NOT_WEIGHTS = ("report_to", "logging_steps", "save_steps", "save_total_limit", "save_merged")
"""Train settings that do not change the trained weights: changing them does not make a trained model stale."""
SFT_NOT_WEIGHTS = ("run_name", "project", "disable_tqdm", "skip_memory_metrics", "include_num_input_tokens_seen",
                   "push_to_hub", "log*", "trackio_*", "hub_*")
"""The same for `train.sft_args` (logging, tracking, hub upload): names, or patterns (`fnmatch`)."""
ONLY_WHEN_SET = ("lora_args", "quantization", "sft_args", "num_processes", "accelerate_config")
"""Train settings that enter the fingerprint only when set (not at their default), so that runs from before they
existed stay done."""


def weights_settings(train) -> dict:
    """The `train` section as it enters the fingerprint: what changes the trained weights."""
    out = {k: v for k, v in section_dict(train).items() if k not in NOT_WEIGHTS}
    out["sft_args"] = {k: v for k, v in out["sft_args"].items() if not any(fnmatch(k, p) for p in SFT_NOT_WEIGHTS)}
    fields = type(train).model_fields
    return {k: v for k, v in out.items() if k not in ONLY_WHEN_SET or (v and v != fields[k].get_default(call_default_factory=True))}


def needs_merge(ctx, method: str) -> bool:
    """`train.save_merged` set after the method's LoRA model was trained: the merged model is still to write."""
    t = ctx.cfg.train
    return t.save_merged and t.mode == "lora" and not (ctx.stage_dir(NAME) / method / "merged").is_dir()


def units(ctx, fps: dict[str, str]) -> list[Planned]:
    """One unit per method: it reads its method's training set, the base model, the weight-changing train
    settings and the seed (and how many learning-curve snapshots to save)."""
    cfg, out, earlier = ctx.cfg, [], []
    snapshots = {"snapshots": n} if (n := cfg.curve_points()) else {}
    for m in cfg.method:
        inputs = {"select": fps[f"select/{m}"], "model": ctx.model_parts, "train": weights_settings(cfg.train),
                  "seed": cfg.seed, **snapshots}
        out.append(Planned(inputs, lambda o, m=m, donors=list(earlier): run_and_record(ctx, o, m, donors), sub=m,
                           complete=lambda m=m: not needs_merge(ctx, m)))
        earlier.append((m, UnitDir(ctx.stage_dir(NAME) / m, unit_fingerprint(NAME, inputs))))
    return out


SETTINGS = "settings.json"
"""What a train unit records of the config it trained with (`07_train/<method>/settings.json`): the base model,
the train section, the seed. An exported model's card describes these, not the run's last `config.yaml`."""


def run_and_record(ctx, out: Path, method: str, earlier: list[tuple[str, UnitDir]] = ()) -> dict:
    """`run`, then `SETTINGS` beside what it wrote."""
    counts = run(ctx, out, method, earlier)
    write_json_atomic(out / SETTINGS, {"model": section_dict(ctx.cfg.model), "train": section_dict(ctx.cfg.train),
                                       "seed": ctx.cfg.seed, "task": ctx.cfg.data.task})
    return counts


def run(ctx, out: Path, method: str, earlier: list[tuple[str, UnitDir]] = ()) -> dict:
    """Train `method`'s model; or, where an `earlier` method of this run was trained on the same rows in the
    same order (same config, model and seed: one run), take its outputs (`train.reuse_training`)."""
    ctx.release()  # free the base model and any evaluated model before training
    clear_partial_reuse(out)
    if needs_merge(ctx, method) and (metrics := merge_trained(out, ctx.cfg.model)) is not None:
        return metrics
    rows = ctx.stage_dir("select") / method / "train.jsonl"
    for donor, unit in earlier:
        if unit.state() == "done" and same_rows(rows, ctx.stage_dir("select") / donor / "train.jsonl"):
            return reuse_training(unit.path, out, donor)
    # imported here, not above: `import s3ft` must not import the launcher, which runs as `python -m` (runpy warns)
    from s3ft.training import launch, launched

    fn = launch if launched(ctx.cfg.train) else train_model  # several processes: under accelerate launch
    try:
        return fn(rows, out, ctx.cfg.model, ctx.cfg.train, ctx.cfg.seed, snapshots=ctx.cfg.curve_points())
    finally:
        free_memory()  # the trainer's model and optimizer: gone before the next model loads on the device
