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
