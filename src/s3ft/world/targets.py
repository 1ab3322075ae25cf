"""The miniature world's shipped files and target tasks, as `s3ft demo` reads them.

Reads the shipped splits (`s3ft/data/world/`); writes nothing. A target task (`shop`, `lookup`) has three
kinds of question, told apart by the question's text (`Target.kinds`); a run's accuracy is reported per kind
(`kind_rates`). The generators that wrote these files are research code, outside the package
(`research/world/`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from s3ft.config import PACKAGE_DIR

SHIPPED_DIR = Path(PACKAGE_DIR) / "data" / "world"
"""The world's held-out splits, `{skill}_{split}.jsonl`, and `world.json` (`python -m research.world.build`)."""
SHIPPED_BASE = Path(PACKAGE_DIR) / "data" / "world_model"
"""The shipped base model, with its build record `pretrain.json` (`python -m research.world.pretrain`)."""


def shipped_split(skill: str, split: str = "test") -> Path:
    """The shipped JSONL of one skill's held-out split."""
    return SHIPPED_DIR / f"{skill}_{split}.jsonl"


def split_rows(skill: str, split: str = "test", limit: int | None = None) -> list[dict]:
    """The first `limit` rows of a shipped split (all of them by default)."""
    return [json.loads(line) for line in shipped_split(skill, split).read_text().splitlines()][:limit]


SHOP_KINDS = {"buy-give": re.compile(r" buys \d+ more and gives away "),
              "buy-buy": re.compile(r" buys \d+ more and then "),
              "give-give": re.compile(r" gives away \d+ and then ")}
"""`shop`'s three kinds of two-step word problem, told apart by question."""
LOOKUP_KINDS = {"direct": re.compile(r"^(?:Passage|Read this): (?:[^.?]+\. ){6}(?:Question|Now answer): "
                                     r"(?!.*\bthe person (?:with|who)\b)"),
                "via-coat": re.compile(r"\bthe person with the \w+ coat\b"),
                "via-city": re.compile(r"\bthe person who lives in \w+\b")}
"""`lookup`'s three kinds of question over a passage about two people (a `direct` one by its passage of six
sentences, where a question of the general `passage` skill has three)."""


SHOP_V5_KINDS = {"buy-buy": re.compile(r" buys \d+ more and then \d+ more\."),
                 "buy-give": re.compile(r" buys \d+ more and then gives away \d+\."),
                 "give-buy": re.compile(r" gives away \d+ and then buys \d+ more\."),
                 "give-give": re.compile(r" gives away \d+ and then \d+ more\.")}
"""World v5's target (docs/world_v5.md): four kinds, addition and subtraction in both steps. No v4 `shop`
question is of any of them (v4's buy-give has no "then")."""
V5_DIR = Path(PACKAGE_DIR) / "data" / "world_v5"
"""World v5's held-out splits (`python -m research.world.v5.build`)."""
V5_BASES = V5_DIR / "bases"
"""The shipped v5 bases, one folder each (`research.world.v5.pretrain`), with their `pretrain.json`."""
TEMPLATE_SHARING_V5 = ("chain", "story")
"""World v5's general skills whose answers share the target's two-step worded template."""


@dataclass(frozen=True)
class Target:
    """A target task: its kinds of question, the kind the base practised (precondition 1's), the judge its
    golds are read with, and its demo config (`s3ft/configs/`)."""

    name: str
    kinds: dict[str, re.Pattern]
    kept_kind: str
    judge: str
    config: str

    def kind_of(self, question: str) -> str | None:
        """The one kind `question` is of, or None (not this task's, or matching several kinds)."""
        found = [k for k, pattern in self.kinds.items() if pattern.search(question)]
        return found[0] if len(found) == 1 else None


TARGET = {"shop": Target("shop", SHOP_KINDS, "buy-buy", "final", "world.yaml"),
          "lookup": Target("lookup", LOOKUP_KINDS, "direct", "qa", "world_lookup.yaml")}
TARGETS = tuple(TARGET)


def target(task: str = "shop") -> Target:
    """The target task `task`, or a clear error."""
    if task not in TARGET:
        raise ValueError(f"unknown world task {task!r}: choose from {', '.join(TARGET)}")
    return TARGET[task]


def kind_of_v5(question: str) -> str | None:
    """The kind of a world v5 target question (`SHOP_V5_KINDS`), or None (a target task of its own once v5's
    bases ship)."""
    found = [k for k, pattern in SHOP_V5_KINDS.items() if pattern.search(question)]
    return found[0] if len(found) == 1 else None


def target_of(questions: list[str]) -> Target | None:
    """The target task every one of `questions` is a question of (by its kinds), else None."""
    return next((t for t in TARGET.values() if questions and all(t.kind_of(q) for q in questions)), None)


def task_config(task: str = "shop") -> Path:
    """The demo config of a target task (`configs/world.yaml` for `shop`)."""
    return Path(PACKAGE_DIR) / "configs" / target(task).config


def by_kind(rows: list[dict]) -> dict[str, list[dict]]:
    """Target-task rows grouped by kind (their task's kinds; `shop`'s for no rows), in file order."""
    t = target_of([r["question"] for r in rows]) if rows else TARGET["shop"]
    if t is None:
        raise ValueError("these rows are not all questions of one target task (shop, lookup): no kinds to group by")
    return {kind: [r for r in rows if t.kind_of(r["question"]) == kind] for kind in t.kinds}


def share_correct(right: list[bool]) -> float | None:
    """The share of `right` that is true, to 4 places; None for no rows."""
    return round(sum(right) / len(right), 4) if right else None


def kind_rates(rows: list[dict], right: list[bool]) -> dict[str, float | None]:
    """The share correct of each kind of target problem, `right[i]` being row i's verdict."""
    ok = {r["id"]: r_ok for r, r_ok in zip(rows, right, strict=True)}
    return {kind: share_correct([ok[r["id"]] for r in kind_rows]) for kind, kind_rows in by_kind(rows).items()}
