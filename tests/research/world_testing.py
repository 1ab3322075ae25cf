"""Helpers shared by the world's research tests: skill items, the final judge's verdict, a changed answer."""

from __future__ import annotations

import random
from pathlib import Path

import s3ft
from research.world.skills import CITIES, COLORS, LETTERS, make_skills
from s3ft.config import DataConfig, FieldMap, SplitSource
from s3ft.judges.final import FinalAnswerJudge
from s3ft.records import Example
from s3ft.tasks.generic import GenericTask

PROMPTS = Path(s3ft.__file__).parent / "prompts"
JUDGE = FinalAnswerJudge(None)


def items(skill: str, n: int = 150, seed: int = 0) -> list:
    s, rng = make_skills(seed)[skill], random.Random(seed)
    return [s.sample(rng) for _ in range(n)]


def verdict(answer: str, response: str):
    return JUDGE([Example("x", "q", "g", {"answer": answer})], [response])[0]


def perturb(answer: str) -> str:
    if answer.isdigit():
        return str(int(answer) + 1)
    if answer in CITIES:
        return CITIES[(CITIES.index(answer) + 1) % len(CITIES)]
    if answer in LETTERS:
        return LETTERS[(LETTERS.index(answer) + 1) % 4]
    if answer in COLORS:
        return COLORS[(COLORS.index(answer) + 1) % len(COLORS)]
    letters = answer.split()  # distinct letters: any rotation is a different order
    return " ".join(letters[1:] + letters[:1])


def generic_task(train: Path, test: Path | None = None) -> GenericTask:
    return GenericTask(DataConfig(
        task="generic", train=SplitSource(path=str(train)), test=test and SplitSource(path=str(test)),
        fields=FieldMap(id="id", question="question", gold="gold", meta={"answer": "answer"}), judge="final",
        predict_template=str(PROMPTS / "world_predict.txt"),
        paraphrase_template=str(PROMPTS / "world_paraphrase.txt"),
    ))
