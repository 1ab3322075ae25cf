"""The pipeline: data → generate → judge → paraphrase → judge_paraphrase → select → train → evaluate → report.

`plan(ctx)` lists every stage unit (select, train and evaluate have one unit per method) with the
fingerprint of everything that determines its output, computed without loading a model. `run`
walks the plan like `make`: done units are skipped, partial ones resume, stale ones are rebuilt.
Adding a method re-uses every generation and verdict already made. `run(cfg, shard="i/N")` runs the per-row
stages for one shard of the examples (`s3ft.shards`); the next plain `run` merges the shards.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path

import yaml

from s3ft import methods as M
from s3ft import shards
from s3ft.cache import maybe_cached, unwrapped
from s3ft.config import Config, LLMJudgeConfig, section_dict
from s3ft.errors import S3FTError
from s3ft.provenance import Refs, changed, listed, named_inputs, versions
from s3ft.registry import resolve
from s3ft.rundir import STAGES, UnitDir, fingerprint, rows_by_id, stage_root
from s3ft.stages import data, evaluate, generate, judge, paraphrase, report, select

log = logging.getLogger("s3ft.pipeline")


@dataclass
class Unit:
    stage: str
    name: str
    dir: UnitDir
    run: Callable[[Path], dict]
    complete: Callable[[], bool] | None = None
    """For units whose needed outputs can grow (paraphrase scope, `train.save_merged` set after training): are
    they all present?"""
    inputs: dict[str, str] = field(default_factory=dict)
    """The fingerprint's parts by name, each hashed (`provenance.named_inputs`): recorded in the manifest."""

    def state(self) -> str:
        s = self.dir.state()
        if s == "done" and self.complete is not None and not self.complete():
            return "partial"
        return s

    def why_stale(self) -> list[str]:
        """The inputs that changed since the manifest was written (`train.learning_rate`, `model.files`,
        `templates.predict`, `upstream.generate`, ...)."""
        return changed((self.dir.manifest or {}).get("inputs"), self.inputs) or ["fingerprint"]


