"""`s3ft validate`: check a config against the code without loading a model.

Resolves every plug-in name, renders every prompt template on a placeholder example (so a typo in a
placeholder fails here, not after an hour of generation), checks that local files exist, and, for the
code judge, starts one empty sandbox (docs/sandbox.md). Where set, checks the names in `generate.engine`,
`train.sft_args` and `train.lora_args` against vLLM's, TRL's and peft's own (where installed), the names in
`model.load_args` against transformers' loader and the model's config class (where its config can be read),
and that bitsandbytes is installed for `train.quantization`; refuses `s3ft-k` without samples (`resample.k` 0).
Warns (a logged warning and a `warning:` line) when the LLM judge is the model being trained: it would grade its own answers and paraphrases.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from pathlib import Path

from s3ft import methods as M
from s3ft.config import Config, ModelConfig, TrainConfig, check_pass_through
from s3ft.context import Context
from s3ft.errors import ConfigError, S3FTError
from s3ft.records import Example
from s3ft.registry import JUDGES, TASKS, check, resolve

log = logging.getLogger("s3ft.validate")
PLACEHOLDER = Example(
    id="validate-0",
    question="What is 2 + 2?",
    gold="2 + 2 = 4\n#### 4",
    meta={"answer": "4", "answers": ["4", "four"], "tests": ["assert f(2) == 4"], "test_setup": ""},
)


def same_model(a: str, b: str) -> bool:
    """Whether two model paths (hub ids or local directories) name one model."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def judge_warning(cfg: Config) -> str | None:
    """A warning when the LLM judge is the model being trained (unset `judge.llm.model` means it is)."""
    llm = cfg.judge.llm
    judge_path = llm.model.path if llm and llm.model else cfg.model.path
    if not same_model(judge_path, cfg.model.path):
        return None
    return (f"warning: the LLM judge is {cfg.model.path}, the model being trained: it grades its own answers and "
            "paraphrases (name another model in judge.llm.model)")  # fmt: skip


def model_path_check(key: str, model: ModelConfig) -> str:
    """`key` (`model.path`, `judge.llm.model.path`): a local folder that exists, or a hub id. A path that is
    plainly local (`/`, `./`, `../`, `~`, a first folder that exists here, or not shaped as `owner/name`) and
    missing is an error; a hub id while the hub is offline (`HF_HUB_OFFLINE`) and not in the local hub cache is
    said plainly (a line, logged): loading it will fail."""
    import os

    from s3ft.provenance import hub_commit, looks_like_hub_id

    path = model.path.rstrip("/") or model.path
    p = Path(path).expanduser()
    if p.is_dir():
        return f"{key}: local folder {path}"
    first = Path(path).parts[0] if Path(path).parts else path
    local = (path.startswith(("/", "./", "../", "~", ".\\", "..\\")) or not looks_like_hub_id(path)
             or (len(Path(path).parts) > 1 and Path(first).is_dir()))
    if local:
        raise ConfigError(None, key, f"no such model folder: {path}" + (" (it is a file)" if p.exists() else ""))
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline and hub_commit(path, model.revision, "model") is None:
        line = (f"{key}: {path} is a hub id, and the hub is offline (HF_HUB_OFFLINE) with no copy in the local hub "
                "cache: loading it will fail (download it first, or give a local folder)")
        log.info(line)
        return line
    return f"{key}: hub model {path}" + (" (in the local hub cache)" if hub_commit(path, model.revision) else "")


def engine_check(engine: dict) -> str:
    """`generate.engine`'s names checked against vLLM's own `EngineArgs`, where vLLM is installed."""
    import dataclasses

    try:
        from vllm import EngineArgs
    except ImportError:
        return f"generate.engine: {', '.join(engine)} (not checked: vLLM is not installed here)"
    known = {f.name for f in dataclasses.fields(EngineArgs)}
    unknown = sorted(set(engine) - known)
    if unknown:
        raise ConfigError(None, f"generate.engine.{unknown[0]}",
                          f"not a vLLM engine argument (vllm.EngineArgs has no {', '.join(unknown)})")
    return f"generate.engine: {', '.join(engine)} (vLLM engine arguments)"


def train_args_check(train: TrainConfig) -> list[str]:
    """`train.sft_args` and `train.lora_args` checked against TRL's `SFTConfig` and peft's `LoraConfig` (imported
    only when one is set), and bitsandbytes for `train.quantization` (the CUDA GPU is checked at training)."""
    lines = []
    lora = train.lora_args if train.mode == "lora" else {}  # mode full ignores them
    for key, given, module, name in (("train.sft_args", train.sft_args, "trl", "SFTConfig"),
                                     ("train.lora_args", lora, "peft", "LoraConfig")):
        if not given:
            continue
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            lines.append(f"{key}: {', '.join(given)} (not checked: {module} is not installed here)")
            continue
        check_pass_through(key, given, cls)
        lines.append(f"{key}: {', '.join(given)} ({name} fields)")
    if train.quantization:
        from s3ft.training.model import check_quantization

        check_quantization(train, cuda=None)
        lines.append(f"train.quantization: {train.quantization} (bitsandbytes installed; training needs a CUDA GPU)")
    from s3ft.training.launcher import launch_command, launched

    if launched(train):  # launch_command checks that the accelerate config file exists

        launch_command(train, Path("launch.json"))
        procs = f"{train.num_processes} processes" if train.num_processes > 1 else "processes as its config says"
        lines.append(f"train: under accelerate launch ({procs}"
                     + (f", config {train.accelerate_config}" if train.accelerate_config else "") + ")")
        from s3ft.training.checks import check_fsdp, check_processes, visible_gpus

        lines += [x for x in (check_processes(train, visible_gpus() if train.num_processes > 1 else 0),
                              check_fsdp(train)) if x]
    return lines


