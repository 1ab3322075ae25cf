"""The vLLM backend: a clear error without vLLM (CPU), engine arguments and one engine for every adapter (with a
stand-in vLLM module), and a smoke run on a GPU where vLLM is installed (tests/test_vllm_cpu.py runs the real
thing on a CPU build of vLLM)."""

from __future__ import annotations

import importlib.util
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


def test_a_vllm_model_loads_in_a_child_process_by_default_with_the_same_clear_errors(tmp_path, tiny_model_dir):
    """`generate.isolate` unset: the vllm backend runs in a child process (s3ft.backends.process), and vLLM's
    absence there is the same plain error as in-process; the hf backend stays in this process."""
    from s3ft.backends.hf import HFBackend
    from s3ft.backends.process import BackendProcessError
    from s3ft.cache import unwrapped
    from s3ft.config import load_config
    from s3ft.context import Context

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    raw = {"run_dir": str(tmp_path), "model": {"path": str(tiny_model_dir), "device": "cpu"},
           "data": {"task": "gsm8k", "train": {"path": "x"}}, "generate": {"backend": "vllm"}}
    cfg = load_config(raw=raw)
    with pytest.raises(BackendProcessError, match=r"^the vllm backend needs vLLM: pip install 's3ft\[vllm\]'"):
        Context(cfg).make_backend(cfg.model, "vllm")
    cfg = load_config(raw={**raw, "generate": {"backend": "hf"}})
    b = Context(cfg).make_backend(cfg.model, "hf")
    assert type(unwrapped(b)) is HFBackend
    b.close()


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
        scores = b.nll(prompts, ["a", "b", "c"])
        assert len(scores) == 3 and all(n > 0 and v > 0 for v, n in scores)
    finally:
        b.close()


def test_engine_arguments_reach_vllm_and_are_checked_against_its_own(monkeypatch, tmp_path):
    """`generate.engine` goes to `vllm.LLM` as given; `validate` checks its names against `vllm.EngineArgs`
    (a stand-in module here: vLLM is not installed on CPU); the hf backend refuses it."""
    import dataclasses
    import types

    from s3ft.config import load_config
    from s3ft.context import Context
    from s3ft.errors import ConfigError
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
           "generate": {"backend": "vllm", "engine": engine, "isolate": False}}  # in this process: the stand-in is here
    cfg = load_config(raw=raw)
    assert engine_check(cfg.generate.engine) == "generate.engine: tensor_parallel_size, gpu_memory_utilization (vLLM engine arguments)"
    Context(cfg).make_backend(cfg.model, "vllm")
    assert made["tensor_parallel_size"] == 2 and made["gpu_memory_utilization"] == 0.5 and made["model"] == "org/model"
    with pytest.raises(ConfigError, match="generate.engine.tensor_parallel"):
        engine_check({"tensor_parallel": 2})
    monkeypatch.setitem(sys.modules, "vllm", None)
    assert "not checked: vLLM is not installed" in engine_check(engine)
    with pytest.raises(ConfigError, match="set generate.backend: vllm"):
        load_config(raw={**raw, "generate": {"engine": engine}})


