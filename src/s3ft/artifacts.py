"""`s3ft export`: a run's training sets, and its trained models, in the forms other tools read.

For each method with a training set (`06_select/<method>/train.jsonl`) it writes under OUT (default
`RUN_DIR/export`):

    <method>/dataset/       a dataset repository, as `--push` uploads it:
      README.md             the card: method, composition, results against the base, versions, settings
      train.jsonl           TRL's conversational prompt-completion rows (what the train stage reads)
      llamafactory.jsonl    LLaMA-Factory's sharegpt format, OpenAI-style `messages`
      dataset_info.json     the LLaMA-Factory entry that names it (`s3ft_<method>`)
      axolotl.jsonl         axolotl's `chat_template` rows: `messages`, each with a `training` flag
    <method>/hf_dataset/    the TRL rows as `datasets.Dataset.save_to_disk` writes them, and the card
    <method>/merged/        with `merge`: the trained model as full weights (a LoRA adapter merged with peft;
                            a full fine-tune copied), tokenizer and chat template, generation config, card:
                            a model repository, as `--push` uploads it
    <method>/adapter/       with `adapter`: the trained LoRA adapter as peft saved it, and the card: a model
                            repository of the adapter alone, as `--push` uploads it
    dataset_info.json       LLaMA-Factory: the entries of every method exported here (`dataset_dir: OUT`)

Every row keeps its provenance (id, source, both judges' verdicts, near-copy and truncation flags, target
NLL: whatever the select stage wrote) as extra columns, in every format. Only the last assistant turn is a
training target, as in the train stage: axolotl rows flag it (`training`), LLaMA-Factory needs
`mask_history: true` for rows with earlier turns. Reads the run directory; writes only under OUT.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from s3ft.config import Config, load_config
from s3ft.errors import S3FTError
from s3ft.methods import METHOD_NEEDS, TARGETS
from s3ft.rundir import read_json, read_jsonl, stage_root, write_json_atomic, write_jsonl

log = logging.getLogger("s3ft.export")

PAPER = "https://aclanthology.org/2025.findings-naacl.349/"
SHAREGPT_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}


# --- the training set in each format ---------------------------------------------------------------


def select_rows(run_dir: Path, method: str) -> list[dict]:
    """`method`'s training rows, each with every column any row has (a missing one is None), so that every
    format, and an Arrow table, has the same columns in every row."""
    path = stage_root(run_dir, "select") / method / "train.jsonl"
    if not path.is_file():
        raise S3FTError(f"{path}: no training set for method {method!r}; run the select stage first "
                        "(`s3ft run CONFIG --until select`)")
    rows = read_jsonl(path)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in columns} for r in rows]


def provenance(row: dict) -> dict:
    """Everything in a select row but its messages: id, source, verdicts, flags, NLL."""
    return {k: v for k, v in row.items() if k not in ("prompt", "completion")}


def trl_row(row: dict) -> dict:
    """TRL's conversational prompt-completion row: the select row as it is."""
    return dict(row)


def llamafactory_row(row: dict) -> dict:
    """LLaMA-Factory's sharegpt row with OpenAI-style messages: a system prompt first, earlier turns, the
    question, the target."""
    return {"messages": row["prompt"] + row["completion"], **provenance(row)}


def axolotl_row(row: dict) -> dict:
    """axolotl's `chat_template` row: every message with `training`, true on the target alone."""
    messages = [{**m, "training": False} for m in row["prompt"]]
    messages += [{**m, "training": True} for m in row["completion"]]
    return {"messages": messages, **provenance(row)}


def dataset_info_entry(file_name: str) -> dict:
    """The `dataset_info.json` entry of a sharegpt file of OpenAI-style messages for LLaMA-Factory."""
    return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
            "tags": dict(SHAREGPT_TAGS)}


def dataset_name(method: str) -> str:
    return f"s3ft_{method}"


# --- what a card says -------------------------------------------------------------------------------


