"""The world's settings protocol: `python -m s3ft.world.protocol OUT_DIR [--base MODEL_DIR]`.

The fine-tuning settings of the demo are chosen by SFT's accuracy on the target task's validation split,
and by nothing else: never the test split, never another method's numbers (docs/world.md, "Protocol").
`GRID` and `choose` were written down, and committed, before the grid ran. For every setting the demo
config is run with SFT alone, from the base model, trained on the target's training split and scored on
its validation split (900 problems, 300 of each kind). Then, at the chosen setting, precondition 1: SFT on
the gold rows of the kind of problem the base already solves only, scored on that kind.

Writes `OUT_DIR/<setting>/` (ordinary run directories, sharing one model-call cache), `OUT_DIR/grid.json`
(every setting's accuracy, per kind, its trainable share and training time; the base's; the rule; the
choice; precondition 1) and `OUT_DIR/grid.md` (the same as a table). Resumable like any run. With
`--apply CONFIG`, writes the chosen setting into CONFIG's `train:` block (the demo's config), which freezes it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from s3ft.world.skills import TARGET

log = logging.getLogger("s3ft.world")

GRID: list[dict] = [
    # full fine-tuning at small learning rates (the base was pre-trained at 2e-3)
    {"mode": "full", "learning_rate": 1e-5, "epochs": 1},
    {"mode": "full", "learning_rate": 3e-5, "epochs": 1},
    {"mode": "full", "learning_rate": 1e-4, "epochs": 1},
    {"mode": "full", "learning_rate": 3e-5, "epochs": 2},
    {"mode": "full", "learning_rate": 1e-4, "epochs": 2},
    # LoRA r 1 on every linear layer: 0.57% of the non-embedding weights (r 16 on Mistral-7B: ~0.6%)
    {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 1e-3, "epochs": 1},
    {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 3e-3, "epochs": 1},
    {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 3e-3, "epochs": 2},
]
"""The settings searched (seed 0, SFT only). Everything else is the task's demo config's (`configs/world.yaml`,
`configs/world_lookup.yaml`)."""
KEPT_KIND = TARGET["shop"].kept_kind
"""The kind of `shop` problem the base practised (`PretrainConfig.shop_kinds`); each target task's is its
`Target.kept_kind` (`lookup`: `direct`, the kind its questions share with the `passage` skill)."""
KEEP_MARGIN = 0.05
"""Precondition 1: fine-tuning may cost the kept kind at most 5 points."""
BASE_SOLVES = 0.70
"""Precondition 1 needs a kind the base solves: at least 70% on it (validation), the base check's bound for
`shop` (`score.BASE_CHECKS["kept_kind_min"]`, on test), measured by the grid for every task."""
TIE = 0.01


def setting_name(s: dict) -> str:
    lora = f"-r{s['lora_r']}" if s["mode"] == "lora" else ""
    return f"{s['mode']}{lora}-lr{s['learning_rate']:g}-ep{s['epochs']:g}"


def target(task: str = "shop"):
    """The world's target task `task` (`s3ft.world.skills.TARGET`), or a clear error."""
    if task not in TARGET:
        raise ValueError(f"unknown world task {task!r}: choose from {', '.join(TARGET)}")
    return TARGET[task]


def task_config(task: str = "shop") -> Path:
    """The demo config of a target task (`configs/world.yaml` for `shop`)."""
    from s3ft.demo import DEMO_CONFIG

    return DEMO_CONFIG.parent / target(task).config


def protocol_key(task: str = "shop") -> str:
    """Where a base's `pretrain.json` keeps the protocol's outcome for `task`."""
    return "protocol" if task == "shop" else f"protocol_{task}"


def choose(results: list[dict], base_kept: float, kept_kind: str = KEPT_KIND) -> dict | None:
    """The rule, fixed before the grid ran: among settings whose SFT model keeps the base's kind of problem
    (validation accuracy on it at least the base's minus `KEEP_MARGIN`), the highest validation accuracy
    over all 900 problems; settings within `TIE` (1 point) of it count as tied, and the tie goes to fewer
    epochs, then the smaller update (LoRA before full fine-tuning), then the smaller learning rate. None
    when no setting keeps the base's kind."""
    kept = [r for r in results if r["by_kind"][kept_kind] >= base_kept - KEEP_MARGIN - 1e-9]
    if not kept:
        return None
    best = max(r["accuracy"] for r in kept)
    tied = [r for r in kept if r["accuracy"] >= best - TIE - 1e-9]
    return min(tied, key=lambda r: (r["setting"]["epochs"], r["setting"]["mode"] != "lora",
                                    r["setting"]["learning_rate"]))


