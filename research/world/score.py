"""Score a miniature-world model: what `pretrain.json` records, and the fast tests re-check live.

Reads the shipped splits (`s3ft/data/world/`) and a model directory; writes nothing (`base_record`'s scores are
written into `pretrain.json` by `research.world.pretrain`). Greedy answers under
the world's prompts, judged by the world's final-answer judge (a target task's rows by its own judge,
`Target.judge`: `qa` for `lookup`):
- `skill_scores`: accuracy on each skill's test (or val) split;
- `scores_by_kind`: a target task's accuracy per kind of problem (`Target.kinds`; `shop_scores_by_kind`
  for `shop`'s);
- `paraphrase_check`: the paraphrase step on the target's training rows, exactly as the pipeline runs it
  (precondition 3 of the world's protocol, `docs/world.md`): of the rows the model gets wrong, how many
  get a paraphrase the judge accepts that is not a near-copy of the gold (`s3ft.nearcopy`), and the mean
  NLL per token under the model of those paraphrases against the gold's;
- `base_record`: all three from one load of the model, and `base_checks`: whether the model passes the checks
  a world base must pass before the protocol runs on it;
- `rebuild_table`: whether a rebuilt base (another training seed) matches the shipped one, from the two
  `pretrain.json` files: `python -m research.world.score REBUILT_DIR [--shipped DIR]`.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

from research.world.skills import ALL_SKILLS, Paraphrase
from s3ft.results import pct
from s3ft.world import KEPT_KIND, TARGET, TARGETS, by_kind, kind_rates, share_correct, split_rows

log = logging.getLogger("s3ft.world")
MAX_NEW_TOKENS = 160  # the demo config's generate.max_new_tokens
PARAPHRASE_MAX_NEW_TOKENS = 128  # the demo config's paraphrase.max_new_tokens


class SkillScorer:
    """One loaded world model: greedy answers, judged by each row's task's judge; paraphrases; NLLs."""

    def __init__(self, model_dir: str | Path, batch_size: int = 64, adapter: str | None = None):
        from s3ft.backends.hf import HFBackend
        from s3ft.config import JudgeConfig, ModelConfig
        from s3ft.judges.final import FinalAnswerJudge
        from s3ft.judges.qa import QAJudge

        self.backend = HFBackend(ModelConfig(path=str(model_dir), dtype="float32"), batch_size=batch_size,
                                 adapter=adapter)
        self.judges = {"final": FinalAnswerJudge(None), "qa": QAJudge(JudgeConfig())}  # by `Target.judge`
        self.render = Paraphrase([]).render  # the pipeline's world paraphrase prompt, as the skill renders it

    def generate(self, questions: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
        from s3ft.backends.base import GenParams

        return self.backend.generate([[{"role": "user", "content": q}] for q in questions],
                                     GenParams(max_new_tokens=max_new_tokens))

    def correct(self, rows: list[dict], responses: list[str]) -> list[bool]:
        """Each response judged against its row, by its skill's judge (`final`, or a target's own)."""
        from s3ft.records import Example

        examples = [Example(r["id"], r["question"], r["gold"], {"answer": r["answer"]}) for r in rows]
        names = [TARGET[r["skill"]].judge if r.get("skill") in TARGET else "final" for r in rows]
        out = [False] * len(rows)
        for name in set(names):
            idx = [i for i, n in enumerate(names) if n == name]
            verdicts = self.judges[name]([examples[i] for i in idx], [responses[i] for i in idx])
            for i, v in zip(idx, verdicts, strict=True):
                out[i] = v.correct is True
        return out

    def answer(self, rows: list[dict]) -> tuple[list[str], list[bool]]:
        responses = self.generate([r["question"] for r in rows])
        return responses, self.correct(rows, responses)

    def nll_per_token(self, questions: list[str], completions: list[str]) -> float | None:
        scores = self.backend.nll([[{"role": "user", "content": q}] for q in questions], completions)
        tokens = sum(n for _, n in scores)
        return round(sum(s for s, _ in scores) / tokens, 4) if tokens else None

    def close(self) -> None:
        self.backend.close()


@contextmanager
def skill_scorer(model_dir: str | Path, batch_size: int = 64, adapter: str | None = None):
    """A `SkillScorer` of `model_dir`, closed on leaving."""
    s = SkillScorer(model_dir, batch_size, adapter)
    try:
        yield s
    finally:
        s.close()


def skill_scores(model_dir: str | Path, limit: int | None = None, skills: tuple[str, ...] | None = None,
                 split: str = "test", batch_size: int = 64) -> dict[str, float | None]:
    """Greedy accuracy on each skill's shipped split (its first `limit` rows)."""
    with skill_scorer(model_dir, batch_size) as s:
        return {skill: share_correct(s.answer(split_rows(skill, split, limit))[1]) for skill in skills or ALL_SKILLS}


