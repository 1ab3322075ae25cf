"""The vLLM backend: fast batched chat generation on a CUDA GPU (optional: `pip install 's3ft[vllm]'`).

Reads the model (local directory or hub id), optionally a chat template file and a LoRA adapter
directory (served through vLLM's LoRA support, not merged). Writes nothing. vLLM seeds each request
separately, so seeded sampling does not depend on how prompts are batched (unlike the hf backend);
greedy outputs may still differ slightly from the hf backend's (other kernels and batching).

Completion NLLs come from the same engine (`prompt_logprobs`), over the same tokens as the hf backend scores
(`template.completion_tokens`), so a vLLM run loads its model once; only on an engine without LoRA, since
vLLM's prompt logprobs are broken where LoRA is on (the error names the vLLM issues). An engine built with `lora=True` serves
any number of LoRA adapters: `with_adapter(path)` is a view of the one engine that generates and scores with
that adapter (evaluation loads one engine for the base and every method, not one each).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from pathlib import Path

from s3ft.backends.base import Completion, GenParams, Messages, too_long
from s3ft.backends.hf import cut_at_stop, dir_hash, weights_id
from s3ft.backends.template import chat_ids, completion_tokens, fold_system_if_rejected
from s3ft.config import ModelConfig
from s3ft.errors import S3FTError

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for `max_lora_rank`."""
_lora_ids = itertools.count(1)


def lora_rank_for(r: int) -> int:
    """The smallest `max_lora_rank` vLLM accepts that holds an adapter of rank `r`."""
    fits = [k for k in LORA_RANKS if k >= r]
    if not fits:
        raise S3FTError(f"vLLM serves LoRA adapters of rank at most {LORA_RANKS[-1]}; this one has rank {r}")
    return fits[0]


SCHEDULING_ONLY = frozenset({
    "gpu_memory_utilization", "swap_space", "cpu_offload_gb", "kv_cache_memory_bytes", "disable_log_stats",
    "max_num_seqs", "max_num_batched_tokens", "enable_lora", "max_lora_rank", "max_loras", "max_cpu_loras",
    "seed", "data_parallel_size"})
"""Engine arguments that decide memory, scheduling or which adapters may load, not the numbers a request
computes (as the hf backend's `batch_size`); every other engine argument is part of the cache key."""


def engine_key(llm, model: ModelConfig, llm_kwargs: dict) -> str:
    """What decides an engine's outputs besides its weights, for the generation cache: the dtype vLLM
    resolved (not "auto"), the device, the attention backend asked for, and the engine arguments."""
    import json
    import os

    config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
    dtype = str(getattr(config, "dtype", None) or model.dtype).removeprefix("torch.")
    try:
        from vllm.platforms import current_platform

        device = current_platform.get_device_name()
    except Exception:  # a vLLM without it, or a stand-in
        device = model.device
    args = {k: v for k, v in llm_kwargs.items() if k not in SCHEDULING_ONLY}
    key = f"{dtype}:{device}:attn={os.environ.get('VLLM_ATTENTION_BACKEND', 'auto')}"
    return key + (f":{json.dumps(args, sort_keys=True, default=str)}" if args else "")


