"""Natural Questions, open-domain: reads rows in the google-research-datasets/nq_open schema, writes nothing.

Each row has `question` (a string) and `answer` (a list of gold aliases); hub splits are
train/validation (use `validation` as the test split).

- Id: `nq-` + the first 12 hex digits of sha1(question), independent of file, order and split.
  A question that appears again is merged into one example whose aliases are the union (first
  row's aliases first), since every annotated answer is correct.
- `meta["answers"]`: the alias list (empty aliases dropped); `gold` is the first alias.
- `gold_target` is just that first alias, a short answer with no sentence around it: the
  prediction prompt asks for a short answer, and the QA judge compares against the aliases.
- Judge: `qa` (alias match). The paper judged NQ with an LLM; set `judge.name=llm` for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.common import TemplateTask, question_id
from s3ft.tasks.io import as_str_list, require, require_text

if TYPE_CHECKING:
    from s3ft.config import SplitSource


class NaturalQuestions(TemplateTask):
    name = "nq"
    version = "1"
    default_judge = "qa"
    hub_dataset = ("google-research-datasets/nq_open", None)
    predict_file = "nq_predict.txt"
    paraphrase_file = "nq_paraphrase.txt"

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        question = require_text(row, "question", source.path, line)
        raw = require(row, "answer", source.path, line)
        if isinstance(raw, str) and not raw.lstrip().startswith("["):
            raw = [raw]  # a single answer, as a CSV cell may hold it
        answers = [a.strip() for a in as_str_list(raw, source.path, line, "answer") if a.strip()]
        if not answers:
            raise InputError(source.path, "no non-empty answer alias", line, "answer")
        return Example(
            id=question_id("nq", question), question=question, gold=answers[0], meta={"answers": answers}
        )

    def merge(self, first: Example, repeat: Example) -> Example | None:
        if first.question != repeat.question:  # a hash collision: two questions, one id
            return None
        answers = list(dict.fromkeys(first.meta["answers"] + repeat.meta["answers"]))
        return (
            first
            if answers == first.meta["answers"]
            else Example(
                id=first.id, question=first.question, gold=first.gold, meta={**first.meta, "answers": answers}
            )
        )
