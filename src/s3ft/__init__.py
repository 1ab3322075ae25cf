"""s3ft: Selective Self-to-Supervised Fine-Tuning (Gupta et al., NAACL Findings 2025).

The Python API mirrors the CLI: `load_config`, `validate`, `run` (with `until`, `force`, `only`, `shard`),
`status`, `export`, `audit`, `listing`. Each stage is a module `s3ft.stages.<stage>` with `units(ctx, fps)` and
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
    """Run the pipeline (`shard`: "i/N", the per-row stages for shard i of N; see `s3ft.shards`); its log lines
    are also appended to `run_dir/run.log`."""
    from s3ft.logs import run_log
    from s3ft.pipeline import run as _run
    from s3ft.shards import Shard

    if isinstance(shard, str):
        shard = Shard.parse(shard)  # a bad --shard is refused before anything is written
    with run_log(cfg.run_dir):
        return _run(cfg, until=until, force=force, only=only, shard=shard)


def status(run_dir: str | Path, overrides: list[str] = (), verify: bool = False) -> list[dict]:
    """Stage states of a run directory, read against the config saved in it; or, given a config file, of its
    `run_dir` read against that config (with `overrides`). A run directory is the run wherever it lies: moved or
    copied, it is read where it is now, whatever `run_dir` its saved config names. `verify`: hash every finished
    unit's files again (otherwise their sizes and modification times are compared with the manifest's)."""
    from s3ft.pipeline import status as _status

    return _status(run_config(run_dir, overrides), verify=verify)


def run_config(run_dir: str | Path, overrides: list[str] = ()) -> Config:
    """The config of a run directory (its saved `config.yaml`, `run_dir` set to where the folder is now), or of
    a config file (a `.yaml`/`.yml` file: as `s3ft run` reads it)."""
    from s3ft.errors import S3FTError

    p = Path(run_dir)
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        return load_config(p, overrides)
    saved = p / "config.yaml"
    if not saved.is_file():
        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml) or a config file")
    return load_config(saved, overrides).model_copy(update={"run_dir": str(p)})


def export(run_dir: str | Path, out: str | Path | None = None, methods: list[str] | None = None,
           merge: bool = False, push: str | None = None, adapter: bool = False) -> dict[str, dict[str, str]]:
    """Write a run's training sets (HF dataset, LLaMA-Factory, axolotl, with cards) under `out` (default
    `run_dir/export`) and, with `merge`, its trained models as full weights, with `adapter`, its LoRA adapters;
    `push`: a hub repo id to upload one method's folders to. Returns each method's folders (see
    `s3ft.export`)."""
    from s3ft.export.write import export as _export

    return _export(run_dir, out, methods, merge=merge, push_to=push, adapter=adapter)


def audit(run_dir: str | Path, judge: str | Path, n: int = 200, seed: int = 0) -> dict:
    """Re-judge a seeded stratified sample of `n` verdicts of the finished run in `run_dir` with the second judge
    the YAML file `judge` names; writes `run_dir/10_audit/<judge>/` (rows.jsonl, audit.json, audit.md) and returns
    audit.json's numbers (see `s3ft.judge_audit`, docs/audit.md). Its log lines are also appended to `run_dir/run.log`."""
    from s3ft.judge_audit import audit as _audit
    from s3ft.logs import run_log

    if not (Path(run_dir) / "config.yaml").is_file():  # before run.log is written into a folder that is no run
        from s3ft.errors import S3FTError

        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml)")
    with run_log(run_dir):
        return _audit(run_dir, judge, n=n, seed=seed)


def validate(cfg: Config) -> list[str]:
    from s3ft.validate import validate as _validate

    return _validate(cfg)


def listing() -> str:
    """Tasks, judges, backends and methods, each with the first line of its docstring."""
    from s3ft.methods import METHOD_NEEDS, TARGETS
    from s3ft.registry import KINDS

    lines = []
    for kind, table in KINDS.items():
        lines.append(f"{kind}s:")
        for name, target in table.items():
            lines.append(f"  {name:<10} {_one_line(target)}")
    lines.append("methods:")
    for m, (own, para) in METHOD_NEEDS.items():
        lines.append(f"  {m:<10} targets: {TARGETS[m]} (own answers: {'yes' if own else 'no'}; paraphrases: "
                     f"{para or 'none'})")
    return "\n".join(lines)



def _one_line(target: str) -> str:
    """What a plug-in is, in one line: the first paragraph of its class's docstring (else its module's), read
    from the source without importing it (`s3ft ls` stays fast), then where it lives."""
    import ast
    import importlib.util

    module, _, attr = target.partition(":")
    try:
        tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8"))
    except (ImportError, AttributeError, OSError, SyntaxError, TypeError):
        return target
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == attr), None)
    doc = (cls and ast.get_docstring(cls)) or ast.get_docstring(tree) or ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    for noise in ("; reads rows, writes nothing", ", writes nothing", " (see the module docstring)"):
        text = text.replace(noise, "")
    return f"{text} ({target})" if text else target
