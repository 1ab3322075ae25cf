"""The generic task: any question/gold or chat dataset; reads rows, writes nothing.

`data.format` says how a row holds its example: `fields` (the columns `data.fields` names), or a chat
format, one training example per conversation (`messages`: TRL's conversational rows; `sharegpt`; `alpaca`;
rules in `s3ft.tasks.chat`): the last assistant turn is the gold, the user turn before it the question (what
the judges see), and the turns before that `Example.context`, which every prompt shows before the question.
`auto` (the default) reads a source as `fields` when `data.fields.question` or `.gold` is set, else as the
format its first row looks like (`chat.detect`), and logs what it chose.

Each split may name its own (`data.train.format`, `data.test.fields`, ...; unset: `data.format`,
`data.fields`), e.g. chat rows to train on and a CSV file to test on.

`data.fields` names the row fields: `question`, `gold`, optionally `id`, and `meta` (judge inputs,
meta key -> field, e.g. `{tests: test_list}` for the code judge or `{answers: aliases}` for the QA
judge). A meta value that is a string holding a JSON list (`["a", "b"]`, as a CSV cell holds a
list) is decoded into that list; other values are kept as they are, empty ones included.

- Id: the id field as a string, else `<split>-<line>` (`source.split`, which defaults to `train`
  for a local file too). A repeated id is an `InputError` naming the line of the second one.
- Judge: `data.judge`; without it `default_judge` is "" and `judge.name` must pick one.
- Prompts: `data.predict_template` / `data.paraphrase_template`, else the packaged
  `generic_predict.txt` (`{question}` alone) and `generic_paraphrase.txt`. Besides `{question}`
  (and `{reference}` in the paraphrase template), templates may use every meta key; a list value
  is rendered one item per line.
- `gold_target`: the gold as it is.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.chat import conversation, detect
from s3ft.tasks.common import TemplateTask
from s3ft.tasks.io import answer_list, require_text

if TYPE_CHECKING:
    from s3ft.config import DataConfig, SplitSource

log = logging.getLogger(__name__)


def _decoded(value: Any, path: str, line: int, field: str) -> Any:
    if isinstance(value, str) and value.lstrip().startswith("[") and value.rstrip().endswith("]"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(
                path, f"looks like a JSON list but is not valid JSON: {e}", line, field
            ) from None
    return value


class GenericTask(TemplateTask):
    name = "generic"
    version = "2"  # 2: chat formats (data.format)
    predict_file = "generic_predict.txt"
    paraphrase_file = "generic_paraphrase.txt"

    def __init__(self, cfg: DataConfig):
        self.fields = cfg.fields
        self.format = cfg.format
        self.formats: dict[str, str] = {}
        """The format each source was read as (`auto` decides per source, on its first row)."""
        self.default_judge = cfg.judge or ""
        splits = [s for s in (cfg.train, cfg.test) if s is not None]
        self.meta_keys = list(dict.fromkeys(k for f in [cfg.fields, *(s.fields for s in splits if s.fields)]
                                            for k in f.meta))
        self.placeholders = frozenset({"question", *self.meta_keys})
        super().__init__(cfg)

    def source_format(self, row: dict[str, Any], source: SplitSource) -> str:
        if source.path not in self.formats:
            fmt, fields = getattr(source, "format", None) or self.format, getattr(source, "fields", None) or self.fields
            if fmt == "auto":
                fmt = "fields" if {"question", "gold"} & fields.model_fields_set else detect(row)
                log.info("%s: read as data.format %s (auto, from its first row)", source.path, fmt)
            self.formats[source.path] = fmt
        return self.formats[source.path]

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        f, path, context = getattr(source, "fields", None) or self.fields, source.path, []
        if self.source_format(row, source) == "fields":
            question = require_text(row, f.question, path, line)
            gold = require_text(row, f.gold, path, line)
        else:
            context, question, gold = conversation(row, self.formats[path], path, line)
        ex_id = require_text(row, f.id, path, line).strip() if f.id else f"{source.split}-{line}"
        meta = {}
        for key, field in f.meta.items():
            if field not in row:
                raise InputError(path, "missing (named in data.fields.meta)", line, field)
            meta[key] = _decoded(row[field], path, line, field)
            if key == "answers":
                meta[key] = answer_list(meta[key], path, line, field)
        return Example(id=ex_id, question=question, gold=gold, meta=meta, context=context)

    def merge(self, first: Example, repeat: Example) -> Example | None:
        return None  # ids come from the data: a repeat is always a data error

    def values(self, ex: Example) -> dict[str, str]:
        """`question` and every configured meta key (absent from `ex.meta`: rendered empty)."""
        meta = {k: ex.meta.get(k, "") for k in self.meta_keys}
        shown = {k: "\n".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in meta.items()}
        return {**shown, "question": ex.question}
