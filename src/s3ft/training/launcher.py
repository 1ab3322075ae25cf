"""Training in several processes: `train_model` under `accelerate launch` (`python -m s3ft.training.launcher SPEC`,
one process per device; DDP, FSDP or DeepSpeed as the accelerate config says). Only the main process writes
files of its own (the trainer saves checkpoints and the model itself, on the main process); it also appends its log
lines to the run's `run.log` (`s3ft.logs.current_run_log`). A process that fails writes what failed to `FAILED`
and exits without a traceback on the terminal: this process raises it in one line (a model that does not load
names `model.path`), the traceback its `detail` (kept in `run.log`)."""

from __future__ import annotations

import codecs
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError, S3FTError
from s3ft.logs import current_run_log
from s3ft.training.rows import read_train_rows

log = logging.getLogger("s3ft.train")
FAILED = "launch_failed.json"
"""What a failed training process writes into the output folder: the error's kind, message and traceback."""


def launched(cfg: TrainConfig) -> bool:
    """Whether training runs under `accelerate launch` (several processes, or an accelerate config)."""
    return cfg.num_processes > 1 or cfg.accelerate_config is not None


def launch_command(cfg: TrainConfig, spec: Path) -> list[str]:
    """`accelerate launch` of `python -m s3ft.training.launcher SPEC`: with the user's accelerate config file, or
    as torchrun (`--multi_gpu`, which is also how several CPU processes run, with gloo) of `num_processes`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if cfg.accelerate_config is not None:
        if not Path(cfg.accelerate_config).is_file():
            raise ConfigError(None, "train.accelerate_config", f"no such file: {cfg.accelerate_config}")
        cmd += ["--config_file", str(cfg.accelerate_config)]
    else:
        cmd += ["--multi_gpu", "--num_machines", "1", "--dynamo_backend", "no"]
    if cfg.num_processes > 1:
        cmd += ["--num_processes", str(cfg.num_processes)]
    return [*cmd, "--mixed_precision", "no", "-m", "s3ft.training.launcher", str(spec)]


def launch(train_file: Path, out_dir: Path, model: ModelConfig, cfg: TrainConfig, seed: int,
           snapshots: int = 0) -> dict:
    """`train_model` under `accelerate launch`; returns the main process's metrics. The processes' output is shown
    on this process's stderr as it comes; a failure raises in one line (see the module docstring), or, where no
    process said why, with the command and its exit status."""
    out_dir = Path(out_dir)
    read_train_rows(train_file)  # bad input fails here, once, with its line and field
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "launch.json"
    run_log = current_run_log()
    spec.write_text(json.dumps({"train_file": str(train_file), "out_dir": str(out_dir), "seed": seed,
                                "snapshots": snapshots, "model": model.model_dump(mode="json"),
                                "train": cfg.model_dump(mode="json"),
                                "run_log": str(run_log) if run_log else None}, indent=2) + "\n")
    (out_dir / "train_metrics.json").unlink(missing_ok=True)
    failed = out_dir / FAILED
    failed.unlink(missing_ok=True)
    cmd = launch_command(cfg, spec)
    log.info("training under accelerate launch: %s", " ".join(cmd[1:]))
    code, after = run_shown(cmd, failed)
    if failed.is_file():
        failure = json.loads(failed.read_text())
        failed.unlink()
        raise launch_error(failure, code, after)
    metrics = out_dir / "train_metrics.json"
    if code != 0 or not metrics.is_file():
        raise S3FTError(f"training under accelerate launch failed (exit status {code}; its log is above): "
                        f"{' '.join(cmd)}")
    result = json.loads(metrics.read_text())
    asked = asked_distribution(cfg.accelerate_config)
    if asked in ("FSDP", "DEEPSPEED") and result.get("distributed") != asked:
        log.warning("%s asks for %s, but accelerate ran the training as %s (accelerate runs FSDP and DeepSpeed "
                    "only on GPUs and other accelerators, not on a CPU)", cfg.accelerate_config, asked,
                    result.get("distributed"))
    return result


def asked_distribution(config_file: str | None) -> str | None:
    """The `distributed_type` an accelerate config file (YAML or JSON) asks for, if it says."""
    if config_file is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(Path(config_file).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(data.get("distributed_type")).upper() if isinstance(data, dict) else None


def run_shown(cmd: list[str], failed: Path) -> tuple[int, str]:
    """Run `cmd`, its output (stdout and stderr: the processes' log lines and progress bars) shown on this process's
    stderr as it comes until a process has written `failed`; returns the exit status and the output after that
    (torchrun's report of the failed process), not shown."""
    decode, after = codecs.getincrementaldecoder("utf-8")(errors="replace").decode, []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            while chunk := proc.stdout.read1(1 << 16):
                if after or failed.exists():
                    after.append(decode(chunk))
                else:
                    sys.stderr.write(decode(chunk))
                    sys.stderr.flush()
        except BaseException:  # Ctrl-C: as subprocess.run does
            proc.kill()
            raise
    return proc.returncode, "".join(after)


def launch_error(failure: dict, code: int, after: str) -> S3FTError:
    """The one-line error for a training process's `FAILED` report: a config error as it was (a model that does not
    load names `model.path`), else the exception's kind and first line; the traceback its `detail`."""
    if failure["key"]:
        err = ConfigError(None, failure["key"], failure["message"])
    elif failure["ours"]:  # s3ft's own error (bad rows, a refused setting): as it was
        err = S3FTError(failure["message"])
    else:
        first = next((x for x in failure["message"].splitlines() if x.strip()), "")
        err = S3FTError(f"training under accelerate launch failed (exit status {code}): {failure['kind']}: {first}")
    err.detail = failure["traceback"].rstrip() + ("\n" + after.rstrip() if after.strip() else "")
    return err


def main(argv: list[str] | None = None) -> None:
    """One training process under `accelerate launch`: `python -m s3ft.training.launcher SPEC` (written by `launch`).
    The main process appends its log lines to the run's `run.log`; a failure is written to `FAILED`, not shown."""
    import contextlib

    from s3ft.logs import run_log, setup_logging
    from s3ft.rundir import write_json_atomic
    from s3ft.training.loop import train_model

    setup_logging()
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    main_process = os.environ.get("RANK", "0") == "0"
    log_file = Path(spec["run_log"]) if spec.get("run_log") and main_process else None
    with run_log(log_file.parent, header=False) if log_file else contextlib.nullcontext():
        try:
            train_model(Path(spec["train_file"]), Path(spec["out_dir"]), ModelConfig(**spec["model"]),
                        TrainConfig(**spec["train"]), spec["seed"], spec["snapshots"])
        except Exception as e:
            rank, config = os.environ.get("RANK", "0"), isinstance(e, ConfigError)
            write_json_atomic(Path(spec["out_dir"]) / FAILED, {
                "kind": type(e).__name__, "rank": int(rank), "key": e.key if config else None,
                "ours": isinstance(e, S3FTError), "message": e.message if config else str(e),
                "traceback": f"training process {rank}: " + "".join(traceback.format_exception(e))})
            sys.exit(1)


if __name__ == "__main__":
    main()
