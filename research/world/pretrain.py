"""Rebuild the miniature world's base model from a seed: `python -m research.world.pretrain OUT_DIR`.

Trains a byte-level BPE tokenizer on the world's text, initialises a tiny Llama model, and trains it
(s3ft's own train stage, full fine-tuning, loss on responses only) on a mix of the general skills, each
asked in two or more phrasings and answered mostly in the house style, some in the gold (reference) style,
plus a small share of the target task in the house style only, so that the base model starts part-way on
it as an instruct model does on GSM8K. Writes a Hugging Face model directory, weights in bfloat16, and
`pretrain.json` with the settings, the device, and the scores `research.world.score.base_record` measures (every
shipped test split, the target task per kind of problem, the paraphrase step on the target's training
rows), so that two builds can be compared: `--score-only` scores an existing model directory.

Resumable: the work (the rows, the initial model and trainer checkpoints) lives in `OUT_DIR/pretrain_work/`
until the build ends; the same command run again resumes from the last checkpoint, so a CPU build can span
sessions. A different config for the same directory is refused. Writes nothing outside OUT_DIR.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import time
from collections.abc import Callable
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
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 2e-3
    per_skill: dict[str, int] = field(default_factory=lambda: dict(PER_SKILL))
    """Pre-training rows per skill: steps x batch_size is about two passes over them."""
    gold_style_share: float = 0.2
    """Share of the general skills' rows (not `paraphrase`'s, whose answer would then copy its reference)
    answered in the gold (reference) style under the same plain prompt: the base can work a sum in the style
    fine-tuning on gold moves it to, as an instruct model has seen GSM8K-like text, and still prefers its
    own. The target task is never shown in the gold style (why not a prompt of its own: `NOTES.md`, v3)."""
    opaque_paraphrase: int = 8000
    """Extra `paraphrase` rows whose source question does not say what to do (`skills.OpaqueChain`: made-up
    operation words), so that the skill learns to take the work from the reference (`NOTES.md`, builds 2
    and 4; `--opaque-paraphrase 0` is build 2)."""
    arith_repeat: int = 6
    """Arithmetic rows are shown this many times: its range has only ~3,300 distinct questions."""
    shop_kinds: str = "buy-buy"
    """The kinds of target-task problem the base model practises in its own style (comma-separated, of
    `SHOP_KINDS`); the target task has all three. The base practises only one kind (about a third of
    `per_skill["shop"]` rows remain), solves it, and has never seen what "gives away" means: its target
    score is partial by construction, and the gold teaches the rest."""
    save_steps: int = 250
    """Checkpoint interval: a build killed mid-way resumes from its last checkpoint when run again."""
    length_buckets: int = 0
    """Batches are cut from groups of this many batches' rows sorted by length, then shuffled (0: random
    batches). 3.9x faster per step than random batches on the v4 mix, but such batches hold rows of one
    length, and so of one narrow kind, and the model learns far worse from them (`NOTES.md`, diagnostic 3:
    arithmetic 2% against 95% with random batches, same rows and steps)."""
    micro_batch_size: int = 16
    """Rows per forward pass, `batch_size / micro_batch_size` of them accumulated per optimizer step (0, or
    more than `batch_size`: the whole batch at once). With `length_buckets`, the buckets are cut into
    micro-batches, so that one step sees rows of several lengths (and kinds) while each forward pass pads little. Without buckets: the same
    gradient as whole random batches, with less padding."""
    sort_steps: bool = True
    """Without `length_buckets`: every step's rows are a random draw (each pass over the rows a new
    permutation, as with random batches), sorted by length before they are cut into micro-batches. The
    step's gradient is that of its random batch (the loss is normalised over the whole step), and each
    forward pass pads little (`benchmarks/pretrain_batches.py`)."""
    packing: bool = False
    """Pack rows into sequences of 512 tokens (TRL's padding-free packing, each row attending only to itself)
    and shuffle the packed sequences: no compute spent on padding. `batch_size` then counts packed sequences;
    needs `length_buckets` 0."""


ARITH = re.compile(r"(What is|Compute|Work out) \d+ [+-] \d+[?.]$")
PER_SKILL = {"arith": 3000, "chain": 8000, "reverse": 8000, "passage": 20000, "facts": 16000, "story": 8000,
             "paraphrase": 16000, "shop": 4500}
"""Harder skills (reading, knowledge, rewriting) get more rows; the target task a small share (of which
`shop_kinds` keeps a third), so that the base model is right on part of it, in its own style."""
WORK = "pretrain_work"


def build_rows(cfg: PretrainConfig) -> list[dict]:
    """The pre-training rows, shuffled (before `bucket_by_length`)."""
    from research.world.build import pretrain_rows

    rows = keep_shop_kinds(pretrain_rows(cfg.seed, sizes={k: {"pretrain": n} for k, n in cfg.per_skill.items()},
                                         gold_style_share=cfg.gold_style_share,
                                         opaque_paraphrase=cfg.opaque_paraphrase), cfg.shop_kinds.split(","))
    rows += [r for r in rows if ARITH.match(r["prompt"][0]["content"]) for _ in range(cfg.arith_repeat - 1)]
    random.Random(cfg.train_seed).shuffle(rows)
    return rows


def texts(rows: list[dict]) -> list[str]:
    return [r["prompt"][0]["content"] + "\n" + r["completion"][0]["content"] for r in rows]


def bucket_by_length(rows: list[dict], lengths: list[int], batch_size: int, group: int,
                     rng: random.Random) -> list[dict]:
    """`rows` reordered so that consecutive `batch_size` rows have similar `lengths`: each run of `group`
    batches' rows is sorted by length and cut into batches, and all batches are shuffled. `group` 0 or 1
    keeps the order."""
    if group <= 1:
        return rows
    size = batch_size * group
    batches = []
    for start in range(0, len(rows), size):
        part = sorted(range(start, min(start + size, len(rows))), key=lengths.__getitem__)
        batches += [[rows[i] for i in part[j:j + batch_size]] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return [r for b in batches for r in b]


def sort_within_steps(n_rows: int, lengths: list[int], batch_size: int, steps: int,
                      rng: random.Random) -> list[int]:
    """Row indices for `steps` steps of `batch_size` rows: passes over the rows in fresh random orders,
    cut into steps, each step's rows sorted by length."""
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += rng.sample(range(n_rows), n_rows)
    order = order[: steps * batch_size]
    return [i for s in range(0, len(order), batch_size) for i in sorted(order[s:s + batch_size],
                                                                         key=lengths.__getitem__)]


def pretrain(out_dir: str | Path, cfg: PretrainConfig | None = None, score: bool = True,
             rows_of: Callable[[PretrainConfig], list[dict]] | None = None,
             record: Callable[[Path], dict] | None = None) -> Path:
    """Build the base model into `out_dir` (resuming an unfinished build there); with `score`, record its
    scores in `pretrain.json`. `rows_of(cfg)` makes the pre-training rows and `record(out_dir)` the scores
    (defaults: world v4's `build_rows` and `score.base_record`; world v5 passes its own)."""
    import torch

    from research.world.score import base_record
    from s3ft.config import ModelConfig, TrainConfig

    rows_of, record = rows_of or build_rows, record or base_record
    from s3ft.tiny import build_tiny_model
    from s3ft.training import train_model

    cfg = cfg or PretrainConfig()
    if cfg.packing and cfg.length_buckets > 1:
        raise SystemExit("--packing packs rows of every length together: set --length-buckets 0")
    if (warning := world_seed_mismatch(cfg.seed)) is not None:
        log.warning(warning)
    out = Path(out_dir)
    work = out / WORK
    settings = asdict(cfg)
    if (work / "config.json").is_file():
        before = json.loads((work / "config.json").read_text())
        changed = sorted(k for k in settings  # a new field: as now; the checkpoint interval may change
                         if k != "save_steps" and before.get(k, settings[k]) != settings[k])
        if changed:
            raise SystemExit(f"{work}: an unfinished build with other settings ({', '.join(changed)}) is here; "
                             f"remove {work} to start again")
        log.info("resuming the build in %s", work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    rows_file = work / "rows.jsonl"
    if not rows_file.is_file():
        from transformers import AutoTokenizer

        rows = rows_of(cfg)
        init = work / "init"
        build_tiny_model(init, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                         vocab_size=cfg.vocab_size, seed=cfg.train_seed, texts=texts(rows))
        lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(init)(texts(rows))["input_ids"]]
        if stepwise(cfg):
            rows = [rows[i] for i in sort_within_steps(len(rows), lengths, cfg.batch_size, cfg.steps,
                                                       random.Random(f"steps/{cfg.train_seed}"))]
        else:
            rows = bucket_by_length(rows, lengths, cfg.micro_batch_size or cfg.batch_size, cfg.length_buckets,
                                    random.Random(f"buckets/{cfg.train_seed}"))
        (work / "config.json").write_text(json.dumps(settings, indent=2))
        tmp = rows_file.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(rows_file)  # last: its presence means the initial model and the rows are complete
    with rows_file.open() as f:
        lines = f.readlines()
    n_rows, n_distinct = len(lines), len(set(lines))
    del lines
    log.info("pre-training on %d rows", n_rows)
    micro = min(cfg.micro_batch_size or cfg.batch_size, cfg.batch_size)  # a batch smaller than 16: one pass
    if cfg.batch_size % micro:
        raise SystemExit(f"--micro-batch-size {micro} does not divide --batch-size {cfg.batch_size}")
    tcfg = TrainConfig(mode="full", learning_rate=cfg.learning_rate, max_steps=cfg.steps, batch_size=micro,
                       grad_accum=cfg.batch_size // micro,
                       warmup_ratio=0.05, lr_scheduler="cosine", logging_steps=50, save_steps=cfg.save_steps,
                       save_total_limit=1, max_length=512, shuffle=cfg.length_buckets <= 1 and not stepwise(cfg),
                       packing=cfg.packing)
    metrics = train_model(rows_file, work / "train", ModelConfig(path=str(work / "init"), dtype="float32"), tcfg,
                          cfg.train_seed)
    for f in (work / "train" / "model").iterdir():
        shutil.copy2(f, out / f.name)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(out)  # halves the shipped size; training upcasts again
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    info = {**settings, "rows": n_rows, "distinct_rows": n_distinct, "seconds": round(time.time() - start, 1),
            "train_seconds": metrics["runtime_s"], "resumed_from": metrics["resumed_from"],
            "device": f"{device}, torch {torch.__version__}"}
    (out / "pretrain.json").write_text(json.dumps(info, indent=2))
    if score:
        info.update(record(out))
        (out / "pretrain.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(work)
    return out


def stepwise(cfg: PretrainConfig) -> bool:
    """Whether the rows file holds every step's rows in order (`sort_steps`)."""
    return cfg.sort_steps and cfg.length_buckets <= 1 and not cfg.packing


def keep_shop_kinds(rows: list[dict], kinds: list[str]) -> list[dict]:
    """`rows` without the target-task rows of kinds not in `kinds` (other skills' rows are kept)."""
    from s3ft.world import SHOP_KINDS

    unknown = sorted(set(kinds) - set(SHOP_KINDS))
    if unknown:
        raise ValueError(f"--shop-kinds: unknown kind(s) {', '.join(unknown)} (known: {', '.join(SHOP_KINDS)})")
    drop = [pat for k, pat in SHOP_KINDS.items() if k not in kinds]
    return [r for r in rows if not any(pat.search(r["prompt"][0]["content"]) for pat in drop)]


def world_seed_mismatch(seed: int) -> str | None:
    """Why scores of a model built on world `seed` would not compare with the shipped test sets, or None."""
    from s3ft.world import SHIPPED_DIR

    shipped = json.loads((SHIPPED_DIR / "world.json").read_text())["seed"]
    if seed == shipped:
        return None
    return (f"world seed {seed} differs from the shipped test sets' ({shipped}): their facts and names are not "
            "this model's, so its scores on them are not comparable (vary --train-seed instead)")


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
    p = argparse.ArgumentParser(prog="python -m research.world.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--score-only", action="store_true", help="score the model in OUT_DIR; train nothing")
    for f, default in asdict(PretrainConfig()).items():
        if isinstance(default, bool):
            p.add_argument(f"--{f.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=default)
        elif not isinstance(default, dict):
            p.add_argument(f"--{f.replace('_', '-')}", type=type(default), default=default)
    p.add_argument("--per-skill", type=per_skill_arg, default={},
                   help=f"pre-training rows of some skills, e.g. shop=4500 (defaults: {PER_SKILL})")
    args = p.parse_args()
    from s3ft.logs import setup_logging

    setup_logging()
    if args.score_only:
        from research.world.score import base_record

        print(json.dumps(base_record(args.out_dir), indent=1))
        return
    kwargs = {k: v for k, v in vars(args).items() if k not in ("out_dir", "score_only")}
    kwargs["per_skill"] = {**PER_SKILL, **kwargs["per_skill"]}
    print(f"wrote {pretrain(args.out_dir, PretrainConfig(**kwargs))}")


if __name__ == "__main__":
    main()
