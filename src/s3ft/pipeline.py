"""The pipeline: data → generate → judge → resample → paraphrase → judge_paraphrase → select → train → evaluate → report.

`plan(ctx)` walks the stage modules in order (`s3ft.stages`): each adds its units (select, train and evaluate
one per method) with the inputs their fingerprint is made of, computed without loading a model. `run` walks
the plan like `make`: done units are skipped, partial ones resume, stale ones are rebuilt. Adding a method
re-uses every generation and verdict already made. `run(cfg, shard="i/N")` runs the per-row stages for one
shard of the examples (`s3ft.shards`); the next plain `run` merges the shards.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from s3ft import lock, shards, stops
from s3ft.config import Config
from s3ft.context import Context
from s3ft.errors import S3FTError
from s3ft.provenance import changed, listed, named_inputs, versions
from s3ft.rundir import STAGES, UnitDir, audit_root, read_json, unit_fingerprint
from s3ft.stages import (
    data,
    evaluate,
    generate,
    judge,
    judge_paraphrase,
    paraphrase,
    report,
    resample,
    select,
    train,
)
from s3ft.validate import validate

log = logging.getLogger("s3ft.pipeline")
STAGE_MODULES = (data, generate, judge, resample, paraphrase, judge_paraphrase, select, train, evaluate, report)
assert tuple(m.NAME for m in STAGE_MODULES) == STAGES


@dataclass
class Unit:
    """A unit of the plan: a stage (or a stage for one method) with its folder and fingerprint."""

    stage: str
    name: str
    dir: UnitDir
    run: Callable[[Path], dict]
    complete: Callable[[], bool] | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    """The fingerprint's parts by name, each hashed (`provenance.named_inputs`): recorded in the manifest."""

    def state(self) -> str:
        s = self.dir.state()
        if s == "done" and self.complete is not None and not self.complete():
            return "partial"
        return s

    def why_stale(self) -> list[str]:
        """The inputs that changed since the manifest was written (`train.learning_rate`, `model.files`,
        `templates.predict`, `upstream.generate`, ...), and its files changed since it was sealed (`UnitDir.tampered`)."""
        m = self.dir.manifest or {}
        moved = changed(m.get("inputs"), self.inputs) if m.get("fingerprint") != self.dir.fp else []
        return self.dir.tampered() + moved or ["fingerprint"]


def plan(ctx: Context) -> list[Unit]:
    """Every stage unit of this config, in order, with its fingerprint."""
    units: list[Unit] = []
    fps: dict[str, str] = {}
    for stage in STAGE_MODULES:
        for p in stage.units(ctx, fps):
            name = f"{stage.NAME}/{p.sub}" if p.sub else stage.NAME
            path = ctx.stage_dir(stage.NAME) / p.sub if p.sub else ctx.stage_dir(stage.NAME)
            fp = unit_fingerprint(stage.NAME, p.inputs)
            inputs = named_inputs(p.inputs, {u.dir.fp: u.name for u in units})
            unit_dir = UnitDir(path, fp)
            unit_dir.upstream = {u.name: u.dir for u in units if f"upstream.{u.name}" in inputs}
            units.append(Unit(stage.NAME, name, unit_dir, p.run, p.complete, inputs))
            fps[name] = fp
    return units


def save_config(cfg: Config) -> None:
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".config.yaml.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # shard runs may write it at once
    try:
        tmp.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        os.replace(tmp, run_dir / "config.yaml")
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no temporary file


def run(cfg: Config, until: str | None = None, force: list[str] = (), only: list[str] | None = None,
        shard: str | shards.Shard | None = None) -> list[dict]:
    """`run_unlocked` under the run directory's lock (a shard run's: its folder's), one writer at a time (`s3ft.lock`)."""
    stops.at(None)
    with lock.for_run(cfg.run_dir, shard):
        if shard is None and (n := stops.sweep(cfg.run_dir)):
            log.info("removed %d temporary file(s) an earlier run left behind", n)
        return run_unlocked(cfg, until, force, only, shard)


def run_unlocked(cfg: Config, until: str | None = None, force: list[str] = (), only: list[str] | None = None,
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
    ctx = Context(cfg, shard)
    validate(cfg, ctx)  # fail on a bad template or path now, not after an hour of generation
    save_config(cfg)
    first_forced = min((STAGES.index(s) for s in force), default=len(STAGES))
    last = STAGES.index(until) if until else len(STAGES) - 1
    if shard is not None:
        try:
            return shards.run_shard(ctx, plan(ctx), last, lambda: plan(ctx))
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
            refused = unit.dir.refused()
            action = "resumed" if state == "partial" and not forced and not refused else "ran"
            log.info("%s: %s", unit.name, {"ran": "running", "resumed": "resuming"}[action]
                     + (f" (stale: {listed(unit.why_stale())} changed)" if state == "stale" else "")
                     + (f" (afresh: its last attempt was refused when sealed: {refused})" if refused else "")
                     + (" (forced)" if forced else ""))
            stops.at(unit.name, unit.dir.path)
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


def status(cfg: Config, verify: bool = False) -> list[dict]:
    """Each unit's state (done / partial / stale / to do), counts and time, for a stale one the inputs or files
    that changed (`why`), for one whose files were refused when sealed the reason (`refused`), and for a per-row
    stage not merged yet its shards' progress (`shards`), without loading a model. `verify`: every done unit's
    files are hashed again (not only their sizes and times compared)."""
    ctx = Context(cfg)
    out = []
    units = plan(ctx)
    for unit in units:
        m, state = unit.dir.manifest or {}, unit.state()
        why = unit.why_stale() if state == "stale" else None
        if verify and state == "done" and (why := unit.dir.tampered(rehash=True) or None):
            state = "stale"
        row = {"unit": unit.name, "state": state, "counts": m.get("counts"), "seconds": m.get("seconds"),
               **{k: m.get(k) for k in MEMORY_KEYS}, "why": why}
        if state != "done" and (refused := unit.dir.refused()):
            row["refused"] = refused
        if unit.stage in shards.ROW_STAGES and state != "done":
            row["shards"] = shards.progress(ctx.run_dir, unit.stage, unit.dir.fp)
        out.append(row)
    return out + audit_status(ctx.run_dir, {u.name: u.dir for u in units}, verify)


def audit_status(run_dir: Path, dirs: dict[str, UnitDir], verify: bool = False) -> list[dict]:
    """A row per `s3ft audit` unit (`10_audit/<judge>/`, `s3ft.judge_audit`), as `status` gives a stage's: done while its
    files and the units it read are as sealed, stale otherwise (the next `s3ft audit` redoes it), partial while
    unfinished. Its fingerprint is its manifest's: the judge config it ran with is not the run's."""
    root, out = audit_root(run_dir), []
    for path in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        m = read_json(path / "manifest.json") or {}
        unit = UnitDir(path, m.get("fingerprint", ""))
        unit.upstream = {name: dirs[name] for name in m.get("upstream") or {} if name in dirs}
        state, why = unit.state(), unit.tampered(rehash=verify) or None
        state = "stale" if why else state
        out.append({"unit": f"audit/{path.name}", "state": state, "counts": m.get("counts"), "seconds": m.get("seconds"),
                    **{k: m.get(k) for k in MEMORY_KEYS}, "why": why})
    return out
