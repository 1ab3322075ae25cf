"""Generate the miniature world's splits, write the shipped files, and rebuild the pre-training rows.

Reads nothing. `write_world(out_dir)` writes `{skill}_{split}.jsonl` for the held-out splits (general
skills: `val` and `test`; the targets `shop` and `lookup`: `train`, `val` and `test`) with fields `id`, `skill`,
`question`, `gold`, `answer`, `house`, plus `world.json` (seed, sizes, skills, fact base, files). The `pretrain` splits are not
shipped: `pretrain_rows(seed, n_per_skill)` regenerates them from the seed as TRL prompt-completion rows.
Every split has its own random stream, and its items are the first `n` distinct ones of that stream,
so a larger size extends a smaller one. Held-out splits are generated first; no pretrain item shows a
question (or, for `paraphrase`, a wrapped question) of any held-out item, and the splits of a skill
are disjoint on question text. Run from the repository root: `python -m research.world.build OUT_DIR [--seed N]`
(the shipped splits are `src/s3ft/data/world/`, seed 0).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from research.world.skills import ALL_SKILLS, Item, OpaqueChain, Paraphrase, Skill, make_skills
from s3ft.world import TARGET, TARGETS

GENERAL_SIZES = {"pretrain": 3000, "val": 100, "test": 100}
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    **{name: dict(GENERAL_SIZES) for name in ALL_SKILLS if name not in TARGETS},
    # val: 300 per kind of target problem (900), enough to tell 5 points apart on one kind; test: 100 per kind
    "shop": {"pretrain": 300, "train": 1200, "val": 900, "test": 300},
    # no pre-training split: the base built for `shop` is `lookup`'s base too
    "lookup": {"train": 1200, "val": 900, "test": 300},
}
GOLD_STYLE_SKILLS = ("arith", "chain", "reverse", "passage", "facts", "story")
"""Skills some of whose pre-training rows are answered in the gold style (`pretrain_rows`): not the target,
whose gold style the base must never see, and not `paraphrase`, whose gold-style answer would copy its
reference."""
HELD_OUT = ("test", "val", "train")  # generated first, in this order; only these are shipped


def resolve_sizes(sizes: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """`DEFAULT_SIZES` with `sizes` merged in per skill (e.g. `{"shop": {"train": 50}}`)."""
    out = {name: dict(splits) for name, splits in DEFAULT_SIZES.items()}
    for name, splits in (sizes or {}).items():
        if name not in out:
            raise ValueError(f"unknown skill {name!r}: choose from {', '.join(ALL_SKILLS)}")
        unknown = set(splits) - set(out[name])
        if unknown:
            raise ValueError(f"skill {name!r} has no split(s) {sorted(unknown)}; it has {sorted(out[name])}")
        out[name].update(splits)
    return out


def generate(skill: Skill, rng: random.Random, n: int, exclude: set[str] = frozenset(),
             kind: Callable[[Item], str] | None = None, kinds: int = 1) -> list[Item]:
    """The first `n` items of `rng` with distinct questions and no key in `exclude`; with `kind`, at most
    `ceil(n / kinds)` of each of the `kinds` kinds of item (equal numbers when `kinds` divides `n`)."""
    items: list[Item] = []
    seen: set[str] = set()
    per_kind: dict[str, int] = {}
    for _ in range(50 * n + 1000):
        if len(items) == n:
            return items
        item = skill.sample(rng)
        if item.question in seen or item.keys & exclude:
            continue
        if kind is not None:
            k = kind(item)
            if per_kind.get(k, 0) == -(-n // kinds):
                continue
            per_kind[k] = per_kind.get(k, 0) + 1
        seen.add(item.question)
        items.append(item)
    if len(items) == n:
        return items
    raise ValueError(f"skill {skill.name!r}: only {len(items)} distinct items of the {n} asked for")


def split_rng(seed: int, skill: str, split: str) -> random.Random:
    return random.Random(f"world/{seed}/{skill}/{split}")


def world_items(
    seed: int = 0, sizes: dict[str, dict[str, int]] | None = None, pretrain: bool = True
) -> dict[str, dict[str, list[Item]]]:
    """Every skill's splits: {skill: {split: items}} (without `pretrain` when `pretrain` is False)."""
    sizes, skills = resolve_sizes(sizes), make_skills(seed)
    out: dict[str, dict[str, list[Item]]] = {name: {} for name in ALL_SKILLS}
    held_out: set[str] = set()
    for name, skill in skills.items():
        seen_here: set[str] = set()
        for split in HELD_OUT:
            if split in sizes[name]:
                # a target's val and test: equal numbers of each kind of problem
                target = TARGET.get(name) if split in ("val", "test") else None
                kind = (lambda it, t=target: t.kind_of(it.question)) if target else None
                items = generate(skill, split_rng(seed, name, split), sizes[name][split], seen_here, kind,
                                 len(target.kinds) if target else 1)
                out[name][split] = items
                seen_here |= {it.question for it in items}
                held_out |= set().union(*(it.keys for it in items))
    if pretrain:
        for name, skill in skills.items():
            if "pretrain" in sizes[name]:
                out[name]["pretrain"] = generate(
                    skill, split_rng(seed, name, "pretrain"), sizes[name]["pretrain"], held_out
                )
    return out