class Context:
    """What the stages share: the config, the task, and lazily loaded models and judge."""

    def __init__(self, cfg: Config, shard: shards.Shard | None = None):
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.shard = shard
        """In a shard run (`s3ft.shards`): which examples this process makes rows for."""
        self.redirect: dict[str, Path] = {}
        """A shard run's stage folders: the shard's own, for the per-row stages it runs."""
        self.task = resolve("task", cfg.data.task)(cfg.data)
        self.chunk = cfg.generate.batch_size  # rows are flushed per batch: a kill loses at most one
        self._backend = None
        self._judges: dict[str, object] = {}
        self._trained: tuple[str, object] | None = None
        self._scorer = None
        self.refs = Refs(self.run_dir)

    def stage_dir(self, stage: str) -> Path:
        return self.redirect.get(stage) or stage_root(self.run_dir, stage)

    def owns(self, id_: str) -> bool:
        """Whether this process makes the rows of example `id_`: every one, except in a shard run."""
        return self.shard is None or self.shard.owns(id_)

    def ref(self, path: str, revision: str | None = None, repo_type: str = "model") -> str | None:
        """What identifies the files at `path` in the fingerprints: local files, or a hub commit (`Refs`)."""
        return self.refs(path, revision, repo_type)

    def refresh_refs(self) -> bool:
        """After a stage that may have downloaded a hub model or dataset: True when a commit moved (`Refs.refresh`),
        and the plan's fingerprints must be recomputed, so that the manifest names the commit its stage used."""
        if not self.refs.refresh():
            return False
        for name in ("model_ref", "judge_ref"):
            self.__dict__.pop(name, None)
        return True

    @property
    def model_parts(self) -> dict:
        """What identifies the base model in the fingerprints (`model.*` among a manifest's inputs)."""
        m = self.cfg.model
        return {"path": m.path, "revision": m.revision, "dtype": m.dtype, "files": self.ref(m.path, m.revision),
                "chat_template": m.chat_template and self.ref(m.chat_template),
                **({"load_args": m.load_args} if m.load_args else {})}  # only when set: older runs stay done

    @cached_property
    def model_ref(self) -> str:
        return fingerprint(self.model_parts)

    @property
    def judge_name(self) -> str:
        name = self.cfg.judge.name or self.task.default_judge
        if not name:
            raise S3FTError("no judge: set judge.name (or data.judge for the generic task)")
        return name

    @property
    def judge_parts(self) -> dict:
        """What identifies the judge in the fingerprints (`judge.*` among a manifest's inputs)."""
        cls = resolve("judge", self.judge_name)
        section = {k: v for k, v in section_dict(self.cfg.judge).items() if k != "workers"}
        llm, model = self.cfg.judge.llm, None
        if self.judge_name == "llm":
            m = llm and llm.model
            own = {"path": m.path, "revision": m.revision, "files": self.ref(m.path, m.revision),
                   **({"load_args": m.load_args} if m.load_args else {})} if m else None
            model = own or self.model_parts
        return {"name": self.judge_name, "version": getattr(cls, "version", "0"), "cfg": section, "model": model}

    @cached_property
    def judge_ref(self) -> str:
        return fingerprint(self.judge_parts)

    def _make_backend(self, model_cfg, backend: str, adapter: str | None = None, **kwargs):
        engine = self.cfg.generate.engine if backend == "vllm" else {}  # vLLM engine arguments, as given
        cls, args = resolve("backend", backend), dict(batch_size=self.cfg.generate.batch_size, adapter=adapter,
                                                      **{**kwargs, **engine})  # the user's engine arguments win
        isolate = self.cfg.generate.isolate
        if isolate or (isolate is None and backend == "vllm"):
            from s3ft.backends.process import ProcessBackend

            return self._cached(ProcessBackend(cls, model_cfg, **args))
        return self._cached(cls(model_cfg, **args))

    def _cached(self, b):
        c, home = self.cfg.cache, shards.shard_dir(self.run_dir, self.shard) if self.shard else self.run_dir
        return maybe_cached(b, (c.path or str(home / "cache.sqlite")) if c.enabled else None)

    def backend(self):
        """The base model, loaded on first use and kept for generate, paraphrase, NLL and evaluate. A judge
        with a model of its own, or a trained model, is freed first: two models never share the device."""
        if self._backend is None:
            self._release_judge_model()
            self.release_trained()
            log.info("loading base model %s", self.cfg.model.path)
            self._backend = self._make_backend(self.cfg.model, self.cfg.generate.backend)
        return self._backend

    def scorer(self):
        """A backend that computes NLLs: the base model on the generation backend (hf, or vLLM through its
        prompt logprobs). A backend of the user's own is released first and the base loaded on the hf backend,
        so the two never share a GPU."""
        if self.cfg.generate.backend in ("hf", "vllm"):
            if self._base_has_lora:
                self._release_base()  # vLLM scores only without LoRA (s3ft.backends.vllm)
            return self.backend()
        if self._scorer is None:
            self.release()
            self._scorer = self._make_backend(self.cfg.model, "hf")
        return self._scorer

    def trained_backend(self, method: str, snapshot: Path | None = None):
        """The model trained by `method` (its LoRA adapter on the base, or the full fine-tuned model), or one
        of its learning-curve `snapshot` folders (`07_train/<method>/curve/step-N`)."""
        key = (method, snapshot)
        if self._trained is None or self._trained[0] != key:
            self.release_trained()
            from s3ft.stages.train import trained_weights

            weights = trained_weights(self.stage_dir("train"), method, self.cfg.train.mode, snapshot)
            if self._vllm_lora:
                self._trained = (key, self._cached(unwrapped(self._lora_engine()).with_adapter(str(weights))))
                return self._trained[1]
            self._release_judge_model()
            self._release_base()
            if self.cfg.train.mode == "lora":
                b = self._make_backend(self.cfg.model, self.cfg.generate.backend, adapter=str(weights))
            else:
                b = self._make_backend(self.cfg.model.model_copy(update={"path": str(weights)}),
                                       self.cfg.generate.backend)
            self._trained = (key, b)
        return self._trained[1]

    def evaluated(self, model_name: str, snapshot: Path | None = None):
        """The model under evaluation: the base ("base") or a method's trained model (`trained_backend`). Where
        a LoRA run evaluates on vLLM, one engine serves the base and every adapter."""
        if model_name != "base":
            return self.trained_backend(model_name, snapshot)
        return self._lora_engine() if self._vllm_lora else self.backend()

    @property
    def _vllm_lora(self) -> bool:
        return self.cfg.train.mode == "lora" and self.cfg.generate.backend == "vllm"

    @property
    def _base_has_lora(self) -> bool:
        """Whether the loaded base is a vLLM engine with LoRA on."""
        return getattr(unwrapped(self._backend), "lora", False)

    def _lora_engine(self):
        """The base model's vLLM engine with LoRA on, which serves every trained adapter (and the base): one engine
        for all, where a LoRA run evaluates on vLLM. A base engine built without LoRA is rebuilt once."""
        from s3ft.backends.vllm import lora_rank_for

        if self._backend is not None and not self._base_has_lora:
            self._release_base()
        if self._backend is None:
            self._release_judge_model()
            self.release_trained()
            log.info("loading base model %s (vLLM, LoRA on: one engine serves every adapter)", self.cfg.model.path)
            self._backend = self._make_backend(self.cfg.model, "vllm", lora=True,
                                               max_lora_rank=lora_rank_for(self.cfg.train.lora_r))
        return self._backend

    def judge(self, name: str | None = None):
        """The judge called `name` (default: the task's judge), built on first use and kept."""
        name = name or self.judge_name
        if name not in self._judges:
            cls = resolve("judge", name)
            if name != "llm":
                self._judges[name] = cls(self.cfg.judge)
            else:
                from s3ft.stages.generate import gen_params

                llm = self.cfg.judge.llm or LLMJudgeConfig()
                if llm.model is not None:  # a model of its own: free the base (and any trained) model first
                    self.release_trained()
                    if self._backend is not None:
                        getattr(self._backend, "close", lambda: None)()
                        self._backend = None
                backend = self.backend() if llm.model is None else self._make_backend(llm.model, llm.backend)
                template = Path(llm.template).read_text(encoding="utf-8") if llm.template else None
                self._judges[name] = cls(self.cfg.judge, backend, gen_params(llm.generate), template)
        return self._judges[name]

    @cached_property
    def general_sets(self) -> list[tuple]:
        """(config, task) of each general-skill test set, built once."""
        return [(g, resolve("task", g.task)(g.data_config())) for g in self.cfg.evaluate.general]

    @cached_property
    def curve_sets(self) -> list[tuple]:
        """(config, task) of each general-skill validation set of the learning curves, built once."""
        c = self.cfg.evaluate.curve
        return [(g, resolve("task", g.task)(g.data_config())) for g in (c.general if c else [])]

    def _release_judge_model(self) -> None:
        llm = self.cfg.judge.llm
        if llm is not None and llm.model is not None and "llm" in self._judges:
            getattr(self._judges.pop("llm").backend, "close", lambda: None)()

    def _release_base(self) -> None:
        """Free the base model (and an NLL scorer), with an LLM judge that generates through it: it is built
        again, on a freshly loaded base, when next asked for."""
        llm = self.cfg.judge.llm
        if "llm" in self._judges and (llm is None or llm.model is None):
            self._judges.pop("llm")
        for obj in (self._backend, self._scorer):
            getattr(obj, "close", lambda: None)()
        self._backend, self._scorer = None, None

    def release_trained(self) -> None:
        if self._trained is not None:
            getattr(self._trained[1], "close", lambda: None)()
            self._trained = None

    def release(self) -> None:
        """Free every loaded model (before training, and at the end)."""
        self.release_trained()
        for obj in (self._backend, self._scorer, *self._judges.values()):
            getattr(obj, "close", lambda: None)()
        self._backend, self._scorer, self._judges = None, None, {}


