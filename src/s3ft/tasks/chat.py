"""Chat-format rows for the generic task: TRL's `messages`, ShareGPT's `conversations`, Alpaca's `instruction`.

`conversation(row, fmt, path, line)` reads one row into `(context, question, gold)`: the gold is the last
assistant turn, the question the user turn before it, and the context every turn before that (the system
prompt first), as `{role, content}` messages. One row is one training example. It reads nothing else and
writes nothing. The formats, as LLaMA-Factory and axolotl read them:

- `messages` (TRL's conversational format): `{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}`.
- `sharegpt`: `{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}], "system": ...}`; `user` and
  `assistant` are accepted for `human` and `gpt`; the optional `system` column is the system prompt (a first
  turn from `system` is one too, but not both).
- `alpaca`: `{"instruction", "input", "output", "system", "history"}`: the question is the instruction and,
  when `input` is not empty, a newline and the input (LLaMA-Factory's "instruction\\ninput"); `output` is the
  gold; `history` is a list of earlier `[instruction, response]` pairs; `input`, `system` and `history` may
  be absent.

Rules, each broken one an `InputError` naming the file, the line and the field (`messages[2].role`): a system
turn comes only first; then user and assistant turns alternate, starting with the user; the last turn is the
assistant's (the gold); every role is known (tool and function turns are not supported) and every content is
non-blank text. A list held as a JSON string (a CSV cell) is decoded first. `detect(row)` names the format a
row looks like: `messages`, `sharegpt`, `alpaca`, or `fields` (question/gold columns, `data.fields`).
"""

from __future__ import annotations

import json
from typing import Any

from s3ft.backends.base import Messages
from s3ft.errors import InputError
from s3ft.tasks.io import require, require_text

FORMATS = ("messages", "sharegpt", "alpaca")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
Turn = tuple[str, str, str]
"""(role, content, the field that holds the turn, for errors)."""


def detect(row: dict[str, Any]) -> str:
    """The format a row looks like (by its columns)."""
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    return "fields"


def conversation(row: dict[str, Any], fmt: str, path: str, line: int) -> tuple[Messages, str, str]:
    """`(context, question, gold)` of one row in chat format `fmt` (see the module docstring)."""
    read = {"messages": _messages, "sharegpt": _sharegpt, "alpaca": _alpaca}[fmt]
    turns = read(row, path, line)
    _check_order(turns, path, line)
    context = [{"role": role, "content": content} for role, content, _ in turns[:-2]]
    return context, turns[-2][1], turns[-1][1]


def _list(row: dict[str, Any], field: str, path: str, line: int) -> list:
    value = require(row, field, path, line)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(path, f"looks like a JSON list but is not valid JSON: {e}", line, field) from None
    if not isinstance(value, (list, tuple)):
        raise InputError(path, f"expected a list of turns, found {type(value).__name__}", line, field)
    if not value:
        raise InputError(path, "empty list: no turns", line, field)
    return list(value)


def _turns(row: dict[str, Any], field: str, role_key: str, content_key: str, roles: dict[str, str],
           path: str, line: int) -> list[Turn]:
    turns = []
    for i, item in enumerate(_list(row, field, path, line)):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InputError(path, f"expected an object with '{role_key}' and '{content_key}'", line, where)
        role = _text(item.get(role_key), path, line, f"{where}.{role_key}")
        if role not in roles:
            known = ", ".join(sorted(roles))
            raise InputError(path, f"unknown role {role!r} (expected one of {known}; tool turns are not supported)",
                             line, f"{where}.{role_key}")
        turns.append((roles[role], _text(item.get(content_key), path, line, f"{where}.{content_key}"), where))
    return turns


def _text(value: Any, path: str, line: int, field: str) -> str:
    """`value` as non-blank text (`require_text`'s rule), errors naming `field`."""
    if value is None:
        raise InputError(path, "missing", line, field)
    return require_text({field: value}, field, path, line)


def _messages(row: dict[str, Any], path: str, line: int) -> list[Turn]:
    roles = {"system": "system", "user": "user", "assistant": "assistant"}
    return _turns(row, "messages", "role", "content", roles, path, line)


def _sharegpt(row: dict[str, Any], path: str, line: int) -> list[Turn]:
    turns = _turns(row, "conversations", "from", "value", SHAREGPT_ROLES, path, line)
    if row.get("system") not in (None, ""):
        system = require_text(row, "system", path, line)
        if turns[0][0] == "system":
            raise InputError(path, "a system prompt in both the 'system' column and the first turn", line, "system")
        turns.insert(0, ("system", system, "system"))
    return turns


def _alpaca(row: dict[str, Any], path: str, line: int) -> list[Turn]:
    turns: list[Turn] = []
    if row.get("system") not in (None, ""):
        turns.append(("system", require_text(row, "system", path, line), "system"))
    history = row.get("history") or []
    if not isinstance(history, (list, tuple)):
        raise InputError(path, "expected a list of [instruction, response] pairs", line, "history")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise InputError(path, "expected an [instruction, response] pair", line, f"history[{i}]")
        for j, role in enumerate(("user", "assistant")):
            turns.append((role, _text(pair[j], path, line, f"history[{i}][{j}]"), f"history[{i}]"))
    question = require_text(row, "instruction", path, line)
    if row.get("input") not in (None, ""):
        question += "\n" + require_text(row, "input", path, line)
    turns.append(("user", question, "instruction"))
    turns.append(("assistant", require_text(row, "output", path, line), "output"))
    return turns


def _check_order(turns: list[Turn], path: str, line: int) -> None:
    """System first if at all, then user and assistant alternating from the user, ending with the assistant."""
    body = turns[1:] if turns[0][0] == "system" else turns
    for k, (role, _, where) in enumerate(body):
        expected = ("user", "assistant")[k % 2]
        if role != expected:
            found = "'system' after the first turn" if role == "system" else f"'{role}'"
            raise InputError(path, f"roles out of order: {found} where '{expected}' belongs (a system turn comes "
                             "first, then user and assistant turns alternate)", line, where)
    if not any(role == "assistant" for role, _, _ in body):
        raise InputError(path, "no assistant turn: the last assistant turn is the gold", line, turns[-1][2])
    if body[-1][0] != "assistant":
        raise InputError(path, "the conversation ends with a user turn: the last turn must be the assistant's "
                         "(the gold)", line, body[-1][2])
