"""LLM judge with a fake backend: the prompts it builds, one generate call per batch, and how
replies become verdicts (`parse_yes_no`)."""

from __future__ import annotations

import pytest

from s3ft.backends.base import GenParams, Messages
from s3ft.config import JudgeConfig
from s3ft.errors import ConfigError
from s3ft.judges.llm import DEFAULT_TEMPLATE, LLMJudge, check_template, gold_text, parse_yes_no
from s3ft.records import Example

EX = Example(
    id="gsm8k-0",
    question="Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    gold="Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
)


class FakeBackend:
    model_id = "fake-judge"

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.calls = replies, []

    def generate(self, prompts: list[Messages], params: GenParams) -> list[str]:
        self.calls.append((prompts, params))
        return self.replies[: len(prompts)]

    def nll(self, prompts: list[Messages], completions: list[str]) -> list[tuple[float, int]]:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("reply", "decision"),
    [
        ("Yes", True), ("yes.", True), ("**Yes**", True), ("Yes, the prediction is correct.", True),
        ("  YES\n", True), ('"Yes"', True), ("Verdict: No", False), ("No.", False), ("no", False),
        ("No, the predicted answer is 96, not 72.", False), ("Answer: **yes**", True),
        ("The verdict is: No", False), ("Final answer: Yes", True), ("<think>72 = 72, no error</think>Yes", True),
        ("No, no.", False),
        ("", None), ("   ", None), ("Maybe", None), ("asdf qwerty", None), ("Yesterday", None), ("Nothing", None),
        ("The prediction is correct.", None), ("Yes/No", None), ("yes or no", None), ("Yes and no.", None),
        ("No, yes.", None),
    ],
)  # fmt: skip
def test_parse_yes_no(reply: str, decision: bool | None) -> None:
    assert parse_yes_no(reply) is decision


def test_one_call_prompts_and_verdicts() -> None:
    long = "Yes. " + "The prediction states 72, which matches the gold. " * 10
    backend = FakeBackend(["Yes", "no.", "garbage !!", "", long])
    params = GenParams(max_new_tokens=16)
    preds = ["The answer is 72.", "The answer is 96.", "72", "", "So $\\boxed{72}$ {gold} {0}"]
    verdicts = LLMJudge(JudgeConfig(), backend, params)([EX] * 5, preds)
    assert len(backend.calls) == 1 and backend.calls[0][1] is params
    prompts = backend.calls[0][0]
    for msgs, pred in zip(prompts, preds, strict=True):
        assert [m["role"] for m in msgs] == ["user"]
        text = msgs[0]["content"]
        assert EX.question in text and EX.gold in text and f"Predicted response:\n{pred}\n" in text
    assert "{gold} {0}" in prompts[4][0]["content"]  # braces in a prediction are left alone
    assert [v.correct for v in verdicts] == [True, False, None, None, True]
    assert verdicts[0].reason == "judge said: Yes"
    assert verdicts[1].reason == "judge said: no."
    assert verdicts[2].reason == "undecided: garbage !!"
    assert verdicts[3].reason == "undecided: <empty reply>"
    assert verdicts[4].reason.startswith("judge said: Yes. The prediction") and len(verdicts[4].reason) <= 215


def test_custom_template_and_empty_batch() -> None:
    backend = FakeBackend(["No"])
    judge = LLMJudge(
        JudgeConfig(), backend, GenParams(), template='Gold: {gold}\nGuess: {prediction}\nJSON: {{"ok": 1}}'
    )
    assert judge([], []) == [] and backend.calls == []
    (v,) = judge([EX], ["72"])
    assert v.correct is False
    assert backend.calls[0][0][0][0]["content"] == f'Gold: {EX.gold}\nGuess: 72\nJSON: {{"ok": 1}}'


@pytest.mark.parametrize(
    "template",
    ["{gold} {prediction} {", "{gold} {answer}", "Is {prediction} right?", '{gold} {prediction} {"a": 1}'],
)
def test_bad_templates_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError, match="judge.llm.template"):
        LLMJudge(JudgeConfig(), FakeBackend([]), GenParams(), template=template)


def test_default_template() -> None:
    text = DEFAULT_TEMPLATE.read_text()
    assert check_template(text) == text
    assert all(f"{{{f}}}" in text for f in ("question", "gold", "prediction"))
    assert '"Yes"' in text and '"No"' in text


