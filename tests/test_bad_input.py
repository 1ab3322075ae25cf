"""Bad input anywhere: each class of bad data is an error naming the file, the line and the field, or a
per-row verdict; nothing is dropped unaccounted for.

Data files (every reader and built-in task), the data stage's counts, the training file, the judges on
predictions no model should write, a backend or a judge failing midway through a stage, and the select
stage's accounting. No model is built or loaded: backends and judges here are fakes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3ft.config import METHODS, DataConfig, FieldMap, JudgeConfig, SplitSource, load_config
from s3ft.errors import InputError, StageError
from s3ft.judges.final import FinalAnswerJudge
from s3ft.judges.llm import LLMJudge
from s3ft.judges.qa import QAJudge
from s3ft.records import Example, Verdict
from s3ft.rundir import Rows, read_jsonl, stage_root, write_jsonl
from s3ft.stages import data, select
from s3ft.stages.generate import generate_into
from s3ft.stages.judge import judge_into, summarize
from s3ft.tasks.generic import GenericTask
from s3ft.tasks.gsm8k import GSM8K
from s3ft.tasks.humaneval import HumanEval
from s3ft.tasks.mbpp import MBPP
from s3ft.tasks.nq import NaturalQuestions
from s3ft.training import read_train_rows

FIX = Path(__file__).parent / "fixtures"
BIG = 10_000_000  # characters in one field
GSM = {"question": "What is 1+1?", "answer": "1+1=2\n#### 2"}
MBPP_ROW = {"task_id": 7, "text": "Write f.", "code": "def f():\n    return 1", "test_list": ["assert f() == 1"]}
NQ = {"question": "who wrote hamlet", "answer": ["Shakespeare", "William Shakespeare"]}
HE = {"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
      "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}  # fmt: skip
GEN = {"uid": "a", "q": "Capital of France?", "g": "Paris"}


def generic() -> GenericTask:
    return GenericTask(DataConfig(train=SplitSource(path="x.jsonl"), fields=FieldMap(id="uid", question="q", gold="g")))


# task, a good row, its question field, its gold field
TASKS = {
    "gsm8k": (GSM8K, GSM, "question", "answer"),
    "mbpp": (MBPP, MBPP_ROW, "text", "code"),
    "nq": (NaturalQuestions, NQ, "question", "answer"),
    "humaneval": (HumanEval, HE, "prompt", "canonical_solution"),
    "generic": (generic, GEN, "q", "g"),
}


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def load(task, path: Path, **kw) -> list[Example]:
    return list(task.load(SplitSource(path=str(path), **kw)))


def raises_at(task, path: Path, line: int | None, field: str | None, match: str) -> InputError:
    with pytest.raises(InputError, match=match) as e:
        load(task, path)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), line, field)
    assert str(e.value).startswith(f"{path}:{line}:" if line is not None else f"{path}:")
    return e.value


# --- data files: malformed rows, wrong types, missing and empty fields ----------------------------------------


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("which", ["question", "gold"])
@pytest.mark.parametrize("bad", ["missing", "empty", "blank", "null"])
def test_a_missing_or_empty_question_or_gold_names_file_line_and_field(tmp_path, name, which, bad):
    make, good, q, g = TASKS[name]
    field = q if which == "question" else g
    row = {k: v for k, v in good.items() if k != field}
    if bad != "missing":
        row[field] = {"empty": "", "blank": " \n\t", "null": None}[bad]
    f = jsonl(tmp_path / "d.jsonl", [good, row])
    want = "missing" if bad in ("missing", "null") else "empty"
    raises_at(make(), f, 2, field, want)


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("value", [{"a": 1}, ["x"], True, float("nan")], ids=["object", "list", "bool", "nan"])
def test_a_question_of_the_wrong_type_names_its_field(tmp_path, name, value):
    make, good, q, _ = TASKS[name]
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, q: value}) + "\n")  # NaN is written as NaN
    raises_at(make(), f, 2, q, "expected text, found")


@pytest.mark.parametrize(
    "name, field, value, match",
    [
        ("gsm8k", "answer", ["#### 2"], "expected text, found a list"),
        ("mbpp", "task_id", {"id": 7}, "expected text, found an object"),
        ("mbpp", "test_list", ["assert f() == 1", 3], "a list holding int"),
        ("mbpp", "test_setup_code", ["import os"], "expected text, found list"),
        ("nq", "answer", [1945], "a list holding int"),
        ("nq", "answer", {"a": "b"}, "expected a list of strings, found an object"),
        ("humaneval", "entry_point", ["f"], "expected text, found a list"),
        ("generic", "uid", ["a"], "expected text, found a list"),
        ("generic", "g", False, "expected text, found true/false"),
    ],
)
def test_other_fields_of_the_wrong_type(tmp_path, name, field, value, match):
    make, good, _, _ = TASKS[name]
    f = jsonl(tmp_path / "t.jsonl", [good, {**good, "uid": "b", field: value}])
    raises_at(make(), f, 2, field, match)


def test_numbers_are_text_as_written(tmp_path):
    f = jsonl(tmp_path / "n.jsonl", [{"uid": 17, "q": 12, "g": 4.5}])
    (ex,) = load(generic(), f)
    assert (ex.id, ex.question, ex.gold) == ("17", "12", "4.5")


def test_malformed_rows_name_their_line(tmp_path):
    deep = '{"q": ' + "[" * 100_000 + "]" * 100_000 + "}"
    f = jsonl(tmp_path / "deep.jsonl", [GEN, deep])
    raises_at(generic(), f, 2, None, "nested too deeply")
    f = jsonl(tmp_path / "cut.jsonl", [GEN, '{"uid": "b", "q": "x", "g": ', GEN])
    raises_at(generic(), f, 2, None, "not valid JSON")
    f = jsonl(tmp_path / "array.jsonl", [GEN, '["uid", "q", "g"]'])
    raises_at(generic(), f, 2, None, "expected a JSON object, found list")
    (tmp_path / "rows.json").write_text(json.dumps([GEN, "a string"]))
    raises_at(generic(), tmp_path / "rows.json", 2, None, "row 2 is not a JSON object")


# --- invalid UTF-8, lone surrogates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, line",
    [
        ("d.jsonl", b'{"uid": "a", "q": "x", "g": "y"}\n{"uid": "b", "q": "caf\xe9", "g": "y"}\n', 2),
        ("d.csv", b"uid,q,g\na,x,y\nb,caf\xe9,y\n", 3),
        ("d.json", b'[{"uid": "a", "q": "x", "g": "y"},\n {"uid": "b",\n  "q": "caf\xe9", "g": "y"}]', 3),
    ],
)
def test_invalid_utf8_names_the_file_and_line(tmp_path, name, content, line):
    (tmp_path / name).write_bytes(content)
    raises_at(generic(), tmp_path / name, line, None, r"not valid UTF-8: invalid continuation byte at byte \d+")


def test_invalid_utf8_in_the_training_file_names_its_line(tmp_path):
    good = json.dumps(train_row("x")).encode()
    (tmp_path / "train.jsonl").write_bytes(good + b"\n" + good.replace(b'"x"', b'"\xff"') + b"\n")
    with pytest.raises(InputError, match=r"train\.jsonl:2: not valid UTF-8") as e:
        read_train_rows(tmp_path / "train.jsonl")
    assert e.value.line == 2


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_a_lone_surrogate_escape_names_its_field(tmp_path, name):
    row = '{"uid": "b", "q": "x", "g": "half a pair: \\ud83d"}'
    good = '{"uid": "a", "q": "ok \\ud83d\\ude00", "g": "y"}'  # a whole pair is one character, and fine
    text = f"{good}\n{row}\n" if name.endswith("l") else f"[{good},\n{row}]"
    (tmp_path / name).write_text(text)
    raises_at(generic(), tmp_path / name, 2, "g", r"not valid Unicode: a lone surrogate '\\ud83d'")
    assert load(generic(), jsonl(tmp_path / "ok.jsonl", [good]))[0].question == "ok \U0001f600"


# --- duplicate ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, repeat",
    [
        ("gsm8k", {**GSM, "answer": "1+1=3\n#### 3"}),  # the same question (its id), another solution
        ("mbpp", {**MBPP_ROW, "code": "def f():\n    return 2"}),
        ("humaneval", {**HE, "canonical_solution": "    return 2\n"}),
        ("generic", {**GEN, "q": "Capital of Spain?", "g": "Madrid"}),
    ],
)
def test_a_duplicate_id_names_both_lines(tmp_path, name, repeat):
    make, good, _, _ = TASKS[name]
    other = {**good, "task_id": 8, "uid": "b", "question": "What is 2+2?"} if name != "humaneval" else {
        **good, "task_id": "HumanEval/1"}  # fmt: skip
    f = jsonl(tmp_path / "dup.jsonl", [good, other, repeat])
    raises_at(make(), f, 3, None, r"duplicate id '.+' \(first at line 1\)")


def test_a_plugin_task_that_yields_an_id_twice_stops_the_data_stage(tmp_path):
    class Twice:
        def load(self, source):
            yield from (Example("a", "q1", "g1"), Example("b", "q2", "g2"), Example("a", "q3", "g3"))

    ctx = data_ctx(Twice(), tmp_path / "x.jsonl")
    with pytest.raises(InputError, match=r"x\.jsonl: field 'id': duplicate example id 'a' \(examples 1 and 3"):
        data.run(ctx, tmp_path / "out")
    assert not (tmp_path / "out" / "train.jsonl").exists()


# --- huge strings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_a_huge_field_loads(tmp_path, suffix):
    big = "long gold " * (BIG // 10)
    path = tmp_path / f"big{suffix}"
    if suffix == ".jsonl":
        jsonl(path, [{**GEN, "g": big}])
    elif suffix == ".json":
        path.write_text(json.dumps([{**GEN, "g": big}]))
    elif suffix == ".csv":
        path.write_text(f"uid,q,g\na,Capital of France?,{big}\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"uid": ["a"], "q": ["Capital of France?"], "g": [big]}), path)
    (ex,) = load(generic(), path)
    assert ex.gold == big and len(ex.gold) == BIG


def test_a_parquet_column_of_bytes_is_no_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"uid": ["a", "b"], "q": ["x", "y"], "g": [b"ok", b"\xff"]}), tmp_path / "b.parquet")
    raises_at(generic(), tmp_path / "b.parquet", 1, "g", "expected text, found bytes")


# --- the data stage accounts for every row --------------------------------------------------------------------


def data_ctx(task, train: Path, test: Path | None = None):
    split = lambda p: p and SplitSource(path=str(p))  # noqa: E731
    return SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(train=split(train), test=split(test))), task=task)


def test_data_counts_say_how_many_rows_were_read_and_folded_into_another(tmp_path):
    gsm = jsonl(tmp_path / "g.jsonl", [GSM, {**GSM, "question": "What is 2+2?"}, GSM])  # an identical repeat
    test = jsonl(tmp_path / "t.jsonl", [{**GSM, "question": "What is 5+5?"}])
    counts = data.run(data_ctx(GSM8K(), gsm, test), tmp_path / "out")
    assert counts == {"train": 2, "train_rows": 3, "train_repeats": 1, "test": 1, "test_rows": 1, "test_repeats": 0}
    assert len(read_jsonl(tmp_path / "out" / "train.jsonl")) == 2
    nq = jsonl(tmp_path / "n.jsonl", [NQ, {**NQ, "answer": ["Bard"]}, {**NQ, "question": "q2"}])  # merged aliases
    counts = data.run(data_ctx(NaturalQuestions(), nq), tmp_path / "out2")
    assert counts == {"train": 2, "train_rows": 3, "train_repeats": 1}
    (merged, _) = read_jsonl(tmp_path / "out2" / "train.jsonl")
    assert merged["meta"]["answers"] == ["Shakespeare", "William Shakespeare", "Bard"]


def test_an_empty_split_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"e\.jsonl: the train split has no examples"):
        data.run(data_ctx(generic(), jsonl(tmp_path / "e.jsonl", ["", "  "])), tmp_path / "out")


# --- the training file ----------------------------------------------------------------------------------------


def train_row(answer: str) -> dict:
    return {"id": "t", "prompt": [{"role": "user", "content": "Q?"}],
            "completion": [{"role": "assistant", "content": answer}]}  # fmt: skip


@pytest.mark.parametrize(
    "bad, field, match",
    [
        (train_row(" \n"), "completion", "empty: nothing to learn"),
        ({**train_row("x"), "completion": "x"}, "completion", "non-empty list of"),
        ({**train_row("x"), "prompt": [{"role": "user", "content": 3}]}, "prompt", "string 'role' and 'content'"),
        ('{"prompt": ' + "[" * 100_000, None, "invalid JSON"),
    ],
)
def test_bad_training_rows_name_line_and_field(tmp_path, bad, field, match):
    f = jsonl(tmp_path / "train.jsonl", [train_row("x"), bad])
    with pytest.raises(InputError, match=match) as e:
        read_train_rows(f)
    assert (e.value.path, e.value.line, e.value.field) == (str(f), 2, field)


def test_a_huge_target_and_repeated_rows_are_read(tmp_path):
    rows = read_train_rows(jsonl(tmp_path / "train.jsonl", [train_row("y" * BIG), train_row("x"), train_row("x")]))
    assert len(rows) == 3 and len(rows[0]["completion"][0]["content"]) == BIG  # repeats: upsampling, kept


# --- judges: never raise on a bad prediction ------------------------------------------------------------------

BAD_PREDICTIONS = {
    "empty": "", "none": None, "blank": " \n\t ", "nul": "The answer is 7\x00", "surrogate": "The answer is \ud800",
    "control": "\x1b[31m#### 7\x1b[0m", "huge": "The answer is 7. " + "x" * 10**6, "digits": "9" * 100_000,
    "braces": "\\boxed{" * 200 + "{gold} {0}", "code fence": "```python\n" * 50,
}  # fmt: skip


class NonsenseBackend:
    """An LLM judge's model that answers anything but yes or no (and sometimes nothing)."""

    model_id = "nonsense"
    replies = ["Maybe.", "", None, "Yes/No", "asdf " * 10_000, "\ud800", "The prediction is 7.", "yesno"]

    def generate(self, prompts, params):
        return [self.replies[i % len(self.replies)] for i in range(len(prompts))]


