"""Past one machine: the per-row stages split into shards by example id, run apart, merged exactly.

`s3ft run CONFIG --shard i/N` (i from 0 to N-1) runs the per-row stages the methods need (generate, judge,
resample, paraphrase, judge_paraphrase; up to `--until`) for the examples whose id falls in shard i of N: the first
8 bytes of the id's sha256, modulo N, so every machine and every Python agrees. A shard needs the data
stage done first (`s3ft run CONFIG --until data`, once: every shard reads its examples) and reads nothing
another shard writes. Each of its stage units has a folder of its own, `RUN_DIR/shards/shard-i-of-N/
<NN_stage>/`, with rows, progress and manifest under the main unit's fingerprint, resumable like any unit;
a stage whose main unit is done already is read from the main folder (its ids' rows) and not run again.
With `cache.path` unset, a shard keeps its model-call cache in its own folder (SQLite on a network file
system is unsafe to share).

The next plain `s3ft run` merges: each of these units that is not done takes the rows of every shard folder
made under its fingerprint (`merge`), then runs as usual, making only the rows no shard made (none when all
finished), and writes its file in the data's order (`Rows.reorder`): the bytes one unsharded run writes.
The stage's shard folders are removed once its manifest is written (`cleanup`). Shards of two counts N
made under one fingerprint are refused, by a shard run and by the merge.

The file's order never depends on the sharding; its texts equal one run's where each row depends only on
its own example: true of the judges that run code or compare answers, and of a generation backend whose
output for a prompt does not depend on the other prompts of its batch (`hf` with `generate.batch_size: 1`;
vLLM only with its batch-invariant mode). Shards batch other prompts together than one run does, and batched
generation (padding, kernels chosen by batch shape) can move a logit's last digits and so a greedy token:
then the merged rows are a valid run of the same config, not byte for byte the unsharded one (docs/gpu.md,
"Past one machine").
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from s3ft import stops
from s3ft.errors import S3FTError
from s3ft.provenance import versions
from s3ft.rundir import STAGES, Rows, UnitDir, read_json, stage_root

log = logging.getLogger("s3ft.shards")

ROW_STAGES = ("generate", "judge", "resample", "paraphrase", "judge_paraphrase")
"""The stages whose rows each depend on one example (and its rows upstream): the ones a shard runs."""
_FOLDER = re.compile(r"shard-(\d+)-of-(\d+)")


def shard_of(id_: str, count: int) -> int:
    """The shard (0 to count-1) of an example id: stable across machines, processes and Python versions."""
    digest = hashlib.sha256(str(id_).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (`--shard index/count`, counting from 0)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not m:
            raise S3FTError(f"--shard {text!r}: write it as I/N, shard I of N counting from 0 "
                            "(0/4, 1/4, 2/4, 3/4; a Slurm array: --shard $SLURM_ARRAY_TASK_ID/4)")
        index, count = int(m[1]), int(m[2])
        if count < 1 or index >= count:
            raise S3FTError(f"--shard {text}: I must be 0 to N-1 (shards are counted from 0)" if count
                            else f"--shard {text}: N must be at least 1")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, id_: str) -> bool:
        return shard_of(id_, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_dir(run_dir: Path, shard: Shard) -> Path:
    return Path(run_dir) / "shards" / shard.name


def shard_units(run_dir: Path, stage: str, fp: str) -> list[tuple[Shard, UnitDir]]:
    """The shard folders of `stage` made under fingerprint `fp` (done or partial), by count, then index."""
    root, out = Path(run_dir) / "shards", []
    for d in (root.iterdir() if root.is_dir() else ()):
        m = _FOLDER.fullmatch(d.name)
        if not m or int(m[1]) >= int(m[2]):
            continue
        unit = UnitDir(d / stage_root(run_dir, stage).name, fp)
        made_under = (unit.manifest or read_json(unit.path / "progress.json") or {}).get("fingerprint")
        if made_under == fp:
            out.append((Shard(int(m[1]), int(m[2])), unit))
    return sorted(out, key=lambda x: (x[0].count, x[0].index))


def check_counts(found: list[tuple[Shard, UnitDir]], stage: str, count: int | None = None) -> None:
    """Refuse shards of another count than `count` (a shard run's N), or, for a merge, of two counts."""
    counts = sorted({s.count for s, _ in found})
    other = [n for n in counts if n != count] if count is not None else counts[1:]
    if not other:
        return
    made = " and ".join(f"{n} ({', '.join(s.name for s, _ in found if s.count == n)})" for n in counts)
    doing = f"this run is a shard of {count}" if count is not None else "a merge takes one count"
    raise S3FTError(f"{stage}: the run directory holds shards of this config made as shards of {made}; {doing}. "
                    "Shards of different counts do not mix: finish the shards of one count and merge them "
                    "(a plain `s3ft run`), or delete the other count's folders under shards/")


def progress(run_dir: Path, stage: str, fp: str) -> str | None:
    """For `s3ft status`: how many shards of `stage` are done, per count ("2 of 4 shards done, 1 partial")."""
    found = shard_units(run_dir, stage, fp)
    parts = []
    for n in sorted({s.count for s, _ in found}):
        states = [u.state() for s, u in found if s.count == n]
        done = states.count("done")
        parts.append(f"{done} of {n} shards done" + (f", {len(states) - done} partial" if len(states) > done else ""))
    return "; ".join(parts) or None


def merge(run_dir: Path, stage: str, unit: UnitDir) -> int:
    """Append the rows of every shard of `stage` made under the unit's fingerprint to its rows file (ids it
    holds already are skipped); returns how many rows were added. The stage then makes any that are missing
    and writes the file in the data's order."""
    found = shard_units(run_dir, stage, unit.fp)
    if not found:
        return 0
    check_counts(found, stage)
    rows = Rows(unit.path / "rows.jsonl")
    before = len(rows)
    for _, u in found:
        rows.append(Rows(u.path / "rows.jsonl").rows.values())
    count = found[0][0].count
    missing = sorted(set(range(count)) - {s.index for s, u in found if u.state() == "done"})
    log.info("%s: merged %d rows from %d of %d shards%s", stage, len(rows) - before, len(found), count,
             f"; not done: {', '.join(f'{i}/{count}' for i in missing)} (their rows are made here)" if missing else "")
    return len(rows) - before


def cleanup(run_dir: Path, stage: str) -> None:
    """Remove every shard's folder of `stage` (its main unit is done); then a shard folder that holds no stage
    any more (a model-call cache at most), and `shards/` when empty."""
    root = Path(run_dir) / "shards"
    if not root.is_dir():
        return
    for d in root.iterdir():
        if not _FOLDER.fullmatch(d.name):
            continue
        shutil.rmtree(d / stage_root(run_dir, stage).name, ignore_errors=True)
        if not any(p.is_dir() and p.name[:2].isdigit() for p in d.iterdir()):
            shutil.rmtree(d, ignore_errors=True)
    if not any(root.iterdir()):
        root.rmdir()


def run_shard(ctx, units: list, last: int, replan: Callable[[], list]) -> list[dict]:
    """Run shard `ctx.shard`'s per-row stage units (up to the stage numbered `last`); see the module docstring.
    `units`: the run's plan; `replan`: the plan again, after a hub commit moved (`Context.refresh_refs`)."""
    shard = ctx.shard
    data = next(u for u in units if u.stage == "data")
    if (state := data.state()) != "done":
        raise S3FTError(f"--shard {shard}: the data stage is {state}: run `s3ft run CONFIG --until data` once, "
                        "before the shards (every shard reads its examples)")
    todo = [u for u in units if u.stage in ROW_STAGES and STAGES.index(u.stage) <= last]
    main_done = {u.name: u.state() == "done" for u in todo}  # read before any stage folder is redirected
    for u in todo:
        if not main_done[u.name]:
            check_counts(shard_units(ctx.run_dir, u.stage, u.dir.fp), u.stage, shard.count)
            ctx.redirect[u.stage] = shard_dir(ctx.run_dir, shard) / stage_root(ctx.run_dir, u.stage).name
    results = []
    for u in todo:
        label = f"{u.name} [shard {shard}]"
        unit = replace(u, dir=UnitDir(ctx.stage_dir(u.stage), u.dir.fp))
        state = "done" if main_done[u.name] else unit.state()
        if state == "done":
            log.info("%s: done%s, skipped", label, " (merged)" if main_done[u.name] else "")
            results.append({"unit": label, "action": "skipped"})
            continue
        if state == "partial" and unit.dir.manifest is not None:
            (unit.dir.path / "manifest.json").unlink()  # needed rows grew: resume, keep rows
        action = "resumed" if state == "partial" else "ran"
        log.info("%s: %s", label, {"ran": "running", "resumed": "resuming"}[action])
        stops.at(label, unit.dir.path)
        unit.dir.begin()
        counts = unit.run(unit.dir.path)
        if ctx.refresh_refs():  # a hub commit moved: the manifest names the commit the stage used
            fresh = next(x for x in replan() if x.name == u.name)
            unit = replace(fresh, dir=UnitDir(unit.dir.path, fresh.dir.fp))
        m = unit.dir.finish(unit.stage, {**counts, "shard": str(shard)}, unit.inputs, versions())
        results.append({"unit": label, "action": action, "seconds": m["seconds"], "counts": counts})
    ctx.refresh_refs()
    return results
