"""World v5's settings protocol (docs/world_v5.md, section 5): `python -m research.world.v5.protocol OUT --base DIR`.

Runs world v5's demo config with SFT alone, from the first base that passed its build checks, for each setting of
`GRID` (written before it ran; every setting trains within the demo's budget, about 20 s on 2 cores), scored on
the target's validation split (400 problems, a hundred of each kind) and nothing else. The rule is v4's
(`research.world.protocol.choose`): among settings whose SFT model keeps the practised kind (`buy-buy`, within
5 points of the base), the highest validation accuracy; ties within 1 point go to fewer epochs, then LoRA, then
the smaller rate. Writes `OUT/<setting>/` (run directories sharing one cache), `OUT/grid.json`, `OUT/grid.md`
and `OUT/chosen.yaml` (the chosen `train:` keys, to be copied into `s3ft/configs/world_v5.yaml`, which freezes
them). Writes nothing outside OUT.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from research.world.protocol import choose, overrides, setting_name
from s3ft.world import kind_of_v5, share_correct

GRID: list[dict] = [
    {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "learning_rate": 1e-3, "epochs": 1},
    {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "learning_rate": 3e-3, "epochs": 1},
    {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "learning_rate": 3e-3, "epochs": 2},
    {"mode": "lora", "lora_r": 8, "lora_alpha": 16, "learning_rate": 1e-3, "epochs": 1},
    {"mode": "full", "learning_rate": 3e-5, "epochs": 1},
    {"mode": "full", "learning_rate": 1e-4, "epochs": 1},
    {"mode": "full", "learning_rate": 1e-4, "epochs": 2},
]
"""The settings searched (SFT only, fine-tuning seed 0), 600 training rows, batch 16: 38 or 76 steps."""
KEPT = "buy-buy"


def scores(run_dir: Path, model: str) -> dict:
    """Validation accuracy, overall and per kind, from a run's evaluate folder."""
    from s3ft.rundir import read_jsonl, stage_root

    questions = {r["id"]: r["question"] for r in read_jsonl(stage_root(run_dir, "data") / "test.jsonl")}
    verdicts = read_jsonl(stage_root(run_dir, "evaluate") / model / "verdicts.jsonl")
    kinds: dict[str, list[bool]] = {}
    for v in verdicts:
        kinds.setdefault(kind_of_v5(questions[v["id"]]), []).append(v["correct"] is True)
    return {"accuracy": share_correct([v["correct"] is True for v in verdicts]), "n": len(verdicts),
            "by_kind": {k: share_correct(r) for k, r in sorted(kinds.items(), key=lambda x: str(x[0]))}}


def sft_run(out: Path, setting: dict, base: str, extra: list[str] = ()) -> dict:
    from s3ft.config import load_config
    from s3ft.demo import V5_CONFIG
    from s3ft.pipeline import run
    from s3ft.rundir import read_json, stage_root

    name = setting_name(setting)
    cfg = load_config(V5_CONFIG, [f"model.path={base}", "method=[sft]", "seed=0", f"run_dir={out / name}",
                                  f"cache.path={out / 'cache.sqlite'}", "data.test.path=${s3ft}/data/world_v5/shop_val.jsonl",
                                  "data.test.limit=null", "evaluate.general=[]", *overrides(setting), *extra])
    run(cfg)
    counts = (read_json(stage_root(Path(cfg.run_dir), "train") / "sft" / "manifest.json") or {}).get("counts", {})
    return {"name": name, "setting": setting, **scores(Path(cfg.run_dir), "sft"),
            "train_seconds": counts.get("runtime_s"), "base": scores(Path(cfg.run_dir), "base")}


def grid(out: Path, base: str, settings: list[dict] = GRID, extra: list[str] = ()) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results = [sft_run(out, s, base, extra) for s in settings]
    base_scores = results[0]["base"]
    chosen = choose(results, base_scores["by_kind"][KEPT], KEPT)
    summary = {"base_model": str(base), "base": base_scores, "results": results,
               "rule": "keep buy-buy within 5 points of the base; highest validation accuracy; ties within 1 point: "
                       "fewer epochs, LoRA, smaller rate", "chosen": chosen and chosen["name"]}
    (out / "grid.json").write_text(json.dumps(summary, indent=2) + "\n")
    kinds = list(base_scores["by_kind"])
    lines = ["| setting | val % | " + " | ".join(kinds) + " | train s |", "|---|---|" + "---|" * (len(kinds) + 1),
             f"| base | {100 * base_scores['accuracy']:.1f} | "
             + " | ".join(f"{100 * base_scores['by_kind'][k]:.1f}" for k in kinds) + " | |"]
    lines += [f"| {r['name']}{' (chosen)' if chosen and r['name'] == chosen['name'] else ''} | "
              f"{100 * r['accuracy']:.1f} | " + " | ".join(f"{100 * (r['by_kind'].get(k) or 0):.1f}" for k in kinds)
              + f" | {r['train_seconds']} |" for r in results]
    (out / "grid.md").write_text("\n".join(lines) + "\n")
    if chosen:
        (out / "chosen.yaml").write_text(yaml.safe_dump({"train": chosen["setting"]}, sort_keys=False))
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.v5.protocol", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--base", required=True)
    args = p.parse_args(argv)
    from s3ft.logs import setup_logging

    setup_logging()
    summary = grid(Path(args.out_dir), args.base)
    print((Path(args.out_dir) / "grid.md").read_text() + f"chosen: {summary['chosen']}")


if __name__ == "__main__":
    main()
