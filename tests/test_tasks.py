"""Tests of the data-stage tasks (GSM8K, MBPP, NQ, generic) and their readers, on tests/fixtures/."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from s3ft.config import DataConfig, FieldMap, SplitSource
from s3ft.errors import InputError
from s3ft.records import Example
from s3ft.tasks.generic import GenericTask
from s3ft.tasks.gsm8k import GSM8K
from s3ft.tasks.io import read_rows, require
from s3ft.tasks.mbpp import MBPP
from s3ft.tasks.nq import NaturalQuestions

FIX = Path(__file__).parent / "fixtures"


def src(path: Path | str, **kw) -> SplitSource:
    return SplitSource(path=str(path), **kw)


def cfg(path: Path | str = FIX / "gsm8k_train.jsonl", **kw) -> DataConfig:
    return DataConfig(train=src(path), **kw)


def load(task, path: Path | str, **kw) -> list:
    return list(task.load(src(path, **kw)))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def content(messages: list[dict]) -> str:
    assert [m["role"] for m in messages] == ["user"]
    return messages[0]["content"]


# --- GSM8K ------------------------------------------------------------------------------------


def test_gsm8k_loads_with_stable_unique_ids():
    task = GSM8K(cfg())
    train = load(task, FIX / "gsm8k_train.jsonl")
    assert len(train) == 8 and len(load(task, FIX / "gsm8k_test.jsonl")) == 4
    ids = [ex.id for ex in train]
    assert len(set(ids)) == 8 and all(i.startswith("gsm8k-") and len(i) == len("gsm8k-") + 12 for i in ids)
    assert ids == [ex.id for ex in load(GSM8K(), FIX / "gsm8k_train.jsonl")]
    assert train[0].meta == {"answer": "72"} and train[2].meta == {"answer": "5000"}  # "#### 5,000"
    assert (task.name, task.version, task.default_judge, task.stop) == ("gsm8k", "1", "math", ())


def test_gsm8k_gold_target_is_cleaned():
    ex = load(GSM8K(), FIX / "gsm8k_train.jsonl")[0]
    assert "<<" in ex.gold and "####" in ex.gold  # the gold itself is kept as given
    assert GSM8K().gold_target(ex) == (
        "Natalia sold 48/2 = 24 clips in May.\n"
        "Natalia sold 48+24 = 72 clips altogether in April and May.\nThe answer is 72."
    )
    target = GSM8K().gold_target(load(GSM8K(), FIX / "gsm8k_train.jsonl")[2])
    assert target.endswith("= 5000 cookies.\nThe answer is 5000.") and "####" not in target


def test_gsm8k_prompts():
    task = GSM8K()
    ex = load(task, FIX / "gsm8k_test.jsonl")[1]
    p = content(task.prompt(ex))
    assert ex.question in p and "step by step" in p and '"The answer is <number>."' in p
    pp = content(task.paraphrase_prompt(ex))
    assert ex.question in pp and task.gold_target(ex) in pp and "<<" not in pp
    assert "reference answer" in pp.lower() and "not mention the reference" in pp
    assert set(task.templates()) == {"predict", "paraphrase"}
    assert (
        task.templates()["predict"] == (FIX.parent.parent / "src/s3ft/prompts/gsm8k_predict.txt").read_text()
    )


def test_gsm8k_bad_rows(tmp_path):
    good = {"question": "What is 1+1?", "answer": "1+1=<<1+1=2>>2\n#### 2"}
    f = write_jsonl(tmp_path / "a.jsonl", [good, {"question": "x", "answer": "no final line"}])
    with pytest.raises(InputError, match=r"a\.jsonl:2: field 'answer': no final '####"):
        load(GSM8K(), f)
    f = write_jsonl(tmp_path / "b.jsonl", [good, good, {**good, "answer": "#### 3"}])
    with pytest.raises(InputError, match=r"b\.jsonl:3: duplicate id .* \(first at line 1\)"):
        load(GSM8K(), f)
    f = write_jsonl(tmp_path / "c.jsonl", [good, good])  # an identical repeat is dropped
    assert len(load(GSM8K(), f)) == 1


# --- reading errors ---------------------------------------------------------------------------


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    rows = [{"question": "q1", "answer": "#### 1"}, "", '{"question": "q2", "answer": ', "[1, 2]"]
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError, match="not valid JSON") as e:
        load(GSM8K(), f)
    assert str(f) in str(e.value) and ":3:" in str(e.value) and e.value.line == 3
    f = write_jsonl(tmp_path / "list.jsonl", [rows[0], rows[3]])
    with pytest.raises(InputError, match=r"list\.jsonl:2: expected a JSON object"):
        load(GSM8K(), f)


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"answer": "#### 1"}, "question", "missing"),
        ({"question": "q", "answer": "   "}, "answer", "empty"),
        ({"question": "q", "answer": None}, "answer", "missing"),
    ],
)
def test_missing_or_empty_field_names_field_and_line(tmp_path, row, field, message):
    f = write_jsonl(tmp_path / "d.jsonl", [{"question": "ok", "answer": "#### 1"}, row])
    with pytest.raises(InputError) as e:
        load(GSM8K(), f)
    assert (e.value.path, e.value.line, e.value.field) == (str(f), 2, field)
    assert f"d.jsonl:2: field '{field}': {message}" in str(e.value)


def test_require_and_no_such_file(tmp_path):
    assert require({"a": [1]}, "a", "f", 1) == [1]
    with pytest.raises(InputError, match="f:4: field 'a': empty list"):
        require({"a": []}, "a", "f", 4)
    with pytest.raises(InputError, match="no such file"):
        list(read_rows(src(tmp_path / "missing.jsonl")))
    with pytest.raises(InputError, match="unsupported file type"):
        list(read_rows(src(write_jsonl(tmp_path / "x.txt", []))))
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"x\.parquet: not a readable Parquet file"):
        list(read_rows(src(tmp_path / "x.parquet")))
    (tmp_path / "latin.jsonl").write_bytes(
        b'{"question": "ok", "answer": "#### 1"}\n{"question": "caf\xe9"}\n'
    )
    with pytest.raises(InputError, match=r"latin\.jsonl:2: not valid UTF-8"):
        load(GSM8K(), tmp_path / "latin.jsonl")


def test_json_file_and_limit(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(5)]
    (tmp_path / "l.json").write_text(json.dumps(rows))
    (tmp_path / "d.json").write_text(json.dumps({"data": rows}))
    assert [ex.meta["answer"] for ex in load(GSM8K(), tmp_path / "l.json", limit=2)] == ["0", "1"]
    assert [n for n, _ in read_rows(src(tmp_path / "d.json"))] == [1, 2, 3, 4, 5]
    assert len(load(NaturalQuestions(), FIX / "nq_train.jsonl", limit=4)) == 4
    (tmp_path / "bad.json").write_text('[{"question": "q"},\n 3]')
    with pytest.raises(InputError, match=r"bad\.json:2: row 2 is not a JSON object"):
        list(read_rows(src(tmp_path / "bad.json")))


def test_hub_id_goes_to_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return [
            {"question": "What is 2+2?", "answer": "2+2=<<2+2=4>>4\n#### 4"},
            {"question": "x", "answer": ""},
        ]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = GSM8K()
    assert [ex.meta["answer"] for ex in load(task, "openai/gsm8k", name="main", limit=1)] == ["4"]
    assert calls == [(("openai/gsm8k", "main"), {"split": "train", "revision": None})]
    load(task, "openai/gsm8k", name="main", revision="e53f048", limit=1)  # a pinned hub revision reaches datasets
    assert calls[-1] == (("openai/gsm8k", "main"), {"split": "train", "revision": "e53f048"})
    with pytest.raises(InputError, match=r"openai/gsm8k:2: field 'answer': empty"):
        load(task, "openai/gsm8k", name="main")

    def offline(*args, **kwargs):
        raise ConnectionError("hub unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(InputError, match="could not load hub dataset.*hub unreachable"):
        load(task, "nq_open", split="validation")


# --- templates --------------------------------------------------------------------------------


def test_template_override_from_file(tmp_path):
    (tmp_path / "p.txt").write_text("Q: {question}\nShow your work.\n")
    (tmp_path / "pp.txt").write_text("Q: {question}\nHint: {reference}\n{{not a placeholder}}\n")
    task = GSM8K(cfg(predict_template=str(tmp_path / "p.txt"), paraphrase_template=str(tmp_path / "pp.txt")))
    ex = load(task, FIX / "gsm8k_train.jsonl")[0]
    assert content(task.prompt(ex)) == f"Q: {ex.question}\nShow your work."
    assert content(task.paraphrase_prompt(ex)).endswith("The answer is 72.\n{not a placeholder}")
    assert task.templates() == {
        "predict": "Q: {question}\nShow your work.\n",
        "paraphrase": (tmp_path / "pp.txt").read_text(),
    }
    with pytest.raises(InputError, match=r"nope\.txt: no such template file"):
        MBPP(cfg(paraphrase_template=str(tmp_path / "nope.txt")))


@pytest.mark.parametrize(
    "text, match",
    [
        ("Line one\nQ: {question} {tests}", r"t\.txt:2: unknown placeholder \{tests\}"),
        ("{question} {}", r"unknown placeholder \{\}"),
        ("{question} {answer.x}", r"unknown placeholder \{answer\.x\}"),
        ("{question} {", "bad template"),
    ],
)
def test_unknown_placeholder_fails_when_the_task_is_built(tmp_path, text, match):
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(InputError, match=match):
        NaturalQuestions(cfg(predict_template=str(tmp_path / "t.txt")))


def test_packaged_templates_use_only_known_placeholders():
    for task in (GSM8K(), MBPP(), NaturalQuestions(), GenericTask(cfg())):
        for kind, text in task.templates().items():
            names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            assert "question" in names, (task.name, kind)
            assert ("reference" in names) == (kind == "paraphrase"), (task.name, kind)


# --- MBPP -------------------------------------------------------------------------------------


def run_code(code: str, setup: str, tests: list[str]) -> None:
    scope: dict = {}
    exec(setup.replace("\r\n", "\n"), scope)  # trusted fixtures
    exec(code, scope)
    for t in tests:
        exec(t, scope)


@pytest.mark.parametrize("name", ["mbpp_train.jsonl", "mbpp_test.jsonl"])
def test_mbpp_fixture_gold_passes_its_tests(name):
    task = MBPP()
    examples = load(task, FIX / name)
    assert len(examples) >= 3
    for ex in examples:
        target = task.gold_target(ex)
        assert target.startswith("[BEGIN]\n") and target.endswith("\n[DONE]") and "\r" not in target
        run_code(
            target.removeprefix("[BEGIN]\n").removesuffix("\n[DONE]"),
            ex.meta["test_setup"],
            ex.meta["tests"] + ex.meta["challenge_tests"],
        )
    with pytest.raises(AssertionError):  # the check can fail
        run_code("def square_perimeter(a):\n    return 3 * a", "", ["assert square_perimeter(10) == 40"])


def test_mbpp_loads_meta_and_prompts():
    task = MBPP(cfg())
    train = load(task, FIX / "mbpp_train.jsonl")
    assert [ex.id for ex in train] == ["mbpp-602", "mbpp-604", "mbpp-605", "mbpp-610"]
    assert (task.name, task.version, task.default_judge, task.stop) == ("mbpp", "2", "code", ("[DONE]",))
    ex = train[3]
    assert len(ex.meta["tests"]) == 3 and "class Node" in ex.meta["test_setup"]
    assert train[2].meta["challenge_tests"] == ["assert prime_num(97)==True", "assert prime_num(1)==False"]
    p = content(task.prompt(ex))
    assert p.startswith("You are an expert Python programmer, and here is your task: " + ex.question)
    assert "\n".join(ex.meta["tests"]) in p and "[BEGIN]" in p and "[DONE]" in p
    pp = content(task.paraphrase_prompt(ex))
    assert ex.question in pp and ex.meta["tests"][0] in pp and "def count_nodes(head):\n  count = 0" in pp


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("[BEGIN]\ndef f():\n    return 1\n", "[BEGIN]\ndef f():\n    return 1\n[DONE]"),  # cut before [DONE]
        ("[BEGIN]\ndef f():\n    return 1\n  \n\n", "[BEGIN]\ndef f():\n    return 1\n[DONE]"),
        ("[BEGIN]\ndef f():\n    return 1", "[BEGIN]\ndef f():\n    return 1\n[DONE]"),
        ("[BEGIN]\ndef f():\n    return 1\n[DONE]", "[BEGIN]\ndef f():\n    return 1\n[DONE]"),  # has it already
        ("def f(): return 1", "def f(): return 1\n[DONE]"),  # the model's own format, kept
    ],
)
def test_mbpp_every_target_ends_with_done(text, target):
    task = MBPP(cfg())
    ex = load(task, FIX / "mbpp_train.jsonl")[0]
    assert task.target(ex, text) == target
    assert task.target(ex, task.gold_target(ex)) == task.gold_target(ex)  # the gold target as it is


def test_the_stop_rule_holds_for_any_task_whose_gold_carries_a_stop_string():
    class Tagged(GSM8K):
        stop = ("</answer>",)

        def gold_target(self, ex):
            return super().gold_target(ex) + "\n</answer>"

    ex = load(GSM8K(), FIX / "gsm8k_train.jsonl")[0]
    assert Tagged().target(ex, "The answer is 7.\n") == "The answer is 7.\n</answer>"
    untagged = GSM8K()
    untagged.stop = ("</answer>",)  # a stop string the gold does not carry: targets are left alone
    assert untagged.target(ex, "The answer is 7.\n") == "The answer is 7.\n"
    assert GSM8K().target(ex, "The answer is 7.\n") == "The answer is 7.\n"


def test_mbpp_sanitized_schema_and_bad_rows(tmp_path):
    row = {
        "source_file": "x.py",
        "task_id": 7,
        "prompt": "Write a function to double a number.",
        "code": "import math\ndef double(x):\n    return 2 * x",
        "test_imports": ["import math"],
        "test_list": ["assert double(2) == 4"],
    }
    ex = load(MBPP(), write_jsonl(tmp_path / "s.jsonl", [row]))[0]
    assert (ex.id, ex.question, ex.meta["test_setup"]) == ("mbpp-7", row["prompt"], "import math")
    f = write_jsonl(tmp_path / "t.jsonl", [row, {**row, "task_id": 8, "test_list": "assert x"}])
    with pytest.raises(InputError, match=r"t\.jsonl:2: field 'test_list': expected a list of strings"):
        load(MBPP(), f)
    f = write_jsonl(tmp_path / "u.jsonl", [row, {**row, "code": "def double(x): return x + x"}])
    with pytest.raises(InputError, match=r"u\.jsonl:2: duplicate id 'mbpp-7' \(first at line 1\)"):
        load(MBPP(), f)


# --- Natural Questions ------------------------------------------------------------------------


def test_nq_loads_aliases_and_prompts():
    task = NaturalQuestions(cfg())
    train = load(task, FIX / "nq_train.jsonl")
    assert len(train) == 6 and len({ex.id for ex in train}) == 6 and train[0].id.startswith("nq-")
    assert [ex.id for ex in load(task, FIX / "nq_train.jsonl")] == [ex.id for ex in train]
    assert (task.name, task.version, task.default_judge) == ("nq", "1", "qa")
    ex = train[2]
    assert ex.meta == {"answers": ["11", "eleven"]} and ex.gold == "11" and task.gold_target(ex) == "11"
    assert content(task.prompt(ex)) == f"Answer the question with a short answer.\nQuestion: {ex.question}"
    pp = content(task.paraphrase_prompt(ex))
    assert ex.question in pp and "Reference answer: 11" in pp
    assert len(load(task, FIX / "nq_test.jsonl")) == 3


def test_nq_repeated_question_merges_aliases(tmp_path):
    q = "who sang hey jude"
    f = write_jsonl(
        tmp_path / "n.jsonl",
        [
            {"question": q, "answer": ["the Beatles"]},
            {"question": "x", "answer": ["y"]},
            {"question": q, "answer": ["The Beatles", "the Beatles", " "]},
        ],
    )
    first, second = load(NaturalQuestions(), f)
    assert first.meta["answers"] == ["the Beatles", "The Beatles"] and first.gold == "the Beatles"
    f = write_jsonl(tmp_path / "e.jsonl", [{"question": q, "answer": ["", " "]}])
    with pytest.raises(InputError, match=r"e\.jsonl:1: field 'answer': no non-empty answer alias"):
        load(NaturalQuestions(), f)


# --- generic ----------------------------------------------------------------------------------


def generic_cfg(path: Path, template: Path | None = None, **fields) -> DataConfig:
    fm = FieldMap(**{"question": "prompt", "gold": "response", "meta": {"answers": "aliases"}, **fields})
    return DataConfig(
        task="generic",
        train=src(path),
        fields=fm,
        judge="qa",
        predict_template=str(template) if template else None,
    )


def test_generic_csv():
    c = generic_cfg(FIX / "generic.csv", id="uid")
    task = GenericTask(c)
    rows = load(task, FIX / "generic.csv")
    assert [ex.id for ex in rows] == ["q1", "q2", "q3", "q4"] and task.default_judge == "qa"
    assert rows[0].meta == {"answers": ["100", "100 degrees"]} and rows[0].gold == "100 degrees Celsius"
    assert rows[2].question == "Translate to French:\nGood morning"
    assert content(task.prompt(rows[1])) == 'Name the author of "Pride and Prejudice".'
    assert "Reference answer:\nJane Austen" in content(task.paraphrase_prompt(rows[1]))
    assert task.gold_target(rows[1]) == "Jane Austen"
    assert [n for n, _ in read_rows(src(FIX / "generic.csv"))] == [2, 3, 5, 6]  # q3 spans lines 4-5
    no_id = GenericTask(generic_cfg(FIX / "generic.csv"))
    assert [ex.id for ex in load(no_id, FIX / "generic.csv", split="test")] == [
        "test-2",
        "test-3",
        "test-5",
        "test-6",
    ]
    assert GenericTask(DataConfig(train=src("x.csv"))).default_judge == ""


def test_generic_parquet_and_meta_placeholders(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "prompt": ["Add 2 and 3.", "Add 4 and 5."],
            "response": ["5", "9"],
            "aliases": [["5", "five"], ["9"]],
        }
    )
    pq.write_table(table, tmp_path / "g.parquet")
    (tmp_path / "p.txt").write_text("{question}\nAccepted: {answers}")
    task = GenericTask(generic_cfg(tmp_path / "g.parquet", tmp_path / "p.txt"))
    rows = load(task, tmp_path / "g.parquet")
    assert [ex.id for ex in rows] == ["train-1", "train-2"] and rows[0].meta["answers"] == ["5", "five"]
    assert content(task.prompt(rows[0])) == "Add 2 and 3.\nAccepted: 5\nfive"
    assert content(task.prompt(Example(id="x", question="Q?", gold="g"))) == "Q?\nAccepted:"
    (tmp_path / "q.txt").write_text("{question} {tests}")
    with pytest.raises(InputError, match=r"unknown placeholder \{tests\}; this template can use \{answers\}"):
        GenericTask(generic_cfg(tmp_path / "g.parquet", tmp_path / "q.txt"))


def test_generic_duplicate_ids_and_bad_csv(tmp_path):
    f = tmp_path / "dup.csv"
    f.write_text("uid,prompt,response,aliases\na,q1,g1,[]\nb,q2,g2,[]\na,q3,g3,[]\n")
    with pytest.raises(InputError, match=r"dup\.csv:4: duplicate id 'a' \(first at line 2\)"):
        load(GenericTask(generic_cfg(f, id="uid")), f)
    f = tmp_path / "bad.csv"
    f.write_text("uid,prompt,response,aliases\na,q1,g1,[]\nb,q2,g2\nc,q3,g3,[],extra\n")
    with pytest.raises(InputError, match=r"bad\.csv:3: row has 3 fields, the header has 4"):
        load(GenericTask(generic_cfg(f)), f)
    f.write_text("uid,prompt,response,aliases\nc,q3,g3,[],extra\n")
    with pytest.raises(InputError, match=r"bad\.csv:2: row has 5 fields, the header has 4"):
        load(GenericTask(generic_cfg(f)), f)
    f.write_text("uid,prompt,response,aliases\na,q1,,[]\n")
    with pytest.raises(InputError, match=r"bad\.csv:2: field 'response': empty"):
        load(GenericTask(generic_cfg(f)), f)
    f.write_text("uid,prompt,response\na,q1,g1\n")
    with pytest.raises(InputError, match=r"bad\.csv:2: field 'aliases': missing"):
        load(GenericTask(generic_cfg(f)), f)
