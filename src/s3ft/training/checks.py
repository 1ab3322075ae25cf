"""Checks of a multi-process training setting against the machine, before any stage runs (`s3ft validate`):
`train.num_processes` against the GPUs this process sees, and an accelerate config's FSDP version with LoRA.

Neither needs a GPU to be tested: the GPU count is an argument (`visible_gpus()` reads it from torch)."""

from __future__ import annotations

from pathlib import Path

import yaml

from s3ft.config import TrainConfig
from s3ft.errors import ConfigError


def visible_gpus() -> int:
    """CUDA devices this process sees (`CUDA_VISIBLE_DEVICES` applied); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_processes(train: TrainConfig, gpus: int, device: str = "auto") -> str | None:
    """`train.num_processes` above the GPU count, where training would run on GPUs, makes two processes share a
    GPU (NCCL fails with "Duplicate GPU detected"): refused. Without a GPU (or `model.device: cpu`) the processes
    run on the CPU (gloo), any number."""
    n = train.num_processes
    if n <= 1 or gpus == 0 or device == "cpu":
        return None
    if n > gpus:
        raise ConfigError(None, "train.num_processes", f"{n} processes but {gpus} GPU(s) visible: one process per GPU "
                          f"(NCCL refuses two on one GPU); set train.num_processes to at most {gpus}, or make more "
                          "GPUs visible (CUDA_VISIBLE_DEVICES)")
    return f"train.num_processes: {n} of {gpus} visible GPU(s)"


def check_fsdp(train: TrainConfig) -> str | None:
    """An accelerate config with FSDP: version 1 with LoRA is refused (FSDP1 flattens parameters of one dtype per
    unit, and a LoRA model has a bfloat16 base beside float32 adapters: it fails with "Must flatten tensors with
    uniform dtype"); FSDP2 (`fsdp_config.fsdp_version: 2`) shards each parameter and takes mixed dtypes."""
    if train.accelerate_config is None or not Path(train.accelerate_config).is_file():
        return None
    try:
        acc = yaml.safe_load(Path(train.accelerate_config).read_text()) or {}
    except yaml.YAMLError:
        return None  # accelerate reports its own file's errors at launch
    if not isinstance(acc, dict) or str(acc.get("distributed_type", "")).upper() != "FSDP":
        return None
    version = int((acc.get("fsdp_config") or {}).get("fsdp_version", 1))
    if version == 1 and train.mode == "lora":
        raise ConfigError(None, "train.accelerate_config", f"{train.accelerate_config}: FSDP version 1 with LoRA "
                          "fails on the model's mixed dtypes (a bfloat16 base, float32 adapters); set "
                          "fsdp_config.fsdp_version: 2 there (FSDP2), or train with DDP (train.num_processes, no "
                          "accelerate config)")
    return f"train.accelerate_config: FSDP version {version}"
