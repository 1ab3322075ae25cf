"""The stages, in pipeline order: data, generate, judge, resample, paraphrase, judge_paraphrase, select, train,
evaluate, report. Each is a module of one shape:

- `NAME`: the stage's name, which is also its run-directory folder (`NN_<name>`), its config section where it
  has one, and its log prefix;
- `units(ctx, fps) -> list[Planned]`: the units it adds to the run's plan (one, none, or one per method), each
  with the inputs its fingerprint is made of: the config it reads, templates, plug-in versions, and the
  fingerprints of the units it reads from (`fps`, by unit name: `fps["generate"]`, `fps["train/sft"]`);
- `run(ctx, out, ...) -> dict`: makes one unit's outputs in its folder `out` and returns its counts.

`s3ft.pipeline` walks them in order; nothing else restates what a stage reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Planned:
    """One unit a stage adds to the plan."""

    inputs: dict
    """What determines its output, by name: hashed into its fingerprint and recorded in its manifest."""
    run: Callable[[Path], dict]
    sub: str | None = None
    """Its sub-folder (the method, or `base`), for a stage with one unit per model."""
    complete: Callable[[], bool] | None = None
    """For units whose needed outputs can grow (paraphrase scope, `train.save_merged` set after training): are
    they all present?"""