def fake_vllm(monkeypatch) -> list[dict]:
    """A stand-in `vllm` module (vLLM is not installed on CPU): the list records each engine built, with its
    arguments, and `closed` when freed."""
    import types

    engines: list[dict] = []

    class LLM:
        def __init__(self, **kwargs):
            self.record = dict(kwargs)
            engines.append(self.record)

        def get_tokenizer(self):
            return types.SimpleNamespace()

        def __del__(self):
            self.record["closed"] = True

    class LoRARequest:
        def __init__(self, name, id_, path):
            self.name, self.id, self.path = name, id_, path

    fake, lora, request = (types.ModuleType(n) for n in ("vllm", "vllm.lora", "vllm.lora.request"))
    fake.LLM, fake.__version__, request.LoRARequest = LLM, "0.0-test", LoRARequest
    for name, mod in (("vllm", fake), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    return engines


def test_one_vllm_engine_serves_the_base_and_every_adapter_in_evaluation(monkeypatch, tmp_path):
    """A LoRA run on vLLM evaluates the base and each method's adapter on one engine with LoRA on (its
    max_lora_rank fitted to train.lora_r, unless generate.engine sets it); each adapter gets its own request
    and cache key. The NLL scorer gets an engine without LoRA (vLLM's prompt logprobs are broken with it)."""
    import gc

    from s3ft.config import load_config
    from s3ft.context import Context

    engines = fake_vllm(monkeypatch)
    for m in ("sft", "s3ft"):
        (tmp_path / "run" / "07_train" / m / "adapter").mkdir(parents=True)
        (tmp_path / "run" / "07_train" / m / "adapter" / "adapter_config.json").write_text(m)
    raw = {"run_dir": str(tmp_path / "run"), "model": {"path": "org/model"}, "cache": {"enabled": False},
           "data": {"task": "gsm8k", "train": {"path": "x"}}, "train": {"lora_r": 12},
           "generate": {"backend": "vllm", "engine": {"gpu_memory_utilization": 0.5}, "isolate": False}}
    ctx = Context(load_config(raw=raw))
    base = ctx.evaluated("base")
    sft, s3ft = ctx.evaluated("sft"), ctx.evaluated("s3ft")
    assert len(engines) == 1 and engines[0]["enable_lora"] is True and engines[0]["max_lora_rank"] == 16
    assert engines[0]["gpu_memory_utilization"] == 0.5
    assert sft.llm is s3ft.llm is base.llm and base.lora_request is None
    assert sft.lora_request.path.endswith("sft/adapter") and s3ft.lora_request.path.endswith("s3ft/adapter")
    assert sft.lora_request.id != s3ft.lora_request.id
    assert len({base.model_id, sft.model_id, s3ft.model_id}) == 3 and sft.model_id.startswith(base.model_id)
    sft.close()  # a view frees nothing
    assert base.llm is not None and ctx.backend() is base
    del sft, s3ft, base
    ctx.scorer()
    gc.collect()
    assert len(engines) == 2 and engines[0].get("closed") and "enable_lora" not in engines[1]
    raw["generate"]["engine"]["max_lora_rank"] = 64
    assert Context(load_config(raw=raw)).evaluated("sft") is not None and engines[-1]["max_lora_rank"] == 64


def test_the_cache_key_holds_the_resolved_dtype_the_device_and_the_engine_arguments(monkeypatch):
    """A bfloat16 engine is never served a float16 engine's generations, nor a quantized or tensor-parallel
    engine's: the key holds the dtype vLLM resolved ("auto" is no dtype), the device, the attention backend
    asked for, and every engine argument that can change outputs; memory and scheduling arguments do not."""
    import types

    from s3ft.backends.vllm import VLLMBackend

    fake_vllm(monkeypatch)
    resolved = {"dtype": "torch.bfloat16"}
    llm_class = sys.modules["vllm"].LLM
    monkeypatch.setattr(llm_class, "llm_engine", property(
        lambda self: types.SimpleNamespace(model_config=types.SimpleNamespace(dtype=resolved["dtype"]))),
        raising=False)

    gpu = {"name": "NVIDIA H200"}
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(get_device_name=lambda: gpu["name"])
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)

    def key(**engine):
        return VLLMBackend(ModelConfig(path="org/model", dtype="auto"), **engine).model_id

    plain = key()
    assert plain == "org/model@main+vllm:0.0-test:bfloat16:NVIDIA H200:attn=auto"
    gpu["name"] = "NVIDIA A100"
    assert key() != plain
    gpu["name"] = "NVIDIA H200"
    assert key(gpu_memory_utilization=0.5, max_num_seqs=8, enable_prefix_caching=True) != plain
    assert key(gpu_memory_utilization=0.5, max_num_seqs=8) == plain  # memory and scheduling only
    assert len({plain, key(quantization="fp8"), key(tensor_parallel_size=2), key(kv_cache_dtype="fp8")}) == 4
    resolved["dtype"] = "torch.float16"
    assert key() != plain
    monkeypatch.setenv("VLLM_ATTENTION_BACKEND", "FLASHINFER")
    assert "attn=FLASHINFER" in key()
