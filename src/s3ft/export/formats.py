"""The training set in each format other tools read: TRL's prompt-completion rows, LLaMA-Factory's sharegpt
rows with OpenAI-style messages (and its `dataset_info.json` entry), axolotl's `chat_template` rows. Every row
keeps its provenance as extra columns."""

from __future__ import annotations

from pathlib import Path

from s3ft.errors import S3FTError
from s3ft.rundir import read_jsonl, stage_root

SHAREGPT_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}


def select_rows(run_dir: Path, method: str) -> list[dict]:
    """`method`'s training rows, each with every column any row has (a missing one is None), so that every
    format, and an Arrow table, has the same columns in every row."""
    path = stage_root(run_dir, "select") / method / "train.jsonl"
    if not path.is_file():
        raise S3FTError(f"{path}: no training set for method {method!r}; run the select stage first "
                        "(`s3ft run CONFIG --until select`)")
    rows = read_jsonl(path)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in columns} for r in rows]


def provenance(row: dict) -> dict:
    """Everything in a select row but its messages: id, source, verdicts, flags, NLL."""
    return {k: v for k, v in row.items() if k not in ("prompt", "completion")}


def trl_row(row: dict) -> dict:
    """TRL's conversational prompt-completion row: the select row as it is."""
    return dict(row)


def llamafactory_row(row: dict) -> dict:
    """LLaMA-Factory's sharegpt row with OpenAI-style messages: a system prompt first, earlier turns, the
    question, the target."""
    return {"messages": row["prompt"] + row["completion"], **provenance(row)}


def axolotl_row(row: dict) -> dict:
    """axolotl's `chat_template` row: every message with `training`, true on the target alone."""
    messages = [{**m, "training": False} for m in row["prompt"]]
    messages += [{**m, "training": True} for m in row["completion"]]
    return {"messages": messages, **provenance(row)}


def dataset_info_entry(file_name: str) -> dict:
    """The `dataset_info.json` entry of a sharegpt file of OpenAI-style messages for LLaMA-Factory."""
    return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
            "tags": dict(SHAREGPT_TAGS)}


def dataset_name(method: str) -> str:
    return f"s3ft_{method}"
