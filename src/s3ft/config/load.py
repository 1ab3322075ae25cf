"""Reading a config: `load_config` parses the YAML, resolves the file's relative paths against its folder
(`s3ft.config.paths`), applies `key=value` overrides (`apply_override`), expands `${s3ft}` and validates
against `Config`; each validation error becomes a `ConfigError` naming the file, the dotted key and its YAML
line (`_key_lines`), or the override that set it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from s3ft.config.base import expand_package_dir
from s3ft.config.paths import resolve_paths
from s3ft.config.schema import Config
from s3ft.errors import ConfigError


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path of a YAML mapping to its 1-based line, for error messages."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, str(k.value))
                lines[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines[(*path, str(i))] = v.start_mark.line + 1
                walk(v, (*path, str(i)))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override; the value is parsed as YAML (`3`, `true`, `[a, b]`).

    A number indexes a list: `evaluate.general.0.source.limit=20`.
    """
    if "=" not in assignment:
        raise ConfigError(None, assignment, "an override must look like key=value")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    node: Any = raw
    for p in parts[:-1]:
        if isinstance(node, list):
            if not (p.isdigit() and int(p) < len(node)):
                raise ConfigError(None, key, f"'{p}' is not an index of a list of {len(node)}")
            node = node[int(p)]
            continue
        if node.get(p) is None:  # absent, or an empty YAML section (`train:`)
            node[p] = {}
        node = node[p]
        if not isinstance(node, (dict, list)):
            raise ConfigError(None, key, f"'{p}' is not a section")
    parsed = yaml.safe_load(value) if value.strip() else None
    if isinstance(node, list):
        if not (parts[-1].isdigit() and int(parts[-1]) < len(node)):
            raise ConfigError(None, key, f"'{parts[-1]}' is not an index of a list of {len(node)}")
        node[int(parts[-1])] = parsed
    else:
        node[parts[-1]] = parsed


def read_mapping(path: Path, what: str, not_a_mapping: str) -> tuple[str, dict]:
    """A YAML file's text and its top-level mapping; a missing file, a YAML error or another shape is a
    `ConfigError` naming the file (and the line, for YAML errors). `what` names the file in the first case."""
    if not path.is_file():
        raise ConfigError(str(path), "<file>", f"no such {what} file")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(str(path), "<yaml>", str(e).splitlines()[0], mark.line + 1 if mark else None) from e
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "<root>", not_a_mapping)
    return text, raw


def load_config(path: str | Path | None = None, overrides: list[str] = (), raw: dict | None = None) -> Config:
    """Read, override and validate a config. Relative paths in the file that start with `./` or `../`, or that
    exist beside it, are resolved against its folder (`s3ft.config.paths`); others stay as written."""
    text = ""
    if path is not None:
        path = Path(path)
        text, raw = read_mapping(path, "config", "the config must be a mapping of sections")
    raw = copy.deepcopy(raw or {})  # overrides must not change the caller's dict
    if path is not None:  # before the overrides: those are relative to the working directory
        raw = resolve_paths(raw, path.parent)
    for o in overrides:
        apply_override(raw, o)
    raw = expand_package_dir(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        problems = [_problem(err, _key_lines(text), overrides, path) for err in e.errors()]
        first = problems[0]
        if len(problems) > 1:  # report every problem, each on its own line with its key and line
            first.args = ("\n".join(str(p) for p in problems),)
        raise first from None


def _line_of(lines: dict, loc: tuple[str, ...]) -> int | None:
    """The line of key path `loc`, else of the nearest section above it that the file has."""
    return next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)


def locate(err: ConfigError, path: str | Path | None) -> ConfigError:
    """An error of a check made after loading (`s3ft validate`'s, naming no file) with the config file `path` and
    its key's line there."""
    if err.path is not None or path is None or not Path(path).is_file():
        return err
    line = _line_of(_key_lines(Path(path).read_text()), tuple(err.key.split(".")))
    return ConfigError(str(path), err.key, err.message, line)


def _problem(err: dict, lines: dict, overrides: list[str], path: str | Path | None) -> ConfigError:
    loc = tuple(str(x) for x in err["loc"] if not ("[" in str(x) or str(x) in ("str", "int", "float")))
    overridden = [tuple(o.split("=", 1)[0].strip().split(".")) for o in overrides]
    by_override = any(loc[: len(k)] == k for k in overridden)  # then no line of the file is at fault
    line = None if by_override else _line_of(lines, loc)
    msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
    msg += " (set by an override)" if by_override else ""
    return ConfigError(str(path) if path else None, ".".join(loc), msg, line)
