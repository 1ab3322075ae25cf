"""Chat-format data for the generic task (TRL `messages`, ShareGPT, Alpaca; tests/fixtures/chat_*) and chat
templates that reject a system role. No model is built or loaded: the one tokenizer here is made offline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from s3ft.backends.template import FOLD_SYSTEM, fold_system_if_rejected
from s3ft.config import DataConfig, FieldMap, SplitSource, load_config
from s3ft.errors import ConfigError, InputError
from s3ft.records import Example
from s3ft.tasks.generic import GenericTask

FIX = Path(__file__).parent / "fixtures"
SYSTEM = {"role": "system", "content": "You are a terse calculator."}


def task_for(path: Path, fmt: str = "auto", **fields) -> tuple[GenericTask, SplitSource]:
    source = SplitSource(path=str(path))
    cfg = DataConfig(task="generic", judge="final", train=source, format=fmt,
                     fields=FieldMap(**fields) if fields else FieldMap())
    return GenericTask(cfg), source


def load(path: Path, fmt: str = "auto", **fields) -> list[Example]:
    task, source = task_for(path, fmt, **fields)
    return list(task.load(source))


def test_messages_rows_last_assistant_turn_is_the_gold(caplog):
    with caplog.at_level(logging.INFO, logger="s3ft"):
        exs = load(FIX / "chat_messages.jsonl", meta={"answer": "answer"})
    assert "read as data.format messages (auto" in caplog.text
    assert [ex.id for ex in exs] == ["train-1", "train-2", "train-3"]
    first, multi, plain = exs
    assert (first.question, first.gold, first.meta) == ("What is 2 + 2?", "2 + 2 = 4. The answer is 4.", {"answer": "4"})
    assert [m["role"] for m in first.context] == ["system"]
    assert multi.question == "And that times 2?" and multi.gold == "7 * 2 = 14. The answer is 14."
    assert [m["role"] for m in multi.context] == ["system", "user", "assistant"]
    assert multi.context[1]["content"] == "What is 3 + 4?" and plain.context == []


def test_sharegpt_system_column_or_first_turn_and_user_assistant_aliases():
    exs = load(FIX / "chat_sharegpt.json", id="id")
    assert [ex.id for ex in exs] == ["sg-1", "sg-2", "sg-3"]
    assert exs[0].context == [SYSTEM] and exs[0].question == "What is 5 + 6?"
    assert exs[1].context == [SYSTEM, {"role": "user", "content": "What is 9 - 4?"},
                              {"role": "assistant", "content": "9 - 4 = 5. The answer is 5."}]
    assert (exs[1].question, exs[1].gold) == ("Plus 10?", "5 + 10 = 15. The answer is 15.")
    assert exs[2].context == [] and exs[2].gold == "8 * 8 = 64. The answer is 64."


def test_alpaca_instruction_and_input_history_and_system():
    exs = load(FIX / "chat_alpaca.json")
    assert exs[0].question == "Add the two numbers.\n12 and 30" and exs[0].context == [SYSTEM]
    assert exs[1].question == "What is 6 * 7?" and exs[1].context == []  # an empty input adds nothing
    assert exs[2].context == [{"role": "user", "content": "What is 6 * 7?"},
                              {"role": "assistant", "content": "6 * 7 = 42. The answer is 42."}]
    assert exs[2].gold == "42 - 2 = 40. The answer is 40."


def test_prompts_put_the_conversation_before_the_question_and_the_reference():
    task, source = task_for(FIX / "chat_sharegpt.json")
    ex = list(task.load(source))[1]
    prompt = task.prompt(ex)
    assert prompt[:-1] == ex.context and prompt[-1] == {"role": "user", "content": "Plus 10?"}
    para = task.paraphrase_prompt(ex)
    assert para[:-1] == ex.context and para[-1]["role"] == "user"
    assert "Plus 10?" in para[-1]["content"] and ex.gold in para[-1]["content"]  # the reference is shown
    single = Example(id="x", question="q?", gold="g")
    assert task.prompt(single) == [{"role": "user", "content": "q?"}]  # single-turn prompts as before


def test_the_llm_judge_sees_the_conversation_before_the_last_user_turn():
    """"And that times 2?" cannot be judged without the turns before it: the judge is shown them."""
    from s3ft.judges.llm import LLMJudge

    task, source = task_for(FIX / "chat_messages.jsonl")
    ex = list(task.load(source))[1]
    judge = LLMJudge(None, backend=None, params=None)
    [message] = judge.prompt(ex, "14")
    content = message["content"]
    assert "terse calculator" in content and content.index("terse calculator") < content.index("And that times 2?")


def test_context_round_trips_through_the_data_file_and_is_absent_when_empty():
    ex = Example(id="a", question="q", gold="g", context=[SYSTEM])
    assert Example.from_dict(json.loads(json.dumps(ex.to_dict()))) == ex
    assert "context" not in Example(id="b", question="q", gold="g").to_dict()  # single-turn rows unchanged


def test_auto_reads_fields_when_question_or_gold_is_named_and_format_may_be_forced(tmp_path):
    rows = tmp_path / "qa.jsonl"
    rows.write_text(json.dumps({"q": "What?", "a": "That.", "messages": "not a conversation"}) + "\n")
    [ex] = load(rows, question="q", gold="a")
    assert (ex.question, ex.gold, ex.context) == ("What?", "That.", [])
    with pytest.raises(InputError, match=r"qa\.jsonl:1: field 'messages': expected a list of turns"):
        load(rows, "messages")
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    assert [(e.question, e.gold) for e in load(plain)] == [("Q?", "A.")]  # auto: the question/answer columns


def test_a_chat_format_with_question_or_gold_columns_is_a_config_error():
    raw = {"model": {"path": "m"}, "data": {"task": "generic", "train": {"path": "x.jsonl"}, "format": "sharegpt",
                                            "fields": {"question": "q"}}}
    with pytest.raises(ConfigError, match=r"fields\.question names a column, but data\.format sharegpt"):
        load_config(raw=raw)
    raw["data"]["fields"] = {"id": "id", "meta": {"answer": "answer"}}  # ids and judge inputs still apply
    assert load_config(raw=raw).data.format == "sharegpt"


def test_a_json_list_in_a_csv_cell_is_a_conversation(tmp_path):
    path = tmp_path / "chat.csv"
    turns = json.dumps([{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}])
    path.write_text('messages\n"' + turns.replace('"', '""') + '"\n')
    [ex] = load(path)
    assert (ex.question, ex.gold, ex.id) == ("Hi?", "Hello.", "train-2")


U, A, S = ({"role": r, "content": c} for r, c in (("user", "Q?"), ("assistant", "A."), ("system", "Be brief.")))
BAD = [
    # (format, bad row, field, message)
    ("messages", {"messages": [U]}, "messages[0]", "no assistant turn"),
    ("messages", {"messages": [S]}, "messages[0]", "no assistant turn"),
    ("messages", {"messages": [A, U]}, "messages[0]", "roles out of order: 'assistant' where 'user' belongs"),
    ("messages", {"messages": [U, U, A]}, "messages[1]", "roles out of order: 'user' where 'assistant' belongs"),
    ("messages", {"messages": [U, S, A]}, "messages[1]", "'system' after the first turn"),
    ("messages", {"messages": [U, A, U]}, "messages[2]", "ends with a user turn"),
    ("messages", {"messages": [U, {"role": "assistant", "content": "  "}]}, "messages[1].content", "empty"),
    ("messages", {"messages": [U, {"role": "assistant"}]}, "messages[1].content", "missing"),
    ("messages", {"messages": [{"role": "user", "content": ["a"]}, A]}, "messages[0].content", "expected text"),
    ("messages", {"messages": [U, {"role": "tool", "content": "x"}, A]}, "messages[1].role", "unknown role 'tool'"),
    ("messages", {"messages": [U, "A."]}, "messages[1]", "expected an object with 'role' and 'content'"),
    ("messages", {"messages": []}, "messages", "empty list"),
    ("messages", {"messages": {"role": "user"}}, "messages", "expected a list of turns"),
    ("messages", {"text": "no turns"}, "messages", "missing"),
    ("sharegpt", {"conversations": [{"from": "gpt", "value": "A."}]}, "conversations[0]", "roles out of order"),
    ("sharegpt", {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "A."}]},
     "conversations[0].value", "empty"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "Q?"}, {"from": "bot", "value": "A."}]},
     "conversations[1].from", "unknown role 'bot'"),
    ("sharegpt", {"system": "S.", "conversations": [{"from": "system", "value": "S."}, {"from": "human", "value": "Q?"},
                                                    {"from": "gpt", "value": "A."}]}, "system", "in both"),
    ("alpaca", {"instruction": "", "output": "A."}, "instruction", "empty"),
    ("alpaca", {"instruction": "Q?", "output": " "}, "output", "empty"),
    ("alpaca", {"instruction": "Q?", "output": "A.", "history": [["only one"]]}, "history[0]", "pair"),
    ("alpaca", {"instruction": "Q?", "output": "A.", "history": [["q", ""]]}, "history[0][1]", "empty"),
    ("alpaca", {"instruction": "Q?", "output": "A.", "history": "q, a"}, "history", "list of [instruction"),
]


@pytest.mark.parametrize(("fmt", "row", "field", "message"), BAD)
def test_bad_rows_name_file_line_and_field(tmp_path, fmt, row, field, message):
    good = {"messages": {"messages": [U, A]}, "sharegpt": {"conversations": [{"from": "human", "value": "Q?"},
                                                                            {"from": "gpt", "value": "A."}]},
            "alpaca": {"instruction": "Q?", "output": "A."}}[fmt]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")  # the bad row is line 2
    with pytest.raises(InputError) as e:
        load(path, fmt)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, field), str(e.value)
    assert message in str(e.value) and str(e.value).startswith(f"{path}:2: field '{field}': ")


# --- chat templates that reject a system role ------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE tokenizer made offline (no model), with Mistral-7B-Instruct-v0.2's kind of template."""
    from s3ft.tiny import build_tokenizer

    tok = build_tokenizer(vocab_size=300, texts=["What is 2 + 2? The answer is 4. Be brief."] * 50)
    tok.mistral = (FIX / "mistral_chat_template.jinja").read_text().strip()
    return tok


