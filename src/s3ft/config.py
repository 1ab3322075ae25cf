"""The one configuration schema. Every default lives here, once, as a typed field with a docstring.

`load_config(path, overrides)` reads YAML, applies `key=value` overrides and validates: unknown
keys and wrong types raise `ConfigError` naming the dotted key and the YAML line.
Sections follow the pipeline's stages: data, generate, judge, paraphrase, select, train, evaluate,
report.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from s3ft.errors import ConfigError

Method = Literal["sft", "ssr", "sdft", "s3ft"]
METHODS: tuple[str, ...] = ("sft", "ssr", "sdft", "s3ft")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, protected_namespaces=())


SFT_OWNED: dict[str, str] = {
    "output_dir": "the train stage's folder under run_dir",
    "completion_only_loss": "the loss covers completion tokens only",
    "assistant_only_loss": "the loss covers completion tokens only",
    "max_length": "use train.max_length",
    "packing": "use train.packing",
    "train_sampling_strategy": "use train.shuffle",
    "learning_rate": "use train.learning_rate",
    "num_train_epochs": "use train.epochs",
    "max_steps": "use train.max_steps",
    "per_device_train_batch_size": "use train.batch_size",
    "gradient_accumulation_steps": "use train.grad_accum",
    "lr_scheduler_type": "use train.lr_scheduler",
    "warmup_steps": "use train.warmup_ratio",
    "weight_decay": "use train.weight_decay",
    "logging_steps": "use train.logging_steps",
    "save_strategy": "it saves every train.save_steps",
    "save_steps": "use train.save_steps",
    "save_total_limit": "use train.save_total_limit",
    "report_to": "use train.report_to",
    "seed": "use the top-level seed",
    "bf16": "use train.bf16",
    "use_cpu": "use model.device",
    "activation_checkpointing": "use train.gradient_checkpointing",
    "gradient_checkpointing": "use train.gradient_checkpointing",
    "dataset_num_proc": "rows are prepared in the s3ft process",
    "resume_from_checkpoint": "it resumes from the last complete checkpoint itself",
    "model_init_kwargs": "it loads the model itself: use model.load_args",
    "trust_remote_code": "use model.trust_remote_code",
    "chat_template_path": "use model.chat_template",
}
"""`SFTConfig` fields that s3ft sets from its own keys (or fixes): refused in `train.sft_args`, with the hint."""

LORA_OWNED: dict[str, str] = {
    "r": "use train.lora_r",
    "lora_alpha": "use train.lora_alpha",
    "lora_dropout": "use train.lora_dropout",
    "target_modules": "use train.lora_target_modules",
    "task_type": "it trains causal LMs (CAUSAL_LM)",
    "peft_type": "this is a LoRA config",
    "inference_mode": "it trains the adapter",
    "base_model_name_or_path": "use model.path",
    "revision": "use model.revision",
}
"""`LoraConfig` fields that s3ft sets: refused in `train.lora_args`."""

LOAD_OWNED: dict[str, str] = {
    "pretrained_model_name_or_path": "use model.path",
    "revision": "use model.revision",
    "dtype": "use model.dtype",
    "torch_dtype": "use model.dtype",
    "trust_remote_code": "use model.trust_remote_code",
    "device_map": "use model.device",
    "quantization_config": "use train.quantization",
    "load_in_4bit": "use train.quantization",
    "load_in_8bit": "use train.quantization",
}
"""`from_pretrained` arguments that s3ft sets: refused in `model.load_args`."""


def refuse_owned(given: dict[str, Any], owned: dict[str, str]) -> dict[str, Any]:
    """`given` unchanged, or a ValueError naming the first key s3ft sets itself and what to use instead."""
    taken = [k for k in given if k in owned]
    if taken:
        raise ValueError(f"{taken[0]}: s3ft sets it ({owned[taken[0]]})")
    return given


def check_pass_through(key: str, given: dict[str, Any], cls: type) -> None:
    """Every name in `given` (the section `key`, e.g. `train.sft_args`) must be an init field of the dataclass
    `cls` (e.g. TRL's `SFTConfig`): a ConfigError names the first that is not, with its close matches."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in given if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(None, f"{key}.{unknown[0]}", f"not a field of {cls.__name__}{hint}")


class ModelConfig(Section):
    path: str
    """Hub id or local directory of the base (instruction-tuned) model."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to pin."""
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    """Weights dtype; `auto` is bfloat16 where supported (CUDA, or CPUs with AVX512-BF16), else float32."""
    device: str = "auto"
    """`auto`, `cpu`, `cuda` or `cuda:N`."""
    trust_remote_code: bool = False
    """Allow model code from the hub (only for models you trust)."""
    chat_template: str | None = None
    """Path to a Jinja chat template that replaces the tokenizer's own."""
    load_args: dict[str, Any] = Field(default_factory=dict)
    """More keyword arguments for transformers' `from_pretrained` of the model, as given (e.g.
    `{attn_implementation: sdpa}`): where training, the `hf` backend and `s3ft export --merge` load it (not
    vLLM, not lm-eval). Not the ones set by the keys above (`dtype`, `revision`, ...) or by
    `train.quantization`. Set, they enter the fingerprint of every stage that uses the model. `s3ft validate`
    (and so `s3ft run`) checks each name against transformers' loader, the model's config fields and its class
    where the model's config can be read."""

    @field_validator("load_args")
    @classmethod
    def _load_args_not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return refuse_owned(v, LOAD_OWNED)

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        """`from_pretrained`'s keyword arguments from this section, all but the dtype and device (the caller resolves them)."""
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code, **self.load_args}


