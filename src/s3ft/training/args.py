"""TRL's `SFTConfig` and peft's `LoraConfig` keyword arguments from the `train` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s3ft.config import TrainConfig


def sft_kwargs(cfg: TrainConfig, ckpt_dir: Path, seed: int, bf16: bool, cuda: bool) -> dict[str, Any]:
    """TRL `SFTConfig`'s keyword arguments: s3ft's own settings, then `cfg.sft_args` (which may not repeat them:
    `config.SFT_OWNED`)."""
    return dict(
        output_dir=str(ckpt_dir),
        completion_only_loss=True,
        assistant_only_loss=False,
        max_length=cfg.max_length,
        packing=cfg.packing,
        train_sampling_strategy="random" if cfg.shuffle else "sequential",
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to or "none",
        seed=seed,
        bf16=bf16,
        use_cpu=not cuda,
        **{checkpointing_name(): cfg.gradient_checkpointing},
        dataset_num_proc=None,
        **cfg.sft_args,
    )


def checkpointing_name() -> str:
    """What `TrainingArguments` calls gradient checkpointing: `activation_checkpointing` from transformers 5.20,
    `gradient_checkpointing` before (the CPU build of vLLM needs transformers < 5.20, docs/gpu.md)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def lora_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """peft `LoraConfig`'s keyword arguments: s3ft's own settings, then `cfg.lora_args` (`config.LORA_OWNED`)."""
    return dict(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM", **cfg.lora_args)
