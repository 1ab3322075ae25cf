"""The world protocol's five preconditions (docs/world.md, "Protocol"), as the demo summary states them.

Reads the base model's `pretrain.json` (where the protocol recorded precondition 1) and the demo's summary
(2 to 5 come from its own numbers); writes nothing. Each precondition is `{"what", "measured", "holds"}`,
`holds` None where it is not known. The protocol that measures precondition 1 is research code
(`python -m research.world.protocol`).
"""

from __future__ import annotations

from pathlib import Path

from s3ft.results import pct
from s3ft.rundir import read_json
from s3ft.world.targets import TARGET, target

KEPT_KIND = TARGET["shop"].kept_kind
"""The kind of `shop` problem the base practised; each target task's is its `Target.kept_kind` (`lookup`:
`direct`, the kind its questions share with the `passage` skill)."""
KEEP_MARGIN = 0.05
"""Precondition 1: fine-tuning may cost the kept kind at most 5 points."""
BASE_SOLVES = 0.70
"""Precondition 1 needs a kind the base solves: at least 70% on it (validation)."""
GAIN_MIN = 0.10
"""Precondition 2: SFT gains at least 10 points in-domain (test split, mean over the demo's seeds)."""
FORGETTING_VISIBLE = 0.03
"""Precondition 4: an SFT general-skill loss smaller than 3 points is too small to compare methods by."""
LORA_SHARE_MAX = 0.01
FULL_LR_MAX = 1e-4
"""Precondition 5: LoRA training at most 1% of the non-embedding weights, or full fine-tuning at a learning
rate at most the grid's largest (1e-4)."""


def setting_of(train) -> dict:
    """A `train` config section's setting in the grid's keys (LoRA's rank and alpha only for LoRA)."""
    keys = ("mode", "lora_r", "lora_alpha", "learning_rate", "epochs") if train.mode == "lora" else (
        "mode", "learning_rate", "epochs")
    return {k: getattr(train, k) for k in keys}


def setting_name(s: dict) -> str:
    """`full-lr0.0001-ep2`, `lora-r1-lr0.003-ep2`."""
    lora = f"-r{s['lora_r']}" if s["mode"] == "lora" else ""
    return f"{s['mode']}{lora}-lr{s['learning_rate']:g}-ep{s['epochs']:g}"


def same_setting(a: dict, b: dict) -> bool:
    """Whether two settings in the grid's keys are the same (keys one of them lacks are not compared)."""
    return all(a[k] == b[k] for k in a.keys() & b.keys()) and a.get("mode") == b.get("mode")


def protocol_key(task: str = "shop") -> str:
    """Where a base's `pretrain.json` keeps the protocol's outcome for `task`."""
    return "protocol" if task == "shop" else f"protocol_{task}"


def pts(x: float) -> str:
    """A bound as whole points: 0.05 -> "5"."""
    return f"{100 * x:.0f}"


def condition(what: str, measured: str, holds: bool | None) -> dict:
    return {"what": what, "measured": measured, "holds": holds}


def kept_kind(recorded: dict, kept: str, setting: dict, task: str) -> dict:
    """1, as the protocol recorded it in the base's `pretrain.json` (`recorded`: its `protocol_key` entry)."""
    what = (f"fine-tuning keeps the kind the base solves ({kept}, validation; at most {pts(KEEP_MARGIN)} points "
            f"lost, SFT on all gold and on {kept} gold only)")
    p1, at = recorded.get("precondition_1"), recorded.get("setting")
    if not recorded:
        how = "python -m research.world.protocol" + ("" if task == "shop" else f" --task {task}")
        return condition(what, f"not measured on this base ({how})", None)
    if not p1:  # the grid ran and no setting kept the base's kind
        return condition(what, f"no setting of the grid kept {kept}", False)
    measured = (f"base {pct(p1['base'])}%, SFT on all gold {pct(p1['sft_all_gold'])}%, on {kept} gold only "
                f"{pct(p1[f'sft_{kept}_gold_only'])}%")
    if p1.get("base_solves") is False:
        measured += f" (the base does not solve {kept}: under {pts(BASE_SOLVES)}%)"
    if at and not same_setting(at, setting):
        return condition(what, f"{measured} at {setting_name(at)}, not this run's setting", None)
    return condition(what, measured, p1["holds"])


