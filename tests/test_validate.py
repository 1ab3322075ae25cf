"""Tests of `s3ft validate`: local files, templates and plug-in names are checked without a model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

from s3ft.config import load_config
from s3ft.errors import ConfigError, S3FTError
from s3ft.validate import validate

FIX = Path(__file__).parent / "fixtures"
TRAIN, TEST = str(FIX / "gsm8k_train.jsonl"), str(FIX / "gsm8k_test.jsonl")
JUDGE_OK = "Question: {question}\nGold: {gold}\nPrediction: {prediction}\nCorrect? Yes or No."


def cfg(tmp_path: Path, *overrides: str, **data):
    raw = {
        "run_dir": str(tmp_path / "run"),
        "model": {"path": "s3ft-tiny"},
        "data": {"task": "gsm8k", "train": {"path": TRAIN}, **data},
    }
    return load_config(raw=raw, overrides=list(overrides))


def template(tmp_path: Path, text: str, name: str = "t.txt") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_valid_config_lists_checks(tmp_path):
    lines = validate(cfg(tmp_path, "method=[sft, s3ft]", test={"path": TEST}))
    text = "\n".join(lines)
    assert f"data.train: local file {TRAIN}" in lines and f"data.test: local file {TEST}" in lines
    assert "task: gsm8k (v1), templates: predict, paraphrase" in lines
    assert "judge: math (v3)" in lines and "backend: hf; model: s3ft-tiny" in lines
    assert (
        "methods: sft, s3ft; stages: data → generate → judge → paraphrase → judge_paraphrase → select" in text
    )
    assert not (tmp_path / "run").exists()  # validate writes nothing


def test_stages_follow_the_methods(tmp_path):
    (line,) = [x for x in validate(cfg(tmp_path, "method=sft")) if x.startswith("methods:")]
    assert line == "methods: sft; stages: data → select → train → evaluate → report"
    (line,) = [x for x in validate(cfg(tmp_path, "method=sdft")) if x.startswith("methods:")]
    assert "data → paraphrase → judge_paraphrase → select" in line and "generate" not in line


def test_hub_dataset_id_is_not_a_missing_file(tmp_path):
    lines = validate(cfg(tmp_path, "data.train.path=openai/gsm8k", "data.train.name=main"))
    assert "data.train: hub dataset openai/gsm8k" in lines


@pytest.mark.parametrize("key", ["train", "test"])
def test_missing_local_data_file(tmp_path, key):
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError) as info:
        validate(cfg(tmp_path, f"data.{key}.path={missing}"))
    assert info.value.key == f"data.{key}.path" and missing in str(info.value)


def test_missing_template_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        validate(cfg(tmp_path, predict_template=str(tmp_path / "none.txt")))
    assert info.value.key == "data.predict_template"


@pytest.mark.parametrize(
    "kind,text,shown",
    [
        ("predict_template", "Solve: {questoin}\n", "{questoin}"),
        ("predict_template", "Q: {question}\nRef: {reference}\n", "{reference}"),  # paraphrase-only
        ("paraphrase_template", "Q: {question}\nRef: {referenc}\n", "{referenc}"),
    ],
)
def test_template_with_unknown_placeholder(tmp_path, kind, text, shown):
    path = template(tmp_path, text)
    with pytest.raises(S3FTError) as info:
        validate(cfg(tmp_path, **{kind: path}))
    assert path in str(info.value) and shown in str(info.value)


def test_good_custom_templates(tmp_path):
    lines = validate(
        cfg(
            tmp_path,
            predict_template=template(tmp_path, "Q: {question} {{literal}}", "p.txt"),
            paraphrase_template=template(tmp_path, "{question}\n{reference}", "r.txt"),
        )
    )
    assert "task: gsm8k (v1), templates: predict, paraphrase" in lines


def test_unknown_judge_lists_choices(tmp_path):
    with pytest.raises(S3FTError) as info:
        validate(cfg(tmp_path, "judge.name=mathh"))
    msg = str(info.value)
    assert "mathh" in msg and all(n in msg for n in ("code", "llm", "math", "qa"))


def test_unknown_backend_lists_choices(tmp_path):
    with pytest.raises(S3FTError, match="unknown backend 'hff'.*hf, vllm"):
        validate(cfg(tmp_path, "generate.backend=hff"))


def test_llm_judge_with_good_template(tmp_path):
    path = template(tmp_path, JUDGE_OK)
    assert "judge: llm (v3)" in validate(cfg(tmp_path, "judge.name=llm", f"judge.llm.template={path}"))


def test_warns_when_the_llm_judge_is_the_model_being_trained(tmp_path, caplog):
    warned = "warning: the LLM judge is s3ft-tiny, the model being trained"
    lines = validate(cfg(tmp_path, "judge.name=llm"))  # no judge.llm.model: the base model judges
    assert any(x.startswith(warned) for x in lines)
    assert "the model being trained" in caplog.text
    lines = validate(cfg(tmp_path, "judge.name=llm", "judge.llm.model.path=s3ft-tiny/"))  # named, but the same
    assert any(x.startswith(warned) for x in lines)
    caplog.clear()
    lines = validate(cfg(tmp_path, "judge.name=llm", "judge.llm.model.path=Qwen/Qwen2.5-7B-Instruct"))
    assert not any(x.startswith("warning:") for x in lines)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any(x.startswith("warning:") for x in validate(cfg(tmp_path)))  # the math judge: no model judges
    # a local directory named two ways is one model
    (tmp_path / "m").mkdir()
    same = cfg(tmp_path, f"model.path={tmp_path / 'm'}", "judge.name=llm", f"judge.llm.model.path={tmp_path}/./m")
    assert any(x.startswith("warning: the LLM judge is") for x in validate(same))


@pytest.mark.parametrize(
    "text",
    [
        JUDGE_OK.replace("{prediction}", "{predicton}"),  # a typo
        JUDGE_OK.replace("{prediction}", "the prediction"),  # no prediction to judge
        JUDGE_OK + " {",  # a lone brace
    ],
    ids=["typo", "no-prediction", "lone-brace"],
)
def test_llm_judge_with_bad_template(tmp_path, text):
    path = template(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        validate(cfg(tmp_path, "judge.name=llm", f"judge.llm.template={path}"))
    assert info.value.key == "judge.llm.template"


def test_llm_judge_template_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        validate(cfg(tmp_path, "judge.name=llm", f"judge.llm.template={tmp_path / 'none.txt'}"))
    assert info.value.key == "judge.llm.template" and "none.txt" in str(info.value)


def test_validating_loads_no_model_library(tmp_path):
    """`s3ft validate`, and so the start of every `s3ft run` (a finished run re-executed: benchmarks/rerun.py),
    imports neither torch nor transformers for a built-in backend; a custom one is still imported and checked."""
    import subprocess
    import sys

    code = (f"import sys; from s3ft.config import load_config; from s3ft.validate import validate; "
            f"validate(load_config(raw={{'run_dir': {str(tmp_path)!r}, 'model': {{'path': 'm'}}, "
            f"'data': {{'task': 'gsm8k', 'train': {{'path': {TRAIN!r}}}}}}})); "
            f"print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]
    with pytest.raises(S3FTError, match="cannot import no_such_module:Backend"):
        validate(cfg(tmp_path, "generate.backend=no_such_module:Backend"))


def test_training_under_accelerate_launch_is_checked(tmp_path):
    """`train.num_processes` / `train.accelerate_config` are listed; a missing accelerate config file is an error
    before any run, naming the key."""
    assert "train: under accelerate launch (2 processes)" in validate(cfg(tmp_path, "train.num_processes=2"))
    (tmp_path / "ddp.yaml").write_text("distributed_type: MULTI_GPU\n")
    lines = validate(cfg(tmp_path, f"train.accelerate_config={tmp_path / 'ddp.yaml'}"))
    assert f"train: under accelerate launch (processes as its config says, config {tmp_path / 'ddp.yaml'})" in lines
    with pytest.raises(ConfigError, match="train.accelerate_config: no such file"):
        validate(cfg(tmp_path, f"train.accelerate_config={tmp_path / 'nope.yaml'}"))


def test_model_load_args_are_checked_against_the_loader_and_the_config(tmp_path, tiny_model_dir):
    """A name in `model.load_args` that transformers would pass on to the model's `__init__` (a typo, or
    `rope_theta`, which transformers 5 reads only inside `rope_parameters`) fails validate, naming the key, not
    at load after generation; loader arguments and config fields pass; no readable config: listed, unchecked."""
    def check(*overrides):
        return validate(cfg(tmp_path, f"model.path={tiny_model_dir}", *overrides))

    ok = check("model.load_args={attn_implementation: eager, offload_folder: off}")
    assert "model.load_args: attn_implementation, offload_folder (from_pretrained arguments)" in ok
    with pytest.raises(ConfigError, match=r"model.load_args.low_cpu_mem_usage: transformers .* ignores it"):
        check("model.load_args.low_cpu_mem_usage=true")  # transformers 5 drops it unread
    assert ("model.load_args: rope_parameters (from_pretrained arguments and LlamaConfig fields)"
            in check("model.load_args.rope_parameters={rope_type: default, rope_theta: 500.0}"))
    with pytest.raises(ConfigError, match=r"model.load_args.attn_implemntation: not an argument of from_pretrained, "
                       r"a field of LlamaConfig or a parameter of LlamaForCausalLM; did you mean attn_implementation"):
        check("model.load_args.attn_implemntation=eager")
    with pytest.raises(ConfigError, match="model.load_args.rope_theta: not an argument"):
        check("model.load_args.rope_theta=500.0")
    judge = f"judge.llm.model={{path: {tiny_model_dir}, load_args: {{max_position_embedingss: 64}}}}"
    with pytest.raises(ConfigError, match="judge.llm.model.load_args.max_position_embedingss: .*did you mean "
                                          "max_position_embeddings"):
        check("judge.name=llm", judge)
    # a hub model offline and not cached: its config cannot be read (a missing local folder fails before this)
    lines = validate(cfg(tmp_path, "model.path=no-org/no-model", "model.load_args.foo=1"))
    assert any(line.startswith("model.load_args: foo (not checked: the config of no-org/no-model could "
                               "not be read: ") for line in lines), lines