def judges():
    from s3ft.backends.base import GenParams
    from s3ft.judges.code import CodeJudge
    from s3ft.judges.math import MathJudge

    cfg = JudgeConfig(workers=1, timeout_s=3.0, memory_mb=256)
    return {"final": FinalAnswerJudge(), "qa": QAJudge(cfg), "math": MathJudge(cfg), "code": CodeJudge(cfg),
            "llm": LLMJudge(cfg, NonsenseBackend(), GenParams())}  # fmt: skip


def test_no_judge_raises_on_a_bad_prediction_and_each_verdict_is_stored(tmp_path):
    ex = Example("x", "What is 3+4?", "def f():\n    return 7", {"answer": "7", "answers": ["7"],
                 "tests": ["assert f() == 7"], "test_setup": ""})  # fmt: skip
    preds = list(BAD_PREDICTIONS.values())
    for name, judge in judges().items():
        try:
            verdicts = judge([ex] * len(preds), preds)
        finally:
            getattr(judge, "close", lambda: None)()
        assert len(verdicts) == len(preds), name
        for what, v in zip(BAD_PREDICTIONS, verdicts, strict=True):
            assert isinstance(v, Verdict) and v.correct in (True, False, None) and isinstance(v.reason, str), (name, what)
            assert v.correct is not True or (what in ("huge", "nul") and name != "llm"), (name, what, v)
        rows = Rows(tmp_path / f"{name}.jsonl")  # every verdict can be written and read back as it was
        rows.append({"id": f"{name}-{what}", **v.to_dict()} for what, v in zip(BAD_PREDICTIONS, verdicts, strict=True))
        assert list(Rows(rows.path).rows.values()) == list(rows.rows.values())
        if name == "llm":
            assert {v.correct for v in verdicts} == {None}  # nonsense is undecided, never a verdict