def plan(ctx: Context) -> list[Unit]:
    """Every stage unit of this config, in order, with its fingerprint."""
    cfg, units = ctx.cfg, []

    def add(stage: str, fp_inputs: dict, fn, sub: str | None = None, complete=None) -> str:
        fp = fingerprint({"stage": stage, **fp_inputs})
        path = ctx.stage_dir(stage) / sub if sub else ctx.stage_dir(stage)
        inputs = named_inputs(fp_inputs, {u.dir.fp: u.name for u in units})
        units.append(Unit(stage, f"{stage}/{sub}" if sub else stage, UnitDir(path, fp), fn, complete, inputs))
        return fp

    decode = {k: v for k, v in section_dict(cfg.generate).items() if k not in ("batch_size", "isolate")}  # no output
    splits = [s for s in (cfg.data.train, cfg.data.test) if s is not None]
    data_files = {s.path: ctx.ref(s.path, s.revision, "dataset") for s in splits}
    fp_data = add("data", {"task": ctx.task.name, "version": ctx.task.version, "data": section_dict(cfg.data),
                           "templates": ctx.task.templates(), "files": data_files}, lambda out: data.run(ctx, out))
    stop = list(getattr(ctx.task, "stop", ()))
    fp_judge = fp_jpara = None
    if M.needs_generation(cfg.method):
        fp_gen = add("generate", {"data": fp_data, "model": ctx.model_parts, "generate": decode, "stop": stop},
                     lambda out: generate.run(ctx, out))
        fp_judge = add("judge", {"upstream": fp_gen, "judge": ctx.judge_parts}, lambda out: judge.run(ctx, out))
    scope = M.paraphrase_scope(cfg.method)
    if scope:  # the folders are looked up when asked: a shard run redirects them (`s3ft.shards`)

        def para_complete() -> bool:
            if scope == "wrong" and not (ctx.stage_dir("judge") / "rows.jsonl").exists():
                return True  # cannot tell before the judge has run; the judge's own state decides
            made = rows_by_id(ctx.stage_dir("paraphrase") / "rows.jsonl")
            return set(paraphrase.select_ids(ctx, scope)) <= made.keys()

        def jpara_complete() -> bool:
            judged = rows_by_id(ctx.stage_dir("judge_paraphrase") / "rows.jsonl")
            made = rows_by_id(ctx.stage_dir("paraphrase") / "rows.jsonl")
            return {i for i in made if ctx.owns(i)} <= judged.keys()

        fp_para = add("paraphrase", {"data": fp_data, "model": ctx.model_parts, "paraphrase": section_dict(cfg.paraphrase),
                                     "backend": cfg.generate.backend, "stop": stop},
                      lambda out: paraphrase.run(ctx, out, scope), complete=para_complete)
        fp_jpara = add("judge_paraphrase", {"upstream": fp_para, "judge": ctx.judge_parts},
                       lambda out: judge.run_paraphrase(ctx, out), complete=jpara_complete)
    general = [{"templates": t.templates(), "version": t.version,
                "files": ctx.ref(g.source.path, g.source.revision, "dataset"),
                "judge": getattr(resolve("judge", g.judge or t.default_judge), "version", "0")}
               for g, t in ctx.general_sets + ctx.curve_sets]
    if cfg.evaluate.curve is not None:
        curve = cfg.evaluate.curve.in_domain
        general.append({"curve_in_domain": ctx.ref(curve.path, curve.revision, "dataset"),
                        "curve_points": cfg.curve_points()})
    eval_inputs = {"data": fp_data, "model": ctx.model_parts, "generate": decode, "judge": ctx.judge_parts,
                   "evaluate": section_dict(cfg.evaluate), "general": general}
    has_test = cfg.data.test is not None
    if has_test and cfg.evaluate.base:
        add("evaluate", eval_inputs, lambda out: evaluate.run(ctx, out, "base"), sub="base")
    trained: list[tuple[str, UnitDir]] = []  # the train units before this method's, for `_train`'s reuse
    for m in cfg.method:
        needs_gen, para = M.METHOD_NEEDS[m]
        fp_sel = add("select", {"method": m, "data": fp_data, "judge": fp_judge if needs_gen else None,
                                "judge_paraphrase": fp_jpara if para else None, "select": section_dict(cfg.select),
                                "model": ctx.model_parts if cfg.select.nll else None},
                     lambda out, m=m: select.run(ctx, out, m), sub=m)
        fp_train = add("train", {"select": fp_sel, "model": ctx.model_parts, "train": weights_settings(cfg.train),
                                 "seed": cfg.seed, **({"snapshots": n} if (n := cfg.curve_points()) else {})},
                       lambda out, m=m, earlier=list(trained): _train(ctx, out, m, earlier), sub=m,
                       complete=lambda m=m: not needs_merge(ctx, m))
        trained.append((m, units[-1].dir))
        if has_test:
            add("evaluate", {**eval_inputs, "train": fp_train}, lambda out, m=m: evaluate.run(ctx, out, m), sub=m)
    upstream = [u.dir.fp for u in units if u.stage in ("select", "train", "evaluate")]
    trackers = {"report_to": cfg.train.report_to} if cfg.train.report_to else {}  # the report logs to them
    add("report", {"upstream": upstream, "report": section_dict(cfg.report), **trackers},
        lambda out: report.run(ctx, out))
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(units, key=lambda u: order[u.stage])  # stable: evaluate/base stays first


