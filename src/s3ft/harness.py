"""General benchmarks through lm-evaluation-harness: how much a fine-tuned model forgot, measured the way
the field measures it (MMLU, TruthfulQA, HellaSwag, Winogrande, ARC; the paper's Table 4).

`score_model(fcfg, model, adapter)` runs `lm_eval.simple_evaluate` on a model (with a LoRA adapter through
peft, or full fine-tuned weights: the evaluate stage says which, `stages.evaluate.forgetting`) with the settings of
`evaluate.forgetting`, and returns per-task scores plus every setting and the harness and task versions.
Results are cached as JSON under `<cache dir>/lm_eval/`, keyed by the model's files, the settings and
the harness version, so the base model is scored once however many runs or seeds share the cache.
s3ft's own task definitions (`s3ft/lm_eval_tasks/`: the miniature world's skills) are always on the
harness's task path. Reads the model files and the tasks' data; writes only the cache file.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from s3ft.config import ForgettingConfig, ModelConfig, section_dict
from s3ft.rundir import fingerprint, write_json_atomic

log = logging.getLogger("s3ft.harness")
TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
PREFERRED = ("acc_norm", "acc", "exact_match", "mc2")


def model_args(backend: str, model: ModelConfig, adapter: str | None = None, lora_rank: int = 16,
               engine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The harness's model arguments for the base model, or for it with a LoRA adapter. On vllm, the run's
    `generate.engine` arguments (tensor parallelism, memory share, context length...) go to lm-eval's engine
    as they go to s3ft's own."""
    import torch

    device = model.device if model.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    args: dict[str, Any] = {"pretrained": model.path, "dtype": model.dtype,
                            "trust_remote_code": model.trust_remote_code}
    if model.revision:
        args["revision"] = model.revision
    if backend == "hf":
        args["device"] = device
        if adapter:
            args["peft"] = adapter
    else:
        args.update(engine or {})  # lm-eval passes the arguments it does not name to vllm.LLM
        if adapter:  # lm-eval turns LoRA on itself when given a path; vLLM takes only its listed ranks
            from s3ft.backends.vllm import lora_rank_for

            args.update(lora_local_path=adapter, max_lora_rank=max(lora_rank_for(lora_rank),
                                                                   args.get("max_lora_rank", 0)))
    return args


def primary_metric(task: str, metrics: dict[str, Any], wanted: str | None = None) -> tuple[str, float, float | None]:
    """(name, value, stderr) of the metric to report from one task's harness results ("acc,none" keys)."""
    values = {k.split(",")[0]: v for k, v in metrics.items()
              if isinstance(v, int | float) and "_stderr" not in k and k != "alias"}
    if wanted is not None:
        if wanted not in values:
            raise ValueError(f"evaluate.forgetting.metric: task {task!r} has no metric {wanted!r} "
                             f"(it has {', '.join(sorted(values)) or 'none'})")
        name = wanted
    else:
        name = next((m for m in PREFERRED if m in values), None) or next(iter(sorted(values)), None)
        if name is None:
            raise ValueError(f"lm-eval returned no numeric metric for task {task!r}: {sorted(metrics)}")
    stderr = next((v for k, v in metrics.items() if k.split(",")[0] == f"{name}_stderr"
                   and isinstance(v, int | float)), None)
    return name, float(values[name]), (float(stderr) if stderr is not None else None)


def expand_tags(task_manager, names: list[str]) -> list[str]:
    """Task names with every tag replaced by its tasks (a tag, unlike a group, has no aggregate score)."""
    index = task_manager.task_index
    out: list[str] = []
    for name in names:
        entry = index.get(name)
        members = sorted(entry.tags) if entry is not None and entry.kind.name == "TAG" else [name]
        out += [m for m in members if m not in out]
    return out


def shot_groups(tm, names: list[str], shots: int | dict[str, int] | None) -> dict[int | None, list[str]]:
    """The tasks to score (tags expanded), grouped by the few-shot count `evaluate.forgetting.num_fewshot`
    gives them (None: the task's default). A per-task key may name a listed task or tag (all its members)
    or one member; any other key is a config error, not silently ignored."""
    origin = {t: name for name in names for t in expand_tags(tm, [name])}
    if not isinstance(shots, dict):
        return {shots: list(origin)}
    unknown = sorted(set(shots) - set(origin) - set(names))
    if unknown:
        raise ValueError(f"evaluate.forgetting.num_fewshot: {', '.join(map(repr, unknown))} is not among "
                         f"evaluate.forgetting.tasks or their members ({', '.join(origin)})")
    groups: dict[int | None, list[str]] = {}
    for t, name in origin.items():
        groups.setdefault(shots.get(t, shots.get(name)), []).append(t)
    return groups


