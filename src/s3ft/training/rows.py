"""The training file: TRL's conversational prompt-completion rows, one JSON object per line, and which of them
are longer than `train.max_length` (`over_max_length`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s3ft.errors import InputError


def _check_messages(path: Path, line: int, field: str, value: Any, roles: set[str] | None = None) -> None:
    """`value` must be a non-empty list of chat messages (with one of `roles`, when given)."""
    if not isinstance(value, list) or not value:
        raise InputError(path, "expected a non-empty list of {role, content} messages", line, field)
    for m in value:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise InputError(path, "each message needs string 'role' and 'content'", line, field)
        if roles is not None and m["role"] not in roles:
            raise InputError(path, f"unexpected role {m['role']!r} (expected {sorted(roles)})", line, field)


def read_train_rows(path: Path) -> list[dict[str, Any]]:
    """Read and validate the training JSONL; keep only `prompt` and `completion` of each row.

    Each problem is an `InputError` naming the line and the field: bad UTF-8 or JSON, a missing or malformed
    field, a blank completion (it would teach the model to stop at once). Repeated rows are kept (upsampling)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "training file not found")
    rows = []
    with path.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, f"not valid UTF-8: {e.reason} at byte {e.start}", i) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(path, f"invalid JSON: {e.msg}", i) from None
            except RecursionError:
                raise InputError(path, "invalid JSON: nested too deeply", i) from None
            if not isinstance(row, dict):
                raise InputError(path, "each line must be a JSON object", i)
            for key in ("prompt", "completion"):
                if key not in row:
                    raise InputError(path, "missing", i, key)
            _check_messages(path, i, "prompt", row["prompt"])
            _check_messages(path, i, "completion", row["completion"], roles={"assistant"})
            if not "".join(m["content"] for m in row["completion"]).strip():
                raise InputError(path, "empty: nothing to learn", i, "completion")
            rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise InputError(path, "no training rows (empty file)")
    return rows


def same_rows(a: Path, b: Path) -> bool:
    """Whether two training files hold the same rows (prompt and completion) in the same order: other
    columns (a row's provenance) do not enter training."""
    return Path(b).is_file() and read_train_rows(a) == read_train_rows(b)


def over_max_length(rows: list[dict[str, Any]], tokenizer, max_length: int) -> dict[str, Any]:
    """What `train.max_length` does to these rows (prompt and completion as the chat template renders them):
    `truncated_rows`, longer than `max_length`, keep their first `max_length` tokens (TRL's truncation); of them
    `dropped_rows`, whose prompt alone fills `max_length`, leave no completion token to learn from (TRL drops
    them); `over_max_length`, the first few as "row N: T tokens". Nothing where every row fits."""
    from s3ft.backends.template import chat_ids

    over = []
    for n, r in enumerate(rows, 1):
        full = len(chat_ids(tokenizer, r["prompt"] + r["completion"], add_generation_prompt=False))
        if full > max_length:
            prompt = len(chat_ids(tokenizer, r["prompt"], add_generation_prompt=True))
            over.append((n, full, prompt >= max_length))
    if not over:
        return {}
    return {"truncated_rows": len(over), "dropped_rows": sum(d for *_, d in over),
            "over_max_length": [f"row {n}: {t:,} tokens" + (" (the prompt alone fills it: dropped)" if d else "")
                                for n, t, d in over[:3]]}