class SplitSource(Section):
    path: str
    """A local .jsonl/.json/.csv/.parquet file, or a hub dataset id."""
    name: str | None = None
    """Hub dataset configuration (e.g. `main` for openai/gsm8k)."""
    split: str = "train"
    """Split name: the hub split to read, and the prefix of generated ids. `data.test` defaults to `test`
    (set `validation` for nq_open)."""
    limit: int | None = Field(default=None, ge=1)
    """Keep only the first N examples."""
    revision: str | None = None
    """Hub dataset revision (branch, tag or commit) to pin; either way, the commit it resolves to in the local
    hub cache enters the fingerprint of the stage that reads it."""


class FieldMap(Section):
    """For the generic task: which fields of each row hold what."""

    id: str | None = None
    """Field with a stable id; without it ids are `<split>-<row number>`."""
    question: str = "question"
    """Field with the task input."""
    gold: str = "answer"
    """Field with the gold response."""
    meta: dict[str, str] = Field(default_factory=dict)
    """Judge inputs: meta key -> field, e.g. {tests: test_list} or {answers: aliases}."""


class DataConfig(Section):
    task: str = "gsm8k"
    """Built-in task (`s3ft ls`), `generic`, or `package.module:Class`."""
    train: SplitSource
    test: SplitSource | None = None
    """The evaluation split; without it the evaluate stage scores nothing."""
    fields: FieldMap = Field(default_factory=FieldMap)
    predict_template: str | None = None
    """Path to a template file replacing the task's prediction prompt ({question} is filled in)."""
    paraphrase_template: str | None = None
    """Path to a template file replacing the paraphrase prompt ({question}, {reference})."""
    judge: str | None = None
    """The generic task's judge (built-ins pick their own; `judge.name` overrides both)."""
    format: Literal["auto", "fields", "messages", "sharegpt", "alpaca"] = "auto"
    """The generic task's rows: `fields` (columns named by `fields`), or one training example per conversation:
    `messages` (TRL's `{role, content}` turns), `sharegpt` (`conversations` of `{from, value}`, a `system`
    column), `alpaca` (`instruction`, `input`, `output`, `system`, `history`); the last assistant turn is the
    gold, the turns before it the prompt. `auto`: `fields` when `fields.question` or `fields.gold` is set, else
    the format of each source's first row (`s3ft.tasks.chat`)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings of a plug-in task (`package.module:Class`): its constructor receives this section and reads
    them as `cfg.options`. Built-in tasks take none."""

    @model_validator(mode="after")
    def _test_split_name(self) -> DataConfig:
        if self.test is not None and "split" not in self.test.model_fields_set:
            self.test.split = "test"
        return self

    @model_validator(mode="after")
    def _fields_fit_format(self) -> DataConfig:
        named = sorted({"question", "gold"} & self.fields.model_fields_set)
        if named and self.format not in ("auto", "fields"):
            raise ValueError(f"fields.{named[0]} names a column, but data.format {self.format} reads the question "
                             "and gold from the conversation (set only fields.id and fields.meta)")
        return self


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


