"""Relative paths in a config file, resolved against the file's folder: `resolve_paths(raw, folder)`.

The rule (docs/config.md): a path value that starts with `./` or `../`, or a relative path that exists beside
the config file, is made absolute against the config file's folder; anything else is left as written (a hub id
such as `openai/gsm8k`, an absolute path, a relative path that exists only from where the command runs). Path
values are those of the keys in `PATH_KEYS`, in any section, and the items of `evaluate.forgetting.include_path`;
the pass-through dicts (`load_args`, `sft_args`, `engine`, `options`, ...) and column names are never touched.
Overrides on the command line are not resolved: they are relative to the working directory, as a shell's are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PATH_KEYS = frozenset({"path", "run_dir", "chat_template", "template", "predict_template", "paraphrase_template",
                       "accelerate_config"})
PATH_LISTS = frozenset({"include_path"})
OPAQUE = frozenset({"load_args", "sft_args", "lora_args", "engine", "options", "fields", "meta", "metric"})
"""Sections whose values are not s3ft's paths: handed to another library as given, or column names."""


def resolve_path(value: str, folder: Path) -> str:
    """`value` against `folder` by the rule above, or unchanged."""
    if not value or os.path.isabs(value) or value.startswith(("~", "${")):
        return value
    explicit = value in (".", "..") or value.startswith(("./", "../", ".\\", "..\\"))
    beside = folder / value
    if explicit or beside.exists():
        return os.path.normpath(os.path.abspath(beside))
    return value


def resolve_paths(raw: Any, folder: Path) -> Any:
    """A copy of the config mapping `raw` with its path values resolved against `folder`."""
    if isinstance(raw, list):
        return [resolve_paths(v, folder) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out = {}
    for k, v in raw.items():
        if k in OPAQUE:
            out[k] = v
        elif k in PATH_KEYS and isinstance(v, str):
            out[k] = resolve_path(v, folder)
        elif k in PATH_LISTS and isinstance(v, list):
            out[k] = [resolve_path(x, folder) if isinstance(x, str) else x for x in v]
        else:
            out[k] = resolve_paths(v, folder)
    return out
