"""The task interface: where examples come from, how they are prompted, and which judge fits.

A task is a small object: `load` yields `Example`s for a split, `prompt` builds the prediction
(and training) prompt, `paraphrase_prompt` shows the gold as a reference answer, `gold_target`
turns the dataset's gold into a training target in the task's answer format, and `target` finishes
every training target, whatever its source, the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from s3ft.backends.base import Messages
from s3ft.records import Example

if TYPE_CHECKING:
    from s3ft.config import SplitSource


class Task(Protocol):
    name: str
    version: str
    """Bump when loading or prompting changes: it is part of every downstream fingerprint."""
    default_judge: str

    def load(self, source: SplitSource) -> Iterator[Example]:
        """Examples of one split; raises `InputError` naming file, line and field on bad rows."""
        ...

    def prompt(self, ex: Example) -> Messages:
        """The task prompt, used to predict, to train and to evaluate."""
        ...

    def paraphrase_prompt(self, ex: Example) -> Messages:
        """The prompt that shows the gold as a reference answer and asks for the model's own."""
        ...

    def gold_target(self, ex: Example) -> str:
        """The gold response as a training target in the task's answer format."""
        ...

    def target(self, ex: Example, text: str) -> str:
        """Any training target (the model's answer, a paraphrase or the gold target) as the task's format
        needs it: e.g. ending with the stop string the gold carries (`TemplateTask.target`)."""
        ...

    def templates(self) -> dict[str, str]:
        """Name -> text of every prompt template the task uses (they enter the fingerprint)."""
        ...
