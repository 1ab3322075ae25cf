"""Write docs/config.md, the config reference, from the schema in s3ft.config (its docstrings and defaults).

Run: `python scripts/config_reference.py`. A test fails when docs/config.md is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from s3ft.config import Config

OUT = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def _type(annotation) -> str:
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _section(model: type[BaseModel], prefix: str, lines: list[str]) -> None:
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        sub = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            nested.append((sub, key))
            continue
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        doc = (field.description or "").replace("\n", " ").replace("|", "\\|")
        lines.append(f"| `{key}` | `{_type(ann)}` | `{default}` | {doc} |")
    for sub, key in nested:
        lines += ["", f"### `{key}`", "", (sub.__doc__ or "").strip() if sub.__doc__ != BaseModel.__doc__ else "",
                  "", "| key | type | default | meaning |", "|---|---|---|---|"]
        _section(sub, key + ".", lines)


def render() -> str:
    lines = ["# Configuration reference", "",
             "Generated from `s3ft/config.py` by `scripts/config_reference.py`; every default lives there.", "",
             "**Relative paths.** In a config file, a path value (`run_dir`, `model.path`, `data.train.path`, "
             "templates, `train.accelerate_config`, ...) that starts with `./` or `../`, or a relative path that "
             "exists beside the config file, is read against the config file's folder, so that a config runs from "
             "any folder. Anything else is left as written: a hub id (`openai/gsm8k`, "
             "`mistralai/Mistral-7B-Instruct-v0.2`), an absolute path, or a relative path that exists only from "
             "where the command runs (read against the working directory, as before). `${s3ft}` is the installed "
             "package's folder. Overrides on the command line (`key=value`) are read against the working "
             "directory, as a shell's paths are. The pass-through sections (`model.load_args`, `train.sft_args`, "
             "`generate.engine`, ...) are never rewritten (`s3ft.config.paths`).", "",
             "**Each split's own format.** `data.train` and `data.test` may each name their own `format` and "
             "`fields` (the generic task), e.g. chat rows to train on and a CSV file to test on; unset, they take "
             "`data.format` and `data.fields`. The data stage warns when train and test share ids.", "",
             "| key | type | default | meaning |", "|---|---|---|---|"]
    _section(Config, "", lines)
    return "\n".join(line for i, line in enumerate(lines) if line or lines[i - 1]) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
