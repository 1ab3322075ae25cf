"""Where plug-in names resolve: dict literals of built-ins, plus a `package.module:Name` escape hatch.

Values are import strings, so `s3ft ls` imports no plug-in; `resolve` imports one on use (`validate`
resolves the configured plug-ins, which imports torch for the hf backend, but loads no model). A name
that is not built in is treated as `package.module:Name`.
"""

from __future__ import annotations

import importlib
from typing import Any

from s3ft.errors import S3FTError

TASKS = {
    "gsm8k": "s3ft.tasks.gsm8k:GSM8K",
    "mbpp": "s3ft.tasks.mbpp:MBPP",
    "humaneval": "s3ft.tasks.humaneval:HumanEval",
    "nq": "s3ft.tasks.nq:NaturalQuestions",
    "generic": "s3ft.tasks.generic:GenericTask",
}
JUDGES = {
    "math": "s3ft.judges.math:MathJudge",
    "code": "s3ft.judges.code:CodeJudge",
    "qa": "s3ft.judges.qa:QAJudge",
    "llm": "s3ft.judges.llm:LLMJudge",
    "final": "s3ft.judges.final:FinalAnswerJudge",
}
BACKENDS = {
    "hf": "s3ft.backends.hf:HFBackend",
    "vllm": "s3ft.backends.vllm:VLLMBackend",
}
KINDS = {"task": TASKS, "judge": JUDGES, "backend": BACKENDS}


def resolve(kind: str, name: str) -> Any:
    """The class registered as `name`, or imported from `package.module:Name`."""
    table = KINDS[kind]
    target = table.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(table))
        raise S3FTError(f"unknown {kind} '{name}': choose one of {known}, or give 'package.module:Name'")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise S3FTError(f"{kind} '{name}': cannot import {target}: {e}") from e


def check(kind: str, name: str) -> None:
    """That `name` resolves, without importing a built-in one (the hf backend's import is torch's: seconds)."""
    if name not in KINDS[kind]:
        resolve(kind, name)