class TrainConfig(Section):
    mode: Literal["lora", "full"] = "lora"
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    lora_target_modules: list[str] | str = "all-linear"
    """Module names to adapt, or `all-linear`."""
    lora_args: dict[str, Any] = Field(default_factory=dict)
    """More `peft.LoraConfig` fields, as given (e.g. `{use_rslora: true, use_dora: true}`); mode `full` ignores
    them, as it does the `lora_*` keys. Not those s3ft sets (the error names the key to use). Names are checked
    against `LoraConfig` at training and by `s3ft validate`."""
    quantization: Literal["4bit"] | None = None
    """`4bit`: QLoRA, the frozen base loaded in 4 bits (bitsandbytes NF4, double quantization, bfloat16
    compute, float16 where the GPU lacks bfloat16) and prepared with peft's `prepare_model_for_kbit_training`.
    Only with mode `lora`, on a CUDA GPU, with `pip install bitsandbytes`. NOT RUN on a GPU yet (docs/gpu.md)."""
    learning_rate: float = Field(default=1e-4, gt=0)
    epochs: float = Field(default=3.0, gt=0)
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run all epochs)."""
    batch_size: int = Field(default=8, ge=1)
    """Per-device batch size."""
    grad_accum: int = Field(default=1, ge=1)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = 0.0
    max_length: int = Field(default=1024, ge=8)
    """Prompt + completion tokens; longer rows are truncated."""
    bf16: bool | None = None
    """Mixed precision in bfloat16; None picks it where the hardware supports it."""
    gradient_checkpointing: bool = False
    shuffle: bool = True
    """Draw rows in random order each epoch; False keeps the file's order (for data already batched)."""
    packing: bool = False
    """Pack rows into sequences of `max_length` tokens (TRL's best-fit packing, padding-free): no compute
    spent on padding, each row attending only to itself; `batch_size` then counts packed sequences. For GPUs
    with a variable-length attention kernel: on a CPU it was 5x slower (`docs/benchmarks.md`)."""
    logging_steps: int = Field(default=10, ge=1)
    save_steps: int = Field(default=200, ge=1)
    """Checkpoint interval; an interrupted train stage resumes from the last checkpoint."""
    save_total_limit: int = 2
    report_to: list[str] = Field(default_factory=list)
    """Experiment trackers, e.g. [tensorboard] or [wandb]: the trainer logs its loss curves there, and the report
    stage logs per model the in-domain accuracy, composition, target NLL and forgetting to those it supports
    (`tensorboard`, under `09_report/tensorboard/<model>/`; `wandb` and `mlflow`, a run per model, tested with
    wandb offline and a local mlflow store), so that `tensorboard --logdir RUN_DIR` shows both. One named but not
    installed is a warning; `none` is ignored."""
    save_merged: bool = False
    """Also save the LoRA adapter merged into the base weights, in Hugging Face format (`07_train/<m>/merged/`).
    Set after training, it merges the saved adapter without training again."""
    num_processes: int = Field(default=1, ge=1)
    """Training processes, one per GPU (data parallel, DDP: `batch_size` is per process, so the global batch is
    `batch_size x grad_accum x num_processes`). Above 1, or with `accelerate_config`, the train stage runs in
    processes of its own under `accelerate launch` (torchrun; gloo on a CPU); only the main one writes the run
    directory."""
    accelerate_config: str | None = None
    """An accelerate config file as `accelerate config` writes it (multi-GPU DDP, FSDP, DeepSpeed ZeRO, several
    machines): the train stage runs under `accelerate launch --config_file FILE`, with its process count unless
    `num_processes` is above 1. Its mixed precision is s3ft's (`bf16`), not the file's. `train_metrics.json`'s
    `distributed` records how accelerate ran it; a file asking for FSDP or DeepSpeed that ran otherwise (on a
    CPU, accelerate runs FSDP as plain DDP) is a warning."""
    sft_args: dict[str, Any] = Field(default_factory=dict)
    """More TRL `SFTConfig` (and so transformers `TrainingArguments`) fields, as given (e.g. `{optim:
    adamw_torch_fused, max_grad_norm: 0.5, neftune_noise_alpha: 5}`). Not those s3ft sets itself: the error
    names the key to use; `fp16: true` turns off the automatic `bf16`. Names are checked against `SFTConfig`
    at training and by `s3ft validate`. They enter the train stage's fingerprint, but for logging, tracking
    and hub upload: `run_name`, `project`, `disable_tqdm`, `skip_memory_metrics`,
    `include_num_input_tokens_seen`, `push_to_hub` and those starting with `log`, `trackio_` or `hub_`."""

    @field_validator("sft_args")
    @classmethod
    def _sft_args_not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return refuse_owned(v, SFT_OWNED)

    @field_validator("lora_args")
    @classmethod
    def _lora_args_not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return refuse_owned(v, LORA_OWNED)

    @model_validator(mode="after")
    def _quantization_needs_lora(self) -> TrainConfig:
        if self.quantization and self.mode == "full":
            raise ValueError("train.quantization (QLoRA) trains LoRA adapters on a quantized base: set "
                             "train.mode: lora, or remove it")
        if self.quantization and self.save_merged:
            raise ValueError("train.save_merged with train.quantization would merge into the 4-bit base: merge "
                             "into the full-precision base with `s3ft export RUN_DIR --merge` instead")
        return self


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
    batch_size: int | None = None
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


