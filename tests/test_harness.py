"""Forgetting through lm-evaluation-harness: metric choice, deltas by hand, and the harness path end to end
on CPU with the shipped world model on s3ft's own (local) harness tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

import s3ft
from s3ft.harness import primary_metric
from s3ft.results import benchmarks_table, deltas

WORLD_MODEL = Path(s3ft.__file__).parent / "data" / "world_model"
WORLD_SKILLS = sorted(("arith", "chain", "facts", "paraphrase", "passage", "reverse", "story"))  # the tag's tasks, by name


def test_primary_metric_prefers_acc_norm_then_acc_and_honours_an_override():
    hellaswag = {"alias": "hellaswag", "acc,none": 0.5, "acc_stderr,none": 0.01, "acc_norm,none": 0.62,
                 "acc_norm_stderr,none": 0.02}
    assert primary_metric("hellaswag", hellaswag) == ("acc_norm", 0.62, 0.02)
    assert primary_metric("hellaswag", hellaswag, "acc") == ("acc", 0.5, 0.01)
    assert primary_metric("mmlu", {"acc,none": 0.6, "acc_stderr,none": "N/A"}) == ("acc", 0.6, None)
    with pytest.raises(ValueError, match="has no metric 'mc2'"):
        primary_metric("winogrande", {"acc,none": 0.7}, "mc2")


def test_benchmark_deltas_and_average_worked_out_by_hand():
    base = {"mmlu": 0.600, "truthfulqa_mc2": 0.450, "hellaswag": 0.800, "winogrande": 0.700}
    sft = {"mmlu": 0.580, "truthfulqa_mc2": 0.400, "hellaswag": 0.790, "winogrande": 0.690}
    d, mean = deltas(sft, base)
    # -0.020, -0.050, -0.010, -0.010 -> mean -0.0225
    assert d == {"mmlu": -0.02, "truthfulqa_mc2": -0.05, "hellaswag": -0.01, "winogrande": -0.01}
    assert mean == -0.0225
    assert deltas({}, base) == ({}, None)
    metrics = {"base": {"benchmarks": base}, "harness": {"settings": {"lm_eval": "0.4.13", "backend": "hf"},
                                                          "metrics": {"hellaswag": "acc_norm"}},
               "methods": {"sft": {"benchmarks": sft, "benchmarks_delta_vs_base": d,
                                   "benchmarks_mean_delta_vs_base": mean}}}
    table = "\n".join(benchmarks_table(metrics))
    assert "| sft | 58.0 (-2.0) | 40.0 (-5.0) | 79.0 (-1.0) | 69.0 (-1.0) | -2.2 |" in table
    assert "hellaswag (acc_norm) %" in table and "lm-eval 0.4.13, backend hf" in table


def general_set(skill: str, limit: int) -> str:
    """One world skill as an `evaluate.general` entry (YAML flow): s3ft's own evaluation of it."""
    d = Path(s3ft.__file__).parent
    return (f"{{name: {skill}, source: {{path: '{d / 'data' / 'world' / f'{skill}_test.jsonl'}', split: test, "
            f"limit: {limit}}}, judge: final, fields: {{id: id, question: question, gold: gold, "
            f"meta: {{answer: answer}}}}, predict_template: '{d / 'prompts' / 'world_predict.txt'}', "
            "max_new_tokens: 64}")


