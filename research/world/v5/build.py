"""World v5's splits and pre-training rows: `python -m research.world.v5.build OUT_DIR [--seed N]`.

Writes `{skill}_{split}.jsonl` for the held-out splits (general skills: `val` 100 and `test` 300 each; the
target `shop`: `train` 600, `val` 400, `test` 300, its kinds in turn so that every prefix is balanced) with
fields `id`, `skill`, `question`, `gold`, `answer`, `kind`, `house` (the preferred house style's answer),
`ref` (the paraphrase voice's) and `references` (the answer in `styles.REFERENCE_STYLES`, for the reference-NLL
measure), and `world.json`. `pretrain_rows(seed, train_seed)` makes a base's pre-training rows: items from the
world `seed` (the same questions for every base), their answer styles drawn from the base's pre-training seed.
Held-out splits are generated first; no pre-training item shows a held-out question (or wrapped question).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from research.world.v5.skills import Item, make_skills
from research.world.v5.styles import HOUSE, REFERENCE_STYLES

GENERAL = ("arith", "chain", "reverse", "passage", "facts", "story", "paraphrase")
SPLITS = {**{name: {"test": 300, "val": 100} for name in GENERAL}, "shop": {"test": 300, "val": 400, "train": 600}}
PRETRAIN = {"arith": 1000, "chain": 2500, "reverse": 2000, "passage": 20000, "facts": 1500, "story": 2500,
            "paraphrase": 12000, "shop": 1500}
"""Pre-training rows per skill (the recipe's; `shop` rows are all `buy-buy`): 43,000 rows, about two passes in 1,400
steps of 64. NOT YET A PASSING RECIPE: pilot 103's, the closest of the four pilots (docs/world_v5.md, "Status",
docs/world_builds/world-v5-pilot-*): 101 (2,000 steps) put six skills at 100%; 102 (1,000), 103 (this pool) and 104
(fast skills halved, facts doubled) left passage, and in 102 and 104 reverse and facts, under C3's 40% floor."""
PRACTISED = ("buy-buy",)
GOLD_SHARE = 0.2
"""Share of the general skills' pre-training rows (not `paraphrase`'s) answered in the gold style."""
PREFER_SHARE = 0.7
"""Share of a house-style row answered in the question's preferred style; the other two share the rest."""


def split_rng(seed: int, skill: str, split: str) -> random.Random:
    return random.Random(f"v5/{seed}/{skill}/{split}")


def generate(skill, rng: random.Random, n: int, exclude: set[str], kinds: tuple[str, ...] = ()) -> list[Item]:
    """The first `n` items of `rng` with distinct questions and no key in `exclude`; with `kinds`, the kinds in
    turn (the target's)."""
    items: list[Item] = []
    seen: set[str] = set()
    while len(items) < n:
        item = skill.sample(rng, kinds[len(items) % len(kinds)]) if kinds else skill.sample(rng)
        if item.keys & (seen | exclude):
            continue
        seen |= item.keys
        items.append(item)
    return items


def held_out(seed: int = 0) -> dict[str, dict[str, list[Item]]]:
    """Every held-out split, skill by skill: test first, then val, then train, each disjoint from the ones before."""
    skills = make_skills(seed)
    out: dict[str, dict[str, list[Item]]] = {}
    for name, splits in SPLITS.items():
        taken: set[str] = set()
        out[name] = {}
        for split, n in splits.items():
            kinds = skills[name].KINDS if name == "shop" else ()
            out[name][split] = generate(skills[name], split_rng(seed, name, split), n, taken, kinds)
            taken |= {k for it in out[name][split] for k in it.keys}
    return out


def row(skill: str, split: str, i: int, item: Item) -> dict:
    return {"id": f"{skill}-{split}-{i:05d}", "skill": skill, "question": item.question, "gold": item.gold,
            "answer": item.answer, "kind": item.kind, "house": item.answers[item.prefer] if item.prefer in HOUSE
            else item.answers["ref"], "ref": item.answers["ref"],
            "references": {s: item.answers[s] for s in REFERENCE_STYLES}}


def write_world(out_dir: str | Path, seed: int = 0) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for skill, splits in held_out(seed).items():
        for split, items in splits.items():
            path = out / f"{skill}_{split}.jsonl"
            path.write_text("".join(json.dumps(row(skill, split, i, it)) + "\n" for i, it in enumerate(items)))
            files.append(path.name)
    (out / "world.json").write_text(json.dumps({"world": "v5", "seed": seed, "splits": SPLITS, "files": files},
                                               indent=2) + "\n")
    return out


def styled_answer(item: Item, rng: random.Random, gold_share: float) -> str:
    """A pre-training row's answer: the gold style at `gold_share`, else a house style, the preferred one at
    `PREFER_SHARE`."""
    if rng.random() < gold_share:
        return item.gold
    if rng.random() < PREFER_SHARE:
        return item.answers[item.prefer]
    return item.answers[rng.choice([s for s in HOUSE if s != item.prefer])]


def pretrain_rows(seed: int = 0, train_seed: int = 0, sizes: dict[str, int] | None = None) -> list[dict]:
    """A base's pre-training rows (TRL prompt-completion), shuffled by `train_seed`."""
    skills, sizes = make_skills(seed), {**PRETRAIN, **(sizes or {})}
    held = held_out(seed)
    exclude = {k for splits in held.values() for items in splits.values() for it in items for k in it.keys}
    styles = random.Random(f"v5-styles/{train_seed}")
    rows = []
    for name, n in sizes.items():
        kinds = PRACTISED if name == "shop" else ()
        for item in generate(skills[name], split_rng(seed, name, "pretrain"), n, exclude, kinds):
            if name == "paraphrase":
                text = item.answers["ref"]
            else:
                text = styled_answer(item, styles, 0.0 if name == "shop" else GOLD_SHARE)
            rows.append({"prompt": [{"role": "user", "content": item.question}],
                         "completion": [{"role": "assistant", "content": text}], "skill": name})
    random.Random(f"v5-order/{train_seed}").shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.v5.build", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"wrote {write_world(args.out_dir, args.seed)}")


if __name__ == "__main__":
    main()
