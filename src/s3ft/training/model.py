"""The base model as training loads it (in a dtype, or QLoRA's 4-bit base on a GPU), parameter counts, and
merging a LoRA adapter into full weights."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError, loading_model

log = logging.getLogger("s3ft.train")
QLORA_4BIT = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
"""transformers' `BitsAndBytesConfig` for `train.quantization: 4bit` (QLoRA), but for the compute dtype."""


def bf16_supported(cuda: bool) -> bool:
    """bf16 mixed precision where the hardware does it natively: CUDA (Ampere+) or CPUs with AVX512-BF16."""
    import torch

    if cuda:
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check is not None and check())


def numel(p) -> int:
    """Parameters in the tensor `p`; bitsandbytes packs a 4-bit one two to a byte of storage (counted as peft does)."""
    if p.__class__.__name__ == "Params4bit":
        return p.numel() * 2 * p.element_size()
    return p.numel()


def non_embedding_params(model) -> int:
    """Parameters of `model` outside its input and output embeddings (a tied head counted once)."""
    skip = {id(p) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
            for p in m.parameters()}
    return sum(numel(p) for p in {id(p): p for p in model.parameters()}.values() if id(p) not in skip)


def has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def check_quantization(cfg: TrainConfig, cuda: bool | None) -> None:
    """`train.quantization` (QLoRA) needs a CUDA GPU and bitsandbytes: a ConfigError naming what is missing.
    `cuda`: whether training runs on CUDA; None where that is not known yet (`s3ft validate`)."""
    if not cfg.quantization:
        return
    if cuda is False:
        raise ConfigError(None, "train.quantization", f"{cfg.quantization} (QLoRA through bitsandbytes) needs a CUDA "
                          "GPU; training here would run on the CPU (no CUDA device visible, or model.device: cpu)")
    if not has_bitsandbytes():
        raise ConfigError(None, "train.quantization", f"{cfg.quantization} (QLoRA) needs bitsandbytes, which is not "
                          "installed: pip install bitsandbytes")


def load_base_model(model: ModelConfig, dtype: str, quantization: str | None = None):
    """The base model as training loads it: `model.path` at `model.revision` with `model.load_args`, in `dtype` (a
    torch dtype name, or `auto`: the checkpoint's own), on the CPU; with `quantization` (`4bit`), QLoRA's 4-bit
    base (`QLORA_4BIT`, bfloat16 compute where the GPU has it, else float16) on the current CUDA device."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = model.from_pretrained_kwargs()
    if quantization == "4bit":
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs.update(quantization_config=BitsAndBytesConfig(**QLORA_4BIT, bnb_4bit_compute_dtype=compute),
                      device_map={"": torch.cuda.current_device()})  # 4-bit weights are made on the GPU
    return AutoModelForCausalLM.from_pretrained(
        model.path, dtype=dtype if dtype == "auto" else getattr(torch, dtype), **kwargs)


def save_merged(peft_model, tokenizer, out: Path) -> None:
    """Merge a peft model's LoRA adapter into its weights and save a complete model (with its generation config)
    and the tokenizer (with its chat template) into `out`, loadable by `AutoModelForCausalLM.from_pretrained`."""
    peft_model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)


def merge_adapter(model: ModelConfig, adapter: Path, out: Path) -> None:
    """`save_merged` of a saved adapter: the base loaded as training loads it, in `model.dtype` (`auto`: the
    checkpoint's own), the adapter on it, merged into `out`. A base that does not load is one line naming
    `model.path` (`loading_model`), as in training."""
    from peft import PeftModel

    from s3ft.backends.hf import load_tokenizer

    with loading_model("model.path", model.path):  # no such folder, a hub id offline, a corrupt file: one line
        tokenizer, base = load_tokenizer(model), load_base_model(model, model.dtype)
    save_merged(PeftModel.from_pretrained(base, str(adapter)), tokenizer, out)


def merge_trained(out_dir: Path, model: ModelConfig) -> dict | None:
    """For a LoRA model trained before `train.save_merged` was set: `out_dir/merged/` from the saved adapter
    (the base loaded as `s3ft export --merge` loads it, in `model.dtype`), no training. Returns the training
    metrics, updated, or None where training has not finished (then it runs, and merges as it ends)."""
    metrics_file = out_dir / "train_metrics.json"
    if not metrics_file.is_file() or not (out_dir / "adapter").is_dir():
        return None
    metrics = json.loads(metrics_file.read_text())
    log.info("train.save_merged: merging the trained adapter %s (no training)", out_dir / "adapter")
    tmp = out_dir / "merged.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merge_adapter(model, out_dir / "adapter", tmp)
    tmp.replace(out_dir / "merged")
    metrics["merged_dir"] = "merged"
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