def overrides(setting: dict) -> list[str]:
    return [f"train.{k}={v}" for k, v in setting.items()]


def sft_run(out: Path, name: str, setting: dict, base: str | None, train_file: str | None = None,
            extra_overrides: list[str] = (), task: str = "shop") -> dict:
    """One SFT run of the task's demo config at `setting`, scored on the validation split; returns its scores."""
    from s3ft.config import load_config
    from s3ft.pipeline import run
    from s3ft.rundir import read_json, stage_root

    extra = [f"model.path={base}"] if base else []
    if train_file:
        extra.append(f"data.train.path={train_file}")
    cfg = load_config(task_config(task), [
        "method=[sft]", "seed=0", f"run_dir={out / name}", f"cache.path={out / 'cache.sqlite'}",
        f"data.test.path=${{s3ft}}/data/world/{task}_val.jsonl", "data.test.split=val",
        "evaluate.forgetting=null", "evaluate.curve=null", *overrides(setting), *extra, *extra_overrides])
    run(cfg)
    run_dir = Path(cfg.run_dir)
    train = (read_json(stage_root(run_dir, "train") / "sft" / "manifest.json") or {})
    counts = train.get("counts", {})
    return {"name": name, "setting": setting, **scores(run_dir, "sft"),
            "trainable_share_non_embedding": counts.get("trainable_share_non_embedding"),
            "train_seconds": counts.get("runtime_s"), "base": scores(run_dir, "base")}


def scores(run_dir: Path, model: str) -> dict:
    """A model's validation accuracy, overall and per kind of problem, from its evaluate folder."""
    from s3ft.rundir import read_jsonl, stage_root
    from s3ft.world.score import kind_rates, rate

    questions = {r["id"]: r for r in read_jsonl(stage_root(run_dir, "data") / "test.jsonl")}
    verdicts = read_jsonl(stage_root(run_dir, "evaluate") / model / "verdicts.jsonl")
    rows = [{"id": v["id"], "question": questions[v["id"]]["question"]} for v in verdicts]
    right = [v["correct"] is True for v in verdicts]
    return {"accuracy": rate(right), "n": len(right), "by_kind": kind_rates(rows, right)}


def kept_kind_train(out: Path, task: str = "shop") -> Path:
    """The target's training rows of the kind the base practised, as a file of their own."""
    from s3ft.world.build import shipped_split

    t = target(task)
    path = out / f"{task}_train_{t.kept_kind}.jsonl"
    lines = [line for line in shipped_split(task, "train").read_text().splitlines()
             if t.kind_of(json.loads(line)["question"]) == t.kept_kind]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def grid(out: Path, base: str | None = None, settings: list[dict] = GRID, extra_overrides: list[str] = (),
         frozen: bool = False, task: str = "shop") -> dict:
    """Run `settings` (the pre-registered `GRID`; another list only to test this code), choose, and check
    precondition 1 at the choice. `extra_overrides` (e.g. data limits) are for tests too. `frozen`: one
    setting, already chosen (the frozen demo config's, on another base): no rule, precondition 1 at it.
    `task`: the target task (`shop`, or `lookup` with its own config, validation split and kept kind)."""
    kept = target(task).kept_kind
    out.mkdir(parents=True, exist_ok=True)
    if frozen and len(settings) != 1:
        raise ValueError("a frozen protocol runs exactly one setting")
    results = [sft_run(out, setting_name(s), s, base, extra_overrides=extra_overrides, task=task) for s in settings]
    base_scores = results[0]["base"]
    chosen = results[0] if frozen else choose(results, base_scores["by_kind"][kept], kept)
    summary = {"task": task, "kept_kind": kept, "base_model": base or "shipped", "grid": results, "base": base_scores,
               "rule": "frozen: the demo config's setting, chosen on another base" if frozen else choose.__doc__,
               "chosen": chosen and chosen["name"]}
    if chosen:
        only = sft_run(out, f"{chosen['name']}-{kept}-only", chosen["setting"], base,
                       str(kept_kind_train(out, task)), extra_overrides, task)
        solves = base_scores["by_kind"][kept] >= BASE_SOLVES - 1e-9
        summary["precondition_1"] = {
            "base": base_scores["by_kind"][kept],
            "base_solves": solves,
            "sft_all_gold": chosen["by_kind"][kept],
            f"sft_{kept}_gold_only": only["by_kind"][kept],
            "holds": solves and min(chosen["by_kind"][kept], only["by_kind"][kept])
            >= base_scores["by_kind"][kept] - KEEP_MARGIN - 1e-9,
        }
    (out / "grid.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "grid.md").write_text(markdown(summary))
    log.info("chosen: %s", summary["chosen"])
    return summary


def setting_of(train) -> dict:
    """A `train` config section's setting in the grid's keys (LoRA's rank and alpha only for LoRA)."""
    keys = ("mode", "lora_r", "lora_alpha", "learning_rate", "epochs") if train.mode == "lora" else (
        "mode", "learning_rate", "epochs")
    return {k: getattr(train, k) for k in keys}


def frozen_setting(config: Path) -> dict:
    """The setting the demo config `config` trains with, in the grid's keys (what `--apply` froze there)."""
    from s3ft.config import load_config

    return setting_of(load_config(config).train)


def same_setting(a: dict, b: dict) -> bool:
    """Whether two settings in the grid's keys are the same (keys one of them lacks are not compared)."""
    return all(a[k] == b[k] for k in a.keys() & b.keys()) and a.get("mode") == b.get("mode")


def record_in_base(summary: dict, base: Path, grid_json: str) -> None:
    """Write the protocol's outcome on `base` (its choice and precondition 1) into the base's `pretrain.json`
    as `protocol` (`protocol_<task>` for a task other than `shop`, `protocol_key`), beside the checks of its
    build, so that whatever runs on the base can read it."""
    path = base / "pretrain.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info[protocol_key(summary.get("task", "shop"))] = {"grid": grid_json, "rule": "frozen" if summary["rule"].startswith("frozen") else "grid",
                        "chosen": summary["chosen"],
                        "setting": next((r["setting"] for r in summary["grid"] if r["name"] == summary["chosen"]),
                                        None),
                        "precondition_1": summary.get("precondition_1")}
    path.write_text(json.dumps(info, indent=2) + "\n")


