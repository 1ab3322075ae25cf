"""The run directory: one numbered folder per stage, resumable row files, atomic manifests.

A stage unit (a stage, or a stage for one method) owns a folder. While it runs, `progress.json`
holds the fingerprint it started under and its rows are appended to JSONL files, one flushed line
per row; it is done when `manifest.json` is written, last and atomically, with the fingerprint of
everything that determined its output. A unit whose fingerprint changed is stale and is rebuilt;
a unit killed halfway resumes from the rows already written. A finished row file is rewritten in the
data's order (`Rows.reorder`), so its bytes do not depend on batches, resumes or shards (`s3ft.shards`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from s3ft.errors import InputError
from s3ft.stops import writing
from s3ft.telemetry import peaks, reset_peaks
from s3ft.verify import changes, digest, seal, upstream_moved, upstream_seals

STAGES = ("data", "generate", "judge", "resample", "paraphrase", "judge_paraphrase", "select", "train", "evaluate",
          "report")

ADDED_STAGES = {"resample": "judge"}
"""Stages added after run directories were in use, each with the stage it follows, whose number its folder shares
(`03_resample` after `03_judge`): every other stage keeps its folder (`09_report`), so that a run directory made
before stays done, and `10_audit` stays past the stages."""


RECORD_FILES = ("pretrain.json",)
"""Files in a model folder that describe the model and that loading it never reads (s3ft's world build and
protocol record), besides Markdown (a model card): left out of the model's identity in fingerprints and cache
keys, so that writing a record or a card beside the weights makes nothing stale."""


def read_when_loading(name: str) -> bool:
    """Whether a file named `name` in a model folder can change what the loaded model does (not a record)."""
    return name not in RECORD_FILES and not name.lower().endswith(".md")


def dir_hash(path: str | Path) -> str:
    """A short hash of the names, sizes and mtimes of a directory's top-level (non-hidden) files, but for
    records and cards that loading never reads (`rundir.read_when_loading`)."""
    h = hashlib.sha256()
    for p in sorted(Path(path).iterdir()):
        if p.is_file() and not p.name.startswith(".") and read_when_loading(p.name):
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def rows_per_second(counts: dict, seconds: float) -> float | None:
    """Rows per second of a unit: the rows it made (`generated`), else its `rows`, else its `n`, per second."""
    n = next((counts[k] for k in ("generated", "rows", "n") if isinstance(counts.get(k), int)), None)
    return round(n / seconds, 2) if n is not None and seconds > 0 else None


def stage_root(run_dir: Path, stage: str) -> Path:
    """A stage's folder, `NN_<stage>`: NN counts the stages in order, but for those added later (`ADDED_STAGES`)."""
    numbered = [s for s in STAGES if s not in ADDED_STAGES]
    return Path(run_dir) / f"{numbered.index(ADDED_STAGES.get(stage, stage)) + 1:02d}_{stage}"


AUDIT_DIR = "10_audit"
"""Where `s3ft audit` writes its units, one folder per second judge: after the stages, read by none of them."""


def audit_root(run_dir: Path) -> Path:
    return Path(run_dir) / AUDIT_DIR


def fingerprint(obj: Any) -> str:
    """A short stable hash of any JSON-serialisable object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def unit_fingerprint(stage: str, inputs: dict) -> str:
    """The fingerprint of a stage unit whose output is determined by `inputs` (by name)."""
    return fingerprint({"stage": stage, **inputs})


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file of this process's own, then rename it over `path`: processes writing
    one file at once (shard runs on one shared run directory) each replace it whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with writing(path), open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no temporary file


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Rows:
    """An append-only JSONL file of rows keyed by `id`, safe to resume after a kill.

    Opening repairs a torn last line (a kill mid-write) by truncating it; rows already written are
    never rewritten, and `append` skips ids already present (or repeated in its batch), so a resumed
    stage never duplicates. A bad line with rows after it is no torn write but a damaged file, and
    so is an id written twice: both are an `InputError` naming the line, never a silent drop.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        parts = data.split(b"\n")
        good, first_line = 0, {}
        for n, raw in enumerate([p + b"\n" for p in parts[:-1]] + [parts[-1]] * bool(parts[-1]), 1):
            if not raw.endswith(b"\n"):
                break  # a torn write: the last line, cut short, is dropped
            if not raw.strip():
                good += len(raw)  # a blank line (hand-edited file): keep going
                continue
            try:
                row = json.loads(raw)
            except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError (a torn multi-byte character)
                if data[good + len(raw) :].strip():
                    raise InputError(self.path, f"damaged row file (not a torn last line): {e}", n) from None
                break  # the last line, unreadable: dropped like a torn one
            if not isinstance(row, dict) or "id" not in row:
                raise InputError(self.path, "damaged row file: each row is a JSON object with an id", n, "id")
            key = str(row["id"])
            if key in first_line:
                raise InputError(self.path, f"id {key!r} written twice (first at line {first_line[key]})", n, "id")
            self.rows[key], first_line[key] = row, n
            good += len(raw)
        if good != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def __contains__(self, id_: str) -> bool:
        return id_ in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, rows: Iterable[dict]) -> None:
        """Append the rows whose ids are new, in order (a repeated id: its first row). Every row is
        serialised before anything is written, so a row that cannot be leaves the file as it was."""
        new: dict[str, dict] = {}
        for r in rows:
            key = str(r["id"])
            if key not in self.rows and key not in new:
                new[key] = r
        if not new:
            return
        data = b"".join(_json_line(r) for r in new.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with writing(self.path), open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.rows.update(new)

    def reorder(self, order: Iterable[str]) -> None:
        """Rewrite the file (atomically) with its rows in `order`, a list of ids (rows it does not list keep
        their order, after the others). A stage calls it when it has written every row, with the data's
        order: rows are made longest prompt first, in batches, maybe over several resumed starts or shards,
        and a finished file must not depend on how it was made. Each row is written as `append` wrote it."""
        rank = {str(i): k for k, i in enumerate(order)}
        keys = sorted(self.rows, key=lambda k: rank.get(k, len(rank)))
        if keys == list(self.rows):
            return
        write_jsonl(self.path, (self.rows[k] for k in keys))
        self.rows = {k: self.rows[k] for k in keys}


def _json_line(row: dict) -> bytes:
    """One UTF-8 JSONL line. Text that UTF-8 cannot hold (a lone surrogate, as a `\\ud800` escape in JSON
    gives) is written as a JSON escape instead, so that the row reads back the same."""
    try:
        return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(row) + "\n").encode("ascii")