def row(skill: str, split: str, i: int, item: Item) -> dict[str, str]:
    """One shipped row; `gold` is the house answer for general skills, the target's gold style for a target
    (GSM8K-like for `shop`, the bare answer for `lookup`)."""
    gold = item.gold if skill in TARGETS else item.house
    return {"id": f"{skill}-{split}-{i}", "skill": skill, "question": item.question, "gold": gold,
            "answer": item.answer, "house": item.house}


def pretrain_rows(
    seed: int = 0, n_per_skill: int | None = None, sizes: dict[str, dict[str, int]] | None = None,
    gold_style_share: float = 0.0, opaque_paraphrase: int = 0,
) -> list[dict[str, Any]]:
    """The base model's pre-training set, shuffled: every skill's `pretrain` split, in the house style but
    for a `gold_style_share` of the rows of `GOLD_STYLE_SKILLS`, answered in their gold (reference) style
    under the same plain prompt. Target-task rows are always in the house style: the base never sees its
    gold style. `opaque_paraphrase` more `paraphrase` rows practise on `OpaqueChain` references, whose
    questions do not say what to do (their own stream: the other rows do not change with it).

    `n_per_skill` overrides the general skills' pretrain size (shop keeps its small share); pass the
    same `sizes` as `write_world` so that the held-out items excluded are the shipped ones.
    """
    sizes = resolve_sizes(sizes)
    if n_per_skill is not None:
        for name in ALL_SKILLS:
            if name not in TARGETS:
                sizes[name]["pretrain"] = n_per_skill
    style = random.Random(f"world/{seed}/style")
    rows = [
        {"prompt": [{"role": "user", "content": it.question}],
         "completion": [{"role": "assistant",
                         "content": it.gold if name in GOLD_STYLE_SKILLS and style.random() < gold_style_share
                         else it.house}]}
        for name, splits in world_items(seed, sizes).items()
        for it in splits.get("pretrain", [])
    ]
    if opaque_paraphrase:
        opaque = Paraphrase([OpaqueChain()])
        rows += [{"prompt": [{"role": "user", "content": it.question}],
                  "completion": [{"role": "assistant", "content": it.house}]}
                 for it in generate(opaque, split_rng(seed, "paraphrase-opaque", "pretrain"), opaque_paraphrase)]
    random.Random(f"world/{seed}/shuffle").shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_world(
    out_dir: Path, seed: int = 0, sizes: dict[str, dict[str, int]] | None = None, include_pretrain: bool = False
) -> dict[str, Any]:
    """Write the held-out splits (and, if asked, the pretrain splits) and `world.json`; returns the latter."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = resolve_sizes(sizes)
    skills = make_skills(seed)
    files: dict[str, int] = {}
    for name, splits in world_items(seed, sizes, pretrain=include_pretrain).items():
        for split, items in splits.items():
            filename = f"{name}_{split}.jsonl"
            write_jsonl(out_dir / filename, [row(name, split, i, it) for i, it in enumerate(items)])
            files[filename] = len(items)
    info = {
        "seed": seed,
        "sizes": sizes,
        "skills": [{"name": s.name, "kind": s.kind} for s in skills.values()],
        "facts": skills["facts"].base.colors,
        "verbs": skills["facts"].base.verbs,
        "files": files,
    }
    (out_dir / "world.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.build", description=__doc__.split("\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrain", action="store_true", help="also write the pretrain splits")
    args = p.parse_args(argv)
    info = write_world(args.out_dir, args.seed, include_pretrain=args.pretrain)
    for name, n in info["files"].items():
        print(f"{args.out_dir / name}: {n} rows")


if __name__ == "__main__":
    main()
