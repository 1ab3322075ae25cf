"""GSM8K (grade-school math word problems): reads rows in the openai/gsm8k schema, writes nothing.

Each row has `question` and `answer`, the worked solution with calculator annotations
(`48/2 = <<48/2=24>>24`) and a last line `#### 72` (hub: `openai/gsm8k`, config `main`,
splits train/test).

- Ids: the dataset has none, so an id is `gsm8k-` + the first 12 hex digits of sha1(question). It
  does not depend on the file, the row order or the split, so the same problem in train and test
  gets the same id. A question repeated with the same solution is dropped (with a warning); a
  question repeated with a different solution is an `InputError` naming both lines, since the
  two rows could not be told apart.
- `meta["answer"]` is the text after `####`, stripped, commas removed (`1,000` -> `1000`).
- `gold_target` is the gold solution in the format the prompt asks for: annotations `<<...>>`
  removed and the `#### 72` line replaced by the sentence `The answer is 72.`. Trained on it, the
  model answers the way the prediction prompt asks and the math judge reads, instead of learning
  the dataset's markup. The paraphrase prompt shows this cleaned solution as its reference.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.common import TemplateTask, question_id
from s3ft.tasks.io import require_text

if TYPE_CHECKING:
    from s3ft.config import SplitSource

_ANNOTATION = re.compile(r"<<[^<>]*>>")


def final_answer(solution: str) -> str | None:
    """The text after the last `####`, commas removed; None when there is no `####`."""
    if "####" not in solution:
        return None
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def clean_solution(solution: str, answer: str) -> str:
    """Drop `<<...>>` annotations and turn the `#### N` tail into `The answer is N.`."""
    body = _ANNOTATION.sub("", solution.replace("\r\n", "\n"))
    head = body.rsplit("####", 1)[0].rstrip()
    return f"{head}\nThe answer is {answer}." if head else f"The answer is {answer}."


class GSM8K(TemplateTask):
    name = "gsm8k"
    version = "1"
    default_judge = "math"
    hub_dataset = ("openai/gsm8k", "main")
    predict_file = "gsm8k_predict.txt"
    paraphrase_file = "gsm8k_paraphrase.txt"
    duplicate_hint = ": the same question with a different solution (ids are a hash of the question)"

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        question = require_text(row, "question", source.path, line)
        gold = require_text(row, "answer", source.path, line)
        answer = final_answer(gold)
        if answer is None:
            raise InputError(source.path, "no final '#### <answer>' line in the solution", line, "answer")
        if not answer:
            raise InputError(source.path, "nothing after '####' in the solution", line, "answer")
        return Example(
            id=question_id("gsm8k", question), question=question, gold=gold, meta={"answer": answer}
        )

    def gold_target(self, ex: Example) -> str:
        return clean_solution(ex.gold, ex.meta["answer"])
