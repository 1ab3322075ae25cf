"""The miniature world as `s3ft demo` uses it at run time: its shipped files, its target tasks, its preconditions.

The world is a set of procedural skills, a tiny base model pre-trained on them, and two target tasks to
fine-tune it for (`docs/world.md`). The package holds only what a run reads:

- `targets`: where the shipped splits (`s3ft/data/world/`) and base model (`s3ft/data/world_model/`) are,
  the target tasks (`shop`, `lookup`) with their kinds of question and demo configs, and accuracy by kind;
- `conditions`: the protocol's five preconditions, read from the base's `pretrain.json` and the demo's
  numbers, as the demo summary states them.

Everything that builds the world (the skill generators, the splits, pre-training a base, the settings grid,
scoring a base) is research code outside the installed package, in the repository's `research/world/`,
run from the repository root (`python -m research.world.pretrain DIR`; `research/world/NOTES.md`).
"""

from __future__ import annotations

from s3ft.world.conditions import (
    BASE_SOLVES,
    FORGETTING_VISIBLE,
    FULL_LR_MAX,
    GAIN_MIN,
    KEEP_MARGIN,
    KEPT_KIND,
    LORA_SHARE_MAX,
    preconditions,
    protocol_key,
    same_setting,
    setting_name,
    setting_of,
)
from s3ft.world.targets import (
    LOOKUP_KINDS,
    SHIPPED_BASE,
    SHIPPED_DIR,
    SHOP_KINDS,
    SHOP_V5_KINDS,
    TARGET,
    TARGETS,
    TEMPLATE_SHARING_V5,
    V5_BASES,
    V5_DIR,
    Target,
    by_kind,
    kind_of_v5,
    kind_rates,
    share_correct,
    shipped_split,
    split_rows,
    target,
    target_of,
    task_config,
)

__all__ = [
    "BASE_SOLVES", "FORGETTING_VISIBLE", "FULL_LR_MAX", "GAIN_MIN", "KEEP_MARGIN", "KEPT_KIND", "LOOKUP_KINDS",
    "LORA_SHARE_MAX", "SHIPPED_BASE", "SHIPPED_DIR", "SHOP_KINDS", "SHOP_V5_KINDS", "TARGET", "TARGETS", "TEMPLATE_SHARING_V5", "Target",
    "V5_BASES", "V5_DIR",
    "by_kind", "kind_of_v5", "kind_rates", "preconditions", "protocol_key", "same_setting", "setting_name", "setting_of", "share_correct",
    "shipped_split", "split_rows", "target", "target_of", "task_config",
]
