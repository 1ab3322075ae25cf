"""MBPP (basic Python programming): reads rows in the google-research-datasets/mbpp schema, writes nothing.

Both hub configs are read (`full`: `text`, `test_setup_code`; `sanitized`: `prompt`,
`test_imports`), with `task_id`, `code`, `test_list` (three assert statements) and, in `full`,
`challenge_test_list`. Splits: train/test/validation/prompt.

- Id: `mbpp-<task_id>`; a repeated task id is an `InputError` unless the rows are identical.
- `meta`: `tests` (the asserts), `test_setup` (`test_setup_code`, or the sanitized config's
  `test_imports` joined by newlines; may be empty), `challenge_tests` (kept, not judged).
  In a .csv file a list field may be written as a JSON list.
- Prompt: the classic MBPP instruction, asking for the code between `[BEGIN]` and `[DONE]`;
  `stop = ("[DONE]",)`, so generation usually ends before `[DONE]` (the code judge reads an
  unterminated block to its end).
- `gold_target`: `[BEGIN]\\n<code>\\n[DONE]` with the code's line endings normalised to `\\n`. The
  paraphrase prompt shows the bare code as its reference solution.
- Every training target ends with `\\n[DONE]`, whatever its source (`TemplateTask.target`): the model's
  answers and paraphrases were cut before it, and all methods should learn the same way to stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.common import TemplateTask
from s3ft.tasks.io import as_str_list, require, require_text

if TYPE_CHECKING:
    from s3ft.config import SplitSource


def code_text(code: str) -> str:
    return code.replace("\r\n", "\n").strip("\n")


class MBPP(TemplateTask):
    name = "mbpp"
    version = "2"  # 2: every training target ends with [DONE]
    default_judge = "code"
    stop = ("[DONE]",)
    hub_dataset = ("google-research-datasets/mbpp", "full")
    predict_file = "mbpp_predict.txt"
    paraphrase_file = "mbpp_paraphrase.txt"
    placeholders = frozenset({"question", "tests"})

    def example(self, row: dict[str, Any], source: SplitSource, line: int) -> Example:
        path = source.path
        task_id = require_text(row, "task_id", path, line)
        question = require_text(row, "text" if row.get("text") or "prompt" not in row else "prompt", path, line)
        code = require_text(row, "code", path, line)
        tests = as_str_list(require(row, "test_list", path, line), path, line, "test_list")
        if not tests:
            raise InputError(path, "empty list", line, "test_list")
        setup = row.get("test_setup_code")
        if setup is not None and not isinstance(setup, str):
            raise InputError(path, f"expected text, found {type(setup).__name__}", line, "test_setup_code")
        if not setup and "test_imports" in row:
            setup = "\n".join(as_str_list(row["test_imports"], path, line, "test_imports"))
        meta = {
            "tests": tests,
            "test_setup": str(setup or ""),
            "challenge_tests": as_str_list(row.get("challenge_test_list"), path, line, "challenge_test_list"),
        }
        return Example(id=f"mbpp-{task_id}", question=question, gold=code, meta=meta)

    def values(self, ex: Example) -> dict[str, str]:
        return {"question": ex.question, "tests": "\n".join(ex.meta["tests"])}

    def reference(self, ex: Example) -> str:
        return code_text(ex.gold)

    def gold_target(self, ex: Example) -> str:
        return f"[BEGIN]\n{code_text(ex.gold)}\n[DONE]"