def test_harness_path_end_to_end_through_the_cli(tmp_path):
    """The world demo config, shortened, with `evaluate.forgetting` on two of s3ft's own harness tasks:
    every model is scored through lm-eval, the report has the benchmarks table, the base is scored once
    (a second run with the same cache reads it back), and the harness agrees with s3ft's own evaluation
    (`evaluate.general` on the same skills, added here) for the base model and for each LoRA adapter."""
    limit = 8
    args = ["data.train.limit=32", "data.test.limit=8", "train.epochs=1", "method=[sft,s3ft]", "evaluate.curve=null",
            "evaluate.forgetting.tasks=[s3ft_world_arith,s3ft_world_facts]", f"evaluate.forgetting.limit={limit}",
            "evaluate.forgetting.apply_chat_template=true", "evaluate.forgetting.batch_size=8",
            f"evaluate.general=[{general_set('arith', limit)}, {general_set('facts', limit)}]"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--seeds", "0", "--run-dir", str(tmp_path / "w"),
                        *args], capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "w" / "seed-0"
    report = json.loads((run / "09_report" / "metrics.json").read_text())
    assert report["harness"]["settings"]["lm_eval"] == "0.4.13"
    assert report["harness"]["settings"]["limit"] == limit
    assert set(report["harness"]["versions"]) >= {"s3ft_world_arith", "s3ft_world_facts"}
    base = report["base"]["benchmarks"]
    assert set(base) == {"s3ft_world_arith", "s3ft_world_facts"}
    # the same items, prompt and greedy decoding through the harness and through s3ft's own evaluate
    assert base["s3ft_world_arith"] == report["base"]["general"]["arith"]
    assert base["s3ft_world_facts"] == report["base"]["general"]["facts"]
    for m in ("sft", "s3ft"):
        v = report["methods"][m]
        for t, score in v["benchmarks"].items():
            assert v["benchmarks_delta_vs_base"][t] == round(score - base[t], 4)
        assert v["benchmarks"]["s3ft_world_arith"] == v["general"]["arith"]
    md = (run / "09_report" / "report.md").read_text()
    assert "## General benchmarks (lm-evaluation-harness)" in md
    assert (run / "09_report" / "benchmarks.png").read_bytes()[:4] == b"\x89PNG"
    cached = list((tmp_path / "w" / "lm_eval").glob("*.json"))
    assert len(cached) == 3  # base, sft, s3ft

    # a second seed reuses the base model's harness scores from the shared cache
    r = subprocess.run([sys.executable, "-m", "s3ft", "demo", "--seeds", "1", "--run-dir", str(tmp_path / "w"),
                        *args], capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "lm-eval scores from cache" in r.stderr
    assert len(list((tmp_path / "w" / "lm_eval").glob("*.json"))) == 5


def test_offline_recipe_a_local_copy_of_a_task_through_include_path(tmp_path):
    """README "Offline": a YAML of one's own that includes a harness task and points it at local files,
    found through `include_path`. Here the included task is s3ft's world arithmetic, re-pointed at a
    local JSONL copy of its data: the score must equal the original task's on the same items."""
    from s3ft.config import ForgettingConfig, ModelConfig
    from s3ft.harness import TASKS_DIR, score_model

    data = tmp_path / "data"
    data.mkdir()
    src = Path(s3ft.__file__).parent / "data" / "world" / "arith_test.jsonl"
    (data / "test.jsonl").write_text(src.read_text())
    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    (tasks / "arith_local.yaml").write_text(
        f"include: {TASKS_DIR / 's3ft_world_arith.yaml'}\n"
        "task: arith_local\ntag: []\ncustom_dataset: null\ndataset_path: json\n"
        f"dataset_kwargs:\n  cache_dir: {tmp_path / 'cache'}\n  data_files:\n    test: {data / 'test.jsonl'}\n")
    model = ModelConfig(path=str(WORLD_MODEL), dtype="float32")
    common = {"limit": 6, "apply_chat_template": True, "batch_size": 6, "include_path": [str(tasks)]}
    local = score_model(ForgettingConfig(tasks=["arith_local"], **common), model)
    shipped = score_model(ForgettingConfig(tasks=["s3ft_world_arith"], **common), model)
    assert local["scores"]["arith_local"]["n"] == 6
    assert local["scores"]["arith_local"]["value"] == shipped["scores"]["s3ft_world_arith"]["value"]
    assert local["settings"]["include_path"] == [str(tasks)]


def test_a_tag_stands_for_its_tasks():
    from s3ft.config import ForgettingConfig, ModelConfig
    from s3ft.harness import score_model

    out = score_model(ForgettingConfig(tasks=["s3ft_world"], limit=2, apply_chat_template=True, batch_size=8),
              ModelConfig(path=str(WORLD_MODEL), dtype="float32"))
    assert set(out["scores"]) == {f"s3ft_world_{s}" for s in WORLD_SKILLS}
    assert all(s["n"] == 2 and s["metric"] == "acc" for s in out["scores"].values())


def test_model_args_for_the_base_and_an_adapter():
    from s3ft.config import ModelConfig
    from s3ft.harness import model_args

    m = ModelConfig(path="org/model", revision="abc", dtype="bfloat16", device="cpu")
    assert model_args("hf", m) == {"pretrained": "org/model", "dtype": "bfloat16", "trust_remote_code": False,
                                   "revision": "abc", "device": "cpu"}
    assert model_args("hf", m, "/runs/x/07_train/sft/adapter")["peft"] == "/runs/x/07_train/sft/adapter"
    v = model_args("vllm", m, "/a", lora_rank=64)
    assert v["lora_local_path"] == "/a" and v["max_lora_rank"] == 64 and "peft" not in v and "device" not in v
    # generate.engine reaches lm-eval's vLLM engine; a larger max_lora_rank there is kept
    engine = {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5, "max_model_len": 4096, "max_lora_rank": 128}
    v = model_args("vllm", m, "/a", lora_rank=64, engine=engine)
    assert {k: v[k] for k in engine} == engine and v["lora_local_path"] == "/a"
    assert model_args("vllm", m, engine={"tensor_parallel_size": 2})["tensor_parallel_size"] == 2
    assert "tensor_parallel_size" not in model_args("hf", m, engine=engine)


def test_the_harness_own_task_index_is_built_only_when_a_task_needs_it():
    from s3ft.harness import task_manager

    local = task_manager(["s3ft_world", "s3ft_world_arith"])
    assert "s3ft_world_facts" in local.task_index and "hellaswag" not in local.task_index
    assert task_manager(["s3ft_world_reverse"]) is local  # indexed once per process
    full = task_manager(["s3ft_world_arith", "hellaswag"])
    assert "hellaswag" in full.task_index and "s3ft_world_arith" in full.task_index


def test_few_shot_per_task_groups_tasks_and_rejects_unknown_names():
    from s3ft.harness import shot_groups, task_manager

    tm = task_manager(["s3ft_world"])
    world = [f"s3ft_world_{s}" for s in WORLD_SKILLS]
    assert shot_groups(tm, ["s3ft_world"], None) == {None: world}
    assert shot_groups(tm, ["s3ft_world"], 3) == {3: world}
    assert shot_groups(tm, ["s3ft_world"], {"s3ft_world": 1, "s3ft_world_facts": 2}) == {
        1: [t for t in world if t != "s3ft_world_facts"], 2: ["s3ft_world_facts"]}
    assert shot_groups(tm, ["s3ft_world_arith", "s3ft_world_facts"], {"s3ft_world_facts": 2}) == {
        None: ["s3ft_world_arith"], 2: ["s3ft_world_facts"]}
    with pytest.raises(ValueError, match="'mmlu' is not among evaluate.forgetting.tasks"):
        shot_groups(tm, ["s3ft_world_arith"], {"mmlu": 5})


def test_few_shot_per_task_reaches_the_harness():
    """Two tasks at different shot counts in one run: each is scored at its own count (the harness's
    n-shot record), and the zero-shot task's score equals a zero-shot run of it alone."""
    from s3ft.config import ForgettingConfig, ModelConfig
    from s3ft.harness import score_model

    model = ModelConfig(path=str(WORLD_MODEL), dtype="float32")
    common = {"limit": 4, "apply_chat_template": True, "batch_size": 8}
    out = score_model(ForgettingConfig(tasks=["s3ft_world_arith", "s3ft_world_reverse"],
                               num_fewshot={"s3ft_world_arith": 2}, **common), model)
    assert out["scores"]["s3ft_world_arith"]["num_fewshot"] == 2
    assert out["scores"]["s3ft_world_reverse"]["num_fewshot"] == 0
    alone = score_model(ForgettingConfig(tasks=["s3ft_world_reverse"], **common), model)
    assert out["scores"]["s3ft_world_reverse"]["value"] == alone["scores"]["s3ft_world_reverse"]["value"]
    assert out["settings"]["num_fewshot"] == {"s3ft_world_arith": 2}


def test_an_edited_task_or_its_data_misses_the_cache(tmp_path):
    """The cache key covers each task's resolved config and the local files it names: a changed answer in
    a task's data file is scored afresh (and counted), not read back from the cache."""
    from s3ft.config import ForgettingConfig, ModelConfig
    from s3ft.harness import TASKS_DIR, score_model

    rows = [json.loads(line) for line in (Path(s3ft.__file__).parent / "data" / "world" / "reverse_test.jsonl")
            .read_text().splitlines()[:4]]
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "rev_local.yaml").write_text(
        f"include: {TASKS_DIR / 's3ft_world_reverse.yaml'}\ntask: rev_local\ntag: []\ncustom_dataset: null\n"
        f"dataset_path: json\ndataset_kwargs:\n  cache_dir: {tmp_path / 'hf'}\n  data_files:\n    test: {data}\n")
    cfg = ForgettingConfig(tasks=["rev_local"], include_path=[str(tasks)], apply_chat_template=True, batch_size=4)
    model = ModelConfig(path=str(WORLD_MODEL), dtype="float32")
    first = score_model(cfg, model, cache_dir=tmp_path / "c")
    assert score_model(cfg, model, cache_dir=tmp_path / "c") == first
    assert len(list((tmp_path / "c" / "lm_eval").glob("*.json"))) == 1
    assert first["scores"]["rev_local"]["value"] > 0  # the shipped base model reverses some of them
    for r in rows:
        r["answer"] = "not what the model says"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    edited = score_model(cfg, model, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c" / "lm_eval").glob("*.json"))) == 2
    assert edited["scores"]["rev_local"]["value"] == 0


def test_local_files_of_a_task_config():
    from s3ft.harness import TASKS_DIR, _local_files

    cfg = {"process_results": f"{TASKS_DIR / 'utils'}.process_results", "doc_to_text": "Q: {{q}}/A:",
           "long": "/" + "x" * 400, "nested": [{"data_files": {"test": str(TASKS_DIR / "_s3ft_world.yaml")}}],
           "missing": "/no/such/file.jsonl", "relative": "utils.load"}
    assert _local_files(cfg) == {TASKS_DIR / "utils.py", TASKS_DIR / "_s3ft_world.yaml"}