NOT_WEIGHTS = ("report_to", "logging_steps", "save_steps", "save_total_limit", "save_merged")
"""Train settings that do not change the trained weights: changing them does not make a trained model stale."""
SFT_NOT_WEIGHTS = ("run_name", "project", "disable_tqdm", "skip_memory_metrics", "include_num_input_tokens_seen",
                   "push_to_hub", "log*", "trackio_*", "hub_*")
"""The same for `train.sft_args` (logging, tracking, hub upload): names, or patterns (`fnmatch`)."""
ONLY_WHEN_SET = ("lora_args", "quantization", "sft_args", "num_processes", "accelerate_config")
"""Train settings that enter the fingerprint only when set (not at their default), so that runs from before they
existed stay done."""


def weights_settings(train) -> dict:
    out = {k: v for k, v in section_dict(train).items() if k not in NOT_WEIGHTS}
    out["sft_args"] = {k: v for k, v in out["sft_args"].items() if not any(fnmatch(k, p) for p in SFT_NOT_WEIGHTS)}
    fields = type(train).model_fields
    return {k: v for k, v in out.items() if k not in ONLY_WHEN_SET or (v and v != fields[k].get_default(call_default_factory=True))}


def needs_merge(ctx: Context, method: str) -> bool:
    """`train.save_merged` set after the method's LoRA model was trained: the merged model is still to write."""
    t = ctx.cfg.train
    return t.save_merged and t.mode == "lora" and not (ctx.stage_dir("train") / method / "merged").is_dir()


