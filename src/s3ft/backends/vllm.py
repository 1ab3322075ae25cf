"""The vLLM backend: fast batched chat generation on a CUDA GPU (optional: `pip install 's3ft[vllm]'`).

Reads the model (local directory or hub id), optionally a chat template file and a LoRA adapter
directory (served through vLLM's LoRA support, not merged). Writes nothing. vLLM seeds each request
separately, so seeded sampling does not depend on how prompts are batched (unlike the hf backend);
greedy outputs may still differ slightly from the hf backend's (other kernels and batching).
NLL scoring is not implemented here: the select stage's NLL uses the hf backend.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from s3ft.backends.base import Completion, GenParams, Messages
from s3ft.backends.hf import cut_at_stop, dir_hash, weights_id
from s3ft.backends.template import fold_system_if_rejected
from s3ft.config import ModelConfig
from s3ft.errors import S3FTError


class VLLMBackend:
    """Generate with vLLM's offline `LLM.chat` (see the module docstring)."""

    def __init__(
        self,
        model: ModelConfig,
        batch_size: int = 16,
        adapter: str | None = None,
        seed: int = 0,
        max_lora_rank: int = 64,
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
        self.lora_request = None
        if adapter is not None:
            if not Path(adapter).is_dir():
                raise S3FTError(f"adapter: no such directory: {adapter}")
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("s3ft-adapter", 1, str(Path(adapter).resolve()))
            llm_kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank)
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

        self.model_id = weights_id(model.path, model.revision) + f"+vllm:{vllm.__version__}:{model.dtype}"
        if adapter is not None:
            self.model_id += f"+adapter:{Path(adapter).resolve()}#{dir_hash(adapter)}"
        if override is not None:
            self.model_id += f"+template:{hashlib.sha256(override.encode()).hexdigest()[:12]}"

    def generate(self, prompts: list[Messages], params: GenParams, desc: str = "generate") -> list[str]:
        """One completion per prompt, in order, cut before the first stop string."""
        from vllm import SamplingParams

        if not prompts:
            return []
        sampled = params.temperature > 0
        sp = SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature if sampled else 0.0,
            top_p=params.top_p if sampled else 1.0,
            seed=params.seed if sampled else None,
            stop=[s for s in params.stop if s] or None,
        )
        outputs = self.llm.chat(
            prompts,
            sampling_params=sp,
            use_tqdm=len(prompts) > 1,
            lora_request=self.lora_request,
            chat_template=self.chat_template,
            add_generation_prompt=True,
        )
        return [Completion(cut_at_stop(o.outputs[0].text, params.stop),
                           "length" if o.outputs[0].finish_reason == "length" else "stop") for o in outputs]

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        raise NotImplementedError(
            "the vllm backend does not score completions; the select stage's NLL uses the hf backend"
        )

    def close(self) -> None:
        """Free the engine and the GPU memory it holds."""
        import gc

        self.llm = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
