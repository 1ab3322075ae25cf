"""Train stage: fine-tune the base model on the selected training set (LoRA or full) with TRL's SFTTrainer.

Reads `<select dir>/train.jsonl` (conversational prompt-completion rows; other columns are dropped) and
writes `<out_dir>/`:
  adapter/ or model/     the LoRA adapter, or the fully fine-tuned model, each with the tokenizer
  checkpoints/           trainer checkpoints; a re-run resumes from the last complete one
  train_metrics.json     loss, steps, runtime, parameter counts and the per-step log history
  merged/                (optional, LoRA only) the adapter merged into the base weights, HF format
The loss covers completion tokens only: the prompt is the task prompt the model is evaluated under.

With `train.num_processes` above 1 or `train.accelerate_config`, `launch` runs the same `train_model` in
processes of its own under `accelerate launch` (`python -m s3ft.stages.train SPEC`, one per device; DDP,
FSDP or DeepSpeed as the accelerate config says); only the main process writes files of its own (the
trainer saves checkpoints and the model itself, on the main process).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from s3ft.config import ModelConfig, TrainConfig, check_pass_through
from s3ft.errors import ConfigError, InputError, S3FTError

log = logging.getLogger("s3ft.train")
QLORA_4BIT = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
"""transformers' `BitsAndBytesConfig` for `train.quantization: 4bit` (QLoRA), but for the compute dtype."""


def _check_messages(path: Path, line: int, field: str, value: Any, roles: set[str] | None = None) -> None:
    """`value` must be a non-empty list of chat messages (with one of `roles`, when given)."""
    if not isinstance(value, list) or not value:
        raise InputError(path, "expected a non-empty list of {role, content} messages", line, field)
    for m in value:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise InputError(path, "each message needs string 'role' and 'content'", line, field)
        if roles is not None and m["role"] not in roles:
            raise InputError(path, f"unexpected role {m['role']!r} (expected {sorted(roles)})", line, field)


def read_train_rows(path: Path) -> list[dict[str, Any]]:
    """Read and validate the training JSONL; keep only `prompt` and `completion` of each row.

    Each problem is an `InputError` naming the line and the field: bad UTF-8 or JSON, a missing or malformed
    field, a blank completion (it would teach the model to stop at once). Repeated rows are kept (upsampling)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "training file not found")
    rows = []
    with path.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, f"not valid UTF-8: {e.reason} at byte {e.start}", i) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(path, f"invalid JSON: {e.msg}", i) from None
            except RecursionError:
                raise InputError(path, "invalid JSON: nested too deeply", i) from None
            if not isinstance(row, dict):
                raise InputError(path, "each line must be a JSON object", i)
            for key in ("prompt", "completion"):
                if key not in row:
                    raise InputError(path, "missing", i, key)
            _check_messages(path, i, "prompt", row["prompt"])
            _check_messages(path, i, "completion", row["completion"], roles={"assistant"})
            if not "".join(m["content"] for m in row["completion"]).strip():
                raise InputError(path, "empty: nothing to learn", i, "completion")
            rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise InputError(path, "no training rows (empty file)")
    return rows


def _bf16_supported(cuda: bool) -> bool:
    """bf16 mixed precision where the hardware does it natively: CUDA (Ampere+) or CPUs with AVX512-BF16."""
    import torch

    if cuda:
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check is not None and check())


def _last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest `checkpoint-N` folder that was fully written (it has `trainer_state.json`)."""
    found = [p for p in ckpt_dir.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)]
    done = [p for p in found if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _mean_logged_loss(history: list[dict]) -> float | None:
    """Mean loss over every logged step of the run (each logged loss averages the steps since the last)."""
    total = steps = prev = 0
    for e in history:
        if "loss" in e:
            total, steps, prev = total + e["loss"] * (e["step"] - prev), steps + e["step"] - prev, e["step"]
    return total / steps if steps else None


def snapshot_steps(max_steps: int, points: int) -> list[int]:
    """`points` evenly spaced optimizer steps in (0, max_steps], the last one `max_steps`."""
    return sorted({max(1, round(k * max_steps / points)) for k in range(1, points + 1)})


def _snapshot_callback(curve_dir: Path, points: int, tokenizer):
    """A TrainerCallback that saves the model (LoRA: the adapter) into `curve_dir/step-N/` at
    `snapshot_steps`: what the learning curves score. A snapshot already saved (before a resume) is kept."""
    import shutil

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


def save_merged(peft_model, tokenizer, out: Path) -> None:
    """Merge a peft model's LoRA adapter into its weights and save a complete model (with its generation config)
    and the tokenizer (with its chat template) into `out`, loadable by `AutoModelForCausalLM.from_pretrained`."""
    peft_model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)


