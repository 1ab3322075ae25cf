"""Where a method's trained weights are, in a run directory (`07_train/<method>/adapter` or `model`), and
reuse between methods: a method whose training rows are another's, in the same order (same run: same config,
model and seed), takes that method's trained model instead of training it again.

Read by the train and evaluate stages, the harness, the report's numbers and export; reads files only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from s3ft.errors import S3FTError
from s3ft.rundir import dir_hash, read_json, stage_root

log = logging.getLogger("s3ft.train")
REUSING = "reusing.json"
"""Marks a train folder while `reuse_training` fills it; a folder that still has it was left half-filled."""
NOT_REUSED = ("checkpoints", "manifest.json", "progress.json", "launch.json", "train_metrics.json", REUSING)
"""What `reuse_training` does not take from the donor (its metrics it writes anew, as a file of its own)."""


def folder_name(mode: str) -> str:
    """The folder of a train unit that holds its weights: `adapter` (LoRA) or `model` (full fine-tuning)."""
    return "adapter" if mode == "lora" else "model"


def unit_dir(run_dir: Path, method: str) -> Path:
    return stage_root(run_dir, "train") / method


def clear_partial_reuse(out: Path) -> None:
    """Empty `out` (but for `progress.json`) if `reuse_training` was killed while filling it: its files are
    hard links to the donor's, which training or merging into the folder would overwrite in place."""
    if not (Path(out) / REUSING).exists():
        return
    for item in Path(out).iterdir():
        if item.name != "progress.json":
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()


def reuse_training(donor: Path, out: Path, method: str) -> dict:
    """`out` becomes a copy of the finished train unit `donor` (method `method`, trained on the same rows with
    the same settings and seed), files hard-linked where the file system allows, trainer checkpoints and run
    records left out; its metrics say `reused_from` and count no training time. Training is deterministic on
    CPU (the demo's SDFT and S3FT weights were byte-identical when trained twice); on a GPU a second training
    would differ by kernel non-determinism only. Killed midway, the folder is emptied on the next run."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    out = Path(out)
    clear_partial_reuse(out)
    (out / REUSING).write_text(json.dumps({"from": method}))
    for item in Path(donor).iterdir():
        if item.name in NOT_REUSED:
            continue
        if item.is_dir():
            shutil.copytree(item, out / item.name, copy_function=link, dirs_exist_ok=True)
        else:
            link(str(item), str(out / item.name))
    metrics = {**json.loads((Path(donor) / "train_metrics.json").read_text()), "reused_from": method,
               "runtime_s": 0.0}
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))  # a file of its own, not a link
    (out / REUSING).unlink()
    log.info("%s: the same training rows as %s, whose trained model it takes (no second training)", out.name, method)
    return metrics


def reused_from(run_dir: Path, method: str, mode: str) -> str | None:
    """The method whose trained model `method` took (`reuse_training`), while that method's weights are still
    the ones it took; else None."""
    own = unit_dir(run_dir, method)
    try:
        donor = json.loads((own / "train_metrics.json").read_text()).get("reused_from")
    except (OSError, ValueError):
        return None
    name = folder_name(mode)
    theirs = unit_dir(run_dir, donor) / name if donor else None
    if theirs is None or not (own / name).is_dir() or not theirs.is_dir():
        return None
    return donor if dir_hash(theirs) == dir_hash(own / name) else None


def load_from(run_dir: Path, method: str, mode: str, snapshot: Path | None = None) -> Path:
    """The folder to load `method`'s trained weights (or a learning-curve `snapshot` of them) from: the
    method's own, or, where it took an earlier method's trained model (`reused_from`), that method's, so that
    evaluating it reads that method's cached generations (cache keys name the weights' folder)."""
    own = unit_dir(run_dir, method)
    weights = Path(snapshot) if snapshot is not None else own / folder_name(mode)
    donor = reused_from(run_dir, method, mode)
    if donor is None or not weights.is_relative_to(own):
        return weights
    theirs = unit_dir(run_dir, donor) / weights.relative_to(own)
    return theirs if theirs.is_dir() else weights


def finished(run_dir: Path, method: str) -> tuple[str, Path]:
    """("lora", the adapter folder) or ("full", the model folder) of a finished train unit, else an error
    naming the path."""
    tdir = unit_dir(run_dir, method)
    manifest = read_json(tdir / "manifest.json")
    if manifest is None:
        raise S3FTError(f"{tdir}: method {method!r} was not trained (no finished train stage: "
                        f"{tdir / 'manifest.json'} is missing); run the train stage before --merge")
    mode = (manifest.get("counts") or {}).get("mode") or ("lora" if (tdir / "adapter").is_dir() else "full")
    weights = tdir / folder_name(mode)
    if not weights.is_dir():
        raise S3FTError(f"{weights}: no trained weights for method {method!r} ({mode} training); "
                        "rerun its train stage (`s3ft run CONFIG --force train`)")
    return mode, weights


def adapter_of(run_dir: Path, method: str) -> Path:
    """The LoRA adapter folder of a finished train unit, else an error naming why there is none."""
    mode, weights = finished(run_dir, method)
    if mode != "lora":
        raise S3FTError(f"--adapter: method {method!r} was fully fine-tuned ({weights}), it has no adapter; "
                        "export its model with --merge")
    return weights