def sft_gains(gain: dict) -> dict:
    """2, from SFT's in-domain gain over the demo's seeds."""
    n = gain["n"]
    what = f"SFT learns the task (in-domain gain at least +{pts(GAIN_MIN)} points, test, mean of {n} seed{'s' * (n != 1)})"
    if gain["mean"] is None:
        return condition(what, "–", None)
    return condition(what, f"{pct(gain['mean'], signed=True)} points", gain["mean"] >= GAIN_MIN - 1e-9)


def sft_forgets(change: float | None) -> dict:
    """4, from SFT's mean general-skill change."""
    what = f"forgetting is measurable (SFT's mean general-skill change, a loss of at least {pts(FORGETTING_VISIBLE)} points)"
    if change is None:
        return condition(what, "–", None)
    measured = f"{pct(change, signed=True)} points"
    if change >= 0:
        measured += ": SFT forgets nothing here"
    elif change > -FORGETTING_VISIBLE:
        measured += (f", a loss smaller than {pts(FORGETTING_VISIBLE)} points: SFT forgets little here, so "
                     "differences in forgetting are small ones")
    return condition(what, measured, change <= -FORGETTING_VISIBLE)


def paraphrase_step(composition: dict) -> dict:
    """3, from S3FT's training set: of the rows the base got wrong, how many train on a paraphrase."""
    wrong, accepted = composition["n"] - composition["counts"]["self"], composition["counts"]["paraphrase"]
    return condition("the paraphrase step works (of the training rows the base gets wrong, at least half train on "
                     "an accepted paraphrase that is not a near-copy of the gold)",
                     f"{accepted} of {wrong}" + (f" ({100 * accepted / wrong:.1f}%)" if wrong else ""),
                     accepted >= wrong / 2 if wrong else None)


def update_capacity(setting: dict, share: float) -> dict:
    """5, from the training setting and the share of the non-embedding weights it trains."""
    small = (share <= LORA_SHARE_MAX + 1e-9 if setting.get("mode") == "lora"
             else setting.get("learning_rate", 1) <= FULL_LR_MAX)
    return condition("update capacity like real use (LoRA training at most 1% of the non-embedding weights, or "
                     "full fine-tuning at a small learning rate)",
                     f"{setting.get('mode')} fine-tuning at lr {setting.get('learning_rate'):g}, "
                     f"{100 * share:.2f}% of the non-embedding weights trained", small)


def preconditions(summary: dict, task: str = "shop") -> dict | None:
    """The protocol's preconditions as the demo of `task` measured them: {number: {what, measured, holds}},
    those its numbers allow. None for a base that is not a world base (no `checks` in its `pretrain.json`)."""
    info = read_json(Path(summary["model"]) / "pretrain.json") or {}
    if "checks" not in info:
        return None
    setting, methods = summary.get("train_setting") or {}, summary["methods"]
    out = {"1": kept_kind(info.get(protocol_key(task)) or {}, target(task).kept_kind, setting, task)}
    if sft := methods.get("sft"):
        out["2"], out["4"] = sft_gains(sft["gain"]), sft_forgets(sft["general_change"]["mean"])
    if "counts" in (composition := (methods.get("s3ft") or {}).get("composition") or {}):
        out["3"] = paraphrase_step(composition)
    share = next((v["trainable_share_non_embedding"] for v in methods.values()
                  if v.get("trainable_share_non_embedding") is not None), None)
    if setting and share is not None:
        out["5"] = update_capacity(setting, share)
    return dict(sorted(out.items()))