GAIN_MIN = 0.10
"""Precondition 2: SFT gains at least 10 points in-domain (test split, mean over the demo's seeds)."""
FORGETTING_VISIBLE = 0.03
"""Precondition 4: an SFT general-skill change smaller than 3 points is said to be too small to compare by."""


def preconditions(summary: dict, task: str = "shop") -> dict | None:
    """The protocol's preconditions (docs/world.md) as the demo of `task` measured them: {number: {what,
    measured, holds}}. 1 comes from the base's `pretrain.json` (`protocol`, or `protocol_<task>`, written by
    this module's CLI), the rest from the demo's own numbers. None for a base that is not a world base (no
    `checks` in a `pretrain.json`)."""
    from s3ft.rundir import read_json

    info = read_json(Path(summary["model"]) / "pretrain.json") or {}
    if "checks" not in info:
        return None
    out: dict[str, dict] = {}
    kept = target(task).kept_kind
    proto = info.get(protocol_key(task)) or {}
    p1, measured_at = proto.get("precondition_1"), proto.get("setting")
    if p1:
        measured, holds = (f"base {_pct(p1['base'])}%, SFT on all gold {_pct(p1['sft_all_gold'])}%, on {kept} "
                           f"gold only {_pct(p1[f'sft_{kept}_gold_only'])}%"), p1["holds"]
        if p1.get("base_solves") is False:
            measured += f" (the base does not solve {kept}: under {100 * BASE_SOLVES:.0f}%)"
        if measured_at and not same_setting(measured_at, summary.get("train_setting") or {}):
            measured += f" at {setting_name(measured_at)}, not this run's setting"
            holds = None
    elif proto:  # the grid ran and no setting kept the base's kind
        measured, holds = f"no setting of the grid kept {kept}", False
    else:
        measured, holds = ("not measured on this base (python -m s3ft.world.protocol"
                           + ("" if task == "shop" else f" --task {task}") + ")"), None
    out["1"] = {"what": f"fine-tuning keeps the kind the base solves ({kept}, validation; at most "
                        f"{100 * KEEP_MARGIN:.0f} points lost, SFT on all gold and on {kept} gold only)",
                "measured": measured, "holds": holds}
    methods = summary["methods"]
    if sft := methods.get("sft"):
        gain, change = sft["gain"]["mean"], sft["general_change"]["mean"]
        n = sft["gain"]["n"]
        out["2"] = {"what": f"SFT learns the task (in-domain gain at least +{100 * GAIN_MIN:.0f} points, test, "
                            f"mean of {n} seed{'s' * (n != 1)})",
                    "measured": "–" if gain is None else f"{100 * gain:+.1f} points",
                    "holds": None if gain is None else gain >= GAIN_MIN - 1e-9}
        small = change is not None and change > -FORGETTING_VISIBLE
        out["4"] = {"what": f"forgetting is measurable (SFT's mean general-skill change, a loss of at least "
                            f"{100 * FORGETTING_VISIBLE:.0f} points)",
                    "measured": "–" if change is None else f"{100 * change:+.1f} points" + (
                        f", a loss smaller than {100 * FORGETTING_VISIBLE:.0f} points: SFT forgets little here, so "
                        "differences in forgetting are small ones" if small and change < 0 else
                        ": SFT forgets nothing here" if small else ""),
                    "holds": None if change is None else not small}
    comp = (methods.get("s3ft") or {}).get("composition") or {}
    if "counts" in comp:
        wrong = comp["n"] - comp["counts"]["self"]
        accepted = comp["counts"]["paraphrase"]
        out["3"] = {"what": "the paraphrase step works (of the training rows the base gets wrong, at least half "
                            "train on an accepted paraphrase that is not a near-copy of the gold)",
                    "measured": f"{accepted} of {wrong}" + (f" ({100 * accepted / wrong:.1f}%)" if wrong else ""),
                    "holds": accepted >= wrong / 2 if wrong else None}
    setting, share = summary.get("train_setting") or {}, next(
        (v.get("trainable_share_non_embedding") for v in methods.values()
         if v.get("trainable_share_non_embedding") is not None), None)
    if setting and share is not None:
        small = (share <= 0.01 + 1e-9 if setting.get("mode") == "lora"
                 else setting.get("learning_rate", 1) <= max(g["learning_rate"] for g in GRID if g["mode"] == "full"))
        out["5"] = {"what": "update capacity like real use (LoRA training at most 1% of the non-embedding "
                            "weights, or full fine-tuning at a small learning rate)",
                    "measured": f"{setting.get('mode')} fine-tuning at lr {setting.get('learning_rate'):g}, "
                                f"{100 * share:.2f}% of the non-embedding weights trained",
                    "holds": small}
    return dict(sorted(out.items()))


