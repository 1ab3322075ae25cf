"""s3ft: Selective Self-to-Supervised Fine-Tuning (Gupta et al., NAACL Findings 2025).

The Python API mirrors the CLI: `load_config`, `validate`, `run` (with `until`, `force`, `only`, `shard`),
`status`, `export`, `listing`. Each stage is a module `s3ft.stages.<stage>` with `units(ctx, fps)` and
`run(ctx, out_dir)`; the layout is in docs/design.md.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# the submodules are loaded now, so that `validate` and `export` below stay the functions (a later first import
# of a submodule would rebind the package's attribute of that name to it)
import s3ft.export  # noqa: E402, F401
import s3ft.validate  # noqa: E402, F401
from s3ft.config import Config, load_config  # noqa: E402


def run(cfg: Config, until: str | None = None, force: list[str] = (), only: list[str] | None = None,
        shard: str | None = None) -> list[dict]:
    """Run the pipeline (`shard`: "i/N", the per-row stages for shard i of N; see `s3ft.shards`)."""
    from s3ft.pipeline import run as _run

    return _run(cfg, until=until, force=force, only=only, shard=shard)


def status(run_dir: str | Path) -> list[dict]:
    """Stage states of a run directory, read against the config saved in it."""
    from s3ft.errors import S3FTError
    from s3ft.pipeline import status as _status

    saved = Path(run_dir) / "config.yaml"
    if not saved.is_file():
        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml)")
    return _status(load_config(saved))


def export(run_dir: str | Path, out: str | Path | None = None, methods: list[str] | None = None,
           merge: bool = False, push: str | None = None, adapter: bool = False) -> dict[str, dict[str, str]]:
    """Write a run's training sets (HF dataset, LLaMA-Factory, axolotl, with cards) under `out` (default
    `run_dir/export`) and, with `merge`, its trained models as full weights, with `adapter`, its LoRA adapters;
    `push`: a hub repo id to upload one method's folders to. Returns each method's folders (see
    `s3ft.export`)."""
    from s3ft.export.write import export as _export

    return _export(run_dir, out, methods, merge=merge, push_to=push, adapter=adapter)


def validate(cfg: Config) -> list[str]:
    from s3ft.validate import validate as _validate

    return _validate(cfg)


def listing() -> str:
    """Tasks, judges, backends and methods, each with the first line of its docstring."""
    from s3ft.methods import METHOD_NEEDS
    from s3ft.registry import KINDS

    lines = []
    for kind, table in KINDS.items():
        lines.append(f"{kind}s:")
        for name, target in table.items():
            lines.append(f"  {name:<10} {target}")
    lines.append("methods:")
    for m, (own, para) in METHOD_NEEDS.items():
        lines.append(f"  {m:<10} own answers: {'yes' if own else 'no'}; paraphrases: {para or 'none'}")
    return "\n".join(lines)