def loader_names() -> tuple[set[str], set[str]]:
    """The keyword arguments transformers' `AutoModelForCausalLM.from_pretrained` consumes itself (its signature
    and the names its source reads from `**kwargs`), and those it drops unread (`for name in [...]: kwargs.pop`,
    e.g. `low_cpu_mem_usage` in transformers 5), as the installed version has them."""
    import inspect
    import re

    from transformers import PreTrainedModel
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    names, dropped = set(inspect.signature(PreTrainedModel.from_pretrained).parameters), set()
    for fn in (PreTrainedModel.from_pretrained, _BaseAutoModelClass.from_pretrained):
        src = inspect.getsource(fn)
        names |= set(re.findall(r'kwargs\.(?:pop|get)\(\s*"(\w+)"', src))
        for listed, body in re.findall(r"for name in \[([^\]]*)\]:\s*\n\s*(.*)", src):
            if "kwargs.pop(name" in body:
                dropped |= set(re.findall(r'"(\w+)"', listed))
    return names - {"kwargs", "model_args", "pretrained_model_name_or_path"}, dropped


def load_args_check(key: str, model: ModelConfig) -> str:
    """`model.load_args` (the section `key`) checked as `from_pretrained` would take them: each name is one the
    loader consumes, a field of the model's config (a config override such as `rope_parameters`), or a
    parameter of the model class's `__init__`; anything else would reach `__init__` and fail at load, after the
    stages before training have run. Needs the model's config (a local folder, the hub cache or the hub)."""
    import inspect

    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    given = model.load_args
    loader, dropped = loader_names()
    if ignored := sorted(k for k in given if k in dropped):
        import transformers

        raise ConfigError(None, f"{key}.{ignored[0]}", f"transformers {transformers.__version__} ignores it "
                          "(no longer used): remove it")
    rest = {k: v for k, v in given.items() if k not in loader}
    if not rest:
        return f"{key}: {', '.join(given)} (from_pretrained arguments)"
    try:
        config, unused = AutoConfig.from_pretrained(model.path, revision=model.revision, return_unused_kwargs=True,
                                                    trust_remote_code=model.trust_remote_code, **rest)
    except Exception as e:  # noqa: BLE001 - no config to check against (offline, gated, ...): say so, go on
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"{key}: {', '.join(given)} (not checked: the config of {model.path} could not be read: {why})"
    cls = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)] if type(config) in MODEL_FOR_CAUSAL_LM_MAPPING else None
    init = inspect.signature(cls.__init__).parameters if cls else {}
    if any(p.kind is p.VAR_KEYWORD for p in init.values()) or cls is None:
        unused = {}  # the model class takes any keyword (or is remote code): transformers decides at load
    unknown = [k for k in unused if k not in init]
    if unknown:
        known = loader | set(config.to_dict()) | set(init) - {"self", "config"}
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(None, f"{key}.{unknown[0]}", f"not an argument of from_pretrained, a field of "
                          f"{type(config).__name__} or a parameter of {cls.__name__}{hint}")
    return f"{key}: {', '.join(given)} (from_pretrained arguments and {type(config).__name__} fields)"


def forgetting_check(cfg: Config) -> str:
    """`evaluate.forgetting.tasks` checked against the names in lm-eval's task files (`s3ft.harness_names`)."""
    from s3ft.harness_names import unknown_tasks

    f = cfg.evaluate.forgetting
    unknown = unknown_tasks(list(f.tasks), f.include_path)
    if unknown is None:
        return f"evaluate.forgetting.tasks: {', '.join(f.tasks)} (not checked: lm-eval is not installed here)"
    if unknown:
        raise ConfigError(None, f"evaluate.forgetting.tasks.{f.tasks.index(unknown[0])}",
                          f"{unknown[0]!r}: no lm-evaluation-harness task, group or tag has that name (not in the "
                          "harness's task files, s3ft's own or evaluate.forgetting.include_path)")
    return f"evaluate.forgetting.tasks: {', '.join(f.tasks)} (lm-eval task names)"