LOGLIKELIHOOD = ("loglikelihood", "loglikelihood_rolling", "multiple_choice")
"""lm-eval output types scored from the log-likelihoods of given continuations (MMLU, HellaSwag, ...)."""


def loglikelihood_tasks(tm, names: list[str], _seen: frozenset = frozenset()) -> list[str]:
    """The tasks among `names` (groups and tags opened) that lm-eval scores by log-likelihood."""
    out = []
    for name in names:
        entry = tm.task_index.get(name)
        if entry is None or name in _seen:
            continue
        cfg = entry.cfg or {}
        if entry.kind.name in ("GROUP", "TAG"):
            members = sorted(entry.tags) if entry.kind.name == "TAG" else [
                m for m in (cfg.get("task") or []) if isinstance(m, str)]
            out += loglikelihood_tasks(tm, members, _seen | {name})
        elif cfg.get("output_type") in LOGLIKELIHOOD:
            out.append(name)
    return out


def refuse_loglikelihood_with_adapter(tm, names: list[str], backend: str, adapter: str | None) -> None:
    """On vLLM with a LoRA adapter, log-likelihood tasks would be scored from prompt logprobs with LoRA on, which
    vLLM gets wrong or fails at (vllm-project/vllm#29955, #51594; s3ft's own NLL refuses it too): refused,
    naming the alternatives."""
    if backend != "vllm" or not adapter or not (ll := loglikelihood_tasks(tm, names)):
        return
    from s3ft.errors import ConfigError

    raise ConfigError(None, "evaluate.forgetting.backend", f"vllm with a LoRA adapter cannot score "
                      f"{', '.join(ll[:4])}{', ...' if len(ll) > 4 else ''}: they are log-likelihood tasks, and vLLM's "
                      "prompt logprobs are unreliable with LoRA on. Set evaluate.forgetting.backend: hf (the adapter "
                      "through peft), or train with train.mode: full, or score a merged model "
                      "(s3ft export --merge) with lm-eval's vllm model")


def task_identity(tm, name: str, _seen: frozenset = frozenset()) -> Any:
    """What a task's cached score depends on besides the model and the settings: its resolved harness config
    (includes merged, version in its metadata), a group's members in turn, and the contents of the local files
    the config names (Python helpers, local data files; for s3ft's own tasks, their shipped data), so that
    an edited task or dataset misses the cache even when nobody bumped its version."""
    entry = tm.task_index.get(name)
    if entry is None or name in _seen:
        return name
    cfg = entry.cfg or {}
    members = [m for m in (cfg.get("task") or []) if isinstance(m, str)] if entry.kind.name == "GROUP" else []
    if entry.kind.name == "TAG":
        members = sorted(entry.tags)
    files = {str(f): _file_hash(f) for f in _local_files(cfg)}
    if entry.yaml_path is not None and Path(entry.yaml_path).parent == TASKS_DIR and "dataset_kwargs" in cfg:
        from s3ft.lm_eval_tasks.utils import data_file

        f = data_file(**cfg["dataset_kwargs"])
        files[str(f)] = _file_hash(f)
    return {"cfg": cfg, "files": files, "members": {m: task_identity(tm, m, _seen | {name}) for m in members}}


def _local_files(obj: Any) -> set[Path]:
    """Existing local files named by strings in a task config: paths, and `path/module.function` references."""
    if isinstance(obj, dict):
        return set().union(*(_local_files(v) for v in obj.values()))
    if isinstance(obj, list | tuple):
        return set().union(*(_local_files(v) for v in obj))
    if not isinstance(obj, str) or "/" not in obj or "\n" in obj or len(obj) > 4096:
        return set()
    candidates = [Path(obj), Path(obj.rsplit(".", 1)[0] + ".py")]
    return {c for c in candidates if c.is_absolute() and _is_file(c)}


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a prompt template with a slash, longer than a file name may be
        return False


