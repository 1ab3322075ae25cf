"""Tests of the train stage on the tiny offline model: LoRA and full fine-tuning, completion-only loss,
resuming an interrupted run, the merged export, input errors, and that training actually learns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import trl

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError, InputError
from s3ft.training import train_model

pytestmark = pytest.mark.filterwarnings(  # peft reads a property transformers 5 deprecated
    r"ignore:.*is_gradient_checkpointing.* is deprecated:FutureWarning"
)
FAST = dict(
    batch_size=4, max_steps=2, logging_steps=1, save_steps=1000, warmup_ratio=0.0, max_length=128, bf16=False
)


def _row(i: int) -> dict:
    return {
        "id": f"t-{i}",
        "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "completion": [{"role": "assistant", "content": f"{i} plus {i} is {2 * i}. The answer is {2 * i}."}],
        "source": ["self", "paraphrase", "gold"][i % 3],
        "judge": {"correct": True},
    }


def _train(train_file: Path, out: Path, tiny: Path, **cfg) -> dict:
    return train_model(train_file, out, ModelConfig(path=str(tiny)), TrainConfig(**{**FAST, **cfg}), 0)


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def train_file(tmp_path) -> Path:
    return _write(tmp_path / "train.jsonl", [_row(i) for i in range(16)])


class _Interrupted(Exception):
    pass


class _Recording(trl.SFTTrainer):
    """SFTTrainer that remembers its instances, counts optimizer steps, and can crash at a given step."""

    instances: list = []
    crash_at: int | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps_run = 0
        _Recording.instances.append(self)

    def training_step(self, *args, **kwargs):
        if self.state.global_step == _Recording.crash_at:
            raise _Interrupted(f"simulated interruption at step {self.state.global_step}")
        self.steps_run += 1
        return super().training_step(*args, **kwargs)


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setattr(trl, "SFTTrainer", _Recording)
    monkeypatch.setattr(_Recording, "instances", [])
    monkeypatch.setattr(_Recording, "crash_at", None)
    return _Recording


def _logits(model, tok) -> torch.Tensor:
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is 3 plus 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        return model(**ids).logits


def test_lora_writes_a_working_adapter(tiny_model_dir, train_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    m = _train(train_file, out, tiny_model_dir, learning_rate=1e-2)
    assert (m["mode"], m["model_dir"], m["merged_dir"]) == ("lora", "adapter", None)
    assert (m["steps"], m["rows"], m["resumed_from"]) == (2, 16, None)
    assert math.isfinite(m["train_loss"]) and m["train_loss"] > 0
    assert 0 < m["trainable_params"] < m["total_params"] / 2
    assert [e["step"] for e in m["log_history"] if "loss" in e] == [1, 2]
    assert json.loads((out / "train_metrics.json").read_text())["steps"] == 2
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not (out / "merged").exists() and not (out / "model").exists()

    tok = AutoTokenizer.from_pretrained(out / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    before = _logits(base, tok)
    tuned = PeftModel.from_pretrained(base, out / "adapter")
    assert (_logits(tuned, tok) - before).abs().max() > 1e-4


def test_full_finetune_saves_a_loadable_model(tiny_model_dir, train_file, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    m = _train(train_file, out, tiny_model_dir, mode="full")
    assert (m["mode"], m["model_dir"], m["steps"]) == ("full", "model", 2)
    assert m["trainable_params"] == m["total_params"]
    assert (out / "model" / "model.safetensors").is_file() and not (out / "adapter").exists()
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert not torch.allclose(_logits(model, tok), _logits(base, tok))


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_snapshots_for_learning_curves_and_trainable_share(mode, tiny_model_dir, train_file, tmp_path):
    from transformers import AutoModelForCausalLM

    from s3ft.training.loop import snapshot_steps
    from s3ft.training.model import non_embedding_params

    assert snapshot_steps(10, 4) == [2, 5, 8, 10] and snapshot_steps(3, 4) == [1, 2, 3]
    out = tmp_path / "out"
    m = train_model(train_file, out, ModelConfig(path=str(tiny_model_dir)),
                    TrainConfig(**{**FAST, "max_steps": 4, "mode": mode, "learning_rate": 1e-2}), 0, snapshots=2)
    assert m["snapshots"] == [2, 4] and sorted(p.name for p in (out / "curve").iterdir()) == ["step-2", "step-4"]
    weights = "adapter_model.safetensors" if mode == "lora" else "model.safetensors"
    assert all((out / "curve" / s / weights).is_file() and (out / "curve" / s / "tokenizer.json").is_file()
               for s in ("step-2", "step-4"))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    share = m["trainable_share_non_embedding"]
    if mode == "lora":
        assert share == round(m["trainable_params"] / non_embedding_params(base), 6) and 0 < share < 0.5
        assert (out / "curve" / "step-4" / weights).read_bytes() == (out / "adapter" / weights).read_bytes()
    else:
        assert share == 1.0
    assert non_embedding_params(base) == base.num_parameters() - base.get_input_embeddings().weight.numel()


def test_loss_covers_the_completion_only(tiny_model_dir, train_file, tmp_path, recording):
    from transformers import AutoTokenizer

    _train(train_file, tmp_path / "out", tiny_model_dir)
    trainer = recording.instances[-1]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = trainer.train_dataset
    assert len(ds) == 16
    for i, ex in enumerate(ds):
        row = _row(i)
        prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)
        n = len(prompt["input_ids"])
        ids, labels = ex["input_ids"], ex["labels"]
        assert labels[:n] == [-100] * n
        assert labels[n:] == ids[n:]
        assert tok.decode(ids[n:]).startswith(row["completion"][0]["content"] + "<|im_end|>")
    batch = trainer.data_collator([ds[0], ds[1]])
    keep = batch["labels"] != -100
    assert keep.any() and torch.equal(batch["labels"][keep], batch["input_ids"][keep])


def test_interrupted_run_resumes_from_last_complete_checkpoint(
    tiny_model_dir, train_file, tmp_path, recording
):
    out = tmp_path / "out"
    cfg = dict(max_steps=6, save_steps=2)
    recording.crash_at = 4  # after checkpoint-4 is written, before step 5
    with pytest.raises(_Interrupted):
        _train(train_file, out, tiny_model_dir, **cfg)
    assert (out / "checkpoints" / "checkpoint-4").is_dir() and not (out / "adapter").exists()
    (out / "checkpoints" / "checkpoint-8").mkdir()  # a checkpoint cut off mid-write is skipped

    recording.crash_at = None
    m = _train(train_file, out, tiny_model_dir, **cfg)
    assert m["resumed_from"] == "checkpoint-4"
    assert recording.instances[-1].steps_run == 2 and m["steps"] == 6
    losses = [(e["step"], e["loss"]) for e in m["log_history"] if "loss" in e]
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5, 6]
    assert m["train_loss"] == pytest.approx(sum(loss for _, loss in losses) / 6)  # the whole run, not 5-6
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_save_merged_writes_a_model_equal_to_base_plus_adapter(tiny_model_dir, train_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    m = _train(train_file, out, tiny_model_dir, learning_rate=1e-2, save_merged=True)
    assert m["merged_dir"] == "merged"
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    tok = AutoTokenizer.from_pretrained(out / "merged")
    assert tok.chat_template
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, out / "adapter")
    assert torch.allclose(_logits(merged, tok), _logits(with_adapter, tok), atol=1e-4)


def test_save_merged_set_after_training_merges_the_saved_adapter_without_training(tiny_model_dir, train_file,
                                                                                  tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from s3ft.training.model import merge_trained

    out = tmp_path / "out"
    assert merge_trained(out, ModelConfig(path=str(tiny_model_dir))) is None  # not trained: train first
    m = _train(train_file, out, tiny_model_dir, learning_rate=1e-2)
    assert m["merged_dir"] is None and not (out / "merged").exists()
    merged_metrics = merge_trained(out, ModelConfig(path=str(tiny_model_dir), dtype="float32"))
    assert merged_metrics == {**json.loads(json.dumps(m)), "merged_dir": "merged"}
    assert json.loads((out / "train_metrics.json").read_text()) == merged_metrics
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    tok = AutoTokenizer.from_pretrained(out / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, out / "adapter")
    assert torch.allclose(_logits(merged, tok), _logits(with_adapter, tok), atol=1e-4)


BAD = {
    "missing completion": ([_row(0), {"prompt": _row(1)["prompt"]}], 2, "completion"),
    "missing prompt": ([{"completion": _row(0)["completion"]}], 1, "prompt"),
    "string prompt": ([{**_row(0), "prompt": "plain text"}], 1, "prompt"),
    "bad message": ([_row(0), _row(1), {**_row(2), "completion": [{"role": "assistant"}]}], 3, "completion"),
    "user completion": ([{**_row(0), "completion": [{"role": "user", "content": "x"}]}], 1, "completion"),
    "invalid json": ([_row(0), "{not json"], 2, None),
    "empty file": ([], None, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_train_file_is_reported_before_loading_the_model(case, tmp_path):
    rows, line, field = BAD[case]
    path = _write(tmp_path / "train.jsonl", rows)
    with pytest.raises(InputError) as e:  # the model path does not exist: loading it would fail differently
        train_model(path, tmp_path / "out", ModelConfig(path=str(tmp_path / "no-model")), TrainConfig(), 0)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), line, field)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "cfg, match",
    [
        (dict(sft_args={"max_grad_nrom": 0.5}), r"train.sft_args.max_grad_nrom: not a field of SFTConfig; did you mean"),
        (dict(lora_args={"use_rslor": True}), r"train.lora_args.use_rslor: not a field of LoraConfig; did you mean"),
        (dict(quantization="4bit"), r"train.quantization: 4bit \(QLoRA through bitsandbytes\) needs a CUDA GPU"),
    ],
    ids=["sft_args", "lora_args", "qlora-on-cpu"],
)
def test_bad_train_settings_are_reported_before_loading_the_model(cfg, match, train_file, tmp_path):
    model = ModelConfig(path=str(tmp_path / "no-model"), device="cpu")  # loading it would fail differently
    with pytest.raises(ConfigError, match=match):
        train_model(train_file, tmp_path / "out", model, TrainConfig(**cfg), 0)


def test_pass_through_reaches_the_trainer_peft_and_the_model(tiny_model_dir, train_file, tmp_path, recording):
    model = ModelConfig(path=str(tiny_model_dir), load_args={"attn_implementation": "eager"})
    cfg = TrainConfig(**FAST, sft_args={"max_grad_norm": 0.5, "run_name": "pass-through"},
                      lora_args={"use_rslora": True})
    m = train_model(train_file, tmp_path / "out", model, cfg, 0)
    assert m["steps"] == 2 and m["quantization"] is None
    trainer = recording.instances[-1]
    assert (trainer.args.max_grad_norm, trainer.args.run_name) == (0.5, "pass-through")
    assert trainer.model.peft_config["default"].use_rslora is True
    assert trainer.model.get_base_model().config._attn_implementation == "eager"


def test_missing_train_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        train_model(tmp_path / "nope.jsonl", tmp_path / "out", ModelConfig(path="unused"), TrainConfig(), 0)


def test_training_learns(tiny_model_dir, tmp_path):
    path = _write(tmp_path / "train.jsonl", [_row(7)] * 8)
    cfg = dict(mode="full", max_steps=30, batch_size=8, learning_rate=1e-2, lr_scheduler="constant")
    m = _train(path, tmp_path / "out", tiny_model_dir, **cfg)
    losses = [e["loss"] for e in m["log_history"] if "loss" in e]
    assert len(losses) == 30
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lora_on_gpu_with_automatic_bf16(tiny_model_dir, train_file, tmp_path):
    m = _train(train_file, tmp_path / "out", tiny_model_dir, bf16=None)
    assert m["bf16"] is torch.cuda.is_bf16_supported()
    assert math.isfinite(m["train_loss"]) and m["steps"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_qlora_on_gpu(tiny_model_dir, train_file, tmp_path, recording):
    """`train.quantization: 4bit`: the base loads in 4 bits, the LoRA adapter trains, and it loads on the
    full-precision base as the evaluate stage loads it."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install bitsandbytes)")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    m = _train(train_file, out, tiny_model_dir, quantization="4bit", bf16=None, learning_rate=1e-2)
    assert (m["quantization"], m["mode"], m["steps"]) == ("4bit", "lora", 2) and math.isfinite(m["train_loss"])
    assert 0 < m["trainable_params"] < m["total_params"] and 0 < m["trainable_share_non_embedding"] < 0.5
    assert any(p.__class__.__name__ == "Params4bit" for p in recording.instances[-1].model.parameters())
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and not (out / "merged").exists()
    tok = AutoTokenizer.from_pretrained(out / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    before = _logits(base, tok)
    tuned = PeftModel.from_pretrained(base, out / "adapter")
    assert (_logits(tuned, tok) - before).abs().max() > 1e-4


def test_two_processes_under_accelerate_launch_match_one(tiny_model_dir, tmp_path):
    """DDP: the train stage under `accelerate launch` with 2 CPU processes (gloo), 4 rows each per step, logs
    the same losses (within 1e-4 per step) as one process with 8 rows per step: fixed data order, no dropout,
    float32. Only the main process writes; the saved model is the one-process model's."""
    from safetensors.torch import load_file

    from s3ft.training import launch

    path = _write(tmp_path / "train.jsonl", [_row(i) for i in range(32)])
    common = {**FAST, "mode": "full", "max_steps": 4, "shuffle": False, "learning_rate": 1e-3}
    model = ModelConfig(path=str(tiny_model_dir), dtype="float32", device="cpu")
    one = train_model(path, tmp_path / "one", model, TrainConfig(**{**common, "batch_size": 8}), 0)
    two = launch(path, tmp_path / "two", model, TrainConfig(**{**common, "batch_size": 4, "num_processes": 2}), 0)
    losses = [[h["loss"] for h in m["log_history"] if "loss" in h] for m in (one, two)]
    assert len(losses[0]) == len(losses[1]) == 4 and two["steps"] == 4
    assert one["processes"] == 1 and two["processes"] == 2
    assert max(abs(a - b) for a, b in zip(*losses, strict=True)) < 1e-4, losses
    print("per-step losses, 1 process / 2 processes:", losses)
    w1, w2 = (load_file(tmp_path / d / "model" / "model.safetensors") for d in ("one", "two"))
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
    assert json.loads((tmp_path / "two" / "train_metrics.json").read_text())["steps"] == 4


def test_an_fsdp_config_on_a_cpu_runs_as_ddp_and_says_so(tiny_model_dir, tmp_path, monkeypatch):
    """accelerate (1.15) turns FSDP on only for GPUs and other accelerators: on a CPU, an FSDP config file runs
    the training as plain data parallelism (MULTI_CPU, gloo), silently. The train stage records how accelerate
    ran it (`distributed`) and warns when that is not what the file asks for."""
    import torch

    from s3ft.training import launcher as train

    if torch.cuda.is_available():
        pytest.skip("where CUDA is, accelerate may run the FSDP config for real")

    warned = []
    monkeypatch.setattr(train.log, "warning", lambda msg, *a: warned.append(msg % a))
    path = _write(tmp_path / "train.jsonl", [_row(i) for i in range(16)])
    (tmp_path / "fsdp.yaml").write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nnum_machines: 1\nnum_processes: 2\n"
        "mixed_precision: 'no'\nfsdp_config:\n  fsdp_version: 2\n  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n"
        "  fsdp_state_dict_type: FULL_STATE_DICT\n")
    cfg = TrainConfig(**{**FAST, "mode": "full", "max_steps": 2, "accelerate_config": str(tmp_path / "fsdp.yaml")})
    model = ModelConfig(path=str(tiny_model_dir), dtype="float32", device="cpu")
    metrics = train.launch(path, tmp_path / "out", model, cfg, 0)
    assert metrics["processes"] == 2 and metrics["distributed"] == "MULTI_CPU"
    assert warned == [f"{tmp_path / 'fsdp.yaml'} asks for FSDP, but accelerate ran the training as MULTI_CPU "
                      "(accelerate runs FSDP and DeepSpeed only on GPUs and other accelerators, not on a CPU)"]
    one = train_model(path, tmp_path / "one", model, TrainConfig(**{**FAST, "mode": "full", "max_steps": 2}), 0)
    assert one["distributed"] == "NO"


def test_the_accelerate_launch_command(tmp_path):
    """`train.num_processes` launches torchrun-style (also on a CPU); `train.accelerate_config` passes the user's
    file; a missing file is a config error naming the key; mixed precision stays s3ft's."""
    from s3ft.training.launcher import launch_command, launched

    spec = tmp_path / "launch.json"
    assert not launched(TrainConfig()) and launched(TrainConfig(num_processes=2))
    cmd = launch_command(TrainConfig(num_processes=4), spec)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "4" and cmd[-3:] == ["-m", "s3ft.training.launcher", str(spec)]
    assert cmd[cmd.index("--mixed_precision") + 1] == "no"
    (tmp_path / "fsdp.yaml").write_text("distributed_type: FSDP\n")
    cmd = launch_command(TrainConfig(accelerate_config=str(tmp_path / "fsdp.yaml")), spec)
    assert cmd[cmd.index("--config_file") + 1] == str(tmp_path / "fsdp.yaml") and "--num_processes" not in cmd
    assert "--multi_gpu" not in cmd
    with pytest.raises(ConfigError, match="train.accelerate_config: no such file"):
        launch_command(TrainConfig(accelerate_config=str(tmp_path / "nope.yaml")), spec)
