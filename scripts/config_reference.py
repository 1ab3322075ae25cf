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
             "| key | type | default | meaning |", "|---|---|---|---|"]
    _section(Config, "", lines)
    return "\n".join(line for i, line in enumerate(lines) if line or lines[i - 1]) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