def rows_by_id(path: Path) -> dict[str, dict]:
    """A stage's rows keyed by id; empty when the stage has written none."""
    path = Path(path)
    return {str(r["id"]): r for r in read_jsonl(path)} if path.exists() else {}


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write a whole JSONL file atomically; returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    try:
        with writing(path), open(tmp, "wb") as f:
            for r in rows:
                f.write(_json_line(r))
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no temporary file
    return n


def read_jsonl(path: Path) -> list[dict]:
    """Every row of a JSONL file; a damaged one is an `InputError` naming the file and line."""
    rows = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                try:
                    rows.append(json.loads(raw))
                except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError
                    raise InputError(path, f"damaged row: {e}", n) from None
    return rows


class UnitDir:
    """The folder of one stage unit and its life cycle: state, begin, finish."""

    def __init__(self, path: Path, fp: str):
        self.path, self.fp = Path(path), fp
        self.upstream: dict[str, UnitDir] = {}
        """The units it reads, by name (set by the plan): their seals are recorded when it is sealed."""

    @property
    def manifest(self) -> dict | None:
        return read_json(self.path / "manifest.json")

    def state(self) -> str:
        """`done`, `stale` (done under another fingerprint, or its files or an upstream's changed since: `tampered`),
        `partial` (started, not done) or `todo`."""
        m = self.manifest
        if m is not None:
            return "done" if m.get("fingerprint") == self.fp and not self.tampered(manifest=m) else "stale"
        return "partial" if (self.path / "progress.json").exists() else "todo"

    def tampered(self, rehash: bool = False, manifest: dict | None = None) -> list[str]:
        """How the sealed unit changed since (`s3ft.verify`): its files deleted or changed (`rehash`: every file
        hashed again), or an upstream unit made again with other contents. Empty when not sealed. `manifest`: the
        manifest already read (it is read from disk otherwise)."""
        m = manifest if manifest is not None else self.manifest
        if m is None:
            return []
        return changes(self.path, m.get("files"), rehash) + upstream_moved(m.get("upstream"), self.upstream)

    def refused(self) -> str | None:
        """Why the unit's last attempt was not sealed (`finish` refused its files), while it is not done; else None."""
        progress = read_json(self.path / "progress.json") or {}
        return progress.get("refused") if self.manifest is None else None

    def begin(self, force: bool = False) -> None:
        """Prepare to run: wipe a stale, forced or differently-fingerprinted partial unit, and one whose files were
        refused when sealed (`refused`: resuming would read them again); keep a resumable one."""
        progress = read_json(self.path / "progress.json")
        resumable = (progress is not None and progress.get("fingerprint") == self.fp and self.manifest is None
                     and "refused" not in progress)
        if self.path.exists() and (force or not resumable):
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if not resumable or force:
            write_json_atomic(self.path / "progress.json", {"fingerprint": self.fp, "started": time.time()})
        reset_peaks()

    def finish(self, stage: str, counts: dict, inputs: dict | None = None, versions: dict | None = None) -> dict:
        """Write the manifest: the fingerprint, the counts, the fingerprint's named inputs (what `s3ft status`
        compares to say why a unit is stale), the versions that produced the unit, its wall time, rows per second
        (`rows_per_second`) and peak memory (`peaks`; of this execution, where a killed unit resumed)."""
        progress = read_json(self.path / "progress.json") or {}
        started = progress.get("started", time.time())
        seconds = round(time.time() - started, 2)
        try:
            files = seal(self.path)  # refuses a row file holding an id twice
        except InputError as e:  # recorded for `s3ft status` (`refused`); the next run starts the unit afresh
            write_json_atomic(self.path / "progress.json", {**progress, "refused": str(e)})
            raise
        manifest = {
            "stage": stage,
            "fingerprint": self.fp,
            "counts": counts,
            "inputs": inputs or {},
            "versions": versions or {},
            "started": started,
            "finished": time.time(),
            "seconds": seconds,
            "rows_per_s": rows_per_second(counts, seconds),
            **peaks(),
            "files": files,
            "seal": digest(files),
            "upstream": upstream_seals(self.upstream),
        }
        write_json_atomic(self.path / "manifest.json", manifest)
        return manifest