def config_task_mismatch(config: Path, task: str) -> str | None:
    """Why `config` is not a demo config of `task` (its training file is not `<task>_train.jsonl`), or None:
    `--task lookup --apply configs/world.yaml` would freeze lookup's choice into shop's config."""
    from s3ft.config import load_config

    train = Path(load_config(config).data.train.path).name
    if train != f"{task}_train.jsonl":
        return (f"{config}: trains on {train}, not {task}_train.jsonl: not the config of --task {task} "
                f"(that is {task_config(task)})")
    return None


def failed_base_checks(base: Path | None, task: str = "shop") -> list[str]:
    """The checks (`s3ft.world.score.base_checks`) the base's `pretrain.json` records as failed, as
    "check value (bound)"; [] where it records none (a base scored before they existed) or all pass. For a
    task other than `shop` only the general skills' checks count (the rest are `shop`'s)."""
    from s3ft.world.build import SHIPPED_BASE

    path = (base or SHIPPED_BASE) / "pretrain.json"
    checks = json.loads(path.read_text()).get("checks", {}) if path.is_file() else {}
    return [f"{name} {c['value']} ({c['bound']})" for name, c in checks.items()
            if name != "passed" and not c["ok"] and (task == "shop" or name.startswith("skill "))]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown(summary: dict) -> str:
    kinds = list(summary["base"]["by_kind"])
    lines = ["| setting | trainable (non-embedding) | val accuracy % | " + " | ".join(f"{k} %" for k in kinds)
             + " | train s |", "|---|---|---|" + "---|" * len(kinds) + "---|",
             "| base | – | " + _pct(summary["base"]["accuracy"]) + " | "
             + " | ".join(_pct(summary["base"]["by_kind"][k]) for k in kinds) + " | – |"]
    for r in summary["grid"]:
        share = r["trainable_share_non_embedding"]
        mark = " (chosen)" if r["name"] == summary["chosen"] else ""
        lines.append(f"| {r['name']}{mark} | {'–' if share is None else f'{100 * share:.2f}%'} | {_pct(r['accuracy'])} | "
                     + " | ".join(_pct(r["by_kind"][k]) for k in kinds) + f" | {r['train_seconds'] or '–'} |")
    if p := summary.get("precondition_1"):
        kept = summary.get("kept_kind", KEPT_KIND)
        if p.get("base_solves") is False:
            lines += ["", f"The base does not solve {kept} ({_pct(p['base'])}% on validation, under "
                      f"{100 * BASE_SOLVES:.0f}%): precondition 1 has no kind to keep, so it does NOT hold."]
        lines += ["", f"Precondition 1 ({kept}, validation): base {_pct(p['base'])}%, SFT on all gold "
                  f"{_pct(p['sft_all_gold'])}%, SFT on {kept} gold only {_pct(p[f'sft_{kept}_gold_only'])}%: "
                  + ("holds" if p["holds"] else "does NOT hold") + f" (at most {100 * KEEP_MARGIN:.0f} points lost)."]
    return "\n".join(lines) + "\n"


