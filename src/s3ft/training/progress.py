"""Where the trainer's log lines go: to s3ft's log (stderr and the run's `run.log`), not stdout.

transformers prints each logged dict (`{'loss': ..., 'learning_rate': ...}`) to stdout, through its progress
bar's `write` or, with the bar off, `PrinterCallback`'s `print`, mixed into the output of the command.
`log_to_stderr(trainer)` takes both off and logs each dict as one line of the `s3ft.train` logger instead; the
progress bar itself (stderr) stays.
"""

from __future__ import annotations

import logging

log = logging.getLogger("s3ft.train")


def _line(logs: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items()
                     if k != "total_flos")


def log_to_stderr(trainer) -> None:
    """Route `trainer`'s logged dicts to the `s3ft.train` logger (main process only)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                log.info("step %d: %s", state.global_step, _line(logs))

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # the bar stays; its `write` of the dict to stdout goes (LossLog logs it)

    had_bar = trainer.pop_callback(ProgressCallback) is not None
    trainer.pop_callback(PrinterCallback)
    if had_bar:
        trainer.add_callback(QuietProgress)
    trainer.add_callback(LossLog)
