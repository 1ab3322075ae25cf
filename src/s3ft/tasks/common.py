"""Shared behaviour of the built-in tasks: prompt templates, rendering and loading with unique ids.

Templates are plain text files rendered with `str.format`: the package's own live in
`s3ft/prompts/*.txt`; `data.predict_template` / `data.paraphrase_template` name files that replace
them (read once, when the task is built). Literal braces in a template must be doubled (`{{`, `}}`).
Placeholders are checked when the task is built, so an unknown one fails before any model runs.
Prompts are a single user message, `[{"role": "user", "content": ...}]`: no system message, so
the model's chat template decides what a system turn holds; an example from a conversation
(`Example.context`: a system prompt, earlier turns) has those turns before it, in the prediction and in the
paraphrase prompt alike (the template renders the last user turn). The rendered text is stripped of
surrounding whitespace (a template file's final newline does not enter the prompt); `templates()`
returns the files' exact text, which is what enters the stage fingerprints.
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3ft.backends.base import Messages
from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.io import read_rows

if TYPE_CHECKING:
    from s3ft.config import DataConfig, SplitSource

log = logging.getLogger(__name__)


def packaged_template(filename: str) -> str:
    """The text of `s3ft/prompts/<filename>`."""
    return (files("s3ft") / "prompts" / filename).read_text(encoding="utf-8")


def read_template(path: str) -> str:
    """The text of a user's template file; a missing file raises `InputError`."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(path, "no such template file")
    return p.read_text(encoding="utf-8")


def check_placeholders(text: str, allowed: set[str], where: str, required: tuple[str, ...] = (), key: str = "") -> None:
    """Raise `InputError` (with the template's line) for a placeholder that `allowed` does not name, one that
    indexes or takes an attribute (`{question[0]}`: a character, not the question), or a `required` one
    missing (a predict template without `{question}` gives every example one prompt). `key`: the config key
    that named the template, for the message."""
    line, found = 1, set()
    named = f" ({key})" if key else ""
    try:
        for literal, field, _, _ in string.Formatter().parse(text):
            line += literal.count("\n")
            if field is None:
                continue
            root = field.split(".", 1)[0].split("[", 1)[0]
            found.add(field)
            if root in allowed and field != root:
                raise InputError(where, f"placeholder {{{field}}} indexes or takes an attribute of {{{root}}}: "
                                 f"write {{{root}}}{named}", line=line)
            if root not in allowed:
                shown = "{" + field + "}" if field else "{}"
                known = ", ".join("{" + a + "}" for a in sorted(allowed))
                raise InputError(
                    where,
                    f"unknown placeholder {shown}; this template can use {known} (write {{{{ and }}}} for literal braces)",
                    line=line,
                )
    except ValueError as e:  # a lone '{' or '}'
        raise InputError(where, f"bad template: {e} (write {{{{ and }}}} for literal braces)") from None
    for name in required:
        if name not in found:
            raise InputError(where, f"the template has no {{{name}}}: every example would get the same prompt, "
                             f"without its {name}{named}")


def question_id(prefix: str, question: str) -> str:
    """`<prefix>-<first 12 hex digits of sha1(question)>`: stable across loads, files and splits."""
    return f"{prefix}-{hashlib.sha1(question.encode('utf-8')).hexdigest()[:12]}"


def user_message(content: str) -> Messages:
    return [{"role": "user", "content": content.strip()}]