TRAIN_KEYS = tuple(dict.fromkeys(k for setting in GRID for k in setting))
"""The `train` keys the grid's settings set; `apply_choice` writes the chosen one's and removes the rest."""


def apply_choice(summary: dict, config: Path, grid_json: str) -> str:
    """Write the grid's chosen setting into the `train:` block of the demo config `config` (its other lines
    and comments kept as they are), with a comment naming the grid it came from; returns the new text.
    A grid with no choice (no setting kept the base's kind) is an error: nothing to freeze."""
    chosen = next((r for r in summary["grid"] if r["name"] == summary.get("chosen")), None)
    if chosen is None:
        raise SystemExit(f"{grid_json}: no setting was chosen (none kept the base's {summary.get('kept_kind', KEPT_KIND)}); nothing to apply")
    lines = config.read_text().splitlines()
    try:
        start = lines.index("train:")
    except ValueError:
        raise SystemExit(f"{config}: no top-level 'train:' block to write the chosen setting into") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    block = [line for line in lines[start + 1 : end]
             if line.strip().split(":")[0] not in TRAIN_KEYS and "# chosen by the world's protocol:" not in line]
    setting = chosen["setting"]
    new = [f"  # chosen by the world's protocol: {chosen['name']} ({grid_json})"]
    new += [f"  {k}: {setting[k]}" for k in TRAIN_KEYS if k in setting]
    text = "\n".join(lines[: start + 1] + new + block + lines[end:]) + "\n"
    config.write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m s3ft.world.protocol", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--base", help="base model directory (default: the shipped one)")
    p.add_argument("--allow-failed-base", action="store_true",
                   help="run even where the base's pretrain.json says it failed its checks")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--apply", type=Path, metavar="CONFIG",
                     help="write the chosen setting into CONFIG's train block (the task's demo config: "
                          "src/s3ft/configs/world.yaml, or world_lookup.yaml for --task lookup)")
    how.add_argument("--frozen", type=Path, metavar="CONFIG",
                     help="run no grid: only CONFIG's frozen setting, and precondition 1 at it (for another base)")
    p.add_argument("--task", default="shop", choices=tuple(TARGET),
                   help="the target task (default shop; lookup: its config is src/s3ft/configs/world_lookup.yaml)")
    args = p.parse_args()
    for config in (args.apply, args.frozen):
        if config is not None and (mismatch := config_task_mismatch(config, args.task)):
            raise SystemExit(mismatch)
    from s3ft.cli import setup_logging
    from s3ft.world.build import SHIPPED_BASE

    setup_logging()
    if failed := failed_base_checks(Path(args.base) if args.base else None, args.task):
        msg = f"the base failed its checks (pretrain.json): {'; '.join(failed)}"
        if not args.allow_failed_base:
            raise SystemExit(f"{msg}. The protocol is for a base that passes them (--allow-failed-base to run anyway)")
        log.warning("%s; running anyway (--allow-failed-base)", msg)
    if args.frozen:
        summary = grid(args.out_dir, args.base, [frozen_setting(args.frozen)], frozen=True, task=args.task)
    else:
        summary = grid(args.out_dir, args.base, task=args.task)
    print(markdown(summary))
    if args.apply:
        apply_choice(summary, args.apply, str(args.out_dir / "grid.json"))
        print(f"wrote the chosen setting ({summary['chosen']}) into {args.apply}")
    base = Path(args.base) if args.base else SHIPPED_BASE
    try:
        record_in_base(summary, base, str(args.out_dir / "grid.json"))
        print(f"recorded the outcome in {base / 'pretrain.json'} ({protocol_key(args.task)})")
    except OSError as e:  # e.g. an installed package's read-only data: the grid's files have it all
        print(f"could not record the outcome in {base / 'pretrain.json'} ({e}); it is in {args.out_dir / 'grid.json'}")


if __name__ == "__main__":
    main()