def run_metrics(run_dir: Path, cfg: Config, methods: list[str]) -> dict:
    """The report stage's metrics (`report.collect`) of `methods`, read from the evaluate stage's outputs:
    in-domain accuracy and general skills of each method and the base, their changes against the base.
    Values are None where nothing was evaluated."""
    from s3ft.stages.report import collect

    ctx = SimpleNamespace(cfg=SimpleNamespace(method=methods, model=cfg.model),
                          task=SimpleNamespace(name=cfg.data.task), stage_dir=lambda stage: stage_root(run_dir, stage))
    return collect(ctx)


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def composition_lines(stats: dict, rows: list[dict]) -> list[str]:
    """The training set's composition: rows by target source, near-copies, truncations, target NLL."""
    from s3ft.stages.select import SOURCES, composition

    comp = stats.get("composition") or composition(rows)
    lines = ["| source | rows | % |", "|---|---|---|"]
    lines += [f"| {s} | {comp['counts'][s]} | {comp['percent'][s]} |" for s in SOURCES]
    lines += ["", f"{comp['n']} rows. `self`: the base model's own answer, accepted by the judge; `paraphrase`: its "
              "rewrite of the gold, accepted by the judge; `gold`: the dataset's answer."]
    if comp.get("near_copies"):
        lines.append(f"{comp['near_copies']} accepted paraphrases nearly copied the gold and train as the gold.")
    if comp.get("truncated"):
        lines.append(f"{comp['truncated']} rows had an answer or paraphrase cut off at max_new_tokens "
                     "(never a target).")
    if stats.get("target_nll_per_token") is not None:
        lines.append(f"Mean NLL per token of the targets under the base model: {stats['target_nll_per_token']:.3f} "
                     "(lower: closer to what the model would say).")
    return lines


def result_lines(metrics: dict, method: str) -> list[str]:
    """In-domain accuracy of the base and the trained model, and forgetting: general skills against the base."""
    from s3ft.stages.report import benchmarks_markdown, general_markdown

    m, base = metrics["methods"][method], metrics["base"]
    if m["accuracy"] is None and base["accuracy"] is None and not m["general"] and not m["benchmarks"]:
        return ["Not evaluated in this run."]
    lines = [f"In-domain accuracy on the task's test split (`{metrics['task']}`):", "",
             "| model | accuracy % | Δ vs base |", "|---|---|---|",
             f"| base | {_pct(base['accuracy'])} | |",
             f"| {method} | {_pct(m['accuracy'])} | {_pct(m['accuracy_delta_vs_base'], signed=True)} |"]
    one = {**metrics, "methods": {method: m}}
    forgetting = general_markdown(one) + benchmarks_markdown(one)
    return lines + [line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in forgetting]


