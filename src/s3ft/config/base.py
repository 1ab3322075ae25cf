"""Shared pieces of the config schema: the `Section` base class (unknown keys refused, attribute
docstrings kept as field descriptions), the method names, the checks of pass-through dicts
(`refuse_owned`, `check_pass_through`), `${s3ft}` expansion against `PACKAGE_DIR`, and `section_dict`.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from s3ft.errors import ConfigError

Method = Literal["sft", "ssr", "sdft", "s3ft", "s3ft-k"]
METHODS: tuple[str, ...] = ("sft", "ssr", "sdft", "s3ft", "s3ft-k")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, protected_namespaces=())


def refuse_owned(given: dict[str, Any], owned: dict[str, str]) -> dict[str, Any]:
    """`given` unchanged, or a ValueError naming the first key s3ft sets itself and what to use instead."""
    taken = [k for k in given if k in owned]
    if taken:
        raise ValueError(f"{taken[0]}: s3ft sets it ({owned[taken[0]]})")
    return given


def check_pass_through(key: str, given: dict[str, Any], cls: type) -> None:
    """Every name in `given` (the section `key`, e.g. `train.sft_args`) must be an init field of the dataclass
    `cls` (e.g. TRL's `SFTConfig`): a ConfigError names the first that is not, with its close matches."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in given if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(None, f"{key}.{unknown[0]}", f"not a field of {cls.__name__}{hint}")


# the package root `src/s3ft` (configs/, data/, prompts/), not this `config/` subpackage
PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def expand_package_dir(value: Any) -> Any:
    """Replace `${s3ft}` in every string with the installed package's directory (for shipped configs)."""
    if isinstance(value, str):
        return value.replace("${s3ft}", PACKAGE_DIR)
    if isinstance(value, dict):
        return {k: expand_package_dir(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_package_dir(v) for v in value]
    return value


def section_dict(section: BaseModel) -> dict[str, Any]:
    return section.model_dump(mode="json")
