"""Outputs a run can vouch for: what a unit's manifest records of its files, and the checks made against it.

When a unit is sealed (`UnitDir.finish`, the manifest written last) every file it made is recorded in the
manifest's `files` (path in the unit's folder: size, modification time, sha256) and their digest as `seal`;
a row file (`*.jsonl`) holding an id twice, or a line that is no JSON object, is refused then, naming the
file and line, so that no finished unit holds either. Reading a done unit (`s3ft status`, and every run before
it skips or reads the unit) compares sizes and modification times: a file deleted, or changed (its size, or,
where only its time moved, its hash), makes the unit stale, named, and the next run redoes it. `s3ft status
--verify` hashes every file again. A unit also records the seals of the units it read (`upstream`): an
upstream unit made again with other contents (sampled generations, `--force`) makes it stale too, though its
fingerprint did not move. Trainer checkpoints (`checkpoints/`, rotated while training) are no output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from s3ft.errors import InputError

UNRECORDED = {"manifest.json", "progress.json", "run.lock"}
"""A unit's files that are not its outputs: its life cycle's own (the manifest, the progress marker)."""
TRANSIENT_DIRS = {"checkpoints"}
"""Folders inside a unit that are resume points, not outputs (the trainer rotates them)."""

_hashes: dict[tuple, str] = {}  # (path, size, mtime_ns, ctime_ns, inode) -> sha256


def output_files(folder: Path) -> list[Path]:
    """The unit's output files, sorted: every file under `folder` but its life cycle's own, hidden (temporary)
    files and trainer checkpoints."""
    out = []
    for p in sorted(Path(folder).rglob("*")):
        rel = p.relative_to(folder).parts
        if (p.is_file() and not p.is_symlink() and not any(r.startswith(".") for r in rel)
                and not (len(rel) == 1 and rel[0] in UNRECORDED) and not TRANSIENT_DIRS & set(rel[:-1])):
            out.append(p)
    return out


def file_hash(path: Path, fresh: bool = False) -> str:
    """The sha256 of a file; read once per process while its size, times and inode stay (`fresh`: read again)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if fresh or key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _hashes[key] = h.hexdigest()
    return _hashes[key]


def check_rows(path: Path) -> int:
    """Refuse a row file holding a line that is no JSON object or an id twice (an `InputError` naming the file
    and line); returns its row count."""
    first: dict[str, int] = {}
    n = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as e:
                raise InputError(path, f"damaged row, not sealed: {e}", n) from None
            if not isinstance(row, dict):
                raise InputError(path, "damaged row, not sealed: each row is a JSON object", n)
            if "id" in row:
                key = str(row["id"])
                if key in first:
                    raise InputError(path, f"id {key!r} written twice (first at line {first[key]}): a unit's rows "
                                     "hold each id once; two runs writing one run directory?", n, "id")
                first[key] = n
    return len(first)


def seal(folder: Path) -> dict[str, dict]:
    """What a manifest records of a unit's files: path -> size, modification time (ns), sha256."""
    files = {}
    for p in output_files(folder):
        if p.suffix == ".jsonl":
            check_rows(p)
        st = p.stat()
        files[p.relative_to(folder).as_posix()] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                    "sha256": file_hash(p)}
    return files


def digest(files: dict[str, dict]) -> str:
    """One hash of a unit's sealed contents (paths and hashes; not times): what a downstream unit records."""
    blob = json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def label(folder: Path) -> str:
    """A unit's folder as status names it: `02_generate`, `06_select/sft`."""
    folder = Path(folder)
    return f"{folder.parent.name}/{folder.name}" if folder.parent.name[:2].isdigit() else folder.name


def changes(folder: Path, files: dict[str, dict] | None, rehash: bool = False) -> list[str]:
    """How a unit's files differ from what its manifest recorded (`files`; None: recorded nothing, an older
    manifest): one line per file deleted or changed. Sizes and times are compared; where only the time
    moved (or with `rehash`), the hash decides."""
    out = []
    for rel, want in (files or {}).items():
        p = Path(folder) / rel
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append(f"{label(folder)}/{rel} deleted")
            continue
        if st.st_size != want["size"]:
            out.append(f"{label(folder)}/{rel} changed (size {want['size']} -> {st.st_size} bytes)")
        elif (rehash or st.st_mtime_ns != want["mtime_ns"]) and file_hash(p, fresh=rehash) != want["sha256"]:
            out.append(f"{label(folder)}/{rel} changed (contents)")
    return out


def upstream_seals(upstream: dict[str, object]) -> dict[str, str | None]:
    """The seals of the units a unit reads (`upstream`: unit name -> its `UnitDir`), for its manifest."""
    return {name: (d.manifest or {}).get("seal") for name, d in upstream.items()}


def upstream_moved(recorded: dict[str, str | None] | None, upstream: dict[str, object]) -> list[str]:
    """The upstream units sealed with other contents than the unit read (where both seals are known)."""
    now = upstream_seals(upstream)
    return [f"upstream {name} made again with other contents" for name, seal in (recorded or {}).items()
            if seal and now.get(name) and now[name] != seal]



def require_sealed_rows(path: Path, rows: dict[str, dict]) -> None:
    """Refuse a done unit's row file (`rows`, read from `path`) holding fewer rows than the unit was sealed with
    (its manifest's `counts.rows`): a file that lost rows would change what is made from it without a word."""
    m = path.parent / "manifest.json"
    try:
        sealed = json.loads(m.read_text()).get("counts", {}).get("rows")
    except (OSError, ValueError):
        return
    if isinstance(sealed, int) and len(rows) < sealed:
        raise InputError(path, f"holds {len(rows)} rows, but its unit was sealed with {sealed}: the file lost rows; "
                         f"`s3ft run` redoes {label(path.parent)} (or `--force` its stage)")
