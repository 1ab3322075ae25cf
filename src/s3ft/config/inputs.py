"""The sections that say what is trained on: `model` (`ModelConfig`, with `LOAD_OWNED`, the loader
arguments s3ft sets itself) and `data` (`DataConfig`, its splits `SplitSource` and `FieldMap`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from s3ft.config.base import Section, refuse_owned

LOAD_OWNED: dict[str, str] = {
    "pretrained_model_name_or_path": "use model.path",
    "revision": "use model.revision",
    "dtype": "use model.dtype",
    "torch_dtype": "use model.dtype",
    "trust_remote_code": "use model.trust_remote_code",
    "device_map": "use model.device",
    "quantization_config": "use train.quantization",
    "load_in_4bit": "use train.quantization",
    "load_in_8bit": "use train.quantization",
}
"""`from_pretrained` arguments that s3ft sets: refused in `model.load_args`."""


class ModelConfig(Section):
    path: str
    """Hub id or local directory of the base (instruction-tuned) model."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to pin."""
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    """Weights dtype; `auto` is bfloat16 where supported (CUDA, or CPUs with AVX512-BF16), else float32."""
    device: str = "auto"
    """`auto`, `cpu`, `cuda` or `cuda:N`."""
    trust_remote_code: bool = False
    """Allow model code from the hub (only for models you trust)."""
    chat_template: str | None = None
    """Path to a Jinja chat template that replaces the tokenizer's own."""
    load_args: dict[str, Any] = Field(default_factory=dict)
    """More keyword arguments for transformers' `from_pretrained` of the model, as given (e.g.
    `{attn_implementation: sdpa}`): where training, the `hf` backend and `s3ft export --merge` load it (not
    vLLM, not lm-eval). Not the ones set by the keys above (`dtype`, `revision`, ...) or by
    `train.quantization`. Set, they enter the fingerprint of every stage that uses the model. `s3ft validate`
    (and so `s3ft run`) checks each name against transformers' loader, the model's config fields and its class
    where the model's config can be read."""

    @field_validator("load_args")
    @classmethod
    def _load_args_not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return refuse_owned(v, LOAD_OWNED)

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        """`from_pretrained`'s keyword arguments from this section, all but the dtype and device (the caller resolves them)."""
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code, **self.load_args}


class SplitSource(Section):
    path: str
    """A local .jsonl/.json/.csv/.parquet file, or a hub dataset id."""
    name: str | None = None
    """Hub dataset configuration (e.g. `main` for openai/gsm8k)."""
    split: str = "train"
    """Split name: the hub split to read, and the prefix of generated ids. `data.test` defaults to `test`
    (set `validation` for nq_open)."""
    limit: int | None = Field(default=None, ge=1)
    """Keep only the first N examples."""
    revision: str | None = None
    """Hub dataset revision (branch, tag or commit) to pin; either way, the commit it resolves to in the local
    hub cache enters the fingerprint of the stage that reads it."""
    format: Literal["auto", "fields", "messages", "sharegpt", "alpaca"] | None = None
    """The generic task: this split's own `data.format` (e.g. chat rows to train on, a CSV to test on); unset:
    `data.format`."""
    fields: FieldMap | None = None
    """The generic task: this split's own `data.fields` (its columns); unset: `data.fields`."""

    @model_serializer(mode="wrap")
    def _unset_split_overrides_omitted(self, handler):
        d = handler(self)  # unset, they are not written: configs and fingerprints read as before they existed
        return {k: v for k, v in d.items() if not (k in ("format", "fields") and v is None)}

    @model_validator(mode="after")
    def _split_fields_fit_format(self) -> SplitSource:
        if self.fields is not None and self.format not in (None, "auto", "fields"):
            named = sorted({"question", "gold"} & self.fields.model_fields_set)
            if named:
                raise ValueError(f"fields.{named[0]} names a column, but format {self.format} reads the question "
                                 "and gold from the conversation")
        return self


class FieldMap(Section):
    """For the generic task: which fields of each row hold what."""

    id: str | None = None
    """Field with a stable id; without it ids are `<split>-<row number>`."""
    question: str = "question"
    """Field with the task input."""
    gold: str = "answer"
    """Field with the gold response."""
    meta: dict[str, str] = Field(default_factory=dict)
    """Judge inputs: meta key -> field, e.g. {tests: test_list} or {answers: aliases}."""


SplitSource.model_rebuild()  # its `fields` is a FieldMap, defined after it


class DataConfig(Section):
    task: str = "gsm8k"
    """Built-in task (`s3ft ls`), `generic`, or `package.module:Class`."""
    train: SplitSource
    test: SplitSource | None = None
    """The evaluation split; without it the evaluate stage scores nothing."""
    fields: FieldMap = Field(default_factory=FieldMap)
    predict_template: str | None = None
    """Path to a template file replacing the task's prediction prompt ({question} is filled in)."""
    paraphrase_template: str | None = None
    """Path to a template file replacing the paraphrase prompt ({question}, {reference})."""
    judge: str | None = None
    """The generic task's judge (built-ins pick their own; `judge.name` overrides both)."""
    format: Literal["auto", "fields", "messages", "sharegpt", "alpaca"] = "auto"
    """The generic task's rows: `fields` (columns named by `fields`), or one training example per conversation:
    `messages` (TRL's `{role, content}` turns), `sharegpt` (`conversations` of `{from, value}`, a `system`
    column), `alpaca` (`instruction`, `input`, `output`, `system`, `history`); the last assistant turn is the
    gold, the turns before it the prompt. `auto`: `fields` when `fields.question` or `fields.gold` is set, else
    the format of each source's first row (`s3ft.tasks.chat`)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings of a plug-in task (`package.module:Class`): its constructor receives this section and reads
    them as `cfg.options`. Built-in tasks take none."""

    @model_validator(mode="after")
    def _test_split_name(self) -> DataConfig:
        if self.test is not None and "split" not in self.test.model_fields_set:
            self.test.split = "test"
        return self

    @model_validator(mode="after")
    def _fields_fit_format(self) -> DataConfig:
        named = sorted({"question", "gold"} & self.fields.model_fields_set)
        if named and self.format not in ("auto", "fields"):
            raise ValueError(f"fields.{named[0]} names a column, but data.format {self.format} reads the question "
                             "and gold from the conversation (set only fields.id and fields.meta)")
        return self
