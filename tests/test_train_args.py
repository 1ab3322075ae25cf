"""Tests of what the train stage hands to TRL, peft and transformers, without training: s3ft's own settings
and the pass-throughs (`train.sft_args`, `train.lora_args`, `model.load_args`), their names checked against the
libraries' own dataclasses (at training and by `s3ft validate`), and QLoRA's preconditions."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from s3ft import weights
from s3ft.config import LORA_OWNED, SFT_OWNED, ModelConfig, TrainConfig, check_pass_through, load_config
from s3ft.errors import ConfigError
from s3ft.training import args as A
from s3ft.training import model as TM
from s3ft.training import same_rows
from s3ft.validate import train_args_check, validate

FIX = Path(__file__).parent / "fixtures"


def _init_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def test_sft_kwargs_are_s3fts_settings_then_the_pass_through(tmp_path):
    cfg = TrainConfig(learning_rate=3e-4, batch_size=2, shuffle=False, sft_args={"optim": "sgd", "max_grad_norm": 0.5})
    kw = A.sft_kwargs(cfg, tmp_path / "ckpt", seed=7, bf16=False, cuda=False)
    assert kw["output_dir"] == str(tmp_path / "ckpt") and kw["seed"] == 7 and kw["use_cpu"] is True
    assert (kw["learning_rate"], kw["per_device_train_batch_size"], kw["train_sampling_strategy"]) == (3e-4, 2, "sequential")
    assert kw["completion_only_loss"] is True and kw["report_to"] == "none"
    assert (kw["optim"], kw["max_grad_norm"]) == ("sgd", 0.5)
    assert set(kw) - {"optim", "max_grad_norm"} <= set(SFT_OWNED)  # what s3ft passes, sft_args may not repeat


def test_lora_kwargs_and_from_pretrained_kwargs():
    cfg = TrainConfig(lora_r=4, lora_args={"use_rslora": True, "modules_to_save": ["lm_head"]})
    assert A.lora_kwargs(cfg) == {"r": 4, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear",
                                  "task_type": "CAUSAL_LM", "use_rslora": True, "modules_to_save": ["lm_head"]}
    assert set(A.lora_kwargs(TrainConfig())) <= set(LORA_OWNED)
    m = ModelConfig(path="m", revision="v1", load_args={"attn_implementation": "eager"})
    assert m.from_pretrained_kwargs() == {"revision": "v1", "trust_remote_code": False, "attn_implementation": "eager"}
    assert TM.QLORA_4BIT == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}


def test_s3fts_own_keys_are_fields_of_trl_and_peft_and_build_their_configs(tmp_path):
    """Against the installed libraries: a renamed field in TRL or peft fails here, not in a user's run."""
    from peft import LoraConfig
    from trl import SFTConfig

    assert set(SFT_OWNED) <= _init_fields(SFTConfig) and set(LORA_OWNED) <= _init_fields(LoraConfig)
    cfg = TrainConfig(sft_args={"optim": "sgd", "max_grad_norm": 0.5, "neftune_noise_alpha": 5.0},
                      lora_args={"use_rslora": True})
    args = SFTConfig(**A.sft_kwargs(cfg, tmp_path / "ckpt", seed=0, bf16=False, cuda=False))
    assert (args.optim, args.max_grad_norm, args.neftune_noise_alpha, args.learning_rate) == ("sgd", 0.5, 5.0, 1e-4)
    lora = LoraConfig(**A.lora_kwargs(cfg))
    assert lora.use_rslora is True and lora.r == 16


def test_unknown_pass_through_names_are_errors_with_close_matches():
    from peft import LoraConfig
    from trl import SFTConfig

    with pytest.raises(ConfigError) as info:
        check_pass_through("train.sft_args", {"optim": "sgd", "neftune_noise_alpa": 5}, SFTConfig)
    assert info.value.key == "train.sft_args.neftune_noise_alpa" and "did you mean neftune_noise_alpha" in str(info.value)
    with pytest.raises(ConfigError, match=r"train.lora_args.use_rslor: not a field of LoraConfig; did you mean use_rslora"):
        check_pass_through("train.lora_args", {"use_rslor": True}, LoraConfig)