def _train(ctx: Context, out: Path, method: str, earlier: list[tuple[str, UnitDir]] = ()) -> dict:
    """Train `method`'s model; or, where an `earlier` method of this run was trained on the same rows in the
    same order (same config, model and seed: one run), take its outputs (`train.reuse_training`)."""
    from s3ft.stages.train import (
        clear_partial_reuse,
        launch,
        launched,
        merge_trained,
        reuse_training,
        same_rows,
        train_model,
    )

    ctx.release()  # free the base model and any evaluated model before training
    clear_partial_reuse(out)
    if needs_merge(ctx, method) and (metrics := merge_trained(out, ctx.cfg.model)) is not None:
        return metrics
    rows = ctx.stage_dir("select") / method / "train.jsonl"
    for donor, unit in earlier:
        if unit.state() == "done" and same_rows(rows, ctx.stage_dir("select") / donor / "train.jsonl"):
            return reuse_training(unit.path, out, donor)
    fn = launch if launched(ctx.cfg.train) else train_model  # several processes: under accelerate launch
    return fn(rows, out, ctx.cfg.model, ctx.cfg.train, ctx.cfg.seed, snapshots=ctx.cfg.curve_points())


def save_config(cfg: Config) -> None:
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".config.yaml.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # shard runs may write it at once
    tmp.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    os.replace(tmp, run_dir / "config.yaml")


