"""What the stages share: the config, the task, the run's folders, what identifies the model and judge in the
fingerprints, and the models the stages ask for, at most one on the device at a time (`s3ft.device`).

Which model is on the device is one rule: every request goes through `Device.get` under a key, and a
request for another key frees what is loaded first. The keys: `("base", lora)` the base model on the
generation backend (a vLLM engine with LoRA on serves the base and every trained adapter, as views of it),
`("scorer",)` the base on hf where the generation backend cannot score NLLs, `("trained", method, snapshot)`
a method's trained model, `("judge",)` an LLM judge's model of its own.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from s3ft import shards
from s3ft.cache import maybe_cached, unwrapped
from s3ft.config import Config, LLMJudgeConfig, section_dict
from s3ft.device import Device, close
from s3ft.errors import S3FTError, loading_model
from s3ft.provenance import Refs
from s3ft.registry import resolve
from s3ft.rundir import fingerprint, stage_root
from s3ft.weights import load_from

log = logging.getLogger("s3ft.pipeline")


class Context:
    """The config, the task, folders and fingerprint parts, and lazily loaded models and judges."""

    def __init__(self, cfg: Config, shard: shards.Shard | None = None):
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.shard = shard
        """In a shard run (`s3ft.shards`): which examples this process makes rows for."""
        self.redirect: dict[str, Path] = {}
        """A shard run's stage folders: the shard's own, for the per-row stages it runs."""
        self.task = resolve("task", cfg.data.task)(cfg.data)
        self.chunk = cfg.generate.batch_size  # rows are flushed per batch: a kill loses at most one
        self.device = Device()
        self._rule_judges: dict[str, object] = {}
        self.refs = Refs(self.run_dir)

    # --- folders -------------------------------------------------------------------------------------

    def stage_dir(self, stage: str) -> Path:
        return self.redirect.get(stage) or stage_root(self.run_dir, stage)

    def owns(self, id_: str) -> bool:
        """Whether this process makes the rows of example `id_`: every one, except in a shard run."""
        return self.shard is None or self.shard.owns(id_)

    # --- what identifies the model and the judge in the fingerprints ---------------------------------

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

    # --- models: one on the device at a time ---------------------------------------------------------

    def make_backend(self, model_cfg, backend: str, adapter: str | None = None, **kwargs):
        """A generation backend for `model_cfg` (in a child process where `generate.isolate` says, or for vLLM by
        default), behind the run's model-call cache."""
        engine = self.cfg.generate.engine if backend == "vllm" else {}  # vLLM engine arguments, as given
        cls, args = resolve("backend", backend), dict(batch_size=self.cfg.generate.batch_size, adapter=adapter,
                                                      **{**kwargs, **engine})  # the user's engine arguments win
        isolate = self.cfg.generate.isolate
        key = "model.path" if model_cfg is self.cfg.model else "judge.llm.model.path"
        with loading_model(key, model_cfg.path):  # no such folder, a hub id offline, a corrupt file: one line
            if isolate or (isolate is None and backend == "vllm"):
                from s3ft.backends.process import ProcessBackend

                return self.cached(ProcessBackend(cls, model_cfg, **args))
            return self.cached(cls(model_cfg, **args))

    def cached(self, b):
        """`b` behind the run's model-call cache (`cache.*`), where it is on."""
        c, home = self.cfg.cache, shards.shard_dir(self.run_dir, self.shard) if self.shard else self.run_dir
        return maybe_cached(b, (c.path or str(home / "cache.sqlite")) if c.enabled else None)

    def backend(self):
        """The base model on the generation backend, for generate, paraphrase, NLL and evaluate (a vLLM engine with
        LoRA on, where one is loaded, generates as the base too)."""
        if self.device.holds(("base", True)):
            return self.device.model

        def load():
            log.info("loading base model %s", self.cfg.model.path)
            return self.make_backend(self.cfg.model, self.cfg.generate.backend)

        return self.device.get(("base", False), load)

    def scorer(self):
        """A backend that computes NLLs: the base model on the generation backend (hf, or vLLM through its
        prompt logprobs, which need an engine without LoRA). A backend of the user's own cannot: the base is
        loaded on the hf backend in its place."""
        if self.cfg.generate.backend in ("hf", "vllm"):
            if self.device.holds(("base", True)):
                self.device.free()  # vLLM scores only without LoRA (s3ft.backends.vllm)
            return self.backend()
        return self.device.get(("scorer",), lambda: self.make_backend(self.cfg.model, "hf"))

    @property
    def _vllm_lora(self) -> bool:
        return self.cfg.train.mode == "lora" and self.cfg.generate.backend == "vllm"

    def _lora_engine(self):
        """The base model's vLLM engine with LoRA on: one engine serves the base and every trained adapter."""
        from s3ft.backends.vllm import lora_rank_for

        def load():
            log.info("loading base model %s (vLLM, LoRA on: one engine serves every adapter)", self.cfg.model.path)
            return self.make_backend(self.cfg.model, "vllm", lora=True,
                                     max_lora_rank=lora_rank_for(self.cfg.train.lora_r))

        return self.device.get(("base", True), load)

    def trained_backend(self, method: str, snapshot: Path | None = None):
        """The model trained by `method` (its LoRA adapter on the base, or the full fine-tuned model), or one
        of its learning-curve `snapshot` folders (`07_train/<method>/curve/step-N`)."""
        weights = str(load_from(self.run_dir, method, self.cfg.train.mode, snapshot))
        if self._vllm_lora:  # a view of the base engine, one adapter at a time
            self._lora_engine()
            key = ("adapter", method, snapshot)
            if key not in self.device.dependents:
                for old in [k for k in self.device.dependents if k[0] == "adapter"]:
                    self.device.drop(old)
            return self.device.dependent(key, lambda m: self.cached(unwrapped(m).with_adapter(weights)))
        if self.cfg.train.mode == "lora":
            return self.device.get(("trained", method, snapshot), lambda: self.make_backend(
                self.cfg.model, self.cfg.generate.backend, adapter=weights))
        return self.device.get(("trained", method, snapshot), lambda: self.make_backend(
            self.cfg.model.model_copy(update={"path": weights}), self.cfg.generate.backend))

    def evaluated(self, model_name: str, snapshot: Path | None = None):
        """The model under evaluation: the base ("base") or a method's trained model (`trained_backend`)."""
        if model_name != "base":
            return self.trained_backend(model_name, snapshot)
        return self._lora_engine() if self._vllm_lora else self.backend()

    def judge(self, name: str | None = None):
        """The judge called `name` (default: the task's judge). A rule judge is built once and kept; an LLM judge
        generates through its own model or the base, and is built on it again whenever that is loaded anew."""
        name = name or self.judge_name
        if name != "llm":
            if name not in self._rule_judges:
                self._rule_judges[name] = resolve("judge", name)(self.cfg.judge)
            return self._rule_judges[name]
        from s3ft.stages.generate import gen_params

        llm = self.cfg.judge.llm or LLMJudgeConfig()
        if llm.model is not None:  # a model of its own: whatever else is loaded is freed first
            self.device.get(("judge",), lambda: self.make_backend(llm.model, llm.backend))
        else:
            self.backend()
        template = Path(llm.template).read_text(encoding="utf-8") if llm.template else None
        cls = resolve("judge", "llm")
        return self.device.dependent(("llm judge",), lambda m: cls(self.cfg.judge, m, gen_params(llm.generate), template))

    def release_trained(self) -> None:
        """Free a trained model, where one is loaded."""
        if self.device.key is not None and self.device.key[0] == "trained":
            self.device.free()

    def release(self) -> None:
        """Free every loaded model and judge (before training, before the harness loads its own, at the end)."""
        self.device.free()
        for j in self._rule_judges.values():
            close(j)
        self._rule_judges = {}

    # --- the general-skill sets ----------------------------------------------------------------------

    @cached_property
    def general_sets(self) -> list[tuple]:
        """(config, task) of each general-skill test set, built once."""
        return [(g, resolve("task", g.task)(g.data_config())) for g in self.cfg.evaluate.general]

    @cached_property
    def curve_sets(self) -> list[tuple]:
        """(config, task) of each general-skill validation set of the learning curves, built once."""
        c = self.cfg.evaluate.curve
        return [(g, resolve("task", g.task)(g.data_config())) for g in (c.general if c else [])]