def test_validate_checks_the_pass_through_names(tmp_path, monkeypatch):
    def cfg(*overrides):
        raw = {"run_dir": str(tmp_path / "run"), "model": {"path": "s3ft-tiny"},
               "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}}}
        return load_config(raw=raw, overrides=list(overrides))

    lines = validate(cfg("train.sft_args.max_grad_norm=0.5", "train.lora_args.use_rslora=true"))
    assert "train.sft_args: max_grad_norm (SFTConfig fields)" in lines
    assert "train.lora_args: use_rslora (LoraConfig fields)" in lines
    assert not any(x.startswith("train.") for x in validate(cfg()))  # nothing set: trl and peft not needed
    with pytest.raises(ConfigError) as info:
        validate(cfg("train.sft_args.max_grad_nrom=0.5"))
    assert info.value.key == "train.sft_args.max_grad_nrom" and "did you mean max_grad_norm" in str(info.value)
    assert train_args_check(cfg("train.mode=full", "train.lora_args.nonsense=1").train) == []  # full ignores them
    monkeypatch.setitem(sys.modules, "trl", None)  # as if TRL were not installed
    assert train_args_check(cfg("train.sft_args.max_grad_norm=0.5").train) == [
        "train.sft_args: max_grad_norm (not checked: trl is not installed here)"]


def test_quantization_needs_cuda_then_bitsandbytes(monkeypatch):
    cfg = TrainConfig(quantization="4bit")
    TM.check_quantization(TrainConfig(), cuda=False)  # not asked for: nothing to check
    monkeypatch.setattr(TM, "has_bitsandbytes", lambda: True)
    with pytest.raises(ConfigError, match=r"train.quantization: 4bit \(QLoRA through bitsandbytes\) needs a CUDA GPU"):
        TM.check_quantization(cfg, cuda=False)
    TM.check_quantization(cfg, cuda=True)
    TM.check_quantization(cfg, cuda=None)  # validate: the GPU is not known there
    assert train_args_check(cfg) == ["train.quantization: 4bit (bitsandbytes installed; training needs a CUDA GPU)"]
    monkeypatch.setattr(TM, "has_bitsandbytes", lambda: False)
    for cuda in (True, None):
        with pytest.raises(ConfigError, match="not installed: pip install bitsandbytes"):
            TM.check_quantization(cfg, cuda=cuda)
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        train_args_check(cfg)


# --- one training for identical training sets ----------------------------------------------------


def _train_file(path: Path, rows: list[tuple[str, str]], source: str) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"r{i}", "source": source, "prompt": [{"role": "user", "content": q}],
                                        "completion": [{"role": "assistant", "content": a}]}) + "\n"
                            for i, (q, a) in enumerate(rows)))
    return path


def _trained_unit(tdir: Path, fp: str = "fp-sdft") -> None:
    import json

    for sub in ("model", "curve/step-2", "checkpoints/checkpoint-2"):
        (tdir / sub).mkdir(parents=True)
        (tdir / sub / "model.safetensors").write_bytes(b"weights of " + sub.encode())
    (tdir / "train_metrics.json").write_text(json.dumps({"train_loss": 0.5, "runtime_s": 9.0}))
    (tdir / "manifest.json").write_text(json.dumps({"fingerprint": fp}))


def test_same_rows_compares_prompt_and_completion_in_order_not_provenance(tmp_path):
    rows = [("q1", "a1"), ("q2", "a2")]
    a = _train_file(tmp_path / "a.jsonl", rows, "paraphrase")
    assert same_rows(a, _train_file(tmp_path / "b.jsonl", rows, "self"))  # provenance does not train
    assert not same_rows(a, _train_file(tmp_path / "c.jsonl", rows[::-1], "self"))  # order does
    assert not same_rows(a, _train_file(tmp_path / "d.jsonl", [("q1", "a1"), ("q2", "a3")], "self"))
    assert not same_rows(a, tmp_path / "missing.jsonl")


