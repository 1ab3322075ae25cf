"""`scripts/gpu_check.sh --dry-run`: the one prepared GPU check, in its CPU mode (docs/gpu.md). Each step writes
its result to its own folder as it finishes; the throughput benchmark writes its numbers phase by phase; and the
GPU-path refusals that can be tested without a GPU (the harness's LoRA rank, log-likelihood tasks with an
adapter on vLLM, processes beyond the GPUs, FSDP1 with LoRA)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
STEPS = ("install", "gpu_tests", "fsdp2", "pipeline", "throughput")


@pytest.mark.integration
def test_gpu_check_dry_run_writes_each_step_as_it_finishes(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": str(REPO / ".venv" / "bin" / "python")} if (REPO / ".venv").is_dir() else None
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                       capture_output=True, text=True, timeout=HANG_GUARD_S, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == list(STEPS) and summary["failed"] == 0
    for s in STEPS:
        result = json.loads((out / s / "result.json").read_text())
        assert result["ok"] and result["dry_run"] and (out / s / "log.txt").is_file()
    assert "3/" in (out / "gpu_tests" / "log.txt").read_text() or "collected" in (out / "gpu_tests" / "log.txt").read_text()
    assert "FSDP version 2" in (out / "fsdp2" / "log.txt").read_text()
    assert all(line.split()[1] == "done" for line in (out / "pipeline" / "status.txt").read_text().splitlines()[1:])
    tput = json.loads((out / "throughput" / "throughput.json").read_text())
    assert tput["phase"] == "hours" and tput["train_tokens_per_s"] > 0 and tput["generate_tokens_per_s"] > 0
    assert "train_warmup" in tput["seconds"] and "gpu_hours_extrapolated" in tput


def test_the_harness_rounds_the_lora_rank_for_vllm_as_the_backend_does():
    from s3ft.harness import model_args

    m = ModelConfig(path="org/model", dtype="bfloat16", device="cpu")
    assert model_args("vllm", m, "/a", lora_rank=12)["max_lora_rank"] == 16
    assert model_args("vllm", m, "/a", lora_rank=2)["max_lora_rank"] == 8
    assert model_args("vllm", m, "/a", lora_rank=12, engine={"max_lora_rank": 64})["max_lora_rank"] == 64


def test_loglikelihood_tasks_with_an_adapter_on_vllm_are_refused_naming_the_alternatives():
    from types import SimpleNamespace

    from s3ft.harness import loglikelihood_tasks, refuse_loglikelihood_with_adapter

    def entry(kind, cfg=None, tags=()):
        return SimpleNamespace(kind=SimpleNamespace(name=kind), cfg=cfg, tags=set(tags))

    tm = SimpleNamespace(task_index={
        "mmlu": entry("GROUP", {"task": ["mmlu_a", "mmlu_b"]}),
        "mmlu_a": entry("TASK", {"output_type": "multiple_choice"}), "mmlu_b": entry("TASK", {"output_type": "loglikelihood"}),
        "gsm8k": entry("TASK", {"output_type": "generate_until"})})
    assert loglikelihood_tasks(tm, ["mmlu", "gsm8k"]) == ["mmlu_a", "mmlu_b"]
    with pytest.raises(ConfigError, match=r"evaluate.forgetting.backend: vllm with a LoRA adapter cannot score "
                                          r"mmlu_a, mmlu_b.*backend: hf.*export --merge"):
        refuse_loglikelihood_with_adapter(tm, ["mmlu"], "vllm", "/adapter")
    refuse_loglikelihood_with_adapter(tm, ["mmlu"], "vllm", None)  # the base: no LoRA, scored as usual
    refuse_loglikelihood_with_adapter(tm, ["mmlu"], "hf", "/adapter")  # peft: fine
    refuse_loglikelihood_with_adapter(tm, ["gsm8k"], "vllm", "/adapter")  # generation: tested on vLLM's CPU build


def test_more_processes_than_gpus_and_fsdp1_with_lora_are_refused(tmp_path):
    from s3ft.training.checks import check_fsdp, check_processes

    four = TrainConfig(num_processes=4)
    with pytest.raises(ConfigError, match="train.num_processes: 4 processes but 2 GPU"):
        check_processes(four, gpus=2)
    assert check_processes(four, gpus=4) == "train.num_processes: 4 of 4 visible GPU(s)"
    assert check_processes(four, gpus=0) is None and check_processes(four, gpus=2, device="cpu") is None
    acc = tmp_path / "fsdp.yaml"
    acc.write_text("distributed_type: FSDP\nfsdp_config: {fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP}\n")
    with pytest.raises(ConfigError, match="train.accelerate_config: .*FSDP version 1 with LoRA.*fsdp_version: 2"):
        check_fsdp(TrainConfig(mode="lora", accelerate_config=str(acc)))
    assert check_fsdp(TrainConfig(mode="full", accelerate_config=str(acc))) == "train.accelerate_config: FSDP version 1"
    acc.write_text("distributed_type: FSDP\nfsdp_config: {fsdp_version: 2}\n")
    assert check_fsdp(TrainConfig(mode="lora", accelerate_config=str(acc))) == "train.accelerate_config: FSDP version 2"