def test_the_judge_sees_every_gold_alias() -> None:
    moon = Example(id="nq-1", question="when was the last time anyone was on the moon", gold="14 December 1972 UTC",
                   meta={"answers": ["14 December 1972 UTC", "December 1972", " December 1972 "]})  # fmt: skip
    one = Example(id="nq-2", question="who got the first nobel prize in physics", gold="Wilhelm Conrad Röntgen",
                  meta={"answers": ["Wilhelm Conrad Röntgen"]})  # fmt: skip
    backend = FakeBackend(["Yes", "Yes", "No"])
    LLMJudge(JudgeConfig(), backend, GenParams())([moon, one, EX], ["December 1972", "Röntgen", "72"])
    shown = [msgs[0]["content"] for msgs in backend.calls[0][0]]
    aliases = "Any one of these answers is correct:\n- 14 December 1972 UTC\n- December 1972"
    assert gold_text(moon) == aliases and f"Gold response:\n{aliases}\n\nPredicted response:" in shown[0]
    assert gold_text(one) == one.gold and f"Gold response:\n{one.gold}\n\n" in shown[1]
    assert gold_text(EX) == EX.gold and EX.gold in shown[2]  # no aliases: the gold response itself
    assert LLMJudge.version == "3"


def test_the_judge_sees_the_conversation_before_the_question() -> None:
    chat = Example(id="c", question="And in Celsius?", gold="100 degrees Celsius.", context=[
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Water boils at what, in F?"},
        {"role": "assistant", "content": "212 F."}])  # fmt: skip
    backend = FakeBackend(["Yes", "Yes"])
    LLMJudge(JudgeConfig(), backend, GenParams())([chat, EX], ["100 C", "72"])
    shown = [msgs[0]["content"] for msgs in backend.calls[0][0]]
    assert ("Question:\n(asked in this conversation)\n[system] Answer briefly.\n[user] Water boils at what, in F?\n"
            "[assistant] 212 F.\n[user] And in Celsius?\n\nGold response:") in shown[0]
    assert f"Question:\n{EX.question}\n\nGold" in shown[1]  # single-turn: the question alone


def test_reply_count_mismatch_raises() -> None:
    with pytest.raises(RuntimeError, match="1 replies for 2 prompts"):
        LLMJudge(JudgeConfig(), FakeBackend(["Yes"]), GenParams())([EX, EX], ["72", "72"])


def stand_in_backends(monkeypatch) -> list[str]:
    """Backends that only record which model paths are loaded (the returned list) until closed."""
    from s3ft.context import Context

    loaded: list[str] = []

    class Fake:
        def __init__(self, path):
            self.path = path
            loaded.append(path)

        def close(self):
            loaded.remove(self.path)

    monkeypatch.setattr(Context, "make_backend", lambda self, m, backend, adapter=None: Fake(m.path))
    return loaded


def test_a_judge_with_its_own_model_never_shares_the_device_with_the_base(monkeypatch, tmp_path):
    """The base model is freed before a separate judge model loads, and the judge model before the base (or a
    trained model) loads again."""
    from s3ft.config import load_config
    from s3ft.context import Context

    cfg = load_config(raw={"run_dir": str(tmp_path), "model": {"path": "base/model"},
                           "data": {"task": "gsm8k", "train": {"path": "x.jsonl"}},
                           "judge": {"name": "llm", "llm": {"model": {"path": "judge/model"}}}})
    loaded = stand_in_backends(monkeypatch)
    ctx = Context(cfg)
    ctx.backend()
    assert loaded == ["base/model"]
    ctx.judge()
    assert loaded == ["judge/model"]
    ctx.backend()
    assert loaded == ["base/model"]
    ctx.judge()
    assert loaded == ["judge/model"]
    ctx.trained_backend("sft")
    assert loaded == ["base/model"]  # LoRA: the base model with the adapter
    ctx.release()
    assert loaded == []


