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
