"""Chat templates that refuse a system turn: the system prompt is folded into the first user turn.

Some chat templates raise on a system message (Mistral-7B-Instruct-v0.2's: "Conversation roles must
alternate user/assistant/user/assistant/..."). `fold_system_if_rejected(tokenizer, name)` tries to render a
system message with the tokenizer's template; where the template raises, it puts `FOLD_SYSTEM` in front of
it: a Jinja prelude that joins a leading system message and the first user turn into one user turn (system
text, a blank line, user text), so that every place that applies the template (the hf backend's generation
and NLL, TRL's training, vLLM through `chat_template`, a trained model saved with the tokenizer) renders the
same prompt. It logs this once per model. Messages without a system turn render exactly as before. Reads
and writes nothing but the tokenizer object it is given.
"""

from __future__ import annotations

import logging

from s3ft.errors import S3FTError

log = logging.getLogger("s3ft.template")

FOLD_SYSTEM = (
    "{#- s3ft: this template rejects a system role; the system prompt is folded into the first user turn -#}\n"
    "{%- if messages and messages[0]['role'] == 'system' -%}\n"
    "{%- if messages | length > 1 and messages[1]['role'] == 'user' -%}\n"
    "{%- set messages = [{'role': 'user', 'content': messages[0]['content'] ~ '\\n\\n' ~ messages[1]['content']}]"
    " + messages[2:] -%}\n"
    "{%- else -%}\n"
    "{%- set messages = [{'role': 'user', 'content': messages[0]['content']}] + messages[1:] -%}\n"
    "{%- endif -%}\n"
    "{%- endif -%}\n"
)
_PROBE = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
_said: set[str] = set()


def _renders(tokenizer, messages: list[dict[str, str]]) -> Exception | None:
    """None if the tokenizer's chat template renders `messages`, else the template's error."""
    from jinja2 import TemplateError

    try:
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError as e:
        return e
    return None


def fold_system_if_rejected(tokenizer, name: str) -> bool:
    """Put `FOLD_SYSTEM` before the tokenizer's chat template where that template raises on a system message
    (and renders a user message); True when it did. A template already folded is left as it is."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or template.startswith(FOLD_SYSTEM):
        return False
    if _renders(tokenizer, _PROBE[1:]) is not None:
        return False  # the template fails on a plain user turn too: that error shows where it is used
    error = _renders(tokenizer, _PROBE)
    if error is None:
        return False
    tokenizer.chat_template = FOLD_SYSTEM + template
    if name not in _said:
        _said.add(name)
        log.info("%s: the chat template rejects a system role (%s); a system prompt is folded into the first "
                 "user turn", name, error)
    return True


def chat_ids(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    """The token ids of `messages` rendered with the tokenizer's chat template."""
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                        return_dict=True)
    return list(enc["input_ids"])


def completion_tokens(tokenizer, prompt: list[dict[str, str]], completion: str) -> tuple[list[int], int]:
    """Token ids of prompt + completion as trained on, and where the completion starts (every backend scores
    these same tokens).

    The completion's tokens are those after the prompt rendered with the generation prompt, so they include
    whatever the template appends to the assistant turn (end-of-turn tokens).
    """
    p_ids = chat_ids(tokenizer, prompt, add_generation_prompt=True)
    full = chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": completion}], add_generation_prompt=False)
    if full[: len(p_ids)] != p_ids:
        n = next((i for i, (a, b) in enumerate(zip(p_ids, full, strict=False)) if a != b), min(len(p_ids), len(full)))
        raise S3FTError(
            "the chat template is not prefix-consistent: the prompt rendered with the generation prompt "
            f"is not a prefix of prompt + answer (they differ from token {n}: "
            f"{tokenizer.decode(p_ids[n:])!r} vs {tokenizer.decode(full[n : n + 8])!r}); "
            "the completion NLL is undefined for this template"
        )
    return full, len(p_ids)
