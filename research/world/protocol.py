"""The world's settings protocol: `python -m research.world.protocol OUT_DIR [--base MODEL_DIR]`.

The fine-tuning settings of the demo are chosen by SFT's accuracy on the target task's validation split,
and by nothing else: never the test split, never another method's numbers (docs/world.md, "Protocol").
`GRID` and `choose` were written down, and committed, before the grid ran. For every setting the demo
config is run with SFT alone, from the base model, trained on the target's training split and scored on
its validation split (900 problems, 300 of each kind). Then, at the chosen setting, precondition 1: SFT on
the gold rows of the kind of problem the base already solves only, scored on that kind.

Writes only under OUT_DIR: `OUT_DIR/<setting>/` (ordinary run directories, sharing one model-call cache),
`OUT_DIR/grid.json` (every setting's accuracy, per kind, its trainable share and training time; the base's;
the rule; the choice; precondition 1), `OUT_DIR/grid.md` (the same as a table) and `OUT_DIR/chosen.yaml`
(the chosen setting as a demo config's `train:` keys, also printed: copying them into the task's demo config
freezes it). Resumable like any run. With `--record` (and `--base DIR`), also writes the outcome into
`DIR/pretrain.json`, where the demo summary reads precondition 1.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import yaml

from s3ft.results import pct
from s3ft.world import (
    BASE_SOLVES,
    KEEP_MARGIN,
    KEPT_KIND,
    SHIPPED_BASE,
    TARGET,
    kind_rates,
    protocol_key,
    setting_name,
    setting_of,
    share_correct,
    shipped_split,
    target,
    task_config,
)

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
`configs/world_lookup.yaml`). Precondition 5's bounds (`s3ft.world.LORA_SHARE_MAX`, `FULL_LR_MAX`) are this
grid's smallest updates: LoRA r 1, full fine-tuning at learning rates up to 1e-4."""
TIE = 0.01
"""Settings within 1 point of the best validation accuracy are tied (`choose`)."""


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
    return {"name": name, "setting": setting, **validation_scores(run_dir, "sft"),
            "trainable_share_non_embedding": counts.get("trainable_share_non_embedding"),
            "train_seconds": counts.get("runtime_s"), "base": validation_scores(run_dir, "base")}


def validation_scores(run_dir: Path, model: str) -> dict:
    """A model's validation accuracy, overall and per kind of problem, from its evaluate folder."""
    from s3ft.rundir import read_jsonl, stage_root

    questions = {r["id"]: r for r in read_jsonl(stage_root(run_dir, "data") / "test.jsonl")}
    verdicts = read_jsonl(stage_root(run_dir, "evaluate") / model / "verdicts.jsonl")
    rows = [{"id": v["id"], "question": questions[v["id"]]["question"]} for v in verdicts]
    right = [v["correct"] is True for v in verdicts]
    return {"accuracy": share_correct(right), "n": len(right), "by_kind": kind_rates(rows, right)}


def kept_kind_train(out: Path, task: str = "shop") -> Path:
    """The target's training rows of the kind the base practised, as a file of their own (in `out`)."""
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
    (out / "grid.md").write_text(grid_markdown(summary))
    log.info("chosen: %s", summary["chosen"])
    return summary


def frozen_setting(config: Path) -> dict:
    """The setting the demo config `config` trains with, in the grid's keys (the frozen choice)."""
    from s3ft.config import load_config

    return setting_of(load_config(config).train)


def record_in_base(summary: dict, base: Path, grid_json: str) -> None:
    """Write the protocol's outcome on `base` (its choice and precondition 1) into the base's `pretrain.json`
    as `protocol` (`protocol_<task>` for a task other than `shop`, `protocol_key`), beside the checks of its
    build, where the demo summary reads it (`s3ft.world.preconditions`)."""
    path = base / "pretrain.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info[protocol_key(summary.get("task", "shop"))] = {
        "grid": grid_json, "rule": "frozen" if summary["rule"].startswith("frozen") else "grid",
        "chosen": summary["chosen"],
        "setting": next((r["setting"] for r in summary["grid"] if r["name"] == summary["chosen"]), None),
        "precondition_1": summary.get("precondition_1")}
    path.write_text(json.dumps(info, indent=2) + "\n")


def config_task_mismatch(config: Path, task: str) -> str | None:
    """Why `config` is not a demo config of `task` (its training file is not `<task>_train.jsonl`), or None:
    `--task lookup --frozen configs/world.yaml` would measure lookup at shop's setting."""
    from s3ft.config import load_config

    train = Path(load_config(config).data.train.path).name
    if train != f"{task}_train.jsonl":
        return (f"{config}: trains on {train}, not {task}_train.jsonl: not the config of --task {task} "
                f"(that is {task_config(task)})")
    return None


def failed_base_checks(base: Path | None, task: str = "shop") -> list[str]:
    """The checks (`research.world.score.base_checks`) the base's `pretrain.json` records as failed, as
    "check value (bound)"; [] where it records none (a base scored before they existed) or all pass. For a
    task other than `shop` only the general skills' checks count (the rest are `shop`'s)."""
    path = (base or SHIPPED_BASE) / "pretrain.json"
    checks = json.loads(path.read_text()).get("checks", {}) if path.is_file() else {}
    return [f"{name} {c['value']} ({c['bound']})" for name, c in checks.items()
            if name != "passed" and not c["ok"] and (task == "shop" or name.startswith("skill "))]


