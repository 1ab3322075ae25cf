"""The methods as one pure rule: which target each example trains on (METHOD.md's table).

| method | model answer correct | otherwise                        |
|--------|----------------------|----------------------------------|
| sft    | gold                 | gold                             |
| ssr    | self                 | gold                             |
| sdft   | paraphrase if correct, else gold (the model's answer is not used)   |
| s3ft   | self                 | paraphrase if correct, else gold |
| s3ft-k | self                 | the likeliest correct one of k samples (`self_sample`), else paraphrase if correct, else gold |

A verdict of None (the judge could not decide) counts as not correct: an undecided answer is
never trained on.
"""

from __future__ import annotations

METHOD_NEEDS = {
    # method: (needs the model's own answers, which examples it paraphrases)
    "sft": (False, None),
    "ssr": (True, None),
    "sdft": (False, "all"),
    "s3ft": (True, "wrong"),
    "s3ft-k": (True, "unrecovered"),  # wrong, and no correct sample among the k (`s3ft.stages.resample`)
}

TARGETS = {
    # method: its training targets, in words (model cards, `s3ft export`)
    "sft": "the gold response for every example",
    "ssr": "the model's own answer where the judge accepted it, else the gold",
    "sdft": "the model's paraphrase of the gold where the judge accepted it, else the gold",
    "s3ft": "the model's own answer where the judge accepted it, else its paraphrase of the gold where the "
            "judge accepted that, else the gold",
    "s3ft-k": "the model's own answer where the judge accepted it, else the likeliest of its k sampled answers "
              "the judge accepted, else its paraphrase of the gold where the judge accepted that, else the gold",
}

SOURCES = ("self", "paraphrase", "gold")
"""Where a target comes from; `s3ft-k` has a fourth, `self_sample` (`sources`)."""


def sources(method: str) -> tuple[str, ...]:
    """The target sources `method` can choose, in the order a composition lists them."""
    return ("self", "self_sample", "paraphrase", "gold") if method == "s3ft-k" else SOURCES


def choose_source(method: str, self_correct: bool | None, paraphrase_correct: bool | None,
                  sample_correct: bool | None = None) -> str:
    """`self`, `self_sample` (s3ft-k: a correct sample was kept), `paraphrase` or `gold` for one example."""
    if method == "sft":
        return "gold"
    if method == "ssr":
        return "self" if self_correct is True else "gold"
    if method == "sdft":
        return "paraphrase" if paraphrase_correct is True else "gold"
    if method in ("s3ft", "s3ft-k"):
        if self_correct is True:
            return "self"
        if method == "s3ft-k" and sample_correct is True:
            return "self_sample"
        return "paraphrase" if paraphrase_correct is True else "gold"
    raise ValueError(f"unknown method {method!r}")


def needs_generation(methods: list[str]) -> bool:
    return any(METHOD_NEEDS[m][0] for m in methods)


def needs_resample(methods: list[str]) -> bool:
    """Whether a method samples the base again where its greedy answer was not accepted (`s3ft-k`)."""
    return "s3ft-k" in methods


def paraphrase_scope(methods: list[str]) -> str | None:
    """`all` (some method rewrites every gold), `wrong` (only where the model was wrong), `unrecovered` (only where
    it was wrong and no sample was correct: s3ft-k alone), or None. Methods together: the widest scope they need."""
    scopes = {METHOD_NEEDS[m][1] for m in methods} - {None}
    return next((s for s in ("all", "wrong", "unrecovered") if s in scopes), None)