def _file_hash(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def task_manager(names: list[str], include_path: tuple[str, ...] = ()):
    """A harness TaskManager that knows `names`. Indexing the harness's own ~27,000 task files takes ~15 s
    on a small CPU, once per TaskManager: so only s3ft's and `include_path`'s directories are indexed when
    they define every name (groups excepted: their members may be the harness's), and each index is built
    once per process (a demo scores 13 models)."""
    local = _task_manager(include_path, defaults=False)
    index = local.task_index
    if all(n in index and index[n].kind.name != "GROUP" for n in names):
        return local
    return _task_manager(include_path, defaults=True)


@functools.lru_cache(maxsize=8)
def _task_manager(include_path: tuple[str, ...], defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=[str(TASKS_DIR), *include_path], include_defaults=defaults)


def settings(fcfg: ForgettingConfig) -> dict[str, Any]:
    import lm_eval

    return {"lm_eval": getattr(lm_eval, "__version__", "unknown"), **section_dict(fcfg)}


def score_model(fcfg: ForgettingConfig, model: ModelConfig, adapter: str | None = None,
        cache_dir: Path | None = None, lora_rank: int = 16, engine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score one model on `fcfg.tasks`; returns {"settings", "model", "scores": {task: {...}}, "versions"}."""
    from s3ft.backends.hf import dir_hash, weights_id

    setup = settings(fcfg)
    ident = {"model": weights_id(model.path, model.revision), "dtype": model.dtype,
             "adapter": adapter and f"{Path(adapter).resolve()}#{dir_hash(adapter)}"}
    engine = engine if fcfg.backend == "vllm" else None
    if engine:  # only when set: earlier cached scores keep their key
        ident["engine"] = engine
    tm = task_manager(list(fcfg.tasks), tuple(fcfg.include_path))
    tasks = expand_tags(tm, list(fcfg.tasks))
    key = fingerprint({**ident, **setup, "tasks": {t: task_identity(tm, t) for t in tasks}})
    cached = cache_dir / "lm_eval" / f"{key}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        log.info("lm-eval scores from cache %s", cached)
        return json.loads(cached.read_text())

    import lm_eval

    refuse_loglikelihood_with_adapter(tm, list(fcfg.tasks), fcfg.backend, adapter)
    groups = shot_groups(tm, list(fcfg.tasks), fcfg.num_fewshot)
    log.info("lm-eval %s on %s%s: %s", setup["lm_eval"], model.path, f" + {adapter}" if adapter else "",
             ", ".join(tasks))
    lm = lm_eval.api.registry.get_model(fcfg.backend).create_from_arg_obj(
        model_args(fcfg.backend, model, adapter, lora_rank, engine), {"batch_size": fcfg.batch_size})
    res: dict[str, Any] = {}
    try:
        for shots, members in groups.items():  # one harness call per few-shot setting, the model loaded once
            part = lm_eval.simple_evaluate(
                model=lm, tasks=members, num_fewshot=shots, limit=fcfg.limit,
                apply_chat_template=fcfg.apply_chat_template, fewshot_as_multiturn=fcfg.fewshot_as_multiturn,
                task_manager=tm, bootstrap_iters=fcfg.bootstrap_iters, log_samples=False,
            )
            if part is None:  # only on non-zero ranks of a distributed run
                return {}
            for k in ("results", "groups", "versions", "n-samples", "n-shot"):
                res.setdefault(k, {}).update(part.get(k) or {})
    finally:
        if fcfg.backend == "vllm":  # the engine ends here, before the next model loads, not when collected
            from s3ft.backends.vllm import shutdown_engine

            shutdown_engine(getattr(lm, "model", None))
        del lm
    found = {**res.get("results", {}), **res.get("groups", {})}
    scores = {}
    for task in tasks:
        if task not in found:
            raise ValueError(f"lm-eval returned no results for task {task!r} (got {', '.join(sorted(found))})")
        name, value, stderr = primary_metric(task, found[task], fcfg.metric.get(task))
        n = res.get("n-samples", {}).get(task, {})
        scores[task] = {"metric": name, "value": round(value, 6), "stderr": stderr and round(stderr, 6),
                        "n": n.get("effective") if isinstance(n, dict) else None,
                        "num_fewshot": res.get("n-shot", {}).get(task)}
    out = {"settings": setup, "model": ident, "scores": scores,
           "versions": {k: v for k, v in res.get("versions", {}).items() if k in tasks or k in found}}
    if cached is not None:
        write_json_atomic(cached, out)
    return out