def card(kind: str, run_dir: Path, cfg: Config, method: str, rows: list[dict], metrics: dict,
         meta: dict | None = None, usage: list[str] = (), versions: dict | None = None) -> str:
    """The README.md of an exported `kind` ("dataset" or "model") of `method`: YAML metadata for the hub, then
    the method, the training set's composition, results against the base, versions and the run's settings."""
    sel = stage_root(run_dir, "select") / method
    train = stage_root(run_dir, "train") / method
    stats = read_json(sel / "stats.json") or {}
    manifest = read_json((train if kind == "model" else sel) / "manifest.json") or {}
    title = (f"{cfg.model.path} fine-tuned with {method} on {cfg.data.task}" if kind == "model"
             else f"{method} training set for {cfg.data.task}, targets from {cfg.model.path}")
    trained = (f"LoRA fine-tuning (r {cfg.train.lora_r}, alpha {cfg.train.lora_alpha})" if cfg.train.mode == "lora"
               else "full fine-tuning")
    lines = [
        f"# {title}",
        "",
        f"Made with s3ft from the run directory `{run_dir}`. s3ft implements Selective Self-to-Supervised "
        f"Fine-Tuning (S3FT; Gupta et al., Findings of NAACL 2025, {PAPER}) and its baselines.",
        "",
        "## Method",
        "",
        f"`{method}`: the training targets are {TARGETS[method]}. Base model: `{cfg.model.path}`"
        + (f" (revision `{cfg.model.revision}`)" if cfg.model.revision else "")
        + f"; task `{cfg.data.task}`; judge " + (f"`{cfg.judge.name}`" if cfg.judge.name else "the task's default")
        + ". The run trains with "
        f"{trained}, the loss on the last assistant turn only.",
        "",
        "## Training set",
        "",
        *composition_lines(stats, rows),
        "",
        "## Results",
        "",
        *result_lines(metrics, method),
    ]
    if usage:
        lines += ["", "## Use", "", *usage]
    produced = manifest.get("versions") or {}
    lines += ["", "## Versions", "",
              f"The {'train' if kind == 'model' else 'select'} stage ran with "
              + (", ".join(f"{k} {v}" for k, v in produced.items()) or "versions not recorded") + "."]
    if versions:
        lines.append("Exported with " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    if manifest.get("fingerprint"):
        lines.append(f"Stage fingerprint: `{manifest['fingerprint']}`.")
    lines += ["", "## Settings", "", "The run's configuration (`config.yaml` in the run directory):", "",
              "```yaml", (run_dir / "config.yaml").read_text().rstrip(), "```"]
    front = "---\n" + yaml.safe_dump(meta or {}, sort_keys=False) + "---\n\n" if meta else ""
    return front + "\n".join(lines) + "\n"


def dataset_usage(method: str) -> list[str]:
    return [
        "Files: `train.jsonl` (TRL prompt-completion), `llamafactory.jsonl` with `dataset_info.json` "
        "(LLaMA-Factory, sharegpt), `axolotl.jsonl` (axolotl `chat_template`). Each row keeps its provenance "
        "(`id`, `source`, `self_verdict`, `paraphrase_verdict`, ...) as extra columns.",
        "",
        "- TRL (`SFTTrainer`, as s3ft trains): `load_dataset(\"json\", data_files=\"train.jsonl\")[\"train\"]"
        ".select_columns([\"prompt\", \"completion\"])`.",
        f"- LLaMA-Factory: `dataset_dir: <this folder>`, `dataset: {dataset_name(method)}`, and "
        "`mask_history: true` to train on the last turn only where rows have earlier turns.",
        "- axolotl:",
        "",
        "```yaml",
        "datasets:",
        "  - path: axolotl.jsonl",
        "    ds_type: json",
        "    type: chat_template",
        "    field_messages: messages",
        "    message_property_mappings: {role: role, content: content}",
        "    message_field_training: training",
        "```",
    ]


def model_usage(where: str) -> list[str]:
    return ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f"model = AutoModelForCausalLM.from_pretrained({where!r})",
            f"tokenizer = AutoTokenizer.from_pretrained({where!r})  # with the chat template it was trained with",
            "```"]


def _hub_id(path: str) -> str | None:
    """`path` where it names a hub repository, not a local folder (hub metadata names only those)."""
    from s3ft.tasks.io import looks_like_hub_id

    return path if not Path(path).exists() and looks_like_hub_id(path) else None


# --- writing ----------------------------------------------------------------------------------------