# --- a backend or a judge failing midway ----------------------------------------------------------------------


class FailingBackend:
    """Generates `echo: <id>`; raises (or answers wrongly) on the `fail_on`-th call."""

    model_id = "flaky"

    def __init__(self, fail_on: int | None = None, how: str = "raise"):
        self.fail_on, self.how, self.calls = fail_on, how, 0

    def generate(self, prompts, params):
        self.calls += 1
        texts = [f"echo: {p[0]['content']}" for p in prompts]
        if self.calls == self.fail_on:
            if self.how == "raise":
                raise RuntimeError("CUDA error: device-side assert triggered")
            return texts[:-1] if self.how == "short" else [*texts[:-1], None]
        return texts


ITEMS = [(f"id-{n}", [{"role": "user", "content": f"id-{n}"}]) for n in range(10)]


@pytest.mark.parametrize(
    "how, problem",
    [
        ("raise", "the backend raised RuntimeError: CUDA error: device-side assert triggered"),
        ("short", "the backend returned 2 texts for 3 prompts"),
        ("none", "the backend returned a NoneType for id 'id-8'"),
    ],
)
def test_a_backend_failing_midway_keeps_the_rows_written_and_names_stage_and_chunk(tmp_path, how, problem):
    from s3ft.backends.base import GenParams

    rows = Rows(tmp_path / "rows.jsonl")
    with pytest.raises(StageError) as e:
        generate_into(rows, FailingBackend(fail_on=3, how=how), ITEMS, GenParams(), 3, "paraphrase", "paraphrase")
    assert str(e.value) == (
        f"paraphrase: chunk 3 of 4 (3 rows, ids 'id-6' .. 'id-8') failed: {problem}; "
        "the 6 rows written before it are kept, and a rerun resumes from them"
    )
    assert (e.value.stage, e.value.chunk) == ("paraphrase", 3)
    kept = Rows(tmp_path / "rows.jsonl")
    assert list(kept.rows) == [f"id-{n}" for n in range(6)]
    backend = FailingBackend()
    assert generate_into(kept, backend, ITEMS, GenParams(), 3, "paraphrase", "paraphrase") == 4
    assert [r["id"] for r in read_jsonl(tmp_path / "rows.jsonl")] == [i for i, _ in ITEMS]  # each once, in order
    assert all(r["paraphrase"] == f"echo: {r['id']}" for r in read_jsonl(tmp_path / "rows.jsonl"))


