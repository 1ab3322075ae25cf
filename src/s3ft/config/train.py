"""The `train` section (`TrainConfig`: LoRA or full fine-tuning through TRL) and the `SFTConfig` and
`LoraConfig` fields s3ft sets itself (`SFT_OWNED`, `LORA_OWNED`), refused in `sft_args`/`lora_args`.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from s3ft.config.base import Section, refuse_owned

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
    max_steps: int = Field(default=-1, ge=-1)
    """Stop after this many optimizer steps (-1: run all epochs; 0 is refused: it would train nothing)."""
    batch_size: int = Field(default=8, ge=1)
    """Per-device batch size."""
    grad_accum: int = Field(default=1, ge=1)
    lr_scheduler: str = "cosine"
    """A transformers scheduler (`SchedulerType`): linear, cosine, constant, constant_with_warmup, ..."""
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = 0.0
    max_length: int = Field(default=1024, ge=8)
    """Prompt + completion tokens; a longer row keeps its first `max_length` tokens, and one whose prompt alone fills
    them is dropped (no completion token is left to learn from): `train_metrics.json` counts both
    (`truncated_rows`, `dropped_rows`, the first few in `over_max_length`), and the report says so."""
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

    @field_validator("max_steps")
    @classmethod
    def _some_steps(cls, v: int) -> int:
        if v == 0:
            raise ValueError("0 steps would train nothing: give a number of steps, or -1 to run every epoch")
        return v

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, v: str) -> str:
        if v in ("linear", "cosine", "constant", "constant_with_warmup"):
            return v  # no transformers import for the common ones: loading a config stays fast
        from transformers.trainer_utils import SchedulerType

        known = [s.value for s in SchedulerType]
        if v not in known:
            close = difflib.get_close_matches(v, known, n=2)
            raise ValueError(f"not a transformers scheduler{'; did you mean ' + ' or '.join(close) + '?' if close else ''}"
                             f" (known: {', '.join(known)})")
        return v

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
