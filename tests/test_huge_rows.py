"""A bad row fails alone: a row too long for the model's context (a 1 MB question, a 1 MB gold) is not run, but
recorded per row as failed with why (its id, what the prompt is made of, its tokens against the limit), counted in
its stage's counts and in the report, while the rows beside it go on; a rerun runs nothing again. Training rows
longer than `train.max_length` are cut to it (dropped where the prompt alone fills it), and counted.

On the tiny offline model (context: `max_position_embeddings` 4096)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import s3ft
from s3ft.backends.base import Completion, Failed, GenParams
from s3ft.backends.hf import HFBackend
from s3ft.cache import maybe_cached
from s3ft.config import ModelConfig, load_config
from s3ft.rundir import read_json, read_jsonl, stage_root

HUGE = "word " * 200_000  # 1 MB
LIMIT = r"over the model's context of 4,096 \(max_position_embeddings in the model's config\)"


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    b = HFBackend(ModelConfig(path=str(tiny_model_dir), dtype="float32", device="cpu"), batch_size=4)
    yield b
    b.close()


def test_a_prompt_too_long_for_the_model_fails_alone_in_generation_and_scoring(backend, tmp_path):
    ok, huge = [{"role": "user", "content": "What is 2 + 3?"}], [{"role": "user", "content": HUGE}]
    out = backend.generate([huge, ok], GenParams(max_new_tokens=8))
    assert isinstance(out[1], Completion) and out[1] == backend.generate([ok], GenParams(max_new_tokens=8))[0]
    assert isinstance(out[0], Failed)
    assert re.fullmatch(rf"prompt [\d,]+ tokens \+ max_new_tokens 8 = [\d,]+ tokens, {LIMIT}", out[0].reason)
    scores = backend.nll([ok, ok], [HUGE, "5"])
    assert isinstance(scores[0], Failed) and re.match(r"prompt \d+ tokens \+ completion [\d,]+ = ", scores[0].reason)
    assert scores[1] == backend.nll([ok], ["5"])[0]
    cached = maybe_cached(backend, tmp_path / "cache.sqlite")  # a failure passes through and is never cached
    assert isinstance(cached.generate([huge], GenParams(max_new_tokens=8))[0], Failed)
    assert isinstance(cached.nll([ok], [HUGE])[0], Failed) and len(cached.cache) == 0


def config(tmp_path: Path, model: Path):
    fields = {"id": "id", "question": "q", "gold": "a", "meta": {"answers": "aliases"}}
    train = write_rows(tmp_path / "train.jsonl", [
        {"id": "ok-1", "q": "What is 2 + 3?", "a": "5", "aliases": ["5"]},
        {"id": "huge-q", "q": HUGE, "a": "7", "aliases": ["7"]},
        {"id": "huge-gold", "q": "What is 1 + 1?", "a": HUGE, "aliases": ["2"]},
        {"id": "ok-2", "q": "What is 4 + 4?", "a": "8", "aliases": ["8"]},
    ])
    test = write_rows(tmp_path / "test.jsonl", [{"id": "t-ok", "q": "What is 3 + 3?", "a": "6", "aliases": ["6"]},
                                                {"id": "t-huge", "q": HUGE, "a": "9", "aliases": ["9"]}])
    return load_config(raw={
        "run_dir": str(tmp_path / "run"), "method": ["sft", "s3ft"],
        "model": {"path": str(model), "dtype": "float32", "device": "cpu"},
        "data": {"task": "generic", "judge": "qa", "fields": fields, "train": {"path": train},
                 "test": {"path": test}},
        "generate": {"batch_size": 4, "max_new_tokens": 8}, "paraphrase": {"max_new_tokens": 8},
        "judge": {"workers": 1},
        "train": {"mode": "lora", "lora_r": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 2, "max_length": 64},
    })


@pytest.mark.integration  # the whole pipeline, training included
def test_huge_rows_fail_alone_through_every_stage_and_a_rerun_runs_nothing(tiny_model_dir, tmp_path):
    cfg = config(tmp_path, tiny_model_dir)
    s3ft.run(cfg)
    run = Path(cfg.run_dir)
    gen = {r["id"]: r for r in read_jsonl(stage_root(run, "generate") / "rows.jsonl")}
    assert isinstance(gen["ok-1"]["prediction"], str) and isinstance(gen["huge-gold"]["prediction"], str)
    assert gen["huge-q"]["prediction"] is None
    assert re.fullmatch(rf"question too long for the model: prompt [\d,]+ tokens \+ max_new_tokens 8 = [\d,]+ "
                        rf"tokens, {LIMIT}", gen["huge-q"]["failed"])
    counts = read_json(stage_root(run, "generate") / "manifest.json")["counts"]
    assert counts["failed"] == 1 and counts["failed_rows"] == [f"huge-q: {gen['huge-q']['failed']}"]
    verdict = {r["id"]: r for r in read_jsonl(stage_root(run, "judge") / "rows.jsonl")}["huge-q"]
    assert verdict["correct"] is None and verdict["reason"].startswith("nothing to judge: question too long")

    para = {r["id"]: r for r in read_jsonl(stage_root(run, "paraphrase") / "rows.jsonl")}
    assert para["huge-gold"]["failed"].startswith("question and gold too long for the model: prompt ")
    assert read_json(stage_root(run, "paraphrase") / "manifest.json")["counts"]["failed"] == 2  # huge-q too

    # select: a 1 MB gold is a located failure of its row's NLL, not a traceback; the other rows are scored
    rows = {r["id"]: r for r in read_jsonl(stage_root(run, "select") / "sft" / "train.jsonl")}
    assert list(rows) == ["ok-1", "huge-q", "huge-gold", "ok-2"]
    assert re.fullmatch(rf"prompt and gold target too long for the model: prompt \d+ tokens \+ completion [\d,]+ = "
                        rf"[\d,]+ tokens, {LIMIT}", rows["huge-gold"]["nll_failed"])
    assert "target_nll" in rows["ok-1"] and "target_nll" not in rows["huge-gold"]
    stats = read_json(stage_root(run, "select") / "sft" / "stats.json")
    assert stats["nll_failures"]["failed"] == 2 and stats["target_nll_per_token"] is not None
    assert [f.split(":")[0] for f in stats["nll_failures"]["failed_rows"]] == ["huge-q", "huge-gold"]

    # train: both huge rows are longer than max_length; the 1 MB question leaves no completion token: dropped
    trained = read_json(stage_root(run, "train") / "sft" / "manifest.json")["counts"]
    assert trained["truncated_rows"] == 2 and trained["dropped_rows"] == 1
    assert trained["over_max_length"][0].startswith("row 2: ") and "dropped" in trained["over_max_length"][0]

    metrics = read_json(stage_root(run, "evaluate") / "base" / "metrics.json")
    assert metrics["n"] == 2 and metrics["failed"] == 1 and metrics["failed_rows"][0].startswith("t-huge: question")
    verdicts = read_jsonl(stage_root(run, "evaluate") / "base" / "verdicts.jsonl")
    assert [v["id"] for v in verdicts] == ["t-ok", "t-huge"] and verdicts[1]["correct"] is None

    report = (stage_root(run, "report") / "report.md").read_text()
    assert "Rows that failed alone, too long for the model" in report
    for line in ("- generate: 1 (huge-q: question too long", "- paraphrase: 2 (", "- select NLL (sft): 2 (huge-q: ",
                 "- evaluate (base): 1 (t-huge: ", "Training rows longer than train.max_length"):
        assert line in report, line
    assert {r["action"] for r in s3ft.run(cfg)} == {"skipped"}  # the rerun tries nothing again


def test_the_vllm_backend_runs_only_the_prompts_that_fit_its_max_model_len(monkeypatch, tiny_model_dir):
    """vLLM refuses a whole call for one prompt over `max_model_len`: the backend leaves that prompt out (a stand-in
    vllm module here, on the tiny model's tokenizer) and gives `Failed` in its place."""
    import sys
    import types

    from s3ft.backends.hf import load_tokenizer
    from s3ft.backends.vllm import VLLMBackend

    tok, asked = load_tokenizer(ModelConfig(path=str(tiny_model_dir))), []

    class LLM:
        def __init__(self, **kwargs):
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=64))

        def get_tokenizer(self):
            return tok

        def chat(self, prompts, **kwargs):
            asked.extend(p[-1]["content"] for p in prompts)
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="5", finish_reason="stop")])
                    for _ in prompts]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams, fake.__version__ = LLM, lambda **kw: kw, "0.0-test"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    b = VLLMBackend(ModelConfig(path=str(tiny_model_dir)))
    out = b.generate([[{"role": "user", "content": "word " * 100}], [{"role": "user", "content": "2 + 3?"}]],
                     GenParams(max_new_tokens=8))
    assert asked == ["2 + 3?"] and out[1] == "5"
    assert isinstance(out[0], Failed) and out[0].reason.endswith("over the model's context of 64 (the engine's "
                                                                 "max_model_len)")