class FlakyJudge:
    name, version = "flaky", "1"

    def __init__(self, fail_on: int):
        self.fail_on, self.calls = fail_on, 0

    def __call__(self, examples, predictions):
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("judge server went away")
        return [Verdict(p.endswith("0"), "ok") for p in predictions]


def test_a_judge_failing_midway_keeps_the_verdicts_written(tmp_path):
    pairs = [(Example(f"e{n}", "q", "g"), f"answer {n}") for n in range(7)]
    rows = Rows(tmp_path / "v.jsonl")
    with pytest.raises(StageError, match=r"^judge: chunk 2 of 3 \(3 rows, ids 'e3' \.\. 'e5'\) failed: the judge "
                                         r"raised ConnectionError: judge server went away; the 3 rows written"):  # fmt: skip
        judge_into(rows, FlakyJudge(fail_on=2), pairs, 3, "judge")
    assert list(Rows(rows.path).rows) == ["e0", "e1", "e2"]
    assert judge_into(rows, FlakyJudge(fail_on=0), pairs, 3, "judge") == 4
    counts = summarize(Rows(rows.path))
    assert counts["rows"] == 7 == counts["correct"] + counts["wrong"] + counts["undecided"]


def test_an_llm_judge_replying_nonsense_records_undecided_verdicts(tmp_path):
    from s3ft.backends.base import GenParams

    pairs = [(Example(f"e{n}", "q", "g"), "some answer") for n in range(10)]
    rows = Rows(tmp_path / "v.jsonl")
    judge_into(rows, LLMJudge(JudgeConfig(), NonsenseBackend(), GenParams()), pairs, 4, "judge")
    assert summarize(Rows(rows.path)) == {"rows": 10, "correct": 0, "wrong": 0, "undecided": 10, "sandbox": {},
                                          "cannot_split": 0}
    assert all(r["reason"].startswith("undecided: ") for r in read_jsonl(rows.path))


