"""`train_model`: fine-tune the base on a training file with TRL's `SFTTrainer` (LoRA or full, the loss on the
completion only), resuming from the last complete checkpoint, saving learning-curve snapshots.

Writes into `out_dir/`: `adapter/` or `model/` (the LoRA adapter, or the full model, each with the tokenizer),
`checkpoints/`, `curve/step-N/` (snapshots, when asked), `merged/` (`train.save_merged`, LoRA only) and
`train_metrics.json` (loss, steps, runtime, parameter counts, how accelerate ran it, the log history, and the rows
longer than `train.max_length`: truncated, or dropped where the prompt alone fills it, `rows.over_max_length`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import warnings
from pathlib import Path

from s3ft.config import ModelConfig, TrainConfig, check_pass_through
from s3ft.errors import loading_model
from s3ft.training.args import lora_kwargs, sft_kwargs
from s3ft.training.model import (
    bf16_supported,
    check_quantization,
    load_base_model,
    merge_adapter,
    non_embedding_params,
    numel,
    save_merged,
)
from s3ft.training.progress import log_to_stderr
from s3ft.training.rows import over_max_length, read_train_rows

log = logging.getLogger("s3ft.train")


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest `checkpoint-N` folder that was fully written (it has `trainer_state.json`, written last). One
    whose `trainer_state.json` does not load (torn by a kill or a full disk) is skipped for the one before it,
    with a warning."""
    found = [p for p in ckpt_dir.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)]
    for p in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        state = p / "trainer_state.json"
        if not state.is_file():
            continue
        try:
            if isinstance(json.loads(state.read_bytes()), dict):
                return p
        except ValueError:
            pass
        log.warning("%s does not load (torn?): skipped, resuming from the checkpoint before it (if any)", state)
    return None


def mean_logged_loss(history: list[dict]) -> float | None:
    """Mean loss over every logged step of the run (each logged loss averages the steps since the last)."""
    total = steps = prev = 0
    for e in history:
        if "loss" in e:
            total, steps, prev = total + e["loss"] * (e["step"] - prev), steps + e["step"] - prev, e["step"]
    return total / steps if steps else None


def snapshot_steps(max_steps: int, points: int) -> list[int]:
    """`points` evenly spaced optimizer steps in (0, max_steps], the last one `max_steps`."""
    return sorted({max(1, round(k * max_steps / points)) for k in range(1, points + 1)})


