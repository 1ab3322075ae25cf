"""`s3ft export`: a run's training sets, and its trained models, in the forms other tools read (`write.export`).

- `formats`: the rows of TRL, LLaMA-Factory and axolotl;
- `cards`: the README.md of each exported dataset and model;
- `write`: writing them under OUT, merged models and adapters, hub upload.
"""

from s3ft.export.write import export, summary

__all__ = ["export", "summary"]