class VLLMBackend:
    """Generate with vLLM's offline `LLM.chat` (see the module docstring)."""

    def __init__(
        self,
        model: ModelConfig,
        batch_size: int = 16,
        adapter: str | None = None,
        seed: int = 0,
        max_lora_rank: int = 64,
        lora: bool = False,
        **llm_kwargs,
    ):
        try:
            from vllm import LLM
        except ImportError as e:
            raise S3FTError(
                "the vllm backend needs vLLM: pip install 's3ft[vllm]' on a CUDA machine "
                f"(or set generate.backend: hf) [{e}]"
            ) from e
        self.config, self.batch_size = model, batch_size  # vLLM schedules its own batches
        self.chat_template = None
        if model.chat_template:
            p = Path(model.chat_template)
            if not p.is_file():
                raise S3FTError(f"model.chat_template: no such file: {p}")
            self.chat_template = p.read_text()
        self.lora_request, self.owner = None, True  # a view of another backend's engine does not free it
        self.lora = lora or adapter is not None or bool(llm_kwargs.get("enable_lora"))
        if self.lora:
            llm_kwargs = {"enable_lora": True, "max_lora_rank": max_lora_rank, **llm_kwargs}
        if model.device not in ("auto", "cuda") and not model.device.startswith("cuda"):
            raise S3FTError(f"the vllm backend runs on CUDA; model.device is {model.device!r}")
        self.llm = LLM(
            model=model.path,
            revision=model.revision,
            tokenizer_revision=model.revision,
            trust_remote_code=model.trust_remote_code,
            dtype=model.dtype,
            seed=seed,
            **llm_kwargs,
        )
        override = self.chat_template
        tok = self.llm.get_tokenizer()  # a template that rejects a system role folds it (s3ft.backends.template)
        if override is not None and hasattr(tok, "chat_template"):
            tok.chat_template = override
        if fold_system_if_rejected(tok, model.path):  # no prompt that rendered before renders otherwise: same key
            self.chat_template = tok.chat_template
        import vllm

        self.model_id = weights_id(model.path, model.revision) + f"+vllm:{vllm.__version__}:" + engine_key(
            self.llm, model, llm_kwargs)
        if override is not None:
            self.model_id += f"+template:{hashlib.sha256(override.encode()).hexdigest()[:12]}"
        self.engine_id = self.model_id  # the engine's weights and template; an adapter's view adds its own part
        limit = getattr(getattr(getattr(self.llm, "llm_engine", None), "model_config", None), "max_model_len", None)
        self.context = (limit, "the engine's max_model_len") if isinstance(limit, int) else (None, "")
        """(tokens, where from): a prompt with its `max_new_tokens` or completion longer is not run (`Failed`)."""
        if adapter is not None:
            self._use_adapter(adapter)

    def _use_adapter(self, adapter: str) -> None:
        if not Path(adapter).is_dir():
            raise S3FTError(f"adapter: no such directory: {adapter}")
        from vllm.lora.request import LoRARequest

        path = str(Path(adapter).resolve())
        self.lora_request = LoRARequest(f"s3ft-{Path(path).name}", next(_lora_ids), path)
        self.model_id += f"+adapter:{path}#{dir_hash(adapter)}"

    def with_adapter(self, adapter: str) -> VLLMBackend:
        """This engine with a LoRA adapter: generates and scores with it; closing the view frees nothing."""
        if not self.lora:
            raise S3FTError("this vLLM engine was built without LoRA (lora=True) and cannot serve an adapter")
        view = copy.copy(self)
        view.owner, view.lora_request = False, None
        view.model_id = self.engine_id
        view._use_adapter(adapter)
        return view

    def generate(self, prompts: list[Messages], params: GenParams, desc: str = "generate") -> list[str]:
        """One completion per prompt, in order, cut before the first stop string; a `Failed` where the prompt
        and `max_new_tokens` do not fit the engine's `max_model_len` (vLLM would refuse the whole call)."""
        from vllm import SamplingParams

        if not prompts:
            return []
        tok = self.llm.get_tokenizer()
        out: list = [too_long(len(chat_ids(tok, p, True)), params.max_new_tokens, "max_new_tokens", *self.context)
                     for p in prompts] if self.context[0] is not None else [None] * len(prompts)
        run = [i for i, f in enumerate(out) if f is None]
        if not run:
            return out
        sampled = params.temperature > 0
        sp = SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature if sampled else 0.0,
            top_p=params.top_p if sampled else 1.0,
            seed=params.seed if sampled else None,
            stop=[s for s in params.stop if s] or None,
        )
        outputs = self.llm.chat(
            [prompts[i] for i in run],
            sampling_params=sp,
            use_tqdm=len(run) > 1,
            lora_request=self.lora_request,
            chat_template=self.chat_template,
            add_generation_prompt=True,
        )
        for i, o in zip(run, outputs, strict=True):
            out[i] = Completion(cut_at_stop(o.outputs[0].text, params.stop),
                                "length" if o.outputs[0].finish_reason == "length" else "stop")
        return out

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        """(summed natural-log NLL, token count) of each completion (with its end-of-turn tokens), from the
        engine's `prompt_logprobs` over the tokens the hf backend scores; a `Failed` where prompt and completion
        do not fit the engine's `max_model_len`."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        if self.lora:
            raise S3FTError(
                "the vllm backend scores NLLs only on an engine without LoRA: vLLM's prompt logprobs fail or skip "
                "the adapter when LoRA is on (vllm-project/vllm#29955, #51594; a CPU build raises in "
                "add_lora_logits). Remove enable_lora from generate.engine, or score on the hf backend")
        tok = self.llm.get_tokenizer()
        rows = [completion_tokens(tok, p, c) for p, c in zip(prompts, completions, strict=True)]
        # vLLM generates one token after what it scores: that one must fit too
        out: list = [too_long(start, len(full) - start + 1, "completion + 1 generated", *self.context)
                     for full, start in rows]
        run = [i for i, f in enumerate(out) if f is None]
        if not run:
            return out
        # the logprob of each prompt token given the ones before it (raw logits: no temperature applies)
        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=rows[i][0]) for i in run], sp,
                                    use_tqdm=len(run) > 1, lora_request=self.lora_request)
        for i, o in zip(run, outputs, strict=True):
            (full, start), lps = rows[i], o.prompt_logprobs
            out[i] = (-sum(lps[k][full[k]].logprob for k in range(start, len(full))), len(full) - start)
        return out

    def close(self) -> None:
        """Free the engine and the GPU memory it holds (a view of another backend's engine frees nothing)."""
        import gc

        if not self.owner:
            return
        llm, self.llm = self.llm, None
        shutdown_engine(llm)
        del llm
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def shutdown_engine(llm) -> None:
    """Shut a `vllm.LLM`'s engine down now, its processes ended and its memory freed. vLLM does it itself only
    when the engine is garbage-collected, which any remaining reference (an adapter view, a library's object)
    prevents; a process that then exits waits on the engine's processes forever."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if callable(getattr(core, "shutdown", None)):
        core.shutdown()