def snapshot_callback(curve_dir: Path, points: int, tokenizer):
    """A TrainerCallback that saves the model (LoRA: the adapter) into `curve_dir/step-N/` at
    `snapshot_steps`: what the learning curves score. A snapshot already saved (before a resume) is kept."""
    from transformers import TrainerCallback

    class Snapshots(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.steps = set(snapshot_steps(state.max_steps, points))

        def on_step_end(self, args, state, control, model=None, **kw):
            if not state.is_world_process_zero:  # one process writes (DDP: every rank holds the same weights)
                return
            step = state.global_step
            final = curve_dir / f"step-{step}"
            if step not in self.steps or final.is_dir():
                return
            tmp = curve_dir / f".step-{step}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            tmp.rename(final)

    return Snapshots()


def _device(model: ModelConfig, cfg: TrainConfig) -> tuple[bool, bool, str]:
    """(cuda, bf16, dtype) of this training process; the current CUDA device set where it trains on one."""
    import torch

    cuda = torch.cuda.is_available() and model.device != "cpu"
    check_quantization(cfg, cuda)
    if cuda and os.environ.get("LOCAL_RANK") is not None:  # under accelerate launch: this process's GPU
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    elif cuda and model.device.startswith("cuda:"):
        torch.cuda.set_device(torch.device(model.device))  # the Trainer uses the current CUDA device
    bf16 = (bf16_supported(cuda) and not cfg.sft_args.get("fp16")) if cfg.bf16 is None else cfg.bf16
    # Mixed precision keeps fp32 master weights; a frozen LoRA base may stay in bf16 on a GPU to save memory.
    dtype = model.dtype
    if dtype == "auto":
        dtype = "bfloat16" if cuda and bf16 and cfg.mode == "lora" else "float32"
    return cuda, bf16, dtype


def _trainer(rows: list[dict], out_dir: Path, model: ModelConfig, cfg: TrainConfig, seed: int, snapshots: int,
             cuda: bool, bf16: bool, dtype: str):
    """(TRL's SFTTrainer, the tokenizer, the base's non-embedding parameter count), ready to train."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from s3ft.backends.hf import load_tokenizer

    with loading_model("model.path", model.path):  # no such folder, a hub id offline, a corrupt file: one line
        tokenizer = load_tokenizer(model)  # applies model.chat_template; a clear error if there is no template
        lm = load_base_model(model, dtype, cfg.quantization)
    base_non_embedding = non_embedding_params(lm)
    if cfg.quantization:  # QLoRA: norms and head in float32, the base frozen, inputs ready for checkpointing
        from peft import prepare_model_for_kbit_training

        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=cfg.gradient_checkpointing)
    peft_config = None
    if cfg.mode == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(**lora_kwargs(cfg))
    with warnings.catch_warnings():  # peft reads a property transformers 5 deprecated; nothing to act on
        warnings.filterwarnings("ignore", r".*is_gradient_checkpointing.* is deprecated", FutureWarning)
        trainer = SFTTrainer(
            model=lm,
            args=SFTConfig(**sft_kwargs(cfg, out_dir / "checkpoints", seed, bf16, cuda)),
            train_dataset=Dataset.from_list(rows),  # in memory: nothing is cached under ~/.cache
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[snapshot_callback(out_dir / "curve", snapshots, tokenizer)] if snapshots else None,
        )
    log_to_stderr(trainer)  # the loss dicts to s3ft's log, not stdout
    return trainer, tokenizer, base_non_embedding


def train_model(train_file: Path, out_dir: Path, model: ModelConfig, cfg: TrainConfig, seed: int,
                snapshots: int = 0) -> dict:
    """Fine-tune `model` on `train_file` per `cfg`; save to `out_dir` and return the training metrics.
    With `snapshots`, also save the model at that many evenly spaced steps into `out_dir/curve/step-N/`."""
    train_file, out_dir = Path(train_file), Path(out_dir)
    rows = read_train_rows(train_file)  # fail on bad input before loading anything heavy

    import datasets
    from trl import SFTConfig

    datasets.disable_progress_bars()  # dataset preparation bars; the training bar stays
    check_pass_through("train.sft_args", cfg.sft_args, SFTConfig)  # a typo fails before loading the model
    if cfg.mode == "lora":
        from peft import LoraConfig

        check_pass_through("train.lora_args", cfg.lora_args, LoraConfig)
    cuda, bf16, dtype = _device(model, cfg)
    trainer, tokenizer, base_non_embedding = _trainer(rows, out_dir, model, cfg, seed, snapshots, cuda, bf16, dtype)
    long_rows = over_max_length(rows, tokenizer, cfg.max_length)
    if long_rows:
        log.warning("%d of %d rows are longer than train.max_length %d: cut to it, %d of them dropped (e.g. %s)",
                    long_rows["truncated_rows"], len(rows), cfg.max_length, long_rows["dropped_rows"],
                    long_rows["over_max_length"][0])
    params = list({id(p): p for p in trainer.model.parameters()}.values())
    trainable = sum(numel(p) for p in params if p.requires_grad)
    ckpt_dir = out_dir / "checkpoints"
    resume = last_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    distributed = trainer.accelerator.distributed_type.value  # accelerate's DistributedType: a str enum
    log.info("training %s (%s) on %d rows from %s: %d of %d parameters trainable, bf16=%s, device=%s, "
             "distributed=%s%s", model.path, cfg.mode + (f", {cfg.quantization} base" if cfg.quantization else ""),
             len(rows), train_file, trainable, sum(numel(p) for p in params), bf16, "cuda" if cuda else "cpu",
             distributed, f", resuming from {resume.name}" if resume else "")
    start = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    model_dir = "adapter" if cfg.mode == "lora" else "model"
    trainer.save_model(str(out_dir / model_dir))  # adapter or full weights (safetensors) + tokenizer
    if not trainer.is_world_process_zero():  # under accelerate launch: the main process writes the rest
        return {}
    merged_dir = None
    if cfg.save_merged and cfg.mode == "lora":
        merged_dir = "merged"
        if distributed in ("FSDP", "DEEPSPEED"):  # this process holds a shard: merge the saved adapter instead
            merge_adapter(model, out_dir / model_dir, out_dir / merged_dir)
        else:
            save_merged(trainer.model, tokenizer, out_dir / merged_dir)
    elif cfg.save_merged:
        log.info("save_merged ignored: full fine-tuning already saves a complete model")
    history = trainer.state.log_history
    metrics = {
        # after a resume, the trainer's own mean covers only the steps run in this call
        "train_loss": mean_logged_loss(history) if resume else result.training_loss,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "runtime_s": round(time.time() - start, 3),
        "rows": len(rows),
        **long_rows,  # truncated_rows, dropped_rows, over_max_length: only where some row is too long
        "processes": trainer.args.world_size,  # data-parallel processes (under accelerate launch)
        "distributed": distributed,  # as accelerate ran it: NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED, ...
        "trainable_params": trainable,
        "total_params": sum(numel(p) for p in params),
        # the share of the model's non-embedding weights that training updates (LoRA r 16 on Mistral-7B: ~0.6%)
        "trainable_share_non_embedding": round(
            (trainable if cfg.mode == "lora" else non_embedding_params(trainer.model)) / base_non_embedding, 6),
        "snapshots": sorted(int(p.name.split("-")[1]) for p in (out_dir / "curve").glob("step-*")) if snapshots else [],
        "mode": cfg.mode,
        "quantization": cfg.quantization,
        "bf16": bf16,
        "model_dir": model_dir,
        "merged_dir": merged_dir,
        "resumed_from": resume.name if resume else None,
        "log_history": history,
    }
    (out_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    loss = f"{metrics['train_loss']:.4f}" if metrics["train_loss"] is not None else "n/a"
    log.info("trained %d steps (%.2f epochs) in %.1fs, loss %s -> %s", metrics["steps"], metrics["epochs"] or 0.0,
             metrics["runtime_s"], loss, out_dir / model_dir)
    return metrics
