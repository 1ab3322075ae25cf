"""Configs that once passed `s3ft validate` and failed late (or trained nothing): each is refused by `validate`,
so before `run` starts, naming the key and its line in the YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3ft.cli import main

FIX = Path(__file__).parent / "fixtures"
BASE = f"""run_dir: {{tmp}}/run
model: {{{{path: s3ft-tiny}}}}
data:
  task: gsm8k
  train: {{{{path: {FIX / "gsm8k_train.jsonl"}}}}}
"""


def run_validate(tmp_path: Path, extra: str, capsys) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(tmp=tmp_path) + extra)
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def template(tmp_path: Path, text: str) -> str:
    p = tmp_path / "t.txt"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(("extra", "key", "line", "says"), [
    ("seed: -1\n", "seed", 6, "greater than or equal to 0"),
    ("train:\n  lr_scheduler: cosin\n", "train.lr_scheduler", 7, "did you mean cosine"),
    ("evaluate:\n  batch_size: -1\n", "evaluate.batch_size", 7, "greater than or equal to 1"),
    ("train:\n  max_steps: -5\n", "train.max_steps", 7, "greater than or equal to -1"),
    ("train:\n  max_steps: 0\n", "train.max_steps", 7, "would train nothing"),
    ("method: []\n", "method", 6, "at least 1 item"),
], ids=["seed", "lr_scheduler", "evaluate-batch", "max_steps", "max_steps-0", "no-method"])
def test_schema_refuses_with_key_and_line(tmp_path, capsys, extra, key, line, says):
    code, err = run_validate(tmp_path, extra, capsys)
    assert code == 2
    assert f"c.yaml:{line}: {key}: " in err and says in err


def test_an_unknown_forgetting_task_is_refused_with_its_line(tmp_path, capsys):
    pytest.importorskip("lm_eval")
    code, err = run_validate(tmp_path, "evaluate:\n  forgetting:\n    tasks: [hellaswag, mmlu_prol]\n", capsys)
    assert code == 2
    assert "c.yaml:8: evaluate.forgetting.tasks.1: 'mmlu_prol': no lm-evaluation-harness task" in err
    code, err = run_validate(tmp_path, "evaluate:\n  forgetting:\n    tasks: [hellaswag, s3ft_world_arith, mmlu]\n",
                             capsys)
    assert code == 0, err  # the harness's own names and s3ft's own tasks pass


@pytest.mark.parametrize(("kind", "text", "says"), [
    ("predict", "Solve this.\n", "has no {question}: every example would get the same prompt"),
    ("paraphrase", "Question: {question}\nSay it again.\n", "has no {reference}"),
    ("predict", "First letter: {question[0]}\n", "placeholder {question[0]} indexes or takes an attribute"),
    ("paraphrase", "{question.upper}\n{reference}\n", "placeholder {question.upper} indexes"),
], ids=["no-question", "no-reference", "index", "attribute"])
def test_templates_that_would_render_wrong_prompts_are_refused(tmp_path, capsys, kind, text, says):
    code, err = run_validate(tmp_path, f"  {kind}_template: {template(tmp_path, text)}\n", capsys)
    assert code == 2
    assert says in err and f"(data.{kind}_template)" in err and "t.txt:" in err
