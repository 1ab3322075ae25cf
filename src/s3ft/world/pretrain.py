"""Rebuild the miniature world's base model from a seed: `python -m s3ft.world.pretrain OUT_DIR`.

Trains a byte-level BPE tokenizer on the world's text, initialises a tiny Llama model, and trains it
(s3ft's own train stage, full fine-tuning, loss on responses only) on a mix of the general skills in
the house style, plus a small share of the target task, so that the base model starts part-way on it as
an instruct model does on GSM8K. Writes a Hugging Face model directory, weights in bfloat16, and
`pretrain.json` with the settings, the device, and the model's score on every shipped test set (greedy,
the world's final-answer judge) and the target task's score per kind of problem, so that two builds can
be compared: `--score-only` scores an existing model directory without training. The shipped checkpoint
`s3ft/data/world_model/` was made by this module with its defaults, on a GPU (its `pretrain.json` says
which).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger("s3ft.world")


@dataclass
class PretrainConfig:
    seed: int = 0
    """The world's seed: its fact base, names and items. The shipped test sets come from seed 0
    (`s3ft/data/world/world.json`); a model built on another world scores near chance on their facts."""
    train_seed: int = 0
    """Initialisation and data order: vary it, not `seed`, to see how much two
    builds of the same world differ."""
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    vocab_size: int = 768
    steps: int = 2900
    batch_size: int = 64
    learning_rate: float = 2e-3
    per_skill: dict[str, int] = field(default_factory=lambda: dict(PER_SKILL))
    """Pre-training rows per skill: steps x batch_size is about one pass over them, fresh data throughout."""
    reference_style_share: float = 0.25
    """Share of extra rows that teach the gold (reference) style as language the model can write when asked
    ("Answer in the reference style."), while the plain prompt keeps the house style: an instruct model has
    seen GSM8K-style text but prefers its own. Without them (v1) the gold style's tokens were never trained,
    and LoRA fine-tuning on gold made every model write fragments."""
    arith_repeat: int = 6
    """Arithmetic rows are shown this many times: its range has only ~3,300 distinct questions."""
    shop_kinds: str = "buy-buy"
    """The kinds of target-task problem the base model practises in its own style (comma-separated, of
    `SHOP_KINDS`); the target task has all three. The base practises only one kind (about a third of
    `per_skill["shop"]` rows remain), solves it, and must transfer to the others: its target score is
    partial by construction. When it practised all three kinds, its score was partial by chance, 28-61% over
    five training seeds (README, "The miniature world")."""


ARITH = re.compile(r"What is \d+ [+-] \d+\?$")
PER_SKILL = {"arith": 3000, "reverse": 8000, "passage": 20000, "facts": 16000, "paraphrase": 20000, "shop": 4500}
"""Harder skills (reading, knowledge, rewriting) get more rows; the target task a small share (of which
`shop_kinds` keeps a third), so that the base model is right on part of it, in its own style."""


def pretrain(out_dir: str | Path, cfg: PretrainConfig | None = None) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from s3ft.tiny import build_tiny_model, teach
    from s3ft.world.build import pretrain_rows

    cfg = cfg or PretrainConfig()
    if (warning := world_seed_mismatch(cfg.seed)) is not None:
        log.warning(warning)
    out = Path(out_dir)
    start = time.time()
    rows = keep_shop_kinds(pretrain_rows(cfg.seed, sizes={k: {"pretrain": n} for k, n in cfg.per_skill.items()}),
                           cfg.shop_kinds.split(","))
    rows += [r for r in rows if ARITH.match(r["prompt"][0]["content"]) for _ in range(cfg.arith_repeat - 1)]
    if cfg.reference_style_share > 0:
        rows += reference_style_rows(cfg.seed, cfg.per_skill, int(cfg.reference_style_share * len(rows)))
    random.Random(cfg.train_seed).shuffle(rows)
    texts = [r["prompt"][0]["content"] + "\n" + r["completion"][0]["content"] for r in rows]
    log.info("pre-training on %d rows", len(rows))
    build_tiny_model(out, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                     vocab_size=cfg.vocab_size, seed=cfg.train_seed, texts=texts)
    teach(out, rows, steps=cfg.steps, lr=cfg.learning_rate, seed=cfg.train_seed, batch_size=cfg.batch_size)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(out)  # halves the shipped size; training upcasts again
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    info = {**asdict(cfg), "rows": len(rows), "seconds": round(time.time() - start, 1),
            "device": f"{device}, torch {torch.__version__}"}
    (out / "pretrain.json").write_text(json.dumps(info, indent=2))
    info.update(record_scores(out))
    (out / "pretrain.json").write_text(json.dumps(info, indent=2))
    return out


def keep_shop_kinds(rows: list[dict], kinds: list[str]) -> list[dict]:
    """`rows` without the target-task rows of kinds not in `kinds` (other skills' rows are kept)."""
    from s3ft.world.skills import SHOP_KINDS

    unknown = sorted(set(kinds) - set(SHOP_KINDS))
    if unknown:
        raise ValueError(f"--shop-kinds: unknown kind(s) {', '.join(unknown)} (known: {', '.join(SHOP_KINDS)})")
    drop = [pat for k, pat in SHOP_KINDS.items() if k not in kinds]
    return [r for r in rows if not any(pat.search(r["prompt"][0]["content"]) for pat in drop)]


def world_seed_mismatch(seed: int) -> str | None:
    """Why scores of a model built on world `seed` would not compare with the shipped test sets, or None."""
    from s3ft.world.build import SHIPPED_DIR

    shipped = json.loads((SHIPPED_DIR / "world.json").read_text())["seed"]
    if seed == shipped:
        return None
    return (f"world seed {seed} differs from the shipped test sets' ({shipped}): their facts and names are not "
            "this model's, so its scores on them are not comparable (vary --train-seed instead)")


def skill_scores(model_dir: str | Path, limit: int | None = None, batch_size: int = 64,
                 reference_style: bool = False, skills: tuple[str, ...] | None = None) -> dict[str, float]:
    """Greedy accuracy of the model in `model_dir` on every shipped test split (`s3ft/data/world/`), in the
    house prompt and judged by the world's final-answer judge: the numbers two builds are compared by.
    With `reference_style`, each question asks for the gold style (`REFERENCE_STYLE`): how well the model
    works a problem in the style fine-tuning on gold moves it to."""
    from s3ft.world.skills import ALL_SKILLS

    scores = {}
    with _scorer(model_dir, batch_size) as correct:
        for skill in skills or ALL_SKILLS:
            scores[skill] = _rate(correct(_test_rows(skill, limit), reference_style))
            log.info("%s: %s accuracy %.3f", model_dir, skill, scores[skill])
    return scores


def shop_scores_by_kind(model_dir: str | Path, limit: int | None = None, batch_size: int = 64) -> dict[str, float]:
    """The target task's accuracy per kind of problem (`SHOP_KINDS`) on its shipped test split, the first
    `limit` problems of each kind: the base practised only `shop_kinds`, so it should solve those and few
    others."""
    rows = [r for kind_rows in _by_kind(_test_rows("shop")).values() for r in kind_rows[:limit]]
    with _scorer(model_dir, batch_size) as correct:
        return _kind_rates(rows, correct(rows, False))


def record_scores(model_dir: str | Path, batch_size: int = 64) -> dict[str, dict[str, float]]:
    """What `pretrain.json` records, from one pass of generations: `scores` (`skill_scores` on every skill)
    and `shop_by_kind` (`shop_scores_by_kind`, read off the same shop answers)."""
    from s3ft.world.skills import ALL_SKILLS

    with _scorer(model_dir, batch_size) as correct:
        right = {skill: correct(_test_rows(skill), False) for skill in ALL_SKILLS}
    return {"scores": {skill: _rate(r) for skill, r in right.items()},
            "shop_by_kind": _kind_rates(_test_rows("shop"), right["shop"])}


def _rate(right: list[bool]) -> float:
    return round(sum(right) / len(right), 4)


def _by_kind(rows: list[dict]) -> dict[str, list[dict]]:
    """Shop test rows grouped by kind of problem (`SHOP_KINDS`), in file order."""
    from s3ft.world.skills import SHOP_KINDS

    return {kind: [r for r in rows if pattern.search(r["question"])] for kind, pattern in SHOP_KINDS.items()}


def _kind_rates(rows: list[dict], right: list[bool]) -> dict[str, float]:
    ok = {r["id"]: r_ok for r, r_ok in zip(rows, right, strict=True)}
    return {kind: _rate([ok[r["id"]] for r in kind_rows]) for kind, kind_rows in _by_kind(rows).items()}


def _test_rows(skill: str, limit: int | None = None) -> list[dict]:
    from s3ft.world.build import shipped_split

    return [json.loads(line) for line in shipped_split(skill).read_text().splitlines()][:limit]


@contextmanager
def _scorer(model_dir: str | Path, batch_size: int):
    """Yields `correct(rows, reference_style) -> [bool]`: greedy answers of the model judged against `answer`."""
    from s3ft.backends.base import GenParams
    from s3ft.backends.hf import HFBackend
    from s3ft.config import ModelConfig
    from s3ft.judges.final import FinalAnswerJudge
    from s3ft.records import Example

    backend = HFBackend(ModelConfig(path=str(model_dir), dtype="float32"), batch_size=batch_size)
    judge = FinalAnswerJudge(None)

    def correct(rows: list[dict], reference_style: bool) -> list[bool]:
        examples = [Example(r["id"], r["question"], r["gold"], {"answer": r["answer"]}) for r in rows]
        asked = [REFERENCE_STYLE.format(question=ex.question) if reference_style else ex.question for ex in examples]
        preds = backend.generate([[{"role": "user", "content": q}] for q in asked], GenParams(max_new_tokens=160))
        return [bool(v.correct) for v in judge(examples, preds)]

    try:
        yield correct
    finally:
        backend.close()


REFERENCE_STYLE = "{question}\nAnswer in the reference style."


def reference_style_rows(seed: int, per_skill: dict[str, int], n: int) -> list[dict]:
    """`n` rows, drawn from every skill's pre-training items, whose completions are in the gold style."""
    from s3ft.world.build import world_items

    items = [it for splits in world_items(seed, {k: {"pretrain": v} for k, v in per_skill.items()}).values()
             for it in splits["pretrain"]]
    picked = random.Random(f"world/{seed}/reference").sample(items, min(n, len(items)))
    return [{"prompt": [{"role": "user", "content": REFERENCE_STYLE.format(question=it.question)}],
             "completion": [{"role": "assistant", "content": it.gold}]} for it in picked]


def per_skill_arg(text: str) -> dict[str, int]:
    """`shop=4500,passage=30000` -> {"shop": 4500, "passage": 30000}, skills checked against `PER_SKILL`."""
    out = {}
    for part in filter(None, text.split(",")):
        name, _, n = part.partition("=")
        if name not in PER_SKILL or not n.isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: expected SKILL=ROWS with SKILL one of {', '.join(PER_SKILL)}")
        out[name] = int(n)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--score-only", action="store_true", help="score the model in OUT_DIR; train nothing")
    p.add_argument("--reference-style", action="store_true",
                   help="with --score-only: ask for the gold (reference) style instead of the house style")
    for f, default in asdict(PretrainConfig()).items():
        if not isinstance(default, dict):
            p.add_argument(f"--{f.replace('_', '-')}", type=type(default), default=default)
    p.add_argument("--per-skill", type=per_skill_arg, default={},
                   help=f"pre-training rows of some skills, e.g. shop=4500 (defaults: {PER_SKILL})")
    args = p.parse_args()
    from s3ft.cli import setup_logging

    setup_logging()
    if args.score_only:
        scores = skill_scores(args.out_dir, reference_style=True) if args.reference_style else record_scores(args.out_dir)
        print(json.dumps(scores))
        return
    kwargs = {k: v for k, v in vars(args).items() if k not in ("out_dir", "score_only", "reference_style")}
    kwargs["per_skill"] = {**PER_SKILL, **kwargs["per_skill"]}
    print(f"wrote {pretrain(args.out_dir, PretrainConfig(**kwargs))}")


if __name__ == "__main__":
    main()
