"""The sections of the stages that produce and judge outputs: decoding (`DecodeConfig`), `generate`,
`judge` (with its `llm` sub-section), `resample`, `paraphrase` and `select`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from s3ft.config.base import Section
from s3ft.config.inputs import ModelConfig


class DecodeConfig(Section):
    max_new_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    """0 is greedy decoding (the natural reading of the paper)."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = 0
    """Seed for sampling; sampled generations without a seed are never cached."""
    stop: list[str] = Field(default_factory=list)
    """Extra stop strings; the task's own (e.g. `[DONE]`) are always added."""


class GenerateConfig(DecodeConfig):
    backend: str = "hf"
    """Generation backend: `hf` (transformers), `vllm`, or `package.module:Class`. Paraphrase and
    evaluate use the same backend."""
    batch_size: int = Field(default=16, ge=1)
    """Prompts per batch; rows are written to disk after each batch (a kill loses at most one)."""
    engine: dict[str, Any] = Field(default_factory=dict)
    """vLLM engine arguments, passed to `vllm.LLM` as given: `tensor_parallel_size`, `data_parallel_size`,
    `gpu_memory_utilization`, `max_model_len`, `enable_prefix_caching`, `max_lora_rank`, `enforce_eager`, or
    any other `vllm.EngineArgs` field (`s3ft validate` checks the names where vLLM is installed). Only for
    the vllm backend."""
    isolate: bool | None = None
    """Run each model (the base, a judge model, each trained model) in a child process of its own, ended
    before the next loads, so that all it held (GPU memory, vLLM's workers) is freed. Unset: on for the
    vllm backend, off for hf (which frees its memory in-process and starts faster). Changes no output."""

    @model_validator(mode="after")
    def _engine_needs_vllm(self):
        if self.engine and self.backend == "hf":
            raise ValueError("generate.engine holds vLLM engine arguments: set generate.backend: vllm, or remove it")
        return self


class LLMJudgeConfig(Section):
    model: ModelConfig | None = None
    """The judge model; unset means the base model judges (as in a self-contained run)."""
    backend: str = "hf"
    """Backend for a judge model other than the base model."""
    generate: DecodeConfig = Field(default_factory=lambda: DecodeConfig(max_new_tokens=16))
    template: str | None = None
    """Path to a judge prompt template ({question}, {gold}, {prediction})."""


class JudgeConfig(Section):
    name: str | None = None
    """Judge to use instead of the task's default: math, code, qa, llm or `package.module:Class`."""
    workers: int = Field(default=2, ge=1)
    """Worker processes for the math and code judges."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Wall-clock limit per prediction (math parsing, or running code against its tests)."""
    memory_mb: int = Field(default=1024, ge=64)
    """Address-space limit for code under test."""
    sandbox: Literal["bwrap", "none"] = "bwrap"
    """Where the code judge runs model-written code: `bwrap` (namespaces, its own user, limits; see
    docs/sandbox.md), or `none`: plain child processes with rlimits only, which protect nothing from
    hostile code. Where bwrap cannot start, the code judge refuses to run rather than fall back."""
    qa_match: Literal["em", "f1", "recall"] = "em"
    """QA judge, on the short answer it reads (s3ft.judges.qa): SQuAD-normalised exact match with any gold
    alias, or SQuAD token F1, or token recall, of the best alias >= `qa_threshold`. Hedges are undecided."""
    qa_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    """The token F1 (`qa_match: f1`) or recall (`qa_match: recall`) a correct short answer reaches."""
    llm: LLMJudgeConfig | None = None
    """Settings of the LLM judge (used when the judge is `llm`)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings of a plug-in judge (`package.module:Class`): its constructor receives this section and reads
    them as `cfg.options`. Built-in judges take none."""


class ResampleConfig(Section):
    """Best-of-k self answers (the `resample` stage, for the method `s3ft-k`; docs/design.md, "Best-of-k")."""

    k: int = Field(default=0, ge=0, le=256)
    """Samples per row whose greedy answer the judge did not accept (wrong or undecided); each is judged, and the
    correct one the base finds most likely (NLL per token) is the target. 0 turns resampling off (and `s3ft-k` is
    refused). Only the method `s3ft-k` uses them."""
    temperature: float = Field(default=0.8, gt=0.0, le=5.0)
    """Sampling temperature (greedy samples would all be the greedy answer)."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling: the smallest set of tokens whose probabilities add up to this (1.0: all)."""
    max_new_tokens: int | None = Field(default=None, ge=1)
    """Tokens per sample; None: `generate.max_new_tokens`. A sample cut off at it is never a target."""
    seed: int = Field(default=0, ge=0)
    """Sample j of every row is drawn with a seed hashed from (`seed`, j) (`s3ft.stages.resample.sample_seed`: never
    `generate.seed`), so a rerun or a resume draws the same samples, and the model-call cache keeps them."""


class ParaphraseConfig(DecodeConfig):
    reject_patterns: list[str] = Field(
        default_factory=lambda: [r"reference (answer|solution|response)", r"provided (answer|solution)"]
    )
    """Regexes (case-insensitive): a paraphrase matching any is rejected before judging."""


class SelectConfig(Section):
    nll: bool = True
    """Compute the mean per-token NLL of each method's targets under the base model (on the generation backend)."""
    near_copy: float | None = Field(default=0.9, gt=0.0, le=1.0)
    """An accepted paraphrase whose word-level normalised edit similarity to the gold target is at least this
    is a near-copy of the gold (`s3ft.nearcopy`): the row trains on the gold (source `gold`, flagged
    `near_copy`) and `stats.json` counts it. None keeps near-copies as paraphrases."""
