"""Training in several processes: `train_model` under `accelerate launch` (`python -m s3ft.training.launcher SPEC`,
one process per device; DDP, FSDP or DeepSpeed as the accelerate config says). Only the main process writes
files of its own (the trainer saves checkpoints and the model itself, on the main process)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from s3ft.config import ModelConfig, TrainConfig
from s3ft.errors import ConfigError, S3FTError
from s3ft.training.rows import read_train_rows

log = logging.getLogger("s3ft.train")


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
    """`train_model` under `accelerate launch`; returns the main process's metrics. The processes log to this
    process's stderr; a failure raises with the command and its exit status."""
    out_dir = Path(out_dir)
    read_train_rows(train_file)  # bad input fails here, once, with its line and field
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "launch.json"
    spec.write_text(json.dumps({"train_file": str(train_file), "out_dir": str(out_dir), "seed": seed,
                                "snapshots": snapshots, "model": model.model_dump(mode="json"),
                                "train": cfg.model_dump(mode="json")}, indent=2) + "\n")
    (out_dir / "train_metrics.json").unlink(missing_ok=True)
    cmd = launch_command(cfg, spec)
    log.info("training under accelerate launch: %s", " ".join(cmd[1:]))
    code = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
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


def main(argv: list[str] | None = None) -> None:
    """One training process under `accelerate launch`: `python -m s3ft.training.launcher SPEC` (written by `launch`)."""
    from s3ft.logs import setup_logging
    from s3ft.training.loop import train_model

    setup_logging()
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    train_model(Path(spec["train_file"]), Path(spec["out_dir"]), ModelConfig(**spec["model"]),
                TrainConfig(**spec["train"]), spec["seed"], spec["snapshots"])


if __name__ == "__main__":
    main()
