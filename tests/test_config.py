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


RAW = {"model": {"path": "m"}, "data": {"train": {"path": "x.jsonl"}}}


@pytest.mark.parametrize(
    "override, key, name, use",
    [
        ("train.sft_args.learning_rate=1e-3", "train.sft_args", "learning_rate", "use train.learning_rate"),
        ("train.sft_args.per_device_train_batch_size=4", "train.sft_args", "per_device_train_batch_size",
         "use train.batch_size"),
        ("train.sft_args.seed=3", "train.sft_args", "seed", "use the top-level seed"),
        ("train.sft_args.completion_only_loss=false", "train.sft_args", "completion_only_loss",
         "completion tokens only"),
        ("train.sft_args.model_init_kwargs={}", "train.sft_args", "model_init_kwargs", "use model.load_args"),
        ("train.lora_args.r=4", "train.lora_args", "r", "use train.lora_r"),
        ("train.lora_args.target_modules=[q_proj]", "train.lora_args", "target_modules", "use train.lora_target_modules"),
        ("model.load_args.torch_dtype=float16", "model.load_args", "torch_dtype", "use model.dtype"),
        ("model.load_args.quantization_config={}", "model.load_args", "quantization_config", "use train.quantization"),
        ("judge.llm.model={path: j, load_args: {device_map: auto}}", "judge.llm.model.load_args", "device_map",
         "use model.device"),
    ],
)
def test_pass_through_refuses_what_s3ft_sets_and_names_the_key_to_use(override, key, name, use):
    e = error(raw=RAW, overrides=[override])
    assert e.key == key and f"{name}: s3ft sets it" in str(e) and use in str(e)


def test_pass_through_sections_load_as_given(tmp_path):
    text = GOOD + ("  sft_args:\n    optim: adafactor\n    max_grad_norm: 0.5\n  lora_args:\n    use_rslora: true\n"
                   "  quantization: 4bit\n")
    cfg = load_config(write(tmp_path, text), ["model.load_args.attn_implementation=eager"])
    assert cfg.train.sft_args == {"optim": "adafactor", "max_grad_norm": 0.5}
    assert cfg.train.lora_args == {"use_rslora": True} and cfg.train.quantization == "4bit"
    assert cfg.model.from_pretrained_kwargs() == {"revision": None, "trust_remote_code": False,
                                                  "attn_implementation": "eager"}
    defaults = load_config(raw=RAW)
    assert (defaults.train.sft_args, defaults.train.lora_args, defaults.model.load_args) == ({}, {}, {})
    assert defaults.train.quantization is None


def test_quantization_only_with_lora_and_without_save_merged():
    e = error(raw=RAW, overrides=["train.quantization=4bit", "train.mode=full"])
    assert e.key == "train" and "set train.mode: lora" in str(e)
    e = error(raw=RAW, overrides=["train.quantization=4bit", "train.save_merged=true"])
    assert "s3ft export RUN_DIR --merge" in str(e)
    e = error(raw=RAW, overrides=["train.quantization=8bit"])
    assert e.key == "train.quantization"
    assert load_config(raw=RAW, overrides=["train.mode=full", "train.lora_args.use_dora=true"])  # ignored, as lora_r


def test_check_pass_through_names_an_unknown_field_and_its_close_matches():
    import dataclasses

    from s3ft.config import check_pass_through

    @dataclasses.dataclass
    class Args:
        neftune_noise_alpha: float | None = None
        optim: str = "adamw_torch"
        derived: int = dataclasses.field(default=0, init=False)  # not an argument

    check_pass_through("train.sft_args", {"optim": "sgd", "neftune_noise_alpha": 5}, Args)
    with pytest.raises(ConfigError) as info:
        check_pass_through("train.sft_args", {"optim": "sgd", "neftune_noise_alpa": 5}, Args)
    assert info.value.key == "train.sft_args.neftune_noise_alpa"
    assert "not a field of Args; did you mean neftune_noise_alpha?" in str(info.value)
    with pytest.raises(ConfigError, match="train.sft_args.derived: not a field of Args$"):
        check_pass_through("train.sft_args", {"derived": 1}, Args)