def test_a_method_with_the_same_rows_as_an_earlier_one_takes_its_trained_model(tmp_path, monkeypatch):
    """The train stage: S3FT's rows are SDFT's (prompt and completion, in order), SDFT's train unit is
    done, so S3FT is not trained again: its folder holds SDFT's model and curve, not its checkpoints, and
    evaluating it loads SDFT's folder (whose generations are cached) while SDFT's files are unchanged."""
    import json
    import os
    from types import SimpleNamespace

    from s3ft.rundir import UnitDir
    from s3ft.stages import train as stage_train

    rows = [("q1", "a1"), ("q2", "a2")]
    stage = {"select": tmp_path / "06_select", "train": tmp_path / "07_train"}
    _train_file(stage["select"] / "sdft" / "train.jsonl", rows, "paraphrase")
    _train_file(stage["select"] / "s3ft" / "train.jsonl", rows, "self")
    _train_file(stage["select"] / "sft" / "train.jsonl", [("q1", "gold")], "gold")
    _trained_unit(stage["train"] / "sdft")
    ctx = SimpleNamespace(release=lambda: None, stage_dir=stage.__getitem__, run_dir=tmp_path,
                          cfg=SimpleNamespace(train=TrainConfig(mode="full"), model=None, seed=0,
                                              curve_points=lambda: 0))
    calls = []
    monkeypatch.setattr(stage_train, "train_model", lambda rows, out, *a, **k: calls.append(rows) or {"trained": True})
    done, stale = UnitDir(stage["train"] / "sdft", "fp-sdft"), UnitDir(stage["train"] / "sdft", "fp-other")
    out = stage["train"] / "s3ft"
    out.mkdir()
    assert stage_train.run(ctx, out, "s3ft", [("sdft", stale)]) == {"trained": True}  # not done: trains
    assert stage_train.run(ctx, stage["train"] / "sft", "sft", [("sdft", done)]) == {"trained": True}  # other rows
    assert len(calls) == 2
    metrics = stage_train.run(ctx, out, "s3ft", [("sdft", done)])
    assert len(calls) == 2 and metrics == {"train_loss": 0.5, "runtime_s": 0.0, "reused_from": "sdft"}
    assert json.loads((out / "train_metrics.json").read_text())["reused_from"] == "sdft"
    assert "reused_from" not in json.loads((stage["train"] / "sdft" / "train_metrics.json").read_text())
    assert (out / "model" / "model.safetensors").read_bytes() == b"weights of model"
    assert (out / "curve" / "step-2" / "model.safetensors").is_file() and not (out / "checkpoints").exists()
    assert not (out / "manifest.json").exists()
    donor = stage["train"] / "sdft"
    assert weights.load_from(tmp_path, "s3ft", "full") == donor / "model"
    assert weights.reused_from(tmp_path, "s3ft", "full") == "sdft" and weights.reused_from(tmp_path, "sdft", "full") is None
    assert weights.load_from(tmp_path, "s3ft", "full", out / "curve" / "step-2") == donor / "curve" / "step-2"
    assert weights.load_from(tmp_path, "sdft", "full") == donor / "model"
    (donor / "model" / "model.safetensors").unlink()  # SDFT trained again: its weights are no longer S3FT's
    (donor / "model" / "model.safetensors").write_bytes(b"other weights")
    os.utime(donor / "model" / "model.safetensors", ns=(1, 1))
    assert weights.load_from(tmp_path, "s3ft", "full") == out / "model"
    assert weights.reused_from(tmp_path, "s3ft", "full") is None  # the report no longer says they are one
    assert (out / "model" / "model.safetensors").read_bytes() == b"weights of model"


def test_a_reuse_killed_midway_is_emptied_before_the_folder_is_trained_into(tmp_path, monkeypatch):
    """Half-filled by `reuse_training` (killed), the folder holds hard links to the donor's files: the next
    run empties it (its progress record kept) before training into it or filling it again."""
    import json
    import os

    donor, out = tmp_path / "sdft", tmp_path / "s3ft"
    _trained_unit(donor)
    out.mkdir()
    (out / "progress.json").write_text("{}")
    (out / weights.REUSING).write_text("{}")
    (out / "model").mkdir()
    os.link(donor / "model" / "model.safetensors", out / "model" / "model.safetensors")
    weights.clear_partial_reuse(out)
    assert sorted(p.name for p in out.iterdir()) == ["progress.json"]
    assert (donor / "model" / "model.safetensors").read_bytes() == b"weights of model"
    (out / weights.REUSING).write_text("{}")
    (out / "model").mkdir()
    os.link(donor / "model" / "model.safetensors", out / "model" / "model.safetensors")
    weights.reuse_training(donor, out, "sdft")  # filling it again works over the half-filled folder
    assert not (out / weights.REUSING).exists() and (out / "curve" / "step-2").is_dir()
    assert json.loads((out / "train_metrics.json").read_text())["reused_from"] == "sdft"
    weights.clear_partial_reuse(out)  # a finished reuse is left alone
    assert (out / "model" / "model.safetensors").is_file()
