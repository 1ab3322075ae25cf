"""Build a tiny Llama-architecture model and its tokenizer offline, from a seed.

Writes a Hugging Face model directory (config, safetensors weights, tokenizer with a ChatML-style
chat template whose assistant turns carry `{% generation %}` markers, so TRL can build
assistant-only masks). The tokenizer is a byte-level BPE trained on local text (by default the
Python standard library's sources, present on every machine), with digits split one per token.
The weights are random: this is for tests and for exercising the pipeline, not for quality.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Iterator
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|im_start|>", "<|im_end|>"]


def _stdlib_text(max_bytes: int) -> Iterator[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for p in sorted(root.glob("*.py")):
        text = p.read_text(errors="ignore")
        total += len(text)
        yield text
        if total >= max_bytes:
            return


def build_tokenizer(vocab_size: int = 1024, texts: list[str] | None = None, max_bytes: int = 3_000_000):
    """A byte-level BPE `PreTrainedTokenizerFast` with digits split and the chat template set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts if texts is not None else _stdlib_text(max_bytes), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_size: int = 1024,
    seed: int = 0,
    texts: list[str] | None = None,
):
    """Write a randomly initialised tiny Llama model and tokenizer to `out_dir`; return the path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(vocab_size, texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


TEACH_PLAN = ("predict", "predict", "paraphrase", None)
"""How the tiny model is taught the default task, cycling over the questions in order: two in four
under the prediction prompt, one under the paraphrase prompt, one not at all. Interleaving keeps
every prefix of the data (a `limit`) mixed."""


def teaching_rows(limit_train: int | None = None, limit_test: int | None = None) -> list[dict]:
    """Prompt–completion rows that teach a tiny model the default task's house style.

    Questions taught under the prediction prompt are ones the base model then answers correctly
    in its own style (S3FT's `self` rows); those taught under the paraphrase prompt it rewrites
    correctly (`paraphrase` rows); the rest it gets wrong (`gold` rows). The test split is taught
    under the prediction prompt only, so the base model starts part-way, as an instruct model does.
    """
    import json

    from s3ft.config import DataConfig, SplitSource
    from s3ft.tasks.gsm8k import GSM8K

    data_dir = Path(__file__).parent / "data"
    house = {}
    for line in open(data_dir / "tiny_gsm8k_house_style.jsonl"):
        r = json.loads(line)
        house[r["question"]] = r["house"]
    rows = []
    for split, limit in (("train", limit_train), ("test", limit_test)):
        source = SplitSource(path=str(data_dir / f"tiny_gsm8k_{split}.jsonl"), limit=limit)
        task = GSM8K(DataConfig(train=source))
        for i, ex in enumerate(task.load(source)):
            kind = TEACH_PLAN[i % len(TEACH_PLAN)]
            if kind == "paraphrase" and split == "test":
                kind = None
            if kind:
                prompt = task.prompt(ex) if kind == "predict" else task.paraphrase_prompt(ex)
                rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": house[ex.question]}]})
    return rows


def teach(model_dir: str | Path, rows: list[dict], steps: int = 300, lr: float = 3e-3, seed: int = 0,
          batch_size: int = 16, warmup_ratio: float = 0.05) -> Path:
    """Fully fine-tune the model in `model_dir` on `rows` in place (s3ft's own train stage)."""
    import json
    import shutil
    import tempfile

    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.training import train_model

    model_dir = Path(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "teach.jsonl"
        train_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = TrainConfig(mode="full", learning_rate=lr, max_steps=steps, batch_size=batch_size, warmup_ratio=warmup_ratio,
                          lr_scheduler="cosine", logging_steps=50, save_steps=10_000, max_length=512)
        out = Path(tmp) / "out"
        train_model(train_file, out, ModelConfig(path=str(model_dir), dtype="float32"), cfg, seed)
        for f in (out / "model").iterdir():
            shutil.copy2(f, model_dir / f.name)
    return model_dir
