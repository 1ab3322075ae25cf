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

from s3ft.config import Config, load_config
from s3ft.errors import S3FTError
from s3ft.export.cards import adapter_usage, card, dataset_usage, model_meta, model_usage
from s3ft.export.formats import (
    axolotl_row,
    dataset_info_entry,
    dataset_name,
    llamafactory_row,
    select_rows,
    trl_row,
)
from s3ft.methods import METHOD_NEEDS
from s3ft.provenance import versions
from s3ft.results import collect
from s3ft.rundir import read_json, stage_root, write_json_atomic, write_jsonl
from s3ft.training.model import merge_adapter
from s3ft.weights import adapter_of, finished

log = logging.getLogger("s3ft.export")


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


def write_model(run_dir: Path, cfg: Config, out: Path, method: str, card_of) -> Path:
    """`out/<method>/merged/`: the LoRA adapter merged into the base model, loaded as the train stage loads
    it (`model.dtype`; `auto`: the checkpoint's own), with its tokenizer; or a full fine-tune as trained.
    `card_of(versions)` gives its README.md."""
    mode, weights = finished(run_dir, method)
    final = out / method / "merged"
    tmp = _tmp(final)
    if mode == "lora":
        log.info("%s: merging %s into %s", method, weights, cfg.model.path)
        merge_adapter(cfg.model, weights, tmp)
    else:
        log.info("%s: copying the fully fine-tuned model %s", method, weights)
        shutil.copytree(weights, tmp)
    (tmp / "README.md").write_text(card_of(versions() if mode == "lora" else None))
    return _publish(tmp, final)


def write_adapter(run_dir: Path, out: Path, method: str, card_text: str) -> Path:
    """`out/<method>/adapter/`: the trained LoRA adapter, as the train stage saved it, with its card."""
    weights = adapter_of(run_dir, method)
    final = out / method / "adapter"
    tmp = _tmp(final)
    shutil.copytree(weights, tmp)
    (tmp / "README.md").write_text(card_text)
    return _publish(tmp, final)


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
    cfg = load_config(saved).model_copy(update={"run_dir": str(run_dir)})  # the run where it lies now
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
    metrics = collect(run_dir, methods)
    rows = {m: select_rows(run_dir, m) for m in methods}  # every training set found before anything is written
    if merge and adapter and push_to:
        raise S3FTError(f"--push {push_to}: one model repository takes the merged model or the adapter, not both: "
                        "drop --merge or --adapter")
    for m in methods:  # every model to write is there before anything is written
        if merge:
            finished(run_dir, m)
        if adapter:
            adapter_of(run_dir, m)
    stale = stale_trainings(cfg, methods) if merge or adapter else {}
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
            merged_meta = model_meta("transformers", [*tags, "trl"], cfg, push_to)
            model = write_model(run_dir, cfg, out, m, lambda v, m=m, meta=merged_meta: card(
                "model", run_dir, cfg, m, rows[m], metrics, meta=meta, versions=v,
                usage=model_usage(push_to or "<this folder>"), stale=stale.get(m)))
            result[m]["model"] = str(model)
            log.info("%s: model -> %s", m, model)
        if adapter:
            adapter_meta = model_meta("peft", [*tags, "trl", "lora"], cfg, push_to)
            folder = write_adapter(run_dir, out, m, card("model", run_dir, cfg, m, rows[m], metrics, meta=adapter_meta,
                                                         usage=adapter_usage(push_to or "<this folder>"),
                                                         stale=stale.get(m)))
            result[m]["adapter"] = str(folder)
            log.info("%s: adapter -> %s", m, folder)
        if push_to:
            result[m]["dataset_url"] = push(dataset, push_to, "dataset")
            for form in ("model", "adapter"):
                if form in result[m]:
                    result[m]["model_url"] = push(Path(result[m][form]), push_to, "model")
    return result


def stale_trainings(cfg: Config, methods: list[str]) -> dict[str, list[str]]:
    """The methods whose trained model the run's saved config would train differently now (its train unit is
    stale, as `s3ft status` says), each with the inputs that changed; each is logged as a warning. Empty where
    the plan cannot be read (a data file moved): the export goes on, as it reads only the run directory."""
    from s3ft.pipeline import status

    try:
        rows = {r["unit"]: r for r in status(cfg)}
    except S3FTError as e:
        log.warning("could not tell whether the trained models are stale (%s)", e)
        return {}
    out = {}
    for m in methods:
        r = rows.get(f"train/{m}") or {}
        if r.get("state") == "stale":
            out[m] = list(r.get("why") or [])
            log.warning("%s: its training is stale (changed since it was trained: %s): exporting the model it made; "
                        "`s3ft run` to train it again", m, ", ".join(out[m]))
    return out


def summary(result: dict[str, dict[str, str]]) -> str:
    """The CLI's lines: each method's folders."""
    return "\n".join(f"{m}: " + ", ".join(f"{k} {v}" for k, v in paths.items()) for m, paths in result.items())
