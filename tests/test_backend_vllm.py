"""The vLLM backend: a clear error without vLLM (CPU), and a smoke run on a GPU where vLLM is installed."""

from __future__ import annotations

import sys

import pytest

from s3ft.backends.base import GenParams
from s3ft.config import ModelConfig
from s3ft.errors import S3FTError


def test_missing_vllm_is_a_clear_error(monkeypatch):
    from s3ft.backends.vllm import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ImportError
    with pytest.raises(S3FTError, match=r"pip install 's3ft\[vllm\]'"):
        VLLMBackend(ModelConfig(path="org/model"))


@pytest.mark.gpu
def test_vllm_generates_in_order(tiny_model_dir):
    pytest.importorskip("vllm")
    from s3ft.backends.vllm import VLLMBackend

    b = VLLMBackend(ModelConfig(path=str(tiny_model_dir)), gpu_memory_utilization=0.2, enforce_eager=True)
    try:
        prompts = [[{"role": "user", "content": "x" * n + " 2 + 3?"}] for n in (1, 30, 5)]
        out = b.generate(prompts, GenParams(max_new_tokens=6))
        assert len(out) == 3 and out == [b.generate([p], GenParams(max_new_tokens=6))[0] for p in prompts]
        sampled = GenParams(max_new_tokens=6, temperature=1.0, seed=1)
        assert b.generate(prompts, sampled) == b.generate(prompts, sampled)
        with pytest.raises(NotImplementedError, match="hf backend"):
            b.nll(prompts, ["a", "b", "c"])
    finally:
        b.close()


def test_engine_arguments_reach_vllm_and_are_checked_against_its_own(monkeypatch, tmp_path):
    """`generate.engine` goes to `vllm.LLM` as given; `validate` checks its names against `vllm.EngineArgs`
    (a stand-in module here: vLLM is not installed on CPU); the hf backend refuses it."""
    import dataclasses
    import types

    from s3ft.config import load_config
    from s3ft.errors import ConfigError
    from s3ft.pipeline import Context
    from s3ft.validate import engine_check

    made = {}

    @dataclasses.dataclass
    class EngineArgs:
        tensor_parallel_size: int = 1
        gpu_memory_utilization: float = 0.9
        max_lora_rank: int = 16

    class LLM:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def get_tokenizer(self):  # a tokenizer without a chat template: nothing to fold
            return types.SimpleNamespace()

    fake = types.ModuleType("vllm")
    fake.EngineArgs, fake.LLM, fake.__version__ = EngineArgs, LLM, "0.0-test"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    engine = {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5}
    raw = {"run_dir": str(tmp_path), "model": {"path": "org/model"}, "data": {"task": "gsm8k", "train": {"path": "x"}},
           "generate": {"backend": "vllm", "engine": engine}}
    cfg = load_config(raw=raw)
    assert engine_check(cfg.generate.engine) == "generate.engine: tensor_parallel_size, gpu_memory_utilization (vLLM engine arguments)"
    Context(cfg)._make_backend(cfg.model, "vllm")
    assert made["tensor_parallel_size"] == 2 and made["gpu_memory_utilization"] == 0.5 and made["model"] == "org/model"
    with pytest.raises(ConfigError, match="generate.engine.tensor_parallel"):
        engine_check({"tensor_parallel": 2})
    monkeypatch.setitem(sys.modules, "vllm", None)
    assert "not checked: vLLM is not installed" in engine_check(engine)
    with pytest.raises(ConfigError, match="set generate.backend: vllm"):
        load_config(raw={**raw, "generate": {"engine": engine}})