def merge_adapter(model: ModelConfig, adapter: Path, out: Path) -> None:
    """`save_merged` of a saved adapter: the base loaded as training loads it, in `model.dtype` (`auto`: the
    checkpoint's own), the adapter on it, merged into `out`."""
    from peft import PeftModel

    from s3ft.backends.hf import load_tokenizer

    save_merged(PeftModel.from_pretrained(load_base_model(model, model.dtype), str(adapter)), load_tokenizer(model), out)


def merge_trained(out_dir: Path, model: ModelConfig) -> dict | None:
    """For a LoRA model trained before `train.save_merged` was set: `out_dir/merged/` from the saved adapter
    (the base loaded as `s3ft export --merge` loads it, in `model.dtype`), no training. Returns the training
    metrics, updated, or None where training has not finished (then it runs, and merges as it ends)."""
    metrics_file = out_dir / "train_metrics.json"
    if not metrics_file.is_file() or not (out_dir / "adapter").is_dir():
        return None
    metrics = json.loads(metrics_file.read_text())
    import shutil

    log.info("train.save_merged: merging the trained adapter %s (no training)", out_dir / "adapter")
    tmp = out_dir / "merged.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merge_adapter(model, out_dir / "adapter", tmp)
    tmp.replace(out_dir / "merged")
    metrics["merged_dir"] = "merged"
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def train_model(train_file: Path, out_dir: Path, model: ModelConfig, cfg: TrainConfig, seed: int,
                snapshots: int = 0) -> dict:
    """Fine-tune `model` on `train_file` per `cfg`; save to `out_dir` and return the training metrics.
    With `snapshots`, also save the model at that many evenly spaced steps into `out_dir/curve/step-N/`."""
    train_file, out_dir = Path(train_file), Path(out_dir)
    rows = read_train_rows(train_file)  # fail on bad input before loading anything heavy

    import datasets
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from s3ft.backends.hf import load_tokenizer

    datasets.disable_progress_bars()  # dataset preparation bars; the training bar stays

    check_pass_through("train.sft_args", cfg.sft_args, SFTConfig)  # a typo fails before loading the model
    if cfg.mode == "lora":
        from peft import LoraConfig

        check_pass_through("train.lora_args", cfg.lora_args, LoraConfig)
    cuda = torch.cuda.is_available() and model.device != "cpu"
    check_quantization(cfg, cuda)
    if cuda and os.environ.get("LOCAL_RANK") is not None:  # under accelerate launch: this process's GPU
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    elif cuda and model.device.startswith("cuda:"):
        torch.cuda.set_device(torch.device(model.device))  # the Trainer uses the current CUDA device
    bf16 = (_bf16_supported(cuda) and not cfg.sft_args.get("fp16")) if cfg.bf16 is None else cfg.bf16
    # Mixed precision keeps fp32 master weights; a frozen LoRA base may stay in bf16 on a GPU to save memory.
    dtype = model.dtype
    if dtype == "auto":
        dtype = "bfloat16" if cuda and bf16 and cfg.mode == "lora" else "float32"
    tokenizer = load_tokenizer(model)  # applies model.chat_template; a clear error if there is no template
    lm = load_base_model(model, dtype, cfg.quantization)
    base_non_embedding = non_embedding_params(lm)
    if cfg.quantization:  # QLoRA: norms and head in float32, the base frozen, inputs ready for checkpointing
        from peft import prepare_model_for_kbit_training

        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=cfg.gradient_checkpointing)

    ckpt_dir = out_dir / "checkpoints"
    args = SFTConfig(**sft_kwargs(cfg, ckpt_dir, seed, bf16, cuda))
    peft_config = LoraConfig(**lora_kwargs(cfg)) if cfg.mode == "lora" else None
    with warnings.catch_warnings():  # peft reads a property transformers 5 deprecated; nothing to act on
        warnings.filterwarnings("ignore", r".*is_gradient_checkpointing.* is deprecated", FutureWarning)
        trainer = SFTTrainer(
            model=lm,
            args=args,
            train_dataset=Dataset.from_list(rows),  # in memory: nothing is cached under ~/.cache
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[_snapshot_callback(out_dir / "curve", snapshots, tokenizer)] if snapshots else None,
        )
    params = list({id(p): p for p in trainer.model.parameters()}.values())
    trainable = sum(numel(p) for p in params if p.requires_grad)
    total = sum(numel(p) for p in params)
    resume = _last_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    distributed = trainer.accelerator.distributed_type.value  # accelerate's DistributedType: a str enum
    log.info(
        "training %s (%s) on %d rows from %s: %d of %d parameters trainable, bf16=%s, device=%s, "
        "distributed=%s%s",
        model.path,
        cfg.mode + (f", {cfg.quantization} base" if cfg.quantization else ""),
        len(rows),
        train_file,
        trainable,
        total,
        bf16,
        "cuda" if cuda else "cpu",
        distributed,
        f", resuming from {resume.name}" if resume else "",
    )
    start = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    history = trainer.state.log_history
    model_dir = "adapter" if cfg.mode == "lora" else "model"
    trainer.save_model(str(out_dir / model_dir))  # adapter or full weights (safetensors) + tokenizer
    merged_dir = None
    if not trainer.is_world_process_zero():  # under accelerate launch: the main process writes the rest
        return {}
    if cfg.save_merged and cfg.mode == "lora":
        merged_dir = "merged"
        if distributed in ("FSDP", "DEEPSPEED"):  # this process holds a shard: merge the saved adapter instead
            merge_adapter(model, out_dir / model_dir, out_dir / merged_dir)
        else:
            save_merged(trainer.model, tokenizer, out_dir / merged_dir)
    elif cfg.save_merged:
        log.info("save_merged ignored: full fine-tuning already saves a complete model")

    metrics = {
        # after a resume, the trainer's own mean covers only the steps run in this call
        "train_loss": _mean_logged_loss(history) if resume else result.training_loss,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "runtime_s": round(time.time() - start, 3),
        "rows": len(rows),
        "processes": trainer.args.world_size,  # data-parallel processes (under accelerate launch)
        "distributed": distributed,  # as accelerate ran it: NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED, ...
        "trainable_params": trainable,
        "total_params": total,
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
    log.info(
        "trained %d steps (%.2f epochs) in %.1fs, loss %s -> %s",
        metrics["steps"],
        metrics["epochs"] or 0.0,
        metrics["runtime_s"],
        f"{metrics['train_loss']:.4f}" if metrics["train_loss"] is not None else "n/a",
        out_dir / model_dir,
    )
    return metrics


def same_rows(a: Path, b: Path) -> bool:
    """Whether two training files hold the same rows (prompt and completion) in the same order: other
    columns (a row's provenance) do not enter training."""
    return Path(b).is_file() and read_train_rows(a) == read_train_rows(b)


REUSING = "reusing.json"
"""Marks a train folder while `reuse_training` fills it; a folder that still has it was left half-filled."""
NOT_REUSED = ("checkpoints", "manifest.json", "progress.json", "launch.json", "train_metrics.json", REUSING)
"""What `reuse_training` does not take from the donor (its metrics it writes anew, as a file of its own)."""


def clear_partial_reuse(out: Path) -> None:
    """Empty `out` (but for `progress.json`) if `reuse_training` was killed while filling it: its files are
    hard links to the donor's, which training or merging into the folder would overwrite in place."""
    import shutil

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
    import shutil

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


def reused_from(train_dir: Path, method: str, mode: str) -> str | None:
    """The method whose trained model `method` took (`reuse_training`), while that method's weights are still
    the ones it took; else None."""
    own = Path(train_dir) / method
    try:
        donor = json.loads((own / "train_metrics.json").read_text()).get("reused_from")
    except (OSError, ValueError):
        return None
    weights = "adapter" if mode == "lora" else "model"
    if not donor or not (own / weights).is_dir() or not (Path(train_dir) / donor / weights).is_dir():
        return None
    from s3ft.rundir import dir_hash

    return donor if dir_hash(Path(train_dir) / donor / weights) == dir_hash(own / weights) else None


def trained_weights(train_dir: Path, method: str, mode: str, snapshot: Path | None = None) -> Path:
    """The folder to load `method`'s trained weights (or a learning-curve `snapshot` of them) from: the
    method's own, or, where it took an earlier method's trained model (`reused_from`), that method's, so that
    evaluating it reads that method's cached generations (cache keys name the weights' folder)."""
    own = Path(train_dir) / method
    weights = Path(snapshot) if snapshot is not None else own / ("adapter" if mode == "lora" else "model")
    donor = reused_from(train_dir, method, mode)
    if donor is None or not weights.is_relative_to(own):
        return weights
    theirs = Path(train_dir) / donor / weights.relative_to(own)
    return theirs if theirs.is_dir() else weights


def launched(cfg: TrainConfig) -> bool:
    """Whether the train stage runs under `accelerate launch` (several processes, or an accelerate config)."""
    return cfg.num_processes > 1 or cfg.accelerate_config is not None


def launch_command(cfg: TrainConfig, spec: Path) -> list[str]:
    """`accelerate launch` of `python -m s3ft.stages.train SPEC`: with the user's accelerate config file, or as
    torchrun (`--multi_gpu`, which is also how several CPU processes run, with gloo) of `num_processes`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if cfg.accelerate_config is not None:
        if not Path(cfg.accelerate_config).is_file():
            raise ConfigError(None, "train.accelerate_config", f"no such file: {cfg.accelerate_config}")
        cmd += ["--config_file", str(cfg.accelerate_config)]
    else:
        cmd += ["--multi_gpu", "--num_machines", "1", "--dynamo_backend", "no"]
    if cfg.num_processes > 1:
        cmd += ["--num_processes", str(cfg.num_processes)]
    return [*cmd, "--mixed_precision", "no", "-m", "s3ft.stages.train", str(spec)]


def launch(train_file: Path, out_dir: Path, model: ModelConfig, cfg: TrainConfig, seed: int,
           snapshots: int = 0) -> dict:
    """`train_model` under `accelerate launch` (see the module docstring); returns the main process's metrics.
    The processes log to this process's stderr; a failure raises with the command and its exit status."""
    out_dir = Path(out_dir)
    read_train_rows(train_file)  # bad input fails here, once, with its line and field
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "launch.json"
    spec.write_text(json.dumps({"train_file": str(train_file), "out_dir": str(out_dir), "seed": seed,
                                "snapshots": snapshots, "model": model.model_dump(mode="json"),
                                "train": cfg.model_dump(mode="json")}, indent=2) + "\n")
    (out_dir / "train_metrics.json").unlink(missing_ok=True)
    cmd = launch_command(cfg, spec)
    log.info("training under accelerate launch: %s", " ".join(cmd[1:]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = subprocess.run(cmd, env=env).returncode
    metrics = out_dir / "train_metrics.json"
    if code != 0 or not metrics.is_file():
        raise S3FTError(f"training under accelerate launch failed (exit status {code}; its log is above): "
                        f"{' '.join(cmd)}")
    result = json.loads(metrics.read_text())
    asked = _asked_distribution(cfg.accelerate_config)
    if asked in ("FSDP", "DEEPSPEED") and result.get("distributed") != asked:
        log.warning("%s asks for %s, but accelerate ran the training as %s (accelerate runs FSDP and DeepSpeed "
                    "only on GPUs and other accelerators, not on a CPU)", cfg.accelerate_config, asked,
                    result.get("distributed"))
    return result


def _asked_distribution(config_file: str | None) -> str | None:
    """The `distributed_type` an accelerate config file (YAML or JSON) asks for, if it says."""
    if config_file is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(Path(config_file).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(data.get("distributed_type")).upper() if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> None:
    """One training process under `accelerate launch`: `python -m s3ft.stages.train SPEC` (written by `launch`)."""
    from s3ft.cli import setup_logging

    setup_logging()
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    train_model(Path(spec["train_file"]), Path(spec["out_dir"]), ModelConfig(**spec["model"]),
                TrainConfig(**spec["train"]), spec["seed"], spec["snapshots"])


if __name__ == "__main__":
    main()
