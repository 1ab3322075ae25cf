"""LLM judge: asks a model whether each prediction is correct given the gold response.

Reads each example's question and gold and the prediction, fills a prompt template (default: the
package's `prompts/llm_judge.txt`, str.format placeholders {question}, {gold}, {prediction}), sends
all prompts to `backend.generate` in one call and writes one `Verdict` per prediction from the
reply: "Yes" -> correct, "No" -> incorrect, anything else -> `correct=None` (see `parse_yes_no`).
An example with several gold aliases (`meta["answers"]`, as in Natural Questions) shows the judge all of
them as {gold}, one per line, any one of which is correct (`gold_text`). A question asked inside a
conversation (chat data: a system prompt, earlier turns) shows the judge the conversation before it as
part of {question} (`question_text`).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import TYPE_CHECKING

from s3ft.errors import ConfigError
from s3ft.judges.qa import gold_aliases
from s3ft.records import Example, Failed, Verdict

if TYPE_CHECKING:
    from s3ft.backends.base import Backend, GenParams, Messages
    from s3ft.config import JudgeConfig

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "prompts" / "llm_judge.txt"
FIELDS = ("question", "gold", "prediction")
_LABEL = re.compile(
    r"^(?:the\s+)?(?:(?:final|my)\s+)?(?:verdict|answer|judgement|judgment|decision|response|output)"
    r"\s*(?:is\b)?\s*[:\-]?\s*"
)


def parse_yes_no(reply: str) -> bool | None:
    """The judge's decision, or None when it made none.

    Rule: drop `<think>...</think>` blocks, markdown and quote characters and leading punctuation,
    lowercase, and strip one optional leading label ("Verdict:", "Answer:", "Final answer is", ...).
    The reply must then START with the word "yes" or "no" (the first decisive token); that word
    decides, whatever follows ("Yes, the prediction is correct" -> True). Undecided (None): an empty
    reply, any other first word ("Maybe", "The prediction ..."), and a first word followed at once by
    its opposite, alone or after "or"/"and"/"nor" ("Yes/No", "yes or no", "Yes, no doubt").
    """
    text = re.sub(r"<think>.*?(?:</think>|$)", " ", reply or "", flags=re.S | re.I).lower()
    text = re.sub(r"[*_`#>\[\](){}\"'“”‘’]", " ", text)
    text = _LABEL.sub("", re.sub(r"^[\W_]+", "", text), count=1)
    words = re.findall(r"[a-z]+", text)
    if not words or words[0] not in ("yes", "no"):
        return None
    opposite = "no" if words[0] == "yes" else "yes"
    nxt = words[1:3]
    if nxt[:1] == [opposite] or (nxt[:1] in (["or"], ["and"], ["nor"]) and nxt[1:] == [opposite]):
        return None
    return words[0] == "yes"


def check_template(template: str) -> str:
    """The template, if it is a str.format template using only {question}, {gold} and {prediction}
    (with {gold} and {prediction}); raises `ConfigError` otherwise."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        template.format(**dict.fromkeys(FIELDS, ""))
        problem = None
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        names, problem = set(), f"{type(e).__name__}: {e}"
    if problem is None and (names - set(FIELDS) or not {"gold", "prediction"} <= names):
        problem = f"placeholders {sorted(names)}"
    if problem:
        raise ConfigError(
            None,
            "judge.llm.template",
            f"{problem}; a judge template uses {{gold}} and {{prediction}}, optionally {{question}}, "
            "and writes literal braces as {{ and }}",
        )
    return template


def gold_text(ex: Example) -> str:
    """The gold as the judge sees it: the gold response, or, where the example has several distinct gold
    aliases, all of them, one per line, any one of which is correct."""
    aliases = list(dict.fromkeys(a.strip() for a in gold_aliases(ex) if a.strip()))
    if len(aliases) < 2:
        return ex.gold
    return "Any one of these answers is correct:\n" + "\n".join(f"- {a}" for a in aliases)


def question_text(ex: Example) -> str:
    """The question as the judge sees it: the question, after the conversation before it where there is one
    (a system prompt, earlier turns), since the gold and the prediction answer it in that context."""
    if not ex.context:
        return ex.question
    turns = "\n".join(f"[{m['role']}] {m['content']}" for m in ex.context)
    return f"(asked in this conversation)\n{turns}\n[user] {ex.question}"


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


class LLMJudge:
    name = "llm"
    version = "3"  # 2: every gold alias is shown; 3: and the conversation before the question

    def __init__(
        self, cfg: JudgeConfig, backend: Backend, params: GenParams, template: str | None = None
    ) -> None:
        """`template` is the prompt text itself (None: the packaged default), not a path."""
        self.cfg, self.backend, self.params = cfg, backend, params
        self.template = check_template(DEFAULT_TEMPLATE.read_text() if template is None else template)

    def prompt(self, ex: Example, prediction: str) -> Messages:
        content = self.template.format(question=question_text(ex), gold=gold_text(ex), prediction=prediction or "")
        return [{"role": "user", "content": content}]

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        if not examples:
            return []
        prompts = [self.prompt(ex, p) for ex, p in zip(examples, predictions, strict=True)]
        replies = self.backend.generate(prompts, self.params)
        if len(replies) != len(prompts):
            raise RuntimeError(f"judge backend returned {len(replies)} replies for {len(prompts)} prompts")
        verdicts = []
        for reply in replies:
            if isinstance(reply, Failed):  # its prompt (question, gold, prediction) is too long for the judge's model
                verdicts.append(Verdict(None, f"undecided: the judge's prompt is too long: {reply.reason}"))
                continue
            decided = parse_yes_no(reply)
            shown = _short(reply or "") or "<empty reply>"
            verdicts.append(Verdict(decided, f"{'undecided' if decided is None else 'judge said'}: {shown}"))
        return verdicts