def _tmp(final: Path) -> Path:
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def _publish(tmp: Path, final: Path) -> Path:
    """Put a fully written folder in place of `final`, so that a folder under OUT is whole or absent."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def write_datasets(out: Path, method: str, rows: list[dict], readme: str, disk_readme: str) -> tuple[Path, Path]:
    """`out/<method>/dataset/` (TRL, LLaMA-Factory and axolotl files, `readme`) and `out/<method>/hf_dataset/`
    (`save_to_disk`, `disk_readme`); returns both folders."""
    import datasets

    datasets.disable_progress_bars()
    final = out / method / "dataset"
    tmp = _tmp(final)
    write_jsonl(tmp / "train.jsonl", (trl_row(r) for r in rows))
    write_jsonl(tmp / "llamafactory.jsonl", (llamafactory_row(r) for r in rows))
    write_json_atomic(tmp / "dataset_info.json", {dataset_name(method): dataset_info_entry("llamafactory.jsonl")})
    write_jsonl(tmp / "axolotl.jsonl", (axolotl_row(r) for r in rows))
    (tmp / "README.md").write_text(readme)
    dataset = _publish(tmp, final)

    final = out / method / "hf_dataset"
    tmp = _tmp(final)
    datasets.Dataset.from_list([trl_row(r) for r in rows]).save_to_disk(str(tmp))
    (tmp / "README.md").write_text(disk_readme)
    return dataset, _publish(tmp, final)


def trained_weights(run_dir: Path, method: str) -> tuple[str, Path]:
    """("lora", the adapter folder) or ("full", the model folder) of a finished train unit, else an error
    naming the path."""
    tdir = stage_root(run_dir, "train") / method
    manifest = read_json(tdir / "manifest.json")
    if manifest is None:
        raise S3FTError(f"{tdir}: method {method!r} was not trained (no finished train stage: "
                        f"{tdir / 'manifest.json'} is missing); run the train stage before --merge")
    mode = (manifest.get("counts") or {}).get("mode") or ("lora" if (tdir / "adapter").is_dir() else "full")
    weights = tdir / ("adapter" if mode == "lora" else "model")
    if not weights.is_dir():
        raise S3FTError(f"{weights}: no trained weights for method {method!r} ({mode} training); "
                        "rerun its train stage (`s3ft run CONFIG --force train`)")
    return mode, weights


def write_model(run_dir: Path, cfg: Config, out: Path, method: str, card_of) -> Path:
    """`out/<method>/merged/`: the LoRA adapter merged into the base model, loaded as the train stage loads
    it (`model.dtype`; `auto`: the checkpoint's own), with its tokenizer; or a full fine-tune as trained.
    `card_of(versions)` gives its README.md."""
    mode, weights = trained_weights(run_dir, method)
    final = out / method / "merged"
    tmp = _tmp(final)
    if mode == "lora":
        from s3ft.stages.train import merge_adapter

        log.info("%s: merging %s into %s", method, weights, cfg.model.path)
        merge_adapter(cfg.model, weights, tmp)
    else:
        log.info("%s: copying the fully fine-tuned model %s", method, weights)
        shutil.copytree(weights, tmp)
    from s3ft.provenance import versions

    (tmp / "README.md").write_text(card_of(versions() if mode == "lora" else None))
    return _publish(tmp, final)


def adapter_weights(run_dir: Path, method: str) -> Path:
    """The LoRA adapter folder of a finished train unit, else an error naming why there is none."""
    mode, weights = trained_weights(run_dir, method)
    if mode != "lora":
        raise S3FTError(f"--adapter: method {method!r} was fully fine-tuned ({weights}), it has no adapter; "
                        "export its model with --merge")
    return weights


def write_adapter(run_dir: Path, out: Path, method: str, card_text: str) -> Path:
    """`out/<method>/adapter/`: the trained LoRA adapter, as the train stage saved it, with its card."""
    weights = adapter_weights(run_dir, method)
    final = out / method / "adapter"
    tmp = _tmp(final)
    shutil.copytree(weights, tmp)
    (tmp / "README.md").write_text(card_text)
    return _publish(tmp, final)


def adapter_usage(where: str) -> list[str]:
    return ["```python", "from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
            f"model = AutoPeftModelForCausalLM.from_pretrained({where!r})  # loads the base model, then the adapter",
            "tokenizer = AutoTokenizer.from_pretrained(model.peft_config['default'].base_model_name_or_path)",
            "```"]


def _model_meta(library: str, tags: list[str], cfg: Config, dataset_repo: str | None) -> dict[str, Any]:
    """A model repository's hub metadata: its library, tags, the base (where it is a hub id), the dataset."""
    meta: dict[str, Any] = {"library_name": library, "pipeline_tag": "text-generation", "tags": tags}
    if base := _hub_id(cfg.model.path):
        meta["base_model"] = base
    if dataset_repo:
        meta["datasets"] = [dataset_repo]
    return meta


def push(folder: Path, repo_id: str, repo_type: str) -> str:
    """Upload `folder` to the hub repository `repo_id` (created if missing); returns the commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                             commit_message="Upload from s3ft export")
    return str(getattr(info, "commit_url", info))


def export(run_dir: str | Path, out: str | Path | None = None, methods: list[str] | None = None,
           merge: bool = False, push_to: str | None = None, adapter: bool = False) -> dict[str, dict[str, str]]:
    """Export the training sets of `methods` (default: every method with one) and, with `merge`, their trained
    models as full weights, with `adapter`, their LoRA adapters; with `push_to`, upload them (one method) to
    the hub as the dataset and model repository `push_to`. Returns each method's written folders (and pushed
    URLs) by name."""
    run_dir = Path(run_dir)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml)")
    cfg = load_config(saved)
    select_dir = stage_root(run_dir, "select")
    built = [m for m in METHOD_NEEDS if (select_dir / m / "train.jsonl").is_file()]
    if not built:
        raise S3FTError(f"{select_dir}: no select output (no <method>/train.jsonl): run the pipeline through the "
                        "select stage first (`s3ft run CONFIG --until select`)")
    methods = list(dict.fromkeys(methods or built))
    for m in methods:
        if m not in METHOD_NEEDS:
            raise S3FTError(f"unknown method {m!r}: methods are {', '.join(METHOD_NEEDS)}")
    if push_to and len(methods) != 1:
        raise S3FTError(f"--push {push_to}: uploads one method; name it with --method (this run has "
                        f"{', '.join(methods)})")
    out = Path(out) if out is not None else run_dir / "export"
    metrics = run_metrics(run_dir, cfg, methods)
    rows = {m: select_rows(run_dir, m) for m in methods}  # every training set found before anything is written
    if merge and adapter and push_to:
        raise S3FTError(f"--push {push_to}: one model repository takes the merged model or the adapter, not both: "
                        "drop --merge or --adapter")
    for m in methods:  # every model to write is there before anything is written
        if merge:
            trained_weights(run_dir, m)
        if adapter:
            adapter_weights(run_dir, m)
    result: dict[str, dict[str, str]] = {}
    info_path = out / "dataset_info.json"
    info = read_json(info_path) or {}
    for m in methods:
        tags = list(dict.fromkeys(["s3ft", m]))
        meta = {"tags": tags, "task_categories": ["text-generation"]}
        hub_meta = {**meta, "configs": [{"config_name": name, "data_files": [{"split": "train", "path": f}], **extra}
                                        for name, f, extra in (("trl", "train.jsonl", {"default": True}),
                                                               ("llamafactory", "llamafactory.jsonl", {}),
                                                               ("axolotl", "axolotl.jsonl", {}))]}
        dataset, hf_dataset = write_datasets(
            out, m, rows[m], card("dataset", run_dir, cfg, m, rows[m], metrics, meta=hub_meta, usage=dataset_usage(m)),
            card("dataset", run_dir, cfg, m, rows[m], metrics, meta=meta,
                 usage=["`datasets.load_from_disk(<this folder>)`: the TRL rows of `../dataset/train.jsonl`."]))
        info[dataset_name(m)] = dataset_info_entry(f"{m}/dataset/llamafactory.jsonl")
        write_json_atomic(info_path, info)
        result[m] = {"dataset": str(dataset), "hf_dataset": str(hf_dataset)}
        log.info("%s: %d rows -> %s, %s", m, len(rows[m]), dataset, hf_dataset)
        if merge:
            model_meta = _model_meta("transformers", [*tags, "trl"], cfg, push_to)
            model = write_model(run_dir, cfg, out, m, lambda v, m=m, meta=model_meta: card(
                "model", run_dir, cfg, m, rows[m], metrics, meta=meta, versions=v,
                usage=model_usage(push_to or "<this folder>")))
            result[m]["model"] = str(model)
            log.info("%s: model -> %s", m, model)
        if adapter:
            adapter_meta = _model_meta("peft", [*tags, "trl", "lora"], cfg, push_to)
            folder = write_adapter(run_dir, out, m, card("model", run_dir, cfg, m, rows[m], metrics, meta=adapter_meta,
                                                         usage=adapter_usage(push_to or "<this folder>")))
            result[m]["adapter"] = str(folder)
            log.info("%s: adapter -> %s", m, folder)
        if push_to:
            result[m]["dataset_url"] = push(dataset, push_to, "dataset")
            for form in ("model", "adapter"):
                if form in result[m]:
                    result[m]["model_url"] = push(Path(result[m][form]), push_to, "model")
    return result


def summary(result: dict[str, dict[str, str]]) -> str:
    """The CLI's lines: each method's folders."""
    return "\n".join(f"{m}: " + ", ".join(f"{k} {v}" for k, v in paths.items()) for m, paths in result.items())