def test_the_base_and_a_trained_model_never_share_the_device(monkeypatch, tmp_path):
    """Evaluating a method frees the base model (and an LLM judge that generates through it, built again on a
    freshly loaded base when next asked for); loading the base frees the trained model."""
    from s3ft.config import load_config
    from s3ft.context import Context

    cfg = load_config(raw={"run_dir": str(tmp_path), "model": {"path": "base/model"},
                           "data": {"task": "gsm8k", "train": {"path": "x.jsonl"}}, "judge": {"name": "llm"},
                           "train": {"mode": "full"}})
    loaded = stand_in_backends(monkeypatch)
    ctx = Context(cfg)
    first_judge = ctx.judge()
    assert loaded == ["base/model"] and first_judge.backend is ctx.backend()
    ctx.trained_backend("sft")
    assert loaded == [str(tmp_path / "07_train" / "sft" / "model")]
    judge = ctx.judge()  # judging the trained model's answers: the base again, the trained model freed
    assert judge is not first_judge and loaded == ["base/model"] and judge.backend is ctx.backend()
    ctx.trained_backend("sft")
    ctx.trained_backend("ssr")
    assert loaded == [str(tmp_path / "07_train" / "ssr" / "model")]
    ctx.release()
    assert loaded == []


def test_evaluate_generates_every_set_before_it_judges_any(tmp_path):
    """One model's in-domain and general sets are all generated before the first is judged: a judge with a
    model (its own, or the base judging a trained model) loads once per evaluated model, not once per set."""
    from types import SimpleNamespace

    from s3ft.config import load_config
    from s3ft.records import Example, Verdict
    from s3ft.stages.evaluate import ScoreSet, score_all

    events: list[str] = []

    class Backend:
        def generate(self, prompts, params):
            events.append("generate")
            return ["4"] * len(prompts)

    def judge(examples, texts):
        events.append("judge")
        return [Verdict(t == ex.gold, "same") for ex, t in zip(examples, texts, strict=True)]

    cfg = load_config(raw={"run_dir": str(tmp_path), "model": {"path": "m"},
                           "data": {"task": "gsm8k", "train": {"path": "x.jsonl"}}})
    ctx = SimpleNamespace(cfg=cfg, chunk=8, evaluated=lambda m, snap: Backend(), judge=lambda name: judge)
    task = SimpleNamespace(prompt=lambda ex: [{"role": "user", "content": ex.question}])
    sets = [ScoreSet(tmp_path / name, [Example(f"{name}{i}", "2+2?", str(gold)) for i, gold in enumerate((4, 5))],
                    task, None, 8, name) for name in ("in_domain", "g1", "g2")]
    results = score_all(ctx, "sft", sets)
    assert events == ["generate"] * 3 + ["judge"] * 3
    assert [r["accuracy"] for r in results] == [0.5] * 3
    events.clear()
    assert score_all(ctx, "sft", sets) == results and events == []  # resumed: nothing generated or judged again


def test_evaluate_generates_in_batches_of_evaluate_batch_size(tmp_path):
    """`evaluate.batch_size` sets the batches of evaluation (the backend's and the flushed chunks), through a
    cache wrapper, and the shared base backend gets its own batch size back afterwards."""
    from types import SimpleNamespace

    from s3ft.cache import maybe_cached
    from s3ft.config import load_config
    from s3ft.records import Example, Verdict
    from s3ft.stages.evaluate import ScoreSet, score_all

    calls: list[tuple[int, int]] = []

    class Backend:
        model_id, batch_size = "m", 16

        def generate(self, prompts, params):
            calls.append((len(prompts), self.batch_size))
            return ["4"] * len(prompts)

    base = Backend()
    backend = maybe_cached(base, tmp_path / "cache.sqlite")
    judge = lambda examples, texts: [Verdict(t == ex.gold, "same") for ex, t in zip(examples, texts, strict=True)]  # noqa: E731
    examples = [Example(f"e{i}", "2+2?", "4") for i in range(10)]
    for size, expected in ((3, [(3, 3)] * 3 + [(1, 3)]), (None, [(10, 16)])):
        cfg = load_config(raw={"run_dir": str(tmp_path), "model": {"path": "m"}, "evaluate": {"batch_size": size},
                               "data": {"task": "gsm8k", "train": {"path": "x.jsonl"}}})
        ctx = SimpleNamespace(cfg=cfg, evaluated=lambda m, snap: backend, judge=lambda name: judge)
        task = SimpleNamespace(prompt=lambda ex, size=size: [{"role": "user", "content": f"{ex.id} {size}"}])
        calls.clear()
        assert score_all(ctx, "base", [ScoreSet(tmp_path / str(size), examples, task, None, 8, "t")])[0]["accuracy"] == 1
        assert calls == expected and base.batch_size == 16
