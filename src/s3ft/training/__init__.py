"""Fine-tuning: TRL's `SFTTrainer` on a training file of prompt-completion rows, LoRA (peft) or full, the loss
on the completion only. Nothing here knows about stages or run directories: `s3ft.stages.train` calls it.

- `rows`: reads and checks a training file (`read_train_rows`), compares two (`same_rows`).
- `model`: loads the base as training does (QLoRA's 4-bit base on a GPU), counts parameters, merges adapters.
- `args`: TRL's `SFTConfig` and peft's `LoraConfig` arguments from `train.*`.
- `loop`: `train_model`, checkpoints and resume, learning-curve snapshots, the metrics it returns.
- `launcher`: the same `train_model` in several processes under `accelerate launch`.

Importing this package imports no torch: each function imports what it needs when called. Nor does it import
`launcher`, which runs as `python -m s3ft.training.launcher` (runpy warns of a module its package imported before
running it): `launch` and `launched` are imported from it when first asked for.
"""

from s3ft.training.loop import train_model
from s3ft.training.rows import read_train_rows, same_rows

__all__ = ["launch", "launched", "read_train_rows", "same_rows", "train_model"]


def __getattr__(name: str):
    if name in ("launch", "launched"):
        from s3ft.training import launcher

        return getattr(launcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