class Config(Section):
    run_dir: str = "runs/default"
    """Where every stage writes its folder (relative paths are relative to the working directory)."""
    method: list[Method] = Field(default_factory=lambda: ["s3ft"])
    """One method or a list: each builds its training set from the same generations and verdicts."""
    seed: int = 0
    """Seed for training (data order, LoRA init)."""
    model: ModelConfig
    data: DataConfig
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    paraphrase: ParaphraseConfig = Field(default_factory=ParaphraseConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    def curve_points(self) -> int:
        """Snapshots each training run saves for learning curves (0: this run records none)."""
        c = self.evaluate.curve
        return c.points if c is not None and (c.seeds is None or self.seed in c.seeds) else 0

    @field_validator("method", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("method")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path of a YAML mapping to its 1-based line, for error messages."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, str(k.value))
                lines[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines[(*path, str(i))] = v.start_mark.line + 1
                walk(v, (*path, str(i)))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override; the value is parsed as YAML (`3`, `true`, `[a, b]`).

    A number indexes a list: `evaluate.general.0.source.limit=20`.
    """
    if "=" not in assignment:
        raise ConfigError(None, assignment, "an override must look like key=value")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    node: Any = raw
    for p in parts[:-1]:
        if isinstance(node, list):
            if not (p.isdigit() and int(p) < len(node)):
                raise ConfigError(None, key, f"'{p}' is not an index of a list of {len(node)}")
            node = node[int(p)]
            continue
        if node.get(p) is None:  # absent, or an empty YAML section (`train:`)
            node[p] = {}
        node = node[p]
        if not isinstance(node, (dict, list)):
            raise ConfigError(None, key, f"'{p}' is not a section")
    parsed = yaml.safe_load(value) if value.strip() else None
    if isinstance(node, list):
        if not (parts[-1].isdigit() and int(parts[-1]) < len(node)):
            raise ConfigError(None, key, f"'{parts[-1]}' is not an index of a list of {len(node)}")
        node[int(parts[-1])] = parsed
    else:
        node[parts[-1]] = parsed


def load_config(path: str | Path | None = None, overrides: list[str] = (), raw: dict | None = None) -> Config:
    """Read, override and validate a config. Relative data/model paths stay as written."""
    text = ""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(str(path), "<file>", "no such config file")
        text = path.read_text()
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise ConfigError(str(path), "<yaml>", str(e).splitlines()[0], mark.line + 1 if mark else None) from e
        if not isinstance(raw, dict):
            raise ConfigError(str(path), "<root>", "the config must be a mapping of sections")
    raw = copy.deepcopy(raw or {})  # overrides must not change the caller's dict
    for o in overrides:
        apply_override(raw, o)
    raw = expand_package_dir(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        problems = [_problem(err, _key_lines(text), overrides, path) for err in e.errors()]
        first = problems[0]
        if len(problems) > 1:  # report every problem, each on its own line with its key and line
            first.args = ("\n".join(str(p) for p in problems),)
        raise first from None


def _problem(err: dict, lines: dict, overrides: list[str], path: str | Path | None) -> ConfigError:
    loc = tuple(str(x) for x in err["loc"] if not ("[" in str(x) or str(x) in ("str", "int", "float")))
    overridden = [tuple(o.split("=", 1)[0].strip().split(".")) for o in overrides]
    by_override = any(loc[: len(k)] == k for k in overridden)  # then no line of the file is at fault
    line = None if by_override else next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
    msg += " (set by an override)" if by_override else ""
    return ConfigError(str(path) if path else None, ".".join(loc), msg, line)


PACKAGE_DIR = str(Path(__file__).resolve().parent)


def expand_package_dir(value: Any) -> Any:
    """Replace `${s3ft}` in every string with the installed package's directory (for shipped configs)."""
    if isinstance(value, str):
        return value.replace("${s3ft}", PACKAGE_DIR)
    if isinstance(value, dict):
        return {k: expand_package_dir(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_package_dir(v) for v in value]
    return value


def section_dict(section: BaseModel) -> dict[str, Any]:
    return section.model_dump(mode="json")
