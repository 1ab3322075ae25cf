"""Tests of `s3ft export` on a hand-built run directory: the training sets as TRL JSONL, a saved Hugging Face
dataset, LLaMA-Factory (sharegpt + dataset_info.json) and axolotl (chat_template) files, provenance in every
format, the cards, the errors; and `--merge` of a LoRA adapter trained on the tiny offline model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from s3ft import cli
from s3ft.errors import S3FTError
from s3ft.export import export
from s3ft.rundir import read_json, read_jsonl, stage_root, write_json_atomic, write_jsonl

TRAIN = str(Path(__file__).parent / "fixtures" / "gsm8k_train.jsonl")
VERSIONS = {"python": "3.11.9", "s3ft": "0.1.0", "transformers": "5.23.0"}
SYSTEM = {"role": "system", "content": "You are terse."}
EARLIER = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]


def _verdict(correct, n: int) -> dict:
    return {"correct": correct, "reason": f"reason {n}", "extracted": str(n)}


def _rows(method: str) -> list[dict]:
    """Select rows as the select stage writes them: one per source, the first with a system prompt and an
    earlier exchange; the optional columns only on some rows."""
    def q(n: int) -> list[dict]:
        return [{"role": "user", "content": f"What is {n} + {n}?"}]

    def a(text: str) -> list[dict]:
        return [{"role": "assistant", "content": text}]

    if method == "sft":
        return [{"id": f"ex-{n}", "prompt": q(n), "completion": a(f"gold {n}"), "source": "gold",
                 "self_verdict": None, "paraphrase_verdict": None} for n in range(3)]
    return [
        {"id": "ex-0", "prompt": [SYSTEM, *EARLIER, *q(0)], "completion": a("self 0"), "source": "self",
         "self_verdict": _verdict(True, 0), "paraphrase_verdict": None, "target_nll": 2.0, "target_tokens": 4},
        {"id": "ex-1", "prompt": q(1), "completion": a("para 1"), "source": "paraphrase",
         "self_verdict": _verdict(False, 1), "paraphrase_verdict": _verdict(True, 1),
         "paraphrase_similarity": 0.5, "near_copy": False, "target_nll": 3.0, "target_tokens": 2},
        {"id": "ex-2", "prompt": q(2), "completion": a("gold 2"), "source": "gold",
         "self_verdict": _verdict(None, 2), "paraphrase_verdict": _verdict(False, 2),
         "truncated": ["prediction"], "target_nll": 12.0, "target_tokens": 3},
    ]


def make_run(tmp_path: Path, methods=("sft", "s3ft"), evaluated: bool = True, **raw) -> Path:
    """A run directory with config.yaml, each method's select output and, with `evaluated`, the evaluate
    stage's metrics of the base and of s3ft."""
    run = tmp_path / "run"
    run.mkdir()
    config = {"run_dir": str(run), "method": list(methods), "model": {"path": "fake/model"},
              "data": {"task": "gsm8k", "train": {"path": TRAIN}}, **raw}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for m in methods:
        sel = stage_root(run, "select") / m
        write_jsonl(sel / "train.jsonl", _rows(m))
        from s3ft.stages.select import composition

        write_json_atomic(sel / "stats.json", {"method": m, "composition": composition(_rows(m)),
                                               "target_nll_per_token": 1.889 if m == "s3ft" else None})
        write_json_atomic(sel / "manifest.json", {"stage": "select", "fingerprint": f"fp-{m}", "versions": VERSIONS})
    if evaluated:
        for name, acc, general in (("base", 0.25, 0.6), ("s3ft", 0.75, 0.55)):
            write_json_atomic(stage_root(run, "evaluate") / name / "metrics.json",
                              {"accuracy": acc, "general": {"arith": {"accuracy": general}}})
    return run


