"""The sections after training: `evaluate` (general-skill sets `GeneralSet`, learning curves
`CurveConfig`, lm-eval forgetting benchmarks `ForgettingConfig`), `report` and `cache`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from s3ft.config.base import Section
from s3ft.config.inputs import DataConfig, FieldMap, SplitSource


class GeneralSet(Section):
    """A general-skill test set: scored for the base model and each method; a drop is forgetting."""

    name: str
    """Short name used in folders, metrics and plots."""
    task: str = "generic"
    """Task that reads and prompts it (as `data.task`)."""
    source: SplitSource
    fields: FieldMap = Field(default_factory=FieldMap)
    judge: str | None = None
    """Judge for this set (defaults to the task's own)."""
    predict_template: str | None = None
    """Prompt template file (as `data.predict_template`)."""
    max_new_tokens: int | None = None
    """Defaults to evaluate.max_new_tokens, then generate.max_new_tokens."""
    reference_nll: str | None = None
    """A continuous forgetting measure beside accuracy: the meta key (as mapped by `fields.meta`) of each row's
    held-out reference answers (a list of texts, or a dict of them by style); the evaluate stage records the
    mean NLL per token of those answers under each model, in all and per style. None: not measured."""

    def data_config(self) -> DataConfig:
        return DataConfig(task=self.task, train=self.source, fields=self.fields, judge=self.judge,
                          predict_template=self.predict_template)


class CurveConfig(Section):
    """Learning curves: each trained model is saved at `points` evenly spaced steps of its training, and each
    snapshot (and the base model, as step 0) is scored on small validation samples: in-domain accuracy and
    the general skills' mean. The report plots them per method."""

    points: int = Field(default=4, ge=2)
    """Snapshots per training run; the last is the end of training."""
    in_domain: SplitSource
    """A validation split of the task, read like `data.train` (keep it small: `limit`)."""
    general: list[GeneralSet] = Field(default_factory=list)
    """General-skill validation sets (small ones: `source.limit`)."""
    seeds: list[int] | None = None
    """Record curves only in runs with one of these seeds (a multi-seed demo: [0]); None: every run."""


FORGETTING_TASKS = ["mmlu", "truthfulqa_mc2", "hellaswag", "winogrande", "arc_challenge"]


class ForgettingConfig(Section):
    """General benchmarks through lm-evaluation-harness, scored for the base model and each trained model
    with identical settings; the change from the base is forgetting (the paper's Table 4)."""

    tasks: list[str] = Field(default_factory=lambda: list(FORGETTING_TASKS), min_length=1)
    """lm-eval task, group or tag names (a tag stands for its tasks, each scored apart). s3ft's own tasks
    (`s3ft_world_*`, the miniature world's skills) are always on the task path; add directories of your
    own with `include_path`."""
    num_fewshot: int | dict[str, int] | None = None
    """Few-shot examples: one number for every task, or per task (`{mmlu: 5, hellaswag: 10}`: a key names a
    task as listed in `tasks`, which covers its members, or one member; the rest keep their default).
    None keeps each task's own default (0 where the task sets none)."""
    limit: float | None = Field(default=None, gt=0)
    """Examples per task (a fraction if < 1); None is the whole test set. Scores with a limit are not
    comparable to published ones."""
    batch_size: int | str = 8
    """Harness batch size, or `auto`."""
    backend: Literal["hf", "vllm"] = "hf"
    """lm-eval's model type: `hf` (adapters through peft), or `vllm` (needs the vllm extra; LoRA adapters
    through vLLM's LoRA support; not yet run on a GPU by s3ft's tests)."""
    apply_chat_template: bool = False
    """Wrap each prompt in the model's chat template (the world's model needs it; published leaderboard
    numbers for MMLU etc. are mostly without)."""
    fewshot_as_multiturn: bool = False
    """With the chat template, give few-shot examples as earlier turns."""
    include_path: list[str] = Field(default_factory=list)
    """Directories of extra lm-eval task YAMLs, e.g. copies of the standard tasks pointed at local data
    (docs/forgetting.md, "Offline")."""
    metric: dict[str, str] = Field(default_factory=dict)
    """The metric to report per task (e.g. `{hellaswag: acc_norm}`); otherwise acc_norm where the task has
    it, else acc, else its first metric."""
    bootstrap_iters: int = Field(default=1000, ge=0)
    """Bootstrap resamples for the standard error of metrics that need it (0 skips them)."""

    @field_validator("num_fewshot")
    @classmethod
    def _shots_not_negative(cls, v):
        counts = v.values() if isinstance(v, dict) else [v]
        if any(n is not None and n < 0 for n in counts):
            raise ValueError("few-shot counts must be 0 or more")
        return v


class EvaluateConfig(Section):
    base: bool = True
    """Also score the base model (the reference for every delta)."""
    batch_size: int | None = Field(default=None, ge=1)
    """Generation batch size; defaults to generate.batch_size."""
    max_new_tokens: int | None = None
    """Defaults to generate.max_new_tokens."""
    general: list[GeneralSet] = Field(default_factory=list)
    """General-skill test sets scored with s3ft's own generation and judges (the miniature world's skills)."""
    forgetting: ForgettingConfig | None = None
    """General benchmarks through lm-evaluation-harness (off when absent: the standard benchmarks need
    their data from the hub or a local copy)."""
    curve: CurveConfig | None = None
    """Learning curves on validation samples during training (off when absent)."""


class ReportConfig(Section):
    plots: bool = True


class CacheConfig(Section):
    enabled: bool = True
    path: str | None = None
    """SQLite file; defaults to <run_dir>/cache.sqlite."""
