"""What an exported dataset's or model's card (README.md) says: the method, the training set's composition,
results against the base (`s3ft.results`), versions and the run's settings, and how to use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from s3ft.config import Config
from s3ft.export.formats import dataset_name
from s3ft.methods import TARGETS, sources
from s3ft.provenance import looks_like_hub_id
from s3ft.results import audit_lines, benchmarks_table, general_table, pct
from s3ft.rundir import read_json, stage_root
from s3ft.stages.select import composition
from s3ft.stages.train import SETTINGS

PAPER = "https://aclanthology.org/2025.findings-naacl.349/"


def composition_lines(stats: dict, rows: list[dict]) -> list[str]:
    """The training set's composition: rows by target source, near-copies, truncations, target NLL."""
    comp = stats.get("composition") or composition(rows, sources(stats.get("method", "")))
    lines = ["| source | rows | % |", "|---|---|---|"]
    lines += [f"| {s} | {n} | {comp['percent'][s]} |" for s, n in comp["counts"].items()]
    sample = ("; `self_sample`: where its greedy answer was not accepted, the likeliest of its k sampled answers that "
              "the judge accepted (each row's `resample` says which, and how many were correct)"
              if "self_sample" in comp["counts"] else "")
    lines += ["", f"{comp['n']} rows. `self`: the base model's own answer, accepted by the judge{sample}; `paraphrase`: "
              "its rewrite of the gold, accepted by the judge; `gold`: the dataset's answer."]
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
    m, base = metrics["methods"][method], metrics["base"]
    if m["accuracy"] is None and base["accuracy"] is None and not m["general"] and not m["benchmarks"]:
        return ["Not evaluated in this run."]
    lines = [f"In-domain accuracy on the task's test split (`{metrics['task']}`):", "",
             "| model | accuracy % | Δ vs base |", "|---|---|---|",
             f"| base | {pct(base['accuracy'])} | |",
             f"| {method} | {pct(m['accuracy'])} | {pct(m['accuracy_delta_vs_base'], signed=True)} |"]
    one = {**metrics, "methods": {method: m}}
    forgetting = general_table(one) + benchmarks_table(one)
    return lines + [line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in forgetting]


def trained_with(run_dir: Path, method: str) -> dict | None:
    """What the method's train unit recorded of its config (`stages.train.SETTINGS`: model, train, seed), or None
    for a run from before it was recorded."""
    return read_json(stage_root(run_dir, "train") / method / SETTINGS)


def card(kind: str, run_dir: Path, cfg: Config, method: str, rows: list[dict], metrics: dict,
         meta: dict | None = None, usage: list[str] = (), versions: dict | None = None,
         stale: list[str] | None = None) -> str:
    """The README.md of an exported `kind` ("dataset" or "model") of `method`: YAML metadata for the hub, then
    the method, the training set's composition, results against the base, versions and settings. A model's
    card describes the training as its unit recorded it (`trained_with`), not the run's last `config.yaml`;
    `stale`: the inputs that changed since it was trained (the run's config would train it differently)."""
    sel = stage_root(run_dir, "select") / method
    train = stage_root(run_dir, "train") / method
    stats = read_json(sel / "stats.json") or {}
    manifest = read_json((train if kind == "model" else sel) / "manifest.json") or {}
    recorded = trained_with(run_dir, method) if kind == "model" else None
    if recorded:
        cfg = cfg.model_copy(update={"model": type(cfg.model).model_validate(recorded["model"]),
                                     "train": type(cfg.train).model_validate(recorded["train"])})
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
        *([""] + [f"**Stale**: the run's current configuration would train this model differently (changed since it "
                  f"was trained: {', '.join(stale)}); this card describes the training that made it."] if stale else []),
        "",
        "## Training set",
        "",
        *composition_lines(stats, rows),
        "",
        "## Results",
        "",
        *result_lines(metrics, method),
        *audit_lines(metrics.get("audits") or {}, method),
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
    if recorded:
        lines += ["", "## Settings", "", f"What the model was trained with (`07_train/{method}/{SETTINGS}` in the run "
                  "directory):", "", "```yaml", yaml.safe_dump(recorded, sort_keys=False).rstrip(), "```"]
    else:
        lines += ["", "## Settings", "", "The run's configuration (`config.yaml` in the run directory"
                  + (", as last saved: this run did not record its training's own settings" if kind == "model" else "")
                  + "):", "", "```yaml", (run_dir / "config.yaml").read_text().rstrip(), "```"]
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


def hub_id(path: str) -> str | None:
    """`path` where it names a hub repository, not a local folder (hub metadata names only those)."""
    return path if not Path(path).exists() and looks_like_hub_id(path) else None


def adapter_usage(where: str) -> list[str]:
    return ["```python", "from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
            f"model = AutoPeftModelForCausalLM.from_pretrained({where!r})  # loads the base model, then the adapter",
            "tokenizer = AutoTokenizer.from_pretrained(model.peft_config['default'].base_model_name_or_path)",
            "```"]


def model_meta(library: str, tags: list[str], cfg: Config, dataset_repo: str | None) -> dict[str, Any]:
    """A model repository's hub metadata: its library, tags, the base (where it is a hub id), the dataset."""
    meta: dict[str, Any] = {"library_name": library, "pipeline_tag": "text-generation", "tags": tags}
    if base := hub_id(cfg.model.path):
        meta["base_model"] = base
    if dataset_repo:
        meta["datasets"] = [dataset_repo]
    return meta