def _front(readme: str) -> tuple[dict, str]:
    assert readme.startswith("---\n")
    head, body = readme[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body.lstrip()


def test_every_format_keeps_messages_and_provenance(tmp_path):
    run = make_run(tmp_path)
    result = export(run)
    out = run / "export"
    assert set(result) == {"sft", "s3ft"}
    assert result["s3ft"] == {"dataset": str(out / "s3ft" / "dataset"), "hf_dataset": str(out / "s3ft" / "hf_dataset")}
    ds = out / "s3ft" / "dataset"
    assert sorted(p.name for p in ds.iterdir()) == ["README.md", "axolotl.jsonl", "dataset_info.json",
                                                   "llamafactory.jsonl", "train.jsonl"]
    source = _rows("s3ft")
    columns = ["id", "prompt", "completion", "source", "self_verdict", "paraphrase_verdict", "target_nll",
               "target_tokens", "paraphrase_similarity", "near_copy", "truncated"]

    # TRL: the select rows, every column in every row (None where a row had none)
    trl = read_jsonl(ds / "train.jsonl")
    assert [list(r) for r in trl] == [columns] * 3
    assert [{k: r.get(k) for k in columns} for r in source] == [{k: r[k] for k in columns} for r in trl]
    assert trl[0]["truncated"] is None and trl[2]["truncated"] == ["prediction"]

    # LLaMA-Factory: OpenAI-style messages (system first, earlier turns, question, target) + provenance
    lf = read_jsonl(ds / "llamafactory.jsonl")
    assert lf[0]["messages"] == [SYSTEM, *EARLIER, source[0]["prompt"][-1], source[0]["completion"][0]]
    assert [r["messages"][-1]["content"] for r in lf] == ["self 0", "para 1", "gold 2"]
    assert [(r["id"], r["source"]) for r in lf] == [("ex-0", "self"), ("ex-1", "paraphrase"), ("ex-2", "gold")]
    assert lf[1]["paraphrase_verdict"] == _verdict(True, 1) and lf[1]["paraphrase_similarity"] == 0.5
    entry = {"formatting": "sharegpt", "columns": {"messages": "messages"},
             "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                      "assistant_tag": "assistant", "system_tag": "system"}}
    assert read_json(ds / "dataset_info.json") == {"s3ft_s3ft": {"file_name": "llamafactory.jsonl", **entry}}
    top = read_json(out / "dataset_info.json")
    assert top == {f"s3ft_{m}": {"file_name": f"{m}/dataset/llamafactory.jsonl", **entry} for m in ("sft", "s3ft")}
    for name, e in top.items():  # each entry names a file beside its dataset_info.json
        assert (out / e["file_name"]).is_file(), name

    # axolotl: chat_template messages; only the target is trained on
    ax = read_jsonl(ds / "axolotl.jsonl")
    assert [(m["role"], m["training"]) for m in ax[0]["messages"]] == [
        ("system", False), ("user", False), ("assistant", False), ("user", False), ("assistant", True)]
    assert [{"role": m["role"], "content": m["content"]} for m in ax[0]["messages"]] == lf[0]["messages"]
    assert {k: ax[1][k] for k in columns[3:]} == {k: trl[1][k] for k in columns[3:]}

    # the Hugging Face dataset: the TRL rows, as load_from_disk reads them back
    import datasets

    saved = datasets.load_from_disk(str(out / "s3ft" / "hf_dataset"))
    assert saved.num_rows == 3 and set(saved.column_names) == set(columns)
    assert saved.to_list() == trl
    assert (out / "s3ft" / "hf_dataset" / "README.md").is_file()
    assert not list(out.rglob(".*.tmp"))


def test_dataset_card_records_method_composition_results_versions_settings(tmp_path):
    run = make_run(tmp_path)
    export(run)
    readme = (run / "export" / "s3ft" / "dataset" / "README.md").read_text()
    meta, body = _front(readme)
    assert meta["tags"] == ["s3ft"]
    assert [(c["config_name"], c["data_files"][0]["path"]) for c in meta["configs"]] == [
        ("trl", "train.jsonl"), ("llamafactory", "llamafactory.jsonl"), ("axolotl", "axolotl.jsonl")]
    for c in meta["configs"]:  # what the hub loads is in the folder
        assert (run / "export" / "s3ft" / "dataset" / c["data_files"][0]["path"]).is_file()
    assert body.startswith("# s3ft training set for gsm8k, targets from fake/model")
    assert "`s3ft`: the training targets are the model's own answer where the judge accepted it" in body
    assert "| self | 1 | 33.33 |\n| paraphrase | 1 | 33.33 |\n| gold | 1 | 33.33 |" in body
    assert "1 rows had an answer or paraphrase cut off" in body and "1.889" in body
    assert "| base | 25.0 | |\n| s3ft | 75.0 | +50.0 |" in body
    assert "### General skills (forgetting)" in body and "| s3ft | 55.0 (-5.0) | -5.0 |" in body
    assert "python 3.11.9, s3ft 0.1.0, transformers 5.23.0" in body and "`fp-s3ft`" in body
    assert (run / "config.yaml").read_text().rstrip() in body
    assert "message_field_training: training" in body and "dataset: s3ft_s3ft" in body
    disk_meta, disk_body = _front((run / "export" / "s3ft" / "hf_dataset" / "README.md").read_text())
    assert "configs" not in disk_meta and "load_from_disk" in disk_body

    sft = (run / "export" / "sft" / "dataset" / "README.md").read_text()
    assert "| sft | – | – |" in sft  # never evaluated, against an evaluated base
    assert "| gold | 3 | 100.0 |" in sft


def test_a_run_without_evaluation_says_so(tmp_path):
    run = make_run(tmp_path, methods=("sft",), evaluated=False)
    export(run, out=tmp_path / "elsewhere")
    assert not (run / "export").exists()
    body = (tmp_path / "elsewhere" / "sft" / "dataset" / "README.md").read_text()
    assert "## Results\n\nNot evaluated in this run." in body


def test_named_methods_only_and_a_second_export_adds_to_dataset_info(tmp_path):
    run = make_run(tmp_path)
    out = tmp_path / "out"
    assert set(export(run, out, ["s3ft"])) == {"s3ft"}
    assert not (out / "sft").exists() and set(read_json(out / "dataset_info.json")) == {"s3ft_s3ft"}
    (out / "s3ft" / "dataset" / "stale.txt").write_text("from before")
    export(run, out, ["sft", "s3ft"])
    assert set(read_json(out / "dataset_info.json")) == {"s3ft_sft", "s3ft_s3ft"}
    assert not (out / "s3ft" / "dataset" / "stale.txt").exists()  # each folder is written anew


def test_a_full_fine_tune_is_copied_with_a_model_card(tmp_path):
    run = make_run(tmp_path, methods=("s3ft",), train={"mode": "full"})
    model = stage_root(run, "train") / "s3ft" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    write_json_atomic(model.parent / "manifest.json", {"fingerprint": "fp-train", "counts": {"mode": "full"},
                                                       "versions": {"torch": "2.13.0"}})
    result = export(run, merge=True)
    merged = run / "export" / "s3ft" / "merged"
    assert result["s3ft"]["model"] == str(merged)
    assert (merged / "model.safetensors").read_bytes() == b"weights" and (merged / "config.json").is_file()
    meta, body = _front((merged / "README.md").read_text())
    assert meta["library_name"] == "transformers" and meta["base_model"] == "fake/model"
    assert body.startswith("# fake/model fine-tuned with s3ft on gsm8k")
    assert "The run trains with full fine-tuning" in body and "torch 2.13.0" in body and "`fp-train`" in body
    assert "AutoModelForCausalLM.from_pretrained('<this folder>')" in body


def test_errors_name_the_path(tmp_path, capsys):
    with pytest.raises(S3FTError, match="no config.yaml"):
        export(tmp_path)

    run = make_run(tmp_path, methods=("sft", "s3ft"))
    import shutil

    shutil.rmtree(stage_root(run, "select"))
    with pytest.raises(S3FTError, match="no select output") as e:
        export(run)
    assert str(stage_root(run, "select")) in str(e.value)
    assert cli.main(["export", str(run)]) == 2
    assert f"error: {stage_root(run, 'select')}: no select output" in capsys.readouterr().err
    assert not (run / "export").exists()


def test_a_method_without_training_set_or_training_is_an_error(tmp_path, capsys):
    run = make_run(tmp_path, methods=("s3ft",))
    with pytest.raises(S3FTError, match="no training set for method 'ssr'") as e:
        export(run, methods=["ssr"])
    assert str(stage_root(run, "select") / "ssr" / "train.jsonl") in str(e.value)

    train = stage_root(run, "train") / "s3ft"
    with pytest.raises(S3FTError, match="'s3ft' was not trained") as e:
        export(run, merge=True)
    assert str(train) in str(e.value)
    assert not (run / "export").exists()  # checked before anything is written
    assert cli.main(["export", str(run), "--merge"]) == 2
    assert f"error: {train}: method 's3ft' was not trained" in capsys.readouterr().err

    write_json_atomic(train / "manifest.json", {"counts": {"mode": "lora"}})  # finished, but the adapter is gone
    with pytest.raises(S3FTError, match="no trained weights") as e:
        export(run, merge=True)
    assert str(train / "adapter") in str(e.value)


@pytest.mark.parametrize("why", ["missing", "corrupt weights"])
def test_merge_with_a_base_model_that_does_not_load_is_one_line_naming_model_path(why, tmp_path, capsys, request):
    """`s3ft export --merge` loads the base as training does, and says so as training does (issue 29)."""
    base = tmp_path / "base"
    if why == "corrupt weights":
        import shutil

        shutil.copytree(request.getfixturevalue("tiny_model_dir"), base)
        (base / "model.safetensors").write_bytes(b"garbage" * 10)
    run = make_run(tmp_path, methods=("s3ft",), model={"path": str(base)})
    train = stage_root(run, "train") / "s3ft"
    (train / "adapter").mkdir(parents=True)
    (train / "adapter" / "adapter_config.json").write_text("{}")
    write_json_atomic(train / "manifest.json", {"fingerprint": "fp-train", "counts": {"mode": "lora"}})
    assert cli.main(["export", str(run), "--merge"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert err.rstrip().endswith(line), err  # the last line: the log lines before it are export's own
    assert line.startswith(f"error: {run / 'config.yaml'}:5: model.path: cannot load {base}: "), line
    assert ("Error while deserializing header" if why == "corrupt weights" else str(base)) in line.split(": cannot")[1]
    assert not (run / "export" / "s3ft" / "merged").exists()


def test_push_takes_one_method(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(S3FTError, match="--push me/s3ft-gsm8k: uploads one method"):
        export(run, push_to="me/s3ft-gsm8k")


def test_push_uploads_the_folders_as_written(tmp_path, monkeypatch):
    """--push uploads the dataset folder (and a model folder) with huggingface_hub, as they are on disk."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, repo_type, exist_ok):
            calls.append(("create", repo_id, repo_type, exist_ok))

        def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
            calls.append(("upload", sorted(p.name for p in Path(folder_path).iterdir()), repo_id, repo_type))
            return f"https://hub/{repo_type}/{repo_id}"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    run = make_run(tmp_path)
    result = export(run, methods=["s3ft"], push_to="me/s3ft-gsm8k")
    assert result["s3ft"]["dataset_url"] == "https://hub/dataset/me/s3ft-gsm8k"
    assert calls == [("create", "me/s3ft-gsm8k", "dataset", True),
                     ("upload", ["README.md", "axolotl.jsonl", "dataset_info.json", "llamafactory.jsonl",
                                 "train.jsonl"], "me/s3ft-gsm8k", "dataset")]


def test_an_adapter_is_exported_and_pushed_alone_with_its_card(tmp_path, monkeypatch):
    """--adapter writes the LoRA adapter as trained, with a peft model card, and --push uploads it as the model
    repository beside the dataset; a fully fine-tuned method has none (an error before anything is written),
    and one repository never takes both the merged model and the adapter."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, repo_type, exist_ok):
            calls.append(("create", repo_id, repo_type))

        def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
            calls.append(("upload", sorted(p.name for p in Path(folder_path).iterdir()), repo_id, repo_type))
            return f"https://hub/{repo_type}/{repo_id}"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    run = make_run(tmp_path, model={"path": "org/base-7b"})
    train = stage_root(run, "train")
    for m, mode in (("s3ft", "lora"), ("sft", "full")):
        (train / m / ("adapter" if mode == "lora" else "model")).mkdir(parents=True)
        write_json_atomic(train / m / "manifest.json", {"fingerprint": f"fp-train-{m}", "counts": {"mode": mode},
                                                        "versions": VERSIONS})
    (train / "s3ft" / "adapter" / "adapter_config.json").write_text('{"r": 16}')
    (train / "s3ft" / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")

    with pytest.raises(S3FTError, match="'sft' was fully fine-tuned"):
        export(run, methods=["sft", "s3ft"], adapter=True)
    assert not (run / "export").exists()  # nothing written
    with pytest.raises(S3FTError, match="not both"):
        export(run, methods=["s3ft"], merge=True, adapter=True, push_to="me/x")

    result = export(run, methods=["s3ft"], adapter=True, push_to="me/s3ft-gsm8k")
    folder = Path(result["s3ft"]["adapter"])
    assert (folder / "adapter_model.safetensors").read_bytes() == b"weights"
    meta, body = _front((folder / "README.md").read_text())
    assert meta["library_name"] == "peft" and meta["base_model"] == "org/base-7b"
    assert meta["datasets"] == ["me/s3ft-gsm8k"] and "AutoPeftModelForCausalLM" in body
    assert "Stage fingerprint: `fp-train-s3ft`" in body
    assert result["s3ft"]["model_url"] == "https://hub/model/me/s3ft-gsm8k"
    assert calls[2:] == [("create", "me/s3ft-gsm8k", "model"),
                         ("upload", ["README.md", "adapter_config.json", "adapter_model.safetensors"], "me/s3ft-gsm8k",
                          "model")]


def test_merge_writes_full_weights_equal_to_base_plus_adapter(tiny_model_dir, tmp_path):
    """A LoRA adapter trained on the tiny model, merged: loadable by AutoModelForCausalLM, the same logits as
    base + adapter, the tokenizer with its chat template, a generation config and a model card."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from s3ft.config import ModelConfig, TrainConfig
    from s3ft.training import train_model

    run = make_run(tmp_path, methods=("s3ft",), model={"path": str(tiny_model_dir)})
    train = stage_root(run, "train") / "s3ft"
    cfg = TrainConfig(batch_size=3, max_steps=2, learning_rate=1e-2, warmup_ratio=0.0, max_length=128, bf16=False)
    metrics = train_model(stage_root(run, "select") / "s3ft" / "train.jsonl", train,
                          ModelConfig(path=str(tiny_model_dir)), cfg, 0)
    write_json_atomic(train / "manifest.json", {"fingerprint": "fp-train", "counts": metrics, "versions": VERSIONS})

    assert cli.main(["export", str(run), "--merge"]) == 0
    merged = run / "export" / "s3ft" / "merged"
    assert (merged / "generation_config.json").is_file()
    assert GenerationConfig.from_pretrained(merged).eos_token_id is not None
    model = AutoModelForCausalLM.from_pretrained(merged)
    tok = AutoTokenizer.from_pretrained(merged)
    assert tok.chat_template
    assert not any("lora" in name for name, _ in model.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, train / "adapter")
    ids = tok.apply_chat_template([SYSTEM, {"role": "user", "content": "What is 3 + 3?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        assert torch.allclose(model(**ids).logits, with_adapter(**ids).logits, atol=1e-4)
    meta, body = _front((merged / "README.md").read_text())
    assert meta["pipeline_tag"] == "text-generation" and "base_model" not in meta  # a local base: no hub id
    assert "LoRA fine-tuning (r 16, alpha 32)" in body and "Exported with" in body and "peft " in body
    dataset = run / "export" / "s3ft" / "dataset"  # the training set is exported beside the merged model
    assert set(read_json(dataset / "dataset_info.json")) == {"s3ft_s3ft"}
    assert (len(read_jsonl(dataset / "llamafactory.jsonl"))
            == len(read_jsonl(stage_root(run, "select") / "s3ft" / "train.jsonl")) > 0)