def run(cfg: Config, until: str | None = None, force: list[str] = (), only: list[str] | None = None,
        shard: str | shards.Shard | None = None) -> list[dict]:
    """Run the pipeline; returns what happened to each unit (`skipped`, `ran`, `resumed`, `merged`: its rows
    came from shards). `shard` ("i/N"): run only the per-row stages, for shard i of N (`s3ft.shards`)."""
    for s in [until, *force, *(only or [])]:
        if s is not None and s not in STAGES:
            raise S3FTError(f"unknown stage '{s}': stages are {', '.join(STAGES)}")
    if shard is not None:
        shard = shard if isinstance(shard, shards.Shard) else shards.Shard.parse(shard)
        if force or only:
            raise S3FTError(f"--shard {shard}: not with --force or --only (a shard runs its per-row stages as "
                            "they stand; force or choose stages in the plain run)")
    from s3ft.validate import validate

    ctx = Context(cfg, shard)
    validate(cfg, ctx)  # fail on a bad template or path now, not after an hour of generation
    save_config(cfg)
    first_forced = min((STAGES.index(s) for s in force), default=len(STAGES))
    last = STAGES.index(until) if until else len(STAGES) - 1
    if shard is not None:
        try:
            return shards.run(ctx, plan(ctx), last, lambda: plan(ctx))
        finally:
            ctx.release()
    results, units, seen = [], plan(ctx), set()
    try:
        while (unit := next((u for u in units if u.name not in seen), None)) is not None:
            seen.add(unit.name)
            i = STAGES.index(unit.stage)
            if i > last:
                continue
            if only is not None and unit.stage not in only:
                if STAGES.index(unit.stage) < max(STAGES.index(s) for s in only) and unit.state() != "done":
                    raise S3FTError(f"--only {','.join(only)}: upstream {unit.name} is {unit.state()}; run it first")
                continue
            forced = i >= first_forced
            state = unit.state()
            if state == "done" and not forced:
                log.info("%s: done, skipped", unit.name)
                results.append({"unit": unit.name, "action": "skipped"})
                continue
            if state == "partial" and unit.dir.manifest is not None:
                (unit.dir.path / "manifest.json").unlink()  # needed rows grew: resume, keep rows
            action = "resumed" if state == "partial" and not forced else "ran"
            log.info("%s: %s", unit.name, {"ran": "running", "resumed": "resuming"}[action]
                     + (f" (stale: {listed(unit.why_stale())} changed)" if state == "stale" else "")
                     + (" (forced)" if forced else ""))
            unit.dir.begin(force=forced)
            sharded = unit.stage in shards.ROW_STAGES
            merged = shards.merge(ctx.run_dir, unit.stage, unit.dir) if sharded and not forced else 0
            counts = unit.run(unit.dir.path)
            if ctx.refresh_refs():  # a hub model or dataset it downloaded: the manifest names that commit
                units = plan(ctx)
                unit = next(u for u in units if u.name == unit.name)
            counts = {**counts, "from_shards": merged} if merged else counts
            m = unit.dir.finish(unit.stage, counts, unit.inputs, versions())
            if sharded:
                shards.cleanup(ctx.run_dir, unit.stage)  # merged (or, forced, made again): shards not needed
            action = "merged" if merged else action
            results.append({"unit": unit.name, "action": action, "seconds": m["seconds"], "counts": counts})
        ctx.refresh_refs()
    finally:
        ctx.release()
    return results


MEMORY_KEYS = {"rows_per_s": "rows/s", "peak_rss_mib": "peak MiB", "peak_gpu_mib": "GPU MiB",
               "children_peak_rss_mib": "child MiB", "children_peak_gpu_mib": "child GPU"}
"""A manifest's throughput and memory keys (`rundir.peaks`) that `s3ft status` shows, with their column titles."""


def status(cfg: Config) -> list[dict]:
    """Each unit's state (done / partial / stale / to do), counts and time, for a stale one the inputs that
    changed (`why`), and for a per-row stage not merged yet its shards' progress (`shards`), without loading
    a model."""
    ctx = Context(cfg)
    out = []
    for unit in plan(ctx):
        m, state = unit.dir.manifest or {}, unit.state()
        row = {"unit": unit.name, "state": state, "counts": m.get("counts"), "seconds": m.get("seconds"),
               **{k: m.get(k) for k in MEMORY_KEYS},
               "why": unit.why_stale() if state == "stale" else None}
        if unit.stage in shards.ROW_STAGES and state != "done":
            row["shards"] = shards.progress(ctx.run_dir, unit.stage, unit.dir.fp)
        out.append(row)
    return out
