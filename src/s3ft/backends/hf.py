"""The Hugging Face transformers backend: batched chat generation and completion NLL.

Reads the model (a local directory or a hub id: weights, tokenizer, chat template), optionally a
chat template file that replaces the tokenizer's, and optionally a peft LoRA adapter directory that
is merged into the weights. Writes nothing.

Reproducibility: greedy decoding (temperature 0) depends only on the prompt (up to floating-point
differences between batch shapes in reduced precision). Sampling seeds torch with `seed + batch
index` for each batch, so the same prompts, `batch_size` and seed give the same outputs; another
batch composition (e.g. fewer prompts because others came from the cache) samples differently, so
`seeds_batches` tells the model-call cache to key and cache a seeded sampling call whole (`s3ft.cache`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from s3ft.backends.base import Completion, GenParams, Messages, too_long
from s3ft.backends.template import chat_ids, completion_tokens, fold_system_if_rejected
from s3ft.config import ModelConfig
from s3ft.errors import S3FTError
from s3ft.provenance import hub_commit
from s3ft.rundir import dir_hash

# Neutral decoding settings, set explicitly so the checkpoint's own cannot leak in (see `_gen_config`).
_NEUTRAL = dict(repetition_penalty=1.0, no_repeat_ngram_size=0, min_new_tokens=0, num_return_sequences=1)
_NEUTRAL_SAMPLING = dict(top_k=0, min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0)


def weights_id(path: str, revision: str | None = None) -> str:
    """Identify weights for cache keys: `abs/dir#hash` for a local dir, `hub/id@commit` for a hub id."""
    if Path(path).is_dir():
        return f"{Path(path).resolve()}#{dir_hash(path)}"
    # the commit of the revision, when the local hub cache holds it (no network)
    return f"{path}@{hub_commit(path, revision) or revision or 'main'}"


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> str:
    """Truncate `text` before the earliest occurrence of any stop string."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class StopOnText(StoppingCriteria):
    """Stop a row once its generated text (never the prompt) contains a stop string.

    transformers' own `stop_strings` also match strings that begin inside the prompt (e.g. a stop of
    "\n\n" after a prompt ending in "\n"), which would end generation early without the stop string
    in the output; this criterion decodes only the tail of the new tokens.
    """

    def __init__(self, stop: list[str], prompt_len: int, tokenizer):
        self.stop, self.prompt_len, self.tokenizer = stop, prompt_len, tokenizer
        self.window = max(len(s) for s in stop) + 4  # tokens; each decodes to >= 1 character

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        start = max(self.prompt_len, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in tails], device=input_ids.device)