def scores_by_kind(model_dir: str | Path, limit: int | None = None, split: str = "test", batch_size: int = 64,
                   task: str = "shop") -> dict[str, float | None]:
    """A target task's accuracy per kind of problem, on the first `limit` problems of each kind."""
    rows = [r for kind_rows in by_kind(split_rows(task, split)).values() for r in kind_rows[:limit]]
    with skill_scorer(model_dir, batch_size) as s:
        return kind_rates(rows, s.answer(rows)[1])


def shop_scores_by_kind(model_dir: str | Path, limit: int | None = None, split: str = "test",
                        batch_size: int = 64) -> dict[str, float | None]:
    """`shop`'s accuracy per kind of problem (`scores_by_kind`)."""
    return scores_by_kind(model_dir, limit, split, batch_size, "shop")


def paraphrase_check(s: SkillScorer, rows: list[dict], right: list[bool] | None = None) -> dict:
    """The paraphrase step on `rows` (target-task rows with their gold), where the model's own answer is
    wrong: acceptance, near-copies, and the NLL per token of accepted paraphrases against the gold's."""
    from s3ft.backends.base import finish_of
    from s3ft.nearcopy import NEAR_COPY, similarity

    if right is None:
        right = s.answer(rows)[1]
    wrong = [r for r, ok in zip(rows, right, strict=True) if not ok]

    paras = s.generate([s.render(r["question"], r["gold"]) for r in wrong], PARAPHRASE_MAX_NEW_TOKENS)
    # as the pipeline selects: judged right, and not cut off at max_new_tokens
    accepted = [ok and finish_of(p) != "length" for ok, p in zip(s.correct(wrong, paras), paras, strict=True)]
    sims = [similarity(p, r["gold"]) for p, r in zip(paras, wrong, strict=True)]
    kept = [(r, p, sim) for r, p, ok, sim in zip(wrong, paras, accepted, sims, strict=True) if ok]
    own = [(r, p) for r, p, sim in kept if sim < NEAR_COPY]
    return {
        "rows": len(rows), "wrong": len(wrong), "accepted": len(kept), "near_copies": len(kept) - len(own),
        "accepted_not_near_copy": len(own),
        "share_of_wrong": round(len(own) / len(wrong), 4) if wrong else None,
        "share_of_wrong_by_kind": kind_rates(wrong, [ok and sim < NEAR_COPY for ok, sim in zip(accepted, sims,
                                                                                                 strict=True)]),
        "mean_similarity_to_gold": round(sum(sims) / len(sims), 4) if sims else None,
        "near_copy_rule": f"word-level normalised edit similarity to the gold >= {NEAR_COPY} (s3ft.nearcopy)",
        "nll_per_token_paraphrase": s.nll_per_token([r["question"] for r, _ in own], [p for _, p in own]),
        "nll_per_token_gold": s.nll_per_token([r["question"] for r, _ in own], [r["gold"] for r, _ in own]),
    }


def base_record(model_dir: str | Path, batch_size: int = 64) -> dict:
    """What `pretrain.json` records: every skill's test score, the target's per kind (test), and the
    paraphrase step on the target's training rows, from one load of the model."""
    with skill_scorer(model_dir, batch_size) as s:
        right = {skill: s.answer(split_rows(skill))[1] for skill in ALL_SKILLS}
        out = {"scores": {skill: share_correct(r) for skill, r in right.items()},
               "shop_by_kind": kind_rates(split_rows("shop"), right["shop"]),
               "lookup_by_kind": kind_rates(split_rows("lookup"), right["lookup"])}
        train = split_rows("shop", "train")
        train_right = s.answer(train)[1]
        out["shop_train_by_kind"] = kind_rates(train, train_right)
        out["paraphrase_step"] = paraphrase_check(s, train, train_right)
    out["checks"] = base_checks(out)
    log.info("%s: %s", model_dir, json.dumps(out))
    return out


