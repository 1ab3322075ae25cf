"""The values that flow between stages: an `Example` from the data stage, a `Verdict` from a judge, and what
a generation backend takes and gives (`Messages`, `GenParams`, `Completion`, and `Failed` for a row it could not
run).

Both are plain dataclasses that round-trip through JSON, so every stage's rows file is readable
with `jq` and every verdict keeps the reason a judge gave.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Example:
    """One task example with a stable id.

    `gold` is the gold response as the dataset gives it. `meta` holds what a judge needs besides the
    gold, under conventional keys: `answer` (final answer, math judge), `answers` (list of aliases,
    QA judge), `tests` (list of assert statements, code judge), `test_setup` (code run before the
    tests), plus any extra fields a task keeps.

    `context` holds the turns of a conversation before the question, as chat messages (the system prompt
    first, then earlier user and assistant turns): the question is the last user turn, the gold the
    assistant's answer to it (`s3ft.tasks.chat`). Empty for single-turn data, and then left out of `to_dict`.
    """

    id: str
    question: str
    gold: str
    meta: dict[str, Any] = field(default_factory=dict)
    context: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["context"]:
            del d["context"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(id=str(d["id"]), question=d["question"], gold=d["gold"], meta=dict(d.get("meta") or {}),
                   context=list(d.get("context") or []))


@dataclass
class Verdict:
    """A judge's decision on one prediction.

    `correct` is True, False, or None when the judge could not decide (an LLM judge that replied
    with neither yes nor no, a math expression that timed out). `reason` always says why, and
    `extracted` is the answer the judge read out of the prediction, when it reads one, and `sandbox`
    the sandbox a judge that runs code ran it in (docs/sandbox.md).
    """

    correct: bool | None
    reason: str
    extracted: str | None = None
    sandbox: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(correct=d["correct"], reason=d["reason"], extracted=d.get("extracted"), sandbox=d.get("sandbox"))


Messages = list[dict[str, str]]


@dataclass(frozen=True)
class GenParams:
    """Decoding parameters. Greedy by default; sampling is seeded when `seed` is set."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    @property
    def sampled(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


class Completion(str):
    """A generated text that also says why generation ended: `finish` is "stop" (end of turn or a stop
    string), "length" (cut off at `max_new_tokens`), or None (the backend did not say)."""

    finish: str | None

    def __new__(cls, text: str, finish: str | None = None):
        obj = super().__new__(cls, text)
        obj.finish = finish
        return obj


def finish_of(text: str) -> str | None:
    """Why the generation of `text` ended ("stop" / "length"), when its backend said; else None."""
    return getattr(text, "finish", None)


@dataclass(frozen=True)
class Failed:
    """What a backend gives, in place of a completion or a score, for one row it did not run because the row is
    too long for the model (`too_long`): the stage records the row as failed, with `reason`, and the rest go on."""

    reason: str


def too_long(prompt_tokens: int, more: int, what: str, context: int | None, limit: str) -> Failed | None:
    """A `Failed` where a prompt of `prompt_tokens` and `more` tokens after it (`what`: "max_new_tokens", "a
    completion") do not fit the model's `context` (named `limit`: where it comes from); None where they fit or
    no context is known."""
    if context is None or prompt_tokens + more <= context:
        return None
    return Failed(f"prompt {prompt_tokens:,} tokens + {what} {more:,} = {prompt_tokens + more:,} tokens, over the "
                  f"model's context of {context:,} ({limit})")