def resample_check(cfg: Config) -> str | None:
    """`s3ft-k` needs samples (`resample.k` at least 1); samples without `s3ft-k` are drawn by no stage."""
    r, wanted = cfg.resample, M.needs_resample(cfg.method)
    if wanted and r.k == 0:
        raise ConfigError(None, "resample.k", "the method s3ft-k trains on the best of k samples where the greedy "
                          "answer was not accepted: set resample.k to 1 or more (e.g. 4), or drop s3ft-k from method")
    if not wanted:
        return f"resample: off (resample.k is {r.k}, but only the method s3ft-k samples)" if r.k else None
    return (f"resample: k={r.k}, temperature {r.temperature}, top_p {r.top_p}, seed {r.seed} (k seeds hashed from it), "
            f"max_new_tokens {r.max_new_tokens or cfg.generate.max_new_tokens}")


def validate(cfg: Config, ctx=None) -> list[str]:
    """Lines describing what was checked; raises `S3FTError` on the first problem.

    `ctx`: the run's `Context`, when the caller has one already (it is built here otherwise)."""
    lines = [line] if (line := resample_check(cfg)) else []
    for key, src in (("data.train", cfg.data.train), ("data.test", cfg.data.test)):
        if src is None:
            continue
        p = Path(src.path)
        if p.suffix and not p.exists():
            raise ConfigError(None, f"{key}.path", f"no such file: {src.path}")
        lines.append(f"{key}: {'local file' if p.exists() else 'hub dataset'} {src.path}")
    for key in ("model.chat_template", "data.predict_template", "data.paraphrase_template"):
        section, field = key.split(".")
        value = getattr(getattr(cfg, section), field)
        if value and not Path(value).is_file():
            raise ConfigError(None, key, f"no such file: {value}")
    lines.append(model_path_check("model.path", cfg.model))
    if cfg.generate.engine:
        lines.append(engine_check(cfg.generate.engine))
    if cfg.evaluate.forgetting is not None:
        lines.append(forgetting_check(cfg))
    lines += train_args_check(cfg.train)
    judge_model = cfg.judge.llm.model if cfg.judge.llm else None
    for key, model in (("model.load_args", cfg.model), ("judge.llm.model.load_args", judge_model)):
        if model is not None and model.load_args:
            lines.append(load_args_check(key, model))
    ctx = ctx or Context(cfg)
    task = ctx.task
    for name, fn in (("prompt", task.prompt), ("paraphrase_prompt", task.paraphrase_prompt)):
        try:
            fn(PLACEHOLDER)
        except (KeyError, IndexError, ValueError) as e:
            raise S3FTError(f"task '{task.name}': the {name} template does not render: {e!r}") from e
    lines.append(f"task: {task.name} (v{task.version}), templates: {', '.join(task.templates())}")
    for key, kind, name, table in (("data", "task", cfg.data.task, TASKS), ("judge", "judge", ctx.judge_name, JUDGES)):
        if getattr(cfg, key).options and name in table:  # a typo in a plug-in's settings must not pass silently
            raise ConfigError(None, f"{key}.options", f"the built-in {kind} '{name}' takes no options (they are "
                              "settings of a plug-in, 'package.module:Class')")
    if cfg.data.format != "auto" and cfg.data.task in TASKS and cfg.data.task != "generic":
        raise ConfigError(None, "data.format", f"only the generic task reads it; '{cfg.data.task}' has its own")
    judge_cls = resolve("judge", ctx.judge_name)
    lines.append(f"judge: {ctx.judge_name} (v{getattr(judge_cls, 'version', '?')})")
    if ctx.judge_name == "code":
        from s3ft.judges.sandbox import Sandbox, SandboxUnavailable

        try:  # starts one empty sandbox, as the judge would: a refusal shows now, not mid-run
            lines.append(f"code sandbox: {Sandbox(cfg.judge.sandbox).name}")
        except SandboxUnavailable as e:
            raise ConfigError(None, "judge.sandbox", str(e)) from None
    llm = cfg.judge.llm
    if ctx.judge_name == "llm" and llm and llm.template:
        from s3ft.judges.llm import check_template  # the judge's own check: also needs {gold}, {prediction}

        if not Path(llm.template).is_file():
            raise ConfigError(None, "judge.llm.template", f"no such file: {llm.template}")
        check_template(Path(llm.template).read_text())
    if ctx.judge_name == "llm" and llm and llm.model:
        check("backend", llm.backend)
        lines.append(model_path_check("judge.llm.model.path", llm.model))
    if ctx.judge_name == "llm" and (warning := judge_warning(cfg)):
        log.warning(warning.removeprefix("warning: "))
        lines.append(warning)
    check("backend", cfg.generate.backend)
    lines.append(f"backend: {cfg.generate.backend}; model: {cfg.model.path}")
    stages = ["data"] + (["generate", "judge"] if M.needs_generation(cfg.method) else [])
    stages += ["resample"] if M.needs_resample(cfg.method) else []
    stages += ["paraphrase", "judge_paraphrase"] if M.paraphrase_scope(cfg.method) else []
    lines.append(f"methods: {', '.join(cfg.method)}; stages: {' → '.join(stages + ['select', 'train', 'evaluate', 'report'])}")
    return lines