def render(tok, messages, generation: bool = True) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def test_a_template_that_rejects_a_system_role_folds_it_into_the_first_user_turn(tokenizer, caplog):
    from jinja2 import TemplateError

    tokenizer.chat_template = tokenizer.mistral
    convo = [S, U, A, {"role": "user", "content": "And again?"}]
    with pytest.raises(TemplateError, match="roles must alternate"):
        render(tokenizer, convo)
    without_system = render(tokenizer, convo[1:])
    with caplog.at_level(logging.INFO, logger="s3ft"):
        assert fold_system_if_rejected(tokenizer, "mistral-like") is True
        assert fold_system_if_rejected(tokenizer, "mistral-like") is False  # already folded
        tokenizer.chat_template = tokenizer.mistral
        assert fold_system_if_rejected(tokenizer, "mistral-like") is True
    assert caplog.text.count("rejects a system role") == 1  # said once
    assert render(tokenizer, convo) == "<|bos|>[INST] Be brief.\n\nQ? [/INST]A.<|im_end|>[INST] And again? [/INST]"
    assert render(tokenizer, convo[1:]) == without_system  # no system turn: rendered exactly as before
    # prompt + answer starts with the prompt, as completion-only loss and the NLL need
    prompt = [S, U]
    assert render(tokenizer, [*prompt, A], generation=False).startswith(render(tokenizer, prompt))


def test_a_template_that_takes_a_system_role_or_fails_anyway_is_left_alone(tokenizer):
    from s3ft.tiny import CHAT_TEMPLATE

    tokenizer.chat_template = CHAT_TEMPLATE  # ChatML: renders a system turn
    assert fold_system_if_rejected(tokenizer, "chatml") is False and tokenizer.chat_template == CHAT_TEMPLATE
    broken = "{{ raise_exception('no chat here') }}"
    tokenizer.chat_template = broken  # fails on a user turn too: its error shows where it is used
    assert fold_system_if_rejected(tokenizer, "broken") is False and tokenizer.chat_template == broken
    tokenizer.chat_template = FOLD_SYSTEM + tokenizer.mistral
    assert fold_system_if_rejected(tokenizer, "folded") is False