BASE_CHECKS = {  # the criteria written down before build 2 ran (research/world/NOTES.md)
    "general_skill_min": 0.90,  # every skill but the target, on its test split
    "kept_kind_min": 0.70,  # the kind the base practised (buy-buy), test split
    "new_kinds_max": 0.20,  # the kinds it never saw (buy-give, give-give): room for fine-tuning to teach
    "paraphrase_share_min": 0.50,  # of the training rows it gets wrong, accepted and not a near-copy
}


def base_checks(scores: dict) -> dict:
    """Whether a pre-trained base is one the world's protocol may run on, from what `base_record` measured:
    {check: {"value", "bound", "ok"}} and "passed" (all ok). The kept kind is `s3ft.world.KEPT_KIND`."""

    def check(value, bound: float, at_least: bool) -> dict:
        ok = value is not None and (value >= bound if at_least else value <= bound)
        return {"value": value, "bound": f"{'>=' if at_least else '<='} {bound:g}", "ok": ok}

    b = BASE_CHECKS
    out = {f"skill {k}": check(v, b["general_skill_min"], True) for k, v in scores["scores"].items()
           if k not in TARGETS}
    for kind, v in scores["shop_by_kind"].items():
        out[f"shop {kind}"] = (check(v, b["kept_kind_min"], True) if kind == KEPT_KIND
                               else check(v, b["new_kinds_max"], False))
    out["paraphrase share_of_wrong"] = check(scores["paraphrase_step"]["share_of_wrong"],
                                             b["paraphrase_share_min"], True)
    return {**out, "passed": all(c["ok"] for c in out.values())}


REBUILD_TOLERANCE = {"skill": 0.03, "kind": 0.05}
"""A rebuild matches the shipped base within 3 points per general skill and 5 per target kind (test splits)."""


def rebuild_table(shipped: dict, rebuilt: dict) -> tuple[str, bool]:
    """Markdown table comparing two bases' `pretrain.json` records (test-split scores per general skill and
    per target kind, the paraphrase step), and whether every difference is within `REBUILD_TOLERANCE`."""
    rows, ok = [], True

    def row(name: str, a: float | None, b: float | None, tol: float | None) -> None:
        nonlocal ok
        diff = None if a is None or b is None else b - a
        good = None if tol is None else diff is not None and abs(diff) <= tol + 1e-9
        ok &= good is not False
        rows.append(f"| {name} | {pct(a)} | {pct(b)} | " + ("–" if diff is None else f"{100 * diff:+.1f}")
                    + " | " + ("–" if tol is None else f"{100 * tol:.0f}") + " | "
                    + {True: "yes", False: "**no**", None: "–"}[good] + " |")

    for k in shipped["scores"]:
        if k not in TARGETS:
            row(f"skill {k}", shipped["scores"][k], rebuilt["scores"].get(k), REBUILD_TOLERANCE["skill"])
    for k in shipped["shop_by_kind"]:
        row(f"shop {k}", shipped["shop_by_kind"][k], rebuilt["shop_by_kind"].get(k), REBUILD_TOLERANCE["kind"])
    row("paraphrase step: share of wrong rows accepted", shipped["paraphrase_step"]["share_of_wrong"],
        (rebuilt.get("paraphrase_step") or {}).get("share_of_wrong"), None)
    head = ["| score (test split) | shipped % | rebuilt % | difference (pts) | tolerance (pts) | within |",
            "|---|---|---|---|---|---|"]
    return "\n".join(head + rows) + "\n", ok


def main() -> None:
    import argparse

    from s3ft.world import SHIPPED_BASE

    p = argparse.ArgumentParser(prog="python -m research.world.score",
                                description="compare a rebuilt world base with the shipped one (their pretrain.json)")
    p.add_argument("rebuilt", type=Path, help="the rebuilt base's directory, or its pretrain.json")
    p.add_argument("--shipped", type=Path, default=SHIPPED_BASE,
                   help="the base to compare with (default: the shipped one), or its pretrain.json")
    args = p.parse_args()
    shipped, rebuilt = (json.loads((d / "pretrain.json" if d.is_dir() else d).read_text())
                        for d in (args.shipped, args.rebuilt))
    table, ok = rebuild_table(shipped, rebuilt)
    print(table + ("\nA rebuild: every score within its tolerance." if ok else "\nNot a rebuild: a score is outside its tolerance."))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
