"""Tests of the config schema: loading YAML, defaults, overrides, and errors naming key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3ft.config import Config, apply_override, load_config
from s3ft.errors import ConfigError

GOOD = """\
run_dir: runs/test
method: s3ft
model:
  path: some/model
data:
  task: gsm8k
  train:
    path: tests/fixtures/gsm8k_train.jsonl
    limit: 3
train:
  epochs: 2
"""


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error(path=None, overrides=(), raw=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides), raw=raw)
    return info.value


def test_load_yaml_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert isinstance(cfg, Config)
    assert cfg.run_dir == "runs/test"
    assert cfg.method == ["s3ft"]  # a single string becomes a list
    assert cfg.data.train.path == "tests/fixtures/gsm8k_train.jsonl" and cfg.data.train.limit == 3
    assert cfg.data.train.split == "train" and cfg.data.test is None
    assert cfg.train.epochs == 2.0
    # defaults of sections not written in the file
    assert cfg.train.learning_rate == 1e-4 and cfg.train.mode == "lora"
    assert (
        cfg.model.path == "some/model"
        and cfg.model.dtype == "auto"
        and cfg.generate.backend == "hf"
        and cfg.generate.temperature == 0.0
    )
    assert cfg.select.nll is True and cfg.cache.enabled is True and cfg.judge.name is None
    assert cfg.judge.llm is None and cfg.paraphrase.reject_patterns  # non-empty default patterns


def test_method_list_deduplicated_in_order():
    raw = {
        "model": {"path": "m"},
        "data": {"train": {"path": "x.jsonl"}},
        "method": ["sft", "s3ft", "sft", "ssr", "s3ft"],
    }
    assert load_config(raw=raw).method == ["sft", "s3ft", "ssr"]


def test_overrides(tmp_path):
    cfg = load_config(
        write(tmp_path, GOOD),
        ["train.learning_rate=2e-4", "method=[sft,s3ft]", "data.train.limit=5", "model.path=other/model"],
    )
    assert cfg.train.learning_rate == pytest.approx(2e-4)
    assert cfg.method == ["sft", "s3ft"]
    assert cfg.data.train.limit == 5
    assert cfg.model.path == "other/model"
    assert cfg.train.epochs == 2.0  # untouched values stay


def test_override_does_not_mutate_callers_raw():
    raw = {"model": {"path": "m"}, "data": {"train": {"path": "x.jsonl"}}}
    load_config(raw=raw, overrides=["data.train.limit=5"])
    assert raw == {"model": {"path": "m"}, "data": {"train": {"path": "x.jsonl"}}}


def test_override_into_empty_section(tmp_path):
    # `train:` with nothing under it is None in YAML; an override still fills it in
    cfg = load_config(write(tmp_path, GOOD + "select:\n"), ["select.nll=false"])
    assert cfg.select.nll is False


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.epochs")


def test_unknown_key_names_dotted_key_and_line(tmp_path):
    text = GOOD + "  lr: 0.1\n"  # line 12: a misspelt train.learning_rate
    e = error(write(tmp_path, text))
    assert e.key == "train.lr" and e.line == 12
    assert "train.lr" in str(e) and ":12:" in str(e) and "unknown key" in str(e)


def test_wrong_type_names_key_and_line(tmp_path):
    e = error(write(tmp_path, GOOD.replace("epochs: 2", "epochs: abc")))
    assert e.key == "train.epochs" and e.line == 11
    assert "train.epochs" in str(e) and ":11:" in str(e)


def test_nested_unknown_key_in_data_train(tmp_path):
    e = error(write(tmp_path, GOOD.replace("    limit: 3\n", "    limit: 3\n    splitt: test\n")))
    assert e.key == "data.train.splitt" and e.line == 10


def test_bad_method_names_list_item_line(tmp_path):
    e = error(write(tmp_path, GOOD.replace("method: s3ft", "method:\n  - sft\n  - s4ft")))
    assert e.key == "method.1" and e.line == 4


def test_override_error_names_key_not_a_file_line(tmp_path):
    e = error(write(tmp_path, GOOD), ["train.epochs=-1"])  # line 11 of the file holds a good value
    assert e.key == "train.epochs" and e.line is None and "set by an override" in str(e)
    e = error(write(tmp_path, GOOD), ["train.lrr=1"])
    assert e.key == "train.lrr" and e.line is None and "unknown key (set by an override)" in str(e)
    e = error(write(tmp_path, GOOD), ["method=[sft, s4ft]"])
    assert e.key == "method.1" and e.line is None
    e = error(raw={"model": {"path": "m"}, "data": {"train": {"path": "x"}}}, overrides=["train.lrr=1"])
    assert str(e).startswith("<config>: train.lrr: unknown key")


def test_unknown_key_in_file_keeps_its_line_beside_overrides(tmp_path):
    e = error(write(tmp_path, GOOD + "  lr: 0.1\n"), ["train.epochs=4", "data.train.limit=2"])
    assert e.key == "train.lr" and e.line == 12 and "override" not in str(e)


def test_missing_required_sections():
    assert error(raw={"model": {"path": "m"}}).key == "data"
    assert error(raw={"data": {"train": {"path": "x"}}}).key == "model"
    assert error(raw={"model": {"path": "m"}, "data": {}}).key == "data.train"


def test_malformed_yaml_gives_line(tmp_path):
    text = "run_dir: x\ndata:\n  train:\n    path: a\n  test: : b\n"
    e = error(write(tmp_path, text))
    assert e.key == "<yaml>" and e.line == 5 and ":5:" in str(e)


def test_yaml_not_a_mapping(tmp_path):
    assert error(write(tmp_path, "- a\n- b\n")).key == "<root>"


def test_missing_config_file(tmp_path):
    e = error(tmp_path / "nope.yaml")
    assert "no such config file" in str(e) and "nope.yaml" in str(e)


def test_config_reference_is_up_to_date():
    """docs/config.md is generated from the schema: regenerate with `python scripts/config_reference.py`."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "config_reference.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, "docs/config.md is stale: run python scripts/config_reference.py"
