"""The methods as one pure rule: which target each example trains on (METHOD.md's table).

| method | model answer correct | otherwise                        |
|--------|----------------------|----------------------------------|
| sft    | gold                 | gold                             |
| ssr    | self                 | gold                             |
| sdft   | paraphrase if correct, else gold (the model's answer is not used)   |
| s3ft   | self                 | paraphrase if correct, else gold |

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
}

TARGETS = {
    # method: its training targets, in words (model cards, `s3ft export`)
    "sft": "the gold response for every example",
    "ssr": "the model's own answer where the judge accepted it, else the gold",
    "sdft": "the model's paraphrase of the gold where the judge accepted it, else the gold",
    "s3ft": "the model's own answer where the judge accepted it, else its paraphrase of the gold where the "
            "judge accepted that, else the gold",
}


def choose_source(method: str, self_correct: bool | None, paraphrase_correct: bool | None) -> str:
    """`self`, `paraphrase` or `gold` for one example under `method`."""
    if method == "sft":
        return "gold"
    if method == "ssr":
        return "self" if self_correct is True else "gold"
    if method == "sdft":
        return "paraphrase" if paraphrase_correct is True else "gold"
    if method == "s3ft":
        if self_correct is True:
            return "self"
        return "paraphrase" if paraphrase_correct is True else "gold"
    raise ValueError(f"unknown method {method!r}")


def needs_generation(methods: list[str]) -> bool:
    return any(METHOD_NEEDS[m][0] for m in methods)


def paraphrase_scope(methods: list[str]) -> str | None:
    """`all` (some method rewrites every gold), `wrong` (only where the model was wrong) or None."""
    scopes = {METHOD_NEEDS[m][1] for m in methods} - {None}
    return "all" if "all" in scopes else ("wrong" if scopes else None)