class TemplateTask:
    """Base of the built-in tasks: subclasses set the class attributes and write `example`.

    `placeholders` are the names the prediction template may use (the paraphrase template may also
    use `{reference}`); `values(ex)` supplies them. Ids must be unique within a split: `merge`
    decides what a repeated id means (by default an identical repeat is dropped, anything else is
    an `InputError` naming both lines).
    """

    name: str = ""
    version: str = "1"
    default_judge: str = ""
    stop: tuple[str, ...] = ()
    """Stop strings the generation stage adds to its own."""
    hub_dataset: tuple[str, str | None] | None = None
    """Where the task's data lives on the hub, (path, config name); for docs and example configs."""
    predict_file: str = ""
    paraphrase_file: str = ""
    placeholders: frozenset[str] = frozenset({"question"})
    duplicate_hint: str = ""
    """Appended to the duplicate-id error (e.g. how the task derives its ids)."""
    load_counts: dict[str, int] | None = None
    """Of the last `load`, once read to its end: `rows` read and `repeats` (rows dropped or merged as repeats
    of an earlier id), so that rows == examples + repeats; the data stage records them."""

    def __init__(self, cfg: DataConfig | None = None):
        self.cfg = cfg
        self._templates: dict[str, str] = {}
        for kind, default, override, extra in (
            ("predict", self.predict_file, cfg and cfg.predict_template, set()),
            ("paraphrase", self.paraphrase_file, cfg and cfg.paraphrase_template, {"reference"}),
        ):
            text = read_template(override) if override else packaged_template(default)
            check_placeholders(text, set(self.placeholders) | extra, override or f"s3ft/prompts/{default}",
                               ("question", *extra), f"data.{kind}_template")
            self._templates[kind] = text

    # --- to write in a subclass ---------------------------------------------------------------

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        """One row -> one `Example`; raises `InputError` (via `require`) on a bad row."""
        raise NotImplementedError

    # --- shared behaviour ---------------------------------------------------------------------

    def load(self, source: SplitSource) -> Iterator[Example]:
        """The split's examples in file order, with unique ids (see `merge`).

        `source.limit` counts rows read, so a dropped or merged repeat leaves fewer examples.
        """
        kept: dict[str, tuple[int, Example]] = {}
        rows = 0
        for line, row in read_rows(source):
            rows += 1
            ex = self.example(row, source, line)
            if ex.id not in kept:
                kept[ex.id] = (line, ex)
                continue
            first_line, first = kept[ex.id]
            merged = self.merge(first, ex)
            if merged is None:
                raise InputError(
                    source.path,
                    f"duplicate id '{ex.id}' (first at line {first_line}){self.duplicate_hint}",
                    line,
                )
            log.warning(
                "%s:%d: repeats id '%s' of line %d; %s",
                source.path,
                line,
                ex.id,
                first_line,
                "dropped" if merged is first else "merged",
            )
            kept[ex.id] = (first_line, merged)
        self.load_counts = {"rows": rows, "repeats": rows - len(kept)}
        for _, ex in kept.values():
            yield ex

    def merge(self, first: Example, repeat: Example) -> Example | None:
        """What a repeated id becomes: `first` (drop the repeat), a merged example, or None (error)."""
        return first if first == repeat else None

    def values(self, ex: Example) -> dict[str, str]:
        return {"question": ex.question}

    def reference(self, ex: Example) -> str:
        """The gold as the paraphrase prompt shows it."""
        return self.gold_target(ex)

    def gold_target(self, ex: Example) -> str:
        return ex.gold

    def target(self, ex: Example, text: str) -> str:
        """`text` (the model's answer, a paraphrase or the gold target) as a training target.

        Where the gold target ends with one of the task's stop strings (MBPP's `[DONE]`), generation cut that
        string off the model's own texts: every target then ends with it, on a line of its own, whatever its
        source, so that all methods teach the same way to stop."""
        gold = self.gold_target(ex).rstrip()
        end = next((s for s in self.stop if s and gold.endswith(s)), None)
        if end is None:
            return text
        body = text.rstrip()
        return body if body.endswith(end) else f"{body}\n{end}"

    def prompt(self, ex: Example) -> Messages:
        return [*ex.context, *user_message(self._templates["predict"].format(**self.values(ex)))]

    def paraphrase_prompt(self, ex: Example) -> Messages:
        values = {**self.values(ex), "reference": self.reference(ex)}
        return [*ex.context, *user_message(self._templates["paraphrase"].format(**values))]

    def templates(self) -> dict[str, str]:
        return dict(self._templates)