def grid_markdown(summary: dict) -> str:
    """The grid as a table, one row per setting (the base's first), then precondition 1 at the choice."""
    kinds = list(summary["base"]["by_kind"])
    lines = ["| setting | trainable (non-embedding) | val accuracy % | " + " | ".join(f"{k} %" for k in kinds)
             + " | train s |", "|---|---|---|" + "---|" * len(kinds) + "---|",
             "| base | – | " + pct(summary["base"]["accuracy"]) + " | "
             + " | ".join(pct(summary["base"]["by_kind"][k]) for k in kinds) + " | – |"]
    for r in summary["grid"]:
        share = r["trainable_share_non_embedding"]
        mark = " (chosen)" if r["name"] == summary["chosen"] else ""
        lines.append(f"| {r['name']}{mark} | {'–' if share is None else f'{100 * share:.2f}%'} | {pct(r['accuracy'])} | "
                     + " | ".join(pct(r["by_kind"][k]) for k in kinds) + f" | {r['train_seconds'] or '–'} |")
    if p := summary.get("precondition_1"):
        kept = summary.get("kept_kind", KEPT_KIND)
        if p.get("base_solves") is False:
            lines += ["", f"The base does not solve {kept} ({pct(p['base'])}% on validation, under "
                      f"{100 * BASE_SOLVES:.0f}%): precondition 1 has no kind to keep, so it does NOT hold."]
        lines += ["", f"Precondition 1 ({kept}, validation): base {pct(p['base'])}%, SFT on all gold "
                  f"{pct(p['sft_all_gold'])}%, SFT on {kept} gold only {pct(p[f'sft_{kept}_gold_only'])}%: "
                  + ("holds" if p["holds"] else "does NOT hold") + f" (at most {100 * KEEP_MARGIN:.0f} points lost)."]
    return "\n".join(lines) + "\n"


TRAIN_KEYS = tuple(dict.fromkeys(k for setting in GRID for k in setting))
"""The `train` keys the grid's settings set (`chosen_train`)."""


def chosen_train(summary: dict, grid_json: str) -> str:
    """The grid's chosen setting as YAML, the `train:` keys of the task's demo config with a comment naming the
    grid: writing them into that config freezes the setting (its other keys stay; of the grid's keys, those the
    setting lacks, LoRA's for full fine-tuning, go). A grid with no choice (no setting kept the base's kind)
    is an error: nothing to freeze."""
    chosen = next((r for r in summary["grid"] if r["name"] == summary.get("chosen")), None)
    if chosen is None:
        raise SystemExit(f"{grid_json}: no setting was chosen (none kept the base's "
                         f"{summary.get('kept_kind', KEPT_KIND)}); nothing to freeze")
    setting = {k: chosen["setting"][k] for k in TRAIN_KEYS if k in chosen["setting"]}
    return (f"# chosen by the world's protocol: {chosen['name']} ({grid_json})\n"
            + yaml.safe_dump({"train": setting}, sort_keys=False))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.protocol", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--base", type=Path, help="base model directory (default: the shipped one, read only)")
    p.add_argument("--allow-failed-base", action="store_true",
                   help="run even where the base's pretrain.json says it failed its checks")
    p.add_argument("--frozen", type=Path, metavar="CONFIG",
                   help="run no grid: only CONFIG's frozen setting, and precondition 1 at it (for another base)")
    p.add_argument("--record", action="store_true",
                   help="also write the outcome into the --base directory's pretrain.json (where the demo reads it)")
    p.add_argument("--task", default="shop", choices=tuple(TARGET),
                   help="the target task (default shop; lookup: its config is src/s3ft/configs/world_lookup.yaml)")
    args = p.parse_args(argv)
    if args.record and args.base is None:
        p.error("--record writes into the base's pretrain.json: give the base with --base DIR")
    if args.frozen is not None and (mismatch := config_task_mismatch(args.frozen, args.task)):
        raise SystemExit(mismatch)
    from s3ft.logs import setup_logging

    setup_logging()
    if failed := failed_base_checks(args.base, args.task):
        msg = f"the base failed its checks (pretrain.json): {'; '.join(failed)}"
        if not args.allow_failed_base:
            raise SystemExit(f"{msg}. The protocol is for a base that passes them (--allow-failed-base to run anyway)")
        log.warning("%s; running anyway (--allow-failed-base)", msg)
    base = str(args.base) if args.base else None
    if args.frozen:
        summary = grid(args.out_dir, base, [frozen_setting(args.frozen)], frozen=True, task=args.task)
    else:
        summary = grid(args.out_dir, base, task=args.task)
    print(grid_markdown(summary))
    grid_json = str(args.out_dir / "grid.json")
    if summary["chosen"] and not args.frozen:
        text = chosen_train(summary, grid_json)
        (args.out_dir / "chosen.yaml").write_text(text)
        print(f"To freeze the choice, write these keys into the train block of {task_config(args.task)}:\n{text}")
    if args.record:
        record_in_base(summary, args.base, grid_json)
        print(f"recorded the outcome in {args.base / 'pretrain.json'} ({protocol_key(args.task)})")


if __name__ == "__main__":
    main()