# --- select: every example is in exactly one source -----------------------------------------------------------

VERDICT = st.sampled_from([None, True, False, "missing"])
ROW = st.tuples(VERDICT, st.booleans(), VERDICT, st.booleans(), st.booleans())  # self, cut; para, cut, copies gold


def select_cfg(near_copy: float | None):
    return load_config(raw={"run_dir": "unused", "method": list(METHODS), "model": {"path": "fake"},
                            "data": {"task": "gsm8k", "train": {"path": str(FIX / "gsm8k_train.jsonl")}},
                            "select": {"nll": False, "near_copy": near_copy}})  # fmt: skip


SELECT_CFGS = {near_copy: select_cfg(near_copy) for near_copy in (None, 0.5)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("select")  # each example rewrites every file in it


@settings(deadline=None, database=None, derandomize=True, max_examples=50)
@given(plan=st.lists(ROW, min_size=6, max_size=6), near_copy=st.sampled_from([None, 0.5]))
def test_select_puts_every_example_in_exactly_one_source(run_dir, plan, near_copy):
    task, cfg, run = GSM8K(), SELECT_CFGS[near_copy], run_dir
    examples = load(task, FIX / "gsm8k_train.jsonl")[:6]
    write_jsonl(stage_root(run, "data") / "train.jsonl", (e.to_dict() for e in examples))
    gen, judged, para, para_judged = [], [], [], []
    for ex, (v, cut, pv, pcut, copies) in zip(examples, plan, strict=True):
        gen.append({"id": ex.id, "prediction": "The answer is 1.", "finish": "length" if cut else "stop"})
        if v != "missing":
            judged.append({"id": ex.id, "correct": v, "reason": "r", "extracted": None})
        if pv != "missing":
            text = task.gold_target(ex) if copies else "In my words: 1."
            para.append({"id": ex.id, "paraphrase": text, "rejected": None, "finish": "length" if pcut else "stop"})
            para_judged.append({"id": ex.id, "correct": pv, "reason": "r", "extracted": None})
    for stage, rows in (("generate", gen), ("judge", judged), ("paraphrase", para), ("judge_paraphrase", para_judged)):
        write_jsonl(stage_root(run, stage) / "rows.jsonl", rows)
    ctx = SimpleNamespace(cfg=cfg, task=task, stage_dir=lambda s: stage_root(run, s), chunk=4)
    for method in METHODS:
        counts = select.run(ctx, stage_root(run, "select") / method, method)
        rows = read_jsonl(stage_root(run, "select") / method / "train.jsonl")
        assert [r["id"] for r in rows] == [e.id for e in examples]  # each example once, in order
        assert counts["rows"] == 6 == counts["self"] + counts["paraphrase"] + counts["gold"]
        assert all(r["source"] in ("self", "paraphrase", "gold") for r in rows)
        for r, (v, cut, pv, pcut, _) in zip(rows, plan, strict=True):
            if r["source"] == "self":  # only an approved answer that was not cut off
                assert v is True and not cut
            if r["source"] == "paraphrase":
                assert pv is True and not pcut and not r.get("near_copy")
            assert bool(r.get("truncated")) == (cut or (pcut and pv != "missing"))