def context_length(config) -> tuple[int | None, str]:
    """The most tokens the model attends to, prompt and completion together, from its config (and which field
    says so); (None, "") where the config does not say: then no row is refused for its length."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        n = getattr(config, key, None)
        if isinstance(n, int) and n > 0:
            return n, f"{key} in the model's config"
    return None, ""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto`: bfloat16 on CUDA GPUs that support it (else float16); on CPU bfloat16 only where the CPU
    has native AVX512-BF16 (`torch.cpu._is_avx512_bf16_supported`), else float32."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return torch.bfloat16 if device.type == "cpu" and check is not None and check() else torch.float32


def load_tokenizer(model: ModelConfig):
    """The tokenizer, left-padded, with a pad token and a chat template (else a clear S3FTError); a template
    that rejects a system role folds the system prompt into the first user turn (`s3ft.backends.template`)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        model.path, revision=model.revision, trust_remote_code=model.trust_remote_code
    )
    if model.chat_template:
        p = Path(model.chat_template)
        if not p.is_file():
            raise S3FTError(f"model.chat_template: no such file: {p}")
        tok.chat_template = p.read_text()
    if not getattr(tok, "chat_template", None):
        raise S3FTError(
            f"the tokenizer of {model.path} has no chat template; set model.chat_template to a Jinja "
            "template file (s3ft sends chat messages, so the template defines the prompt format)"
        )
    fold_system_if_rejected(tok, model.path)  # Mistral-7B-Instruct-v0.2's raises on a system turn
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class HFBackend:
    """Generate and score with a transformers causal LM (see the module docstring)."""

    seeds_batches = True  # a seeded sample depends on the other rows of its batch: the cache keys the whole call

    def __init__(self, model: ModelConfig, batch_size: int = 16, adapter: str | None = None):
        from transformers import AutoModelForCausalLM

        self.config, self.batch_size = model, batch_size
        self.device = resolve_device(model.device)
        self.dtype = resolve_dtype(model.dtype, self.device)
        self.tokenizer = load_tokenizer(model)
        self.model = AutoModelForCausalLM.from_pretrained(
            model.path,
            dtype=self.dtype,
            device_map=str(self.device),  # loads straight onto the GPU
            **model.from_pretrained_kwargs(),  # revision, trust_remote_code, model.load_args
        )
        import transformers

        # what else changes the outputs: backend and version, dtype, device type, attention kernel
        self.model_id = weights_id(model.path, model.revision) + (
            f"+hf:{transformers.__version__}:{str(self.dtype).removeprefix('torch.')}:{self.device.type}:"
            f"{getattr(self.model.config, '_attn_implementation', None)}")
        if model.load_args:  # e.g. rope scaling; only when set, so that the keys of older caches still match
            self.model_id += f"+load:{json.dumps(model.load_args, sort_keys=True, default=str)}"
        if adapter is not None:
            from peft import PeftModel

            if not Path(adapter).is_dir():
                raise S3FTError(f"adapter: no such directory: {adapter}")
            self.model = PeftModel.from_pretrained(self.model, adapter).merge_and_unload()
            self.model_id += f"+adapter:{Path(adapter).resolve()}#{dir_hash(adapter)}"
        if model.chat_template:  # the prompt format changes the outputs, so it belongs in the key
            self.model_id += (
                f"+template:{hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest()[:12]}"
            )
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:  # chat models may end turns with either
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = list(dict.fromkeys(eos))
        self.context = context_length(self.model.config)
        """(tokens, where that number comes from): a prompt with its `max_new_tokens`, or with its completion,
        longer than this is not run (`Failed`)."""

    def _encode(self, messages: Messages, add_generation_prompt: bool) -> list[int]:
        return chat_ids(self.tokenizer, messages, add_generation_prompt)

    def _gen_config(self, params: GenParams):
        """Decode exactly as `params` says. transformers fills unset fields from the checkpoint's
        generation_config (e.g. top_k=20, repetition_penalty=1.05), so neutral values are explicit."""
        from transformers import GenerationConfig

        sampled = params.temperature > 0
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=sampled,
            num_beams=1,
            temperature=params.temperature if sampled else 1.0,
            top_p=params.top_p if sampled else 1.0,
            **_NEUTRAL,
            **(_NEUTRAL_SAMPLING if sampled else {}),
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    @torch.inference_mode()
    def generate(self, prompts: list[Messages], params: GenParams, desc: str = "generate") -> list[str]:
        """One `Completion` per prompt, in the prompts' order, cut before the first stop string, with why
        it ended: "stop" (an end-of-turn token or a stop string) or "length" (`max_new_tokens`); a `Failed`
        where the prompt and `max_new_tokens` do not fit the model's context (the others are generated)."""
        if not prompts:
            return []
        ids = [self._encode(m, add_generation_prompt=True) for m in prompts]
        out: list = [too_long(len(x), params.max_new_tokens, "max_new_tokens", *self.context) for x in ids]
        order = sorted((i for i in range(len(ids)) if out[i] is None), key=lambda i: -len(ids[i]))  # longest first
        gc = self._gen_config(params)
        stop = [s for s in params.stop if s]
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        with tqdm(
            total=len(order), desc=desc, unit="prompt", leave=False, disable=True if len(batches) == 1 else None
        ) as bar:
            for b, batch in enumerate(batches):
                enc = self.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    if params.temperature > 0 and params.seed is not None:
                        torch.manual_seed(params.seed + b)
                    width = enc["input_ids"].shape[1]
                    crit = StoppingCriteriaList([StopOnText(stop, width, self.tokenizer)] if stop else [])
                    seqs = self.model.generate(**enc, generation_config=gc, stopping_criteria=crit)
                new = seqs[:, width:]
                is_eos = torch.isin(new, torch.tensor(self.eos_ids, device=new.device))
                ended = is_eos.any(dim=1).tolist()
                # cut at the first end-of-turn token: it and the padding after it are not text, even where the
                # tokenizer does not call that token special
                ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), new.shape[1]).tolist()
                texts = self.tokenizer.batch_decode([row[:e] for row, e in zip(new, ends, strict=True)],
                                                    skip_special_tokens=True)
                for i, text, eos in zip(batch, texts, ended, strict=True):
                    cut = cut_at_stop(text, params.stop)
                    # generation ends at an end-of-turn token, a stop string, or max_new_tokens
                    out[i] = Completion(cut, "stop" if eos or len(cut) < len(text) else "length")
                bar.update(len(batch))
        return out

    def completion_tokens(self, prompt: Messages, completion: str) -> tuple[list[int], int]:
        """Token ids of prompt + completion as trained on, and where the completion starts (`template.completion_tokens`)."""
        return completion_tokens(self.tokenizer, prompt, completion)

    @torch.inference_mode()
    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        """(summed natural-log NLL, token count) of each completion (with its end-of-turn tokens); a `Failed`
        where prompt and completion do not fit the model's context (the others are scored)."""
        rows = [self.completion_tokens(p, c) for p, c in zip(prompts, completions, strict=True)]
        out: list = [too_long(start, len(full) - start, "completion", *self.context) for full, start in rows]
        order = sorted((i for i in range(len(rows)) if out[i] is None), key=lambda i: -len(rows[i][0]))
        pad = self.tokenizer.pad_token_id
        for s in range(0, len(order), self.batch_size):
            batch = order[s : s + self.batch_size]
            width = max(len(rows[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for j, i in enumerate(batch):  # right-padded: positions of real tokens start at 0
                ids[j, : len(rows[i][0])] = torch.tensor(rows[i][0])
                mask[j, : len(rows[i][0])] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            for j, i in enumerate(batch):
                full, start = rows[i]
                logp = logits[j, start - 1 : len(full) - 1].float().log_softmax(-1)
                target = torch.tensor(full[start:], device=logp.device)
                out[i] = (float(-logp.gather(1, target[:, None]).sum()), len(full) - start)
        return out

    def close(self) -> None:
        """Free the model (and the CUDA cache)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
