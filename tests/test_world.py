"""Tests of the miniature world (`s3ft.world`) and its verifier (`s3ft.judges.final`); writes only to tmp_path."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

import s3ft
from s3ft.config import DataConfig, FieldMap, JudgeConfig, SplitSource
from s3ft.judges.final import FinalAnswerJudge, extract_final
from s3ft.records import Example
from s3ft.registry import resolve
from s3ft.tasks.generic import GenericTask
from s3ft.world import ALL_SKILLS, FactBase, make_skills, pretrain_rows, world_items, write_world
from s3ft.world.build import resolve_sizes
from s3ft.world.skills import CITIES, COLORS, LETTERS, TARGET, TARGETS, THINGS, annotated, worked

PROMPTS = Path(s3ft.__file__).parent / "prompts"
JUDGE = FinalAnswerJudge(None)
SMALL = ({name: {"val": 10, "test": 20} for name in ALL_SKILLS if name not in TARGETS}
         | {"shop": {"train": 30, "val": 12, "test": 10}, "lookup": {"train": 24, "val": 9, "test": 6}})
FINAL_JUDGED = tuple(s for s in ALL_SKILLS if s not in TARGET or TARGET[s].judge == "final")
"""The skills whose answers `s3ft.judges.final` reads (all but `lookup`, whose golds are bare answers)."""


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


# --- the judge ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("47 + 38 = 85. The answer is 85.", "85"),
    ("Reversed: m a p k. The answer is m a p k.", "m a p k"),
    ("the answer is: **Oslo**.", "Oslo"),
    ('The answer is "B".', "B"),
    ("The answer is 14.0.", "14.0"),
    ("The answer is 3. Then more text follows", "3"),
    ("Adding 38 to 47 gives 85.\n#### 85", "85"),
    ("The answer is $1,400.\n#### 1400", "$1,400"),  # they agree: the "The answer is" one as written
    ("The answer is 5. Yes, the answer is 5.", "5"),
    ("The answer is 7 or 9.", "7 or 9"),  # one answer (a hedge: the judge calls it undecided)
    ("The answer is .\n#### 6", "6"),  # an empty "The answer is" is skipped
    # several final answers that disagree: none is THE final answer, whatever their order
    ("The answer is 4.\n#### 9", None),
    ("#### 9\nThe answer is 4.", None),
    ("The answer is 2.\nNo wait, the answer is 5.", None),
    ("#### 3\nmore work\n####  7 ", None),
    ("47 + 38 = 85.", None),
    ("", None),
])  # fmt: skip
def test_extract_final(text, expected):
    assert extract_final(text) == expected


# The undecided table: (expected, response, correct) for several final answers and for hedges.
UNDECIDED = [
    ("7", "The answer is 7.\n#### 9", None),  # the old rule took 7 and called it right
    ("9", "The answer is 7.\n#### 9", None),
    ("7", "#### 9\nThe answer is 7.", None),
    ("9", "#### 9\nThe answer is 7.", None),
    ("5", "The answer is 2. No wait, the answer is 5.", None),
    ("5", "The answer is 5. No, the answer is 6.", None),
    ("7", "#### 7\n#### 8", None),
    ("1945", "The answer is 1944 or 1945.", None),
    ("B", "The answer is either B or C.", None),
    ("Oslo", "The answer is Oslo or Lima.", None),
    ("9", "#### 7 or 9", None),
    ("12", "The answer is 12 or so.", None),
    # not a conflict: final answers that agree, and an "or" that offers no second answer
    ("72", "The answer is 72.\n#### 72", True),
    ("72", "The answer is 72.00.\n#### 72", True),
    ("5", "The answer is 5. Checking again, the answer is 5.", True),
    ("1400", "The answer is $1,400.\n#### 1,400", True),
    ("6", "The answer is 6.\n#### 6", True),
    ("6", "The answer is 5.\n#### 5", False),  # two answers, agreed and wrong: simply wrong
    ("7", "The answer is 7 or 7.", False),  # no choice offered, so no hedge; but not "7" as written either
    ("black or white", "The answer is black or white.", True),  # the expected answer itself has an "or"
    ("black or white", "The answer is black.", False),
]


@pytest.mark.parametrize("answer, response, ok", UNDECIDED)
def test_several_or_hedged_final_answers_are_undecided(answer, response, ok):
    v = verdict(answer, response)
    assert v.correct is ok, v.reason
    if ok is None:
        assert v.reason.endswith("undecided")


@pytest.mark.parametrize("answer, response, ok", [
    ("14", "The answer is 14.0.", True),
    ("14", "#### 14.00", True),
    ("1400", "The answer is $1,400.", True),
    ("14", "The answer is 41.", False),
    ("B", "The answer is (B).", True),
    ("B", "The answer is B).", True),
    ("B", "The answer is b.", True),
    ("B", "The answer is C.", False),
    ("Oslo", "The answer is  oslo .", True),
    ("Oslo", "The answer is Lima.", False),
    ("m a p k", "The answer is m  a p k.", True),
    ("m a p k", "The answer is k p a m.", False),
])  # fmt: skip
def test_judge_normalises(answer, response, ok):
    assert verdict(answer, response).correct is ok


def test_judge_reasons_and_edge_cases():
    v = verdict("Oslo", "Ben lives in Oslo. The answer is Oslo.")
    assert (v.correct, v.extracted, v.reason) == (True, "Oslo", "extracted 'Oslo', expected 'Oslo': equal")
    v = verdict("14", "12 + 7 = 19.")
    assert v.correct is False and v.reason.startswith("no final answer found") and v.extracted is None
    v = verdict("5", "The answer is 5. No, the answer is 6.")  # neither the first nor the last one counts
    assert (v.correct, v.extracted, v.reason) == (None, None, "final answers disagree: '5', '6' (expected '5'): undecided")
    v = verdict("7", "The answer is 7 or 9.")
    assert (v.correct, v.extracted) == (None, "7 or 9")
    assert v.reason == "extracted '7 or 9', a hedge between '7', '9' (expected '7'): undecided"
    assert verdict("", "The answer is 5.").correct is None
    with pytest.raises(ValueError, match="1 examples but 0 predictions"):
        JUDGE([Example("x", "q", "g", {"answer": "1"})], [])
    assert resolve("judge", "final") is FinalAnswerJudge
    assert (JUDGE.name, JUDGE.version) == ("final", "2")


# --- the skills -----------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", FINAL_JUDGED)
def test_every_response_passes_and_a_changed_answer_fails(skill):
    for it in items(skill):
        assert it.house.endswith(f" The answer is {it.answer}.")
        assert it.gold.endswith(f"#### {it.answer}") and "The answer is" not in it.gold
        responses = [it.house, it.gold, *it.alternatives]
        assert len(it.alternatives) >= 2
        for r in responses:
            assert verdict(it.answer, r).correct is True, (r, it.answer)
            head, _, tail = r.rpartition(it.answer)  # the final answer always comes last
            wrong = head + perturb(it.answer) + tail
            assert verdict(it.answer, wrong).correct is False, (wrong, it.answer)
        assert len(it.question.split()) <= (80 if skill == "paraphrase" else 40) and len(it.house.split()) <= 50


def test_worked_arithmetic_is_true_digit_by_digit():
    assert worked(47, "+", 25) == "7 + 5 = 12, 4 + 2 + 1 = 7, so 47 + 25 = 72."
    assert worked(52, "-", 17) == "12 - 7 = 5, 5 - 1 - 1 = 3, so 52 - 17 = 35."
    assert worked(7, "+", 3) == "7 + 3 = 10, 0 + 0 + 1 = 1, so 7 + 3 = 10."
    for a in range(100):
        for b in range(100):
            for op in "+-":
                c = a + b if op == "+" else a - b
                if not 0 <= c < 100:
                    with pytest.raises(ValueError):
                        worked(a, op, b)
                    continue
                text = worked(a, op, b)
                steps = re.findall(r"(\d+) ([+-]) (\d+)(?: ([+-]) (\d+))? = (\d+)", text)
                assert len(steps) == 3, text
                for x, o1, y, o2, z, r in steps:  # every written step is true
                    v = int(x) + int(y) if o1 == "+" else int(x) - int(y)
                    if o2:
                        v = v + int(z) if o2 == "+" else v - int(z)
                    assert v == int(r), text
                (_, _, _, _, _, units), (_, _, _, _, _, tens) = steps[:2]
                assert int(tens) * 10 + int(units) % 10 == c and steps[2][-1] == str(c), text


def test_gold_style_works_sums_the_same_way_with_gsm8k_annotations():
    assert annotated(47, "+", 25) == "7 + 5 = 12, 4 + 2 + 1 = 7, and 47 + 25 = <<47+25=72>>72"
    assert annotated(52, "-", 17) == "12 - 7 = 5, 5 - 1 - 1 = 3, and 52 - 17 = <<52-17=35>>35"
    with pytest.raises(ValueError):
        annotated(60, "+", 40)
    for a, op, b in ((9, "+", 9), (30, "-", 1), (0, "+", 0)):  # house and gold share the column steps
        assert worked(a, op, b).split(", so ")[0] == annotated(a, op, b).split(", and ")[0]
    it = items("shop", 1)[0]
    lines = it.gold.splitlines()
    assert len(lines) == 3 and all(": " in line for line in lines[:2])
    assert not any(name in it.gold for name in ("Ada", "Ben", "she", "he ")) and not set(THINGS) & set(it.gold.split())


def test_facts_house_walks_the_options_to_the_answer():
    for it in items("facts"):
        walk = re.search(r"\. (.*)\. The answer", it.house).group(1)
        pairs = re.findall(r"([A-D]) is (\w+)", walk)
        assert [L for L, _ in pairs] == list("ABCD"[: len(pairs)]) and pairs[-1][0] == it.answer
        assert pairs == re.findall(r"([A-D])\) (\w+)", it.question)[: len(pairs)]


@pytest.mark.parametrize("skill", ALL_SKILLS)
def test_generation_is_deterministic_and_seeded(skill):
    assert items(skill, 30) == items(skill, 30)
    assert [it.question for it in items(skill, 30)] != [it.question for it in items(skill, 30, seed=1)]


def test_passage_asks_for_one_of_three_facts_of_different_kinds_in_any_order():
    asked, positions = set(), set()
    for it in items("passage", 300):
        passage, question = re.fullmatch(r"(?:Passage|Read this): (.*) (?:Question|Now answer): (.*)", it.question).groups()
        sentences = re.findall(r"[^.]+\.", passage)
        who = sentences[0].split()[0].removesuffix("'s")
        assert len(sentences) == 3 and all(s.strip().startswith(who) for s in sentences) and who in question
        said = it.house.removesuffix(f" The answer is {it.answer}.")
        assert [s.strip() for s in sentences].count(said) == 1 and it.answer in said.rstrip(".").split()
        assert sum(it.answer in s.rstrip(".").split() for s in sentences) == 1  # the other facts don't give it
        asked.add(question.split()[0])
        positions.add([s.strip() for s in sentences].index(said))
    assert asked == {"Where", "How", "What"} and positions == {0, 1, 2}


def test_facts_are_consistent_and_fixed_by_seed():
    base = FactBase.build(0)
    assert base == FactBase.build(0) and base != FactBase.build(1) and len(base.colors) == 40
    seen: dict[str, str] = {}
    for it in items("facts", 300) + items("paraphrase", 300):
        m = re.fullmatch(r"A (\w+) is (\w+)\. [^.]*\. The answer is ([A-D])\.", it.house)
        if not m:
            continue
        creature, color, letter = m.groups()
        assert base.colors[creature] == color and seen.setdefault(creature, color) == color
        options = dict(re.findall(r"([A-D])\) (\w+)", it.question))
        assert options[letter] == color and list(options.values()).count(color) == 1
    assert len(seen) == 40


def test_paraphrase_question_is_the_world_paraphrase_prompt():
    task = generic_task(PROMPTS / "world_paraphrase.txt")  # the train path is not read here
    assert (PROMPTS / "world_predict.txt").read_text().strip() == "{question}"
    for it in items("paraphrase", 100):
        assert it.source and "have now?" not in it.source  # never the target task
        ex = Example("x", it.source, it.gold, {"answer": it.answer})
        assert task.paraphrase_prompt(ex) == [{"role": "user", "content": it.question}]
        assert task.prompt(Example("x", it.source, it.gold))[0]["content"] == it.source


def test_shop_is_non_negative_with_gsm8k_style_gold():
    variants = set()
    for it in items("shop", 300):
        steps = re.findall(r"<<(\d+)([+-])(\d+)=(\d+)>>\4", it.gold)
        assert len(steps) == 2 and int(it.answer) >= 0
        assert " has 1 " not in it.question  # the start is plural
        for a, op, b, c in steps:
            assert int(c) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0
            assert 1 <= int(b) <= 30
        assert steps[1][3] == it.answer and steps[0][3] == steps[1][0]
        assert it.gold.splitlines()[-1] == f"#### {it.answer}"
        variants.add(it.question.split(". ")[1].split()[1])  # buys / gives
        variants.add(" and then " in it.question)
    assert variants == {"buys", "gives", True, False}


def lookup_solve(question: str) -> tuple[str, str, dict]:
    """An independent reading of a `lookup` question: (kind, answer, facts by person)."""
    passage, q = re.fullmatch(r"(?:Passage|Read this): (.*) (?:Question|Now answer): (.*)", question).groups()
    people: dict[str, dict[str, str]] = {}
    for s in re.findall(r"[^.]+\.", passage):
        for key, pattern in (("city", r"(\w+) lives in (\w+)\."), ("count", r"(\w+) has (\d+) \w+\."),
                             ("coat", r"(\w+)'s coat is (\w+)\.")):
            if m := re.fullmatch(pattern, s.strip()):
                people.setdefault(m.group(1), {})[key] = m.group(2)
    if m := re.search(r"the person with the (\w+) coat", q):
        kind, who = "via-coat", next(p for p, f in people.items() if f["coat"] == m.group(1))
    elif m := re.search(r"the person who lives in (\w+)", q):
        kind, who = "via-city", next(p for p, f in people.items() if f["city"] == m.group(1))
    else:
        kind, who = "direct", next(p for p in people if re.search(rf"\b{p}\b", q))
    key = "city" if q.startswith("Where") else "count" if q.startswith("How many") else "coat"
    return kind, people[who][key], people


def test_lookup_asks_for_one_fact_of_one_of_two_people_and_the_qa_judge_reads_every_answer_style():
    judge = resolve("judge", "qa")(JudgeConfig())
    seen = set()
    for it in items("lookup", 300):
        kind, answer, people = lookup_solve(it.question)
        assert TARGET["lookup"].kind_of(it.question) == kind and it.answer == answer == it.gold
        assert len(people) == 2 and all(len(f) == 3 for f in people.values())
        a, b = people.values()
        assert all(a[k] != b[k] for k in a)  # the two differ in every fact: the question has one answer
        sentences = [s.strip() for s in re.findall(r"[^.]+\.", it.question.split(": ", 1)[1].rsplit(" ", 5)[0])]
        owners = [s.split()[0].removesuffix("'s") for s in sentences[:6]]
        assert owners[:3] == [owners[0]] * 3 and owners[3:] == [owners[3]] * 3  # each person's facts together
        said = it.house.removesuffix(f" The answer is {answer}.")
        assert said != it.house and all(s + "." in sentences for s in said.rstrip(".").split(". "))
        assert len(said.split(". ")) == (1 if kind == "direct" else 2)
        other = next(f for f in people.values() if answer not in f.values())  # the other person's fact
        wrong = other[next(k for k, v in next(f for f in people.values() if f is not other).items() if v == answer)]
        for r in (it.house, it.gold, *it.alternatives):
            ex = Example("x", it.question, it.gold)
            assert judge([ex], [r])[0].correct is True, r
            assert judge([ex], [r.replace(answer, wrong)])[0].correct is False, (r, wrong)
        seen.add((kind, it.question.split(" ", 1)[0]))
        assert len(it.question.split()) <= 45
    assert {k for k, _ in seen} == set(TARGET["lookup"].kinds) and len(seen) == 6


def test_target_kinds_tell_the_tasks_apart():
    from s3ft.world.skills import target_of

    for skill in ALL_SKILLS:
        questions = [it.question for it in items(skill, 100)]
        assert target_of(questions) == TARGET.get(skill), skill
        for t in TARGET.values():
            if t.name != skill:
                assert not any(t.kind_of(q) for q in questions), (t.name, skill)
    assert target_of([]) is None


# --- splits and files -----------------------------------------------------------------------------


def test_splits_are_disjoint_and_pretrain_avoids_held_out_questions():
    world = world_items(0)
    held_out = set()
    for name, splits in world.items():
        assert {s: len(v) for s, v in splits.items()} == resolve_sizes()[name]
        questions = [{it.question for it in v} for v in splits.values()]
        assert sum(map(len, questions)) == sum(map(len, splits.values()))  # distinct within splits...
        assert len(set().union(*questions)) == sum(map(len, questions))  # ...and across them
        held_out |= {k for s in ("test", "val", "train") for it in splits.get(s, []) for k in it.keys}
    assert all(not (it.keys & held_out) for splits in world.values() for it in splits.get("pretrain", []))
    assert world_items(0, SMALL, pretrain=False)["arith"]["test"] == world["arith"]["test"][:20]


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="unknown skill"):
        resolve_sizes({"poetry": {"test": 1}})
    with pytest.raises(ValueError, match="no split"):
        resolve_sizes({"arith": {"train": 1}})


def test_write_world_files_load_in_the_generic_task(tmp_path):
    info = write_world(tmp_path, seed=3, sizes=SMALL)
    expected = ({f"{n}_{split}.jsonl" for n in ALL_SKILLS for split in ("val", "test")}
                | {"shop_train.jsonl", "lookup_train.jsonl"})
    assert {p.name for p in tmp_path.iterdir()} == expected | {"world.json"}
    assert json.loads((tmp_path / "world.json").read_text()) == info
    assert info["facts"] == FactBase.build(3).colors and info["verbs"] == FactBase.build(3).verbs
    assert info["seed"] == 3
    sizes = {"shop_train.jsonl": 30, "shop_val.jsonl": 12, "shop_test.jsonl": 10, "lookup_train.jsonl": 24,
             "lookup_val.jsonl": 9, "lookup_test.jsonl": 6}
    assert info["files"] == {f: sizes.get(f, 10 if f.endswith("_val.jsonl") else 20) for f in expected}
    assert [s["kind"] for s in info["skills"]] == ["general"] * 7 + ["target"] * 2
    task = generic_task(tmp_path / "shop_train.jsonl")
    for name in expected:
        exs = list(task.load(SplitSource(path=str(tmp_path / name))))
        assert len(exs) == info["files"][name] and exs[0].id == name.removesuffix(".jsonl").replace("_", "-") + "-0"
        judge = resolve("judge", TARGET[name.split("_")[0]].judge)(JudgeConfig()) if name.split("_")[0] in TARGET else JUDGE
        assert all(v.correct for v in judge(exs, [ex.gold for ex in exs]))
        rows = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        if name.startswith("shop"):
            assert all("<<" in r["gold"] and r["gold"] != r["house"] for r in rows)
        elif name.startswith("lookup"):
            assert all(r["gold"] == r["answer"] != r["house"] for r in rows)
        else:
            assert all(r["gold"] == r["house"] for r in rows)
    write_world(tmp_path / "again", seed=3, sizes=SMALL)
    assert (tmp_path / "again" / "facts_test.jsonl").read_bytes() == (tmp_path / "facts_test.jsonl").read_bytes()


def test_pretrain_rows_are_prompt_completion_pairs_without_held_out_questions():
    rows = pretrain_rows(0, n_per_skill=40)
    assert len(rows) == 40 * 7 + 300
    assert all(r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in rows)
    assert all(r["completion"][0]["content"].endswith(".") for r in rows)
    held_out = {it.question for splits in world_items(0, pretrain=False).values() for v in splits.values()
                for it in v}
    assert not held_out & {r["prompt"][0]["content"] for r in rows}
    assert rows == pretrain_rows(0, n_per_skill=40) and rows != pretrain_rows(1, n_per_skill=40)


PRETRAIN_DIGEST = "92b03062a008a4976cb5f4ca3ef558a9bcdb1082762dafc208ee1fdfe2992f48"
"""sha256 of a small `pretrain_rows` (below), as the code of the shipped base's build wrote them."""


def test_pretrain_rows_are_those_the_shipped_base_was_built_from():
    """A change of the generators that moves a pre-training row means the shipped base no longer matches
    `python -m s3ft.world.pretrain`: rebuild it, then update the digest. (Adding `lookup`, a target without a
    pre-training split, moved none: checked on the full 88,516 distinct rows of build 6 as well.)"""
    import hashlib

    rows = pretrain_rows(0, n_per_skill=40, gold_style_share=0.2, opaque_paraphrase=20)
    assert len(rows) == 600 and not any(TARGET["lookup"].kind_of(r["prompt"][0]["content"]) for r in rows)
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == PRETRAIN_DIGEST


def test_some_general_rows_are_answered_in_the_gold_style_under_the_plain_prompt_never_the_target():
    from s3ft.judges.final import extract_final
    from s3ft.world.build import GOLD_STYLE_SKILLS

    house = {r["prompt"][0]["content"]: r for r in pretrain_rows(0, n_per_skill=300)}
    rows = pretrain_rows(0, n_per_skill=300, gold_style_share=0.25)
    assert {r["prompt"][0]["content"] for r in rows} == set(house)  # same questions, same plain prompts
    gold = [r for r in rows if "The answer is" not in r["completion"][0]["content"]]
    assert 0.15 < len(gold) / (300 * len(GOLD_STYLE_SKILLS)) < 0.35
    for r in gold:
        q, a = r["prompt"][0]["content"], r["completion"][0]["content"]
        assert not re.search(r" (buys|gives away) ", q) and "Reference answer" not in q  # never the target,
        # never paraphrase
        assert extract_final(a) == extract_final(house[q]["completion"][0]["content"])  # the same answer
        assert a.splitlines()[-1].startswith("#### ")


def test_opaque_chain_references_alone_say_what_to_do():
    """`OpaqueChain`'s made-up operation words carry no meaning: the same word stands for adding in one item
    and subtracting in another, and the question never shows an operation, so a paraphrase must read the
    reference's worked lines. Its items are as checkable as every skill's, and never use the target's words."""
    from s3ft.world.skills import OpaqueChain

    rng, skill, meaning = random.Random(0), OpaqueChain(), {}
    for _ in range(600):
        it = skill.sample(rng)
        assert not re.search(r"[+\-=]|add|subtract|buy|give", it.question), it.question
        steps = re.findall(r"<<(\d+)([+-])(\d+)=(\d+)>>", it.gold)
        assert len(steps) == 2 and steps[1][3] == it.answer and it.house.endswith(f" The answer is {it.answer}.")
        for label, (_, op, _, _) in zip(it.gold.splitlines()[:2], steps, strict=True):
            meaning.setdefault(re.search(r"([a-z]+)ing \d+:", label, re.I).group(1).lower(), set()).add(op)
        for r in (it.house, it.gold, *it.alternatives):
            assert verdict(it.answer, r).correct is True
    assert sum(ops == {"+", "-"} for ops in meaning.values()) > len(meaning) / 2


def test_opaque_paraphrase_rows_are_extra_house_style_paraphrase_practice():
    plain = pretrain_rows(0, n_per_skill=40)
    rows = pretrain_rows(0, n_per_skill=40, opaque_paraphrase=50)
    extra = [r for r in rows if r not in plain]
    assert len(rows) == len(plain) + 50 and len(extra) == 50
    for r in extra:
        q, a = r["prompt"][0]["content"], r["completion"][0]["content"]
        assert "Reference answer" in q and a.endswith(".") and "<<" not in a and "####" not in a


def test_chain_covers_every_order_of_plus_and_minus_in_the_target_ranges_without_its_words():
    orders = set()
    for it in items("chain", 400):
        steps = re.findall(r"<<(\d+)([+-])(\d+)=(\d+)>>", it.gold)
        orders.add("".join(op for _, op, _, _ in steps))
        assert len(steps) == 2 and steps[0][3] == steps[1][0] and steps[1][3] == it.answer
        assert 2 <= int(steps[0][0]) <= 30 and all(1 <= int(b) <= 30 for _, _, b, _ in steps)
        assert not re.search(r"buy|give|have now", it.question + it.gold + it.house)
        assert it.house.count(", so ") == 2
    assert orders == {"++", "+-", "-+", "--"}


def test_story_verbs_have_fixed_meanings_that_no_form_gives_away():
    from s3ft.world.skills import OpaqueChain, gerund, story_verbs, third_person

    verbs = FactBase.build(0).verbs
    assert verbs == story_verbs(0) and verbs != story_verbs(1) and len(verbs) == 12
    forms: dict[tuple[bool, bool], list[str]] = {}
    for verb, op in verbs.items():
        stem, _, particle = verb.partition(" ")
        forms.setdefault((stem.endswith("e"), bool(particle)), []).append(op)
        assert particle != "away" and not re.search(r"buy|give", verb)
        assert len(stem) >= 5 and stem[:2] not in [o + v for o in OpaqueChain.ONSETS for v in OpaqueChain.VOWELS]
    assert all(ops.count("+") == ops.count("-") > 0 for ops in forms.values()) and len(forms) == 4
    assert (third_person("flane out"), gerund("flane out")) == ("flanes out", "flaning out")
    assert (third_person("dreff"), gerund("dreff")) == ("dreffs", "dreffing")


def test_story_steps_are_labelled_with_the_questions_verbs_inflected_and_its_numbers():
    from s3ft.world.skills import PROBE_STEMS, SHOP_KINDS, gerund, third_person

    fixed = FactBase.build(0).verbs
    shapes, defined_share = set(), 0
    for it in items("story", 400):
        assert not any(p.search(it.question) for p in SHOP_KINDS.values())
        assert not re.search(r"buy|giv|away", it.question + it.gold + it.house)
        defined = {v: {"add": "+", "subtract": "-"}[op] for v, op in re.findall(r"To (\w+(?: \w+)?) is to (\w+)\.",
                                                                                it.question)}
        assert not set(defined) & set(fixed) and not any(v.split()[0] in PROBE_STEMS for v in defined)
        defined_share += bool(defined) / 400
        verbs = defined or fixed  # a problem's verbs are all new and defined, or all the fact base's
        said = [v for v in verbs if re.search(rf"\b{third_person(v)}\b", it.question)]
        labels = re.findall(r"^(Then )?([A-Za-z ]+?) (\d+): \d+ [+-] \d+ = ", it.gold, re.M)
        steps = re.findall(r"<<(\d+)([+-])(\d+)=(\d+)>>", it.gold)
        assert len(labels) == len(steps) == 2 and steps[0][3] == steps[1][0] and steps[1][3] == it.answer
        done = [next(v for v in verbs if gerund(v).lower() == label.lower()) for _, label, _ in labels]
        assert set(done) == set(said) and [verbs[v] for v in done] == [op for _, op, _, _ in steps]
        assert [n for _, _, n in labels] == [b for _, _, b, _ in steps]  # the question's numbers, in order
        assert re.search(rf"{third_person(done[0])} {steps[0][2]}\b", it.question)
        assert bool(labels[1][0]) == (" and then " in it.question)  # "Then" where the question says it
        shapes.add((done[0] == done[1], bool(labels[1][0]), bool(defined)))
    assert shapes == {(same, then, new) for same, then in ((True, True), (False, True), (False, False))
                      for new in (True, False)}
    assert 0.4 < defined_share < 0.6


def test_every_general_skill_is_asked_in_two_or_more_phrasings():
    from s3ft.world.skills import GENERAL

    for skill in GENERAL:
        if skill == "paraphrase":
            continue
        starts = {it.question.split()[0] for it in items(skill, 200)}
        assert len(starts) >= 2, (skill, starts)


def test_paraphrase_practises_multi_step_references_most():
    refs = [it.question.split("Reference answer: ", 1)[1] for it in items("paraphrase", 400)]
    two_step = sum(r.count("<<") == 2 for r in refs)
    assert 0.3 < two_step / len(refs) < 0.6


@pytest.mark.parametrize("target", TARGETS)
def test_target_held_out_splits_have_equal_numbers_of_each_kind(target):
    world = world_items(0, pretrain=False)
    for split, n in (("val", 900), ("test", 300)):
        kinds = [TARGET[target].kind_of(it.question) for it in world[target][split]]
        assert len(kinds) == n and {k: kinds.count(k) for k in set(kinds)} == {k: n // 3 for k in TARGET[target].kinds}


def test_only_the_shipped_world_seed_is_comparable_with_the_shipped_test_sets():
    from s3ft.world.pretrain import PretrainConfig, world_seed_mismatch

    assert world_seed_mismatch(0) is None
    assert "--train-seed" in world_seed_mismatch(1)
    assert PretrainConfig().seed == 0 and PretrainConfig().train_seed == 0  # the shipped build's seeds


def test_every_target_problem_is_of_exactly_one_shop_kind_and_kinds_can_be_left_out():
    from s3ft.world.pretrain import keep_shop_kinds
    from s3ft.world.skills import SHOP_KINDS

    shipped = Path(s3ft.__file__).parent / "data" / "world"
    for split in ("train", "test"):
        for line in (shipped / f"shop_{split}.jsonl").read_text().splitlines():
            q = json.loads(line)["question"]
            assert sum(bool(p.search(q)) for p in SHOP_KINDS.values()) == 1, q
    rows = pretrain_rows(0, n_per_skill=30)
    shop = [r for r in rows if re.search(r" (buys|gives away) \d", r["prompt"][0]["content"])]
    assert keep_shop_kinds(rows, list(SHOP_KINDS)) == rows
    kept = keep_shop_kinds(rows, ["buy-buy"])
    assert len(rows) - len(kept) == sum(not SHOP_KINDS["buy-buy"].search(r["prompt"][0]["content"]) for r in shop) > 0
    assert all(" buys " in r["prompt"][0]["content"] and " more and then " in r["prompt"][0]["content"]
               for r in kept if r in shop)
    assert any("have now?" in r["prompt"][0]["content"] for r in kept if r not in shop)  # `story` is kept
    with pytest.raises(ValueError, match="unknown kind.*buy-sell"):
        keep_shop_kinds(rows, ["buy-sell"])


def test_per_skill_rows_from_the_command_line():
    import argparse

    from s3ft.world.pretrain import per_skill_arg

    assert per_skill_arg("shop=4500,passage=30000") == {"shop": 4500, "passage": 30000}
    assert per_skill_arg("") == {}
    for bad in ("shopping=3", "shop=many", "shop"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected SKILL=ROWS"):
            per_skill_arg(bad)


SHIPPED = Path(s3ft.__file__).parent / "data" / "world_model"
V4_BASE = "paraphrase_step" in json.loads((SHIPPED / "pretrain.json").read_text())
needs_v4_base = pytest.mark.skipif(
    not V4_BASE, reason="the shipped base model predates world v4 (its pretrain.json has no paraphrase_step): "
    "no v4 base has passed its checks yet (docs/world.md, 'Builds')")


@needs_v4_base
def test_shipped_base_model_scores_what_its_pretrain_record_says():
    """The shipped checkpoint, re-scored here on CPU on the first 16 items of each test split: the general
    skills stay near-perfect, and the target task is partial by construction (precondition of the demo): it
    solves the kind of problem it practised and hardly any of the two it never saw, live and as recorded."""
    from s3ft.world.score import shop_scores_by_kind, skill_scores
    from s3ft.world.skills import GENERAL

    record = json.loads((SHIPPED / "pretrain.json").read_text())
    scores = skill_scores(SHIPPED, limit=16, skills=GENERAL)
    for skill in GENERAL:
        assert scores[skill] >= 0.85 and record["scores"][skill] >= 0.9, (skill, scores, record["scores"])
    practised = record["shop_kinds"].split(",")
    assert practised == ["buy-buy"]
    by_kind = shop_scores_by_kind(SHIPPED, limit=16)
    assert by_kind["buy-buy"] >= 0.75 and max(by_kind["buy-give"], by_kind["give-give"]) <= 0.2, by_kind
    rec = record["shop_by_kind"]
    assert rec["buy-buy"] >= 0.8 and max(rec["buy-give"], rec["give-give"]) <= 0.15, rec


@needs_v4_base
def test_precondition_3_the_paraphrase_step_works_on_the_shipped_base():
    """Of the target's training rows the base gets wrong, at least half get an accepted paraphrase that is
    not a near-copy of the gold (live, on the first 45 rows of the kinds it never practised; and as recorded
    over all 1,200), and those paraphrases sit closer to the model than the gold does."""
    from s3ft.world.score import by_kind, paraphrase_check, scorer, split_rows

    record = json.loads((SHIPPED / "pretrain.json").read_text())["paraphrase_step"]
    assert record["rows"] == 1200 and record["share_of_wrong"] >= 0.5, record
    assert record["nll_per_token_paraphrase"] < record["nll_per_token_gold"], record
    kinds = by_kind(split_rows("shop", "train"))
    rows = kinds["buy-give"][:23] + kinds["give-give"][:22]
    with scorer(SHIPPED) as s:
        live = paraphrase_check(s, rows)
    assert live["wrong"] >= 40 and live["share_of_wrong"] >= 0.5, live
    assert live["accepted"] == live["accepted_not_near_copy"] + live["near_copies"]


@needs_v4_base
@pytest.mark.parametrize("gold", ["kept kind only", pytest.param("all", marks=pytest.mark.slow)])
def test_precondition_1_fine_tuning_keeps_the_kind_the_shipped_base_solves(tmp_path, gold):
    """Precondition 1, live at the frozen demo setting on the shipped base, through the protocol's own run:
    SFT on the 400 gold rows of the kind the base practised (the check builds 4 and 5 failed; about a
    minute), and on all 1,200 (marked slow: three), each loses at most 5 points of that kind, here on the
    first 64 buy-buy validation problems (as recorded, on all 300)."""
    from s3ft.demo import DEMO_CONFIG
    from s3ft.world.build import shipped_split
    from s3ft.world.protocol import KEEP_MARGIN, KEPT_KIND, frozen_setting, kept_kind_train, sft_run, target

    val = tmp_path / "val_kept.jsonl"
    lines = [line for line in shipped_split("shop", "val").read_text().splitlines()
             if target("shop").kind_of(json.loads(line)["question"]) == KEPT_KIND][:64]
    val.write_text("".join(line + "\n" for line in lines))
    train = str(kept_kind_train(tmp_path)) if gold == "kept kind only" else None
    r = sft_run(tmp_path, "p1", frozen_setting(DEMO_CONFIG), None, train, [f"data.test.path={val}"])
    base = r["base"]["by_kind"][KEPT_KIND]
    assert r["n"] == r["base"]["n"] == 64 and base >= 0.95, r  # the base solves it (the recorded 100% on 300)
    assert r["by_kind"][KEPT_KIND] >= base - KEEP_MARGIN, r
    recorded = json.loads((SHIPPED / "pretrain.json").read_text())["protocol"]["precondition_1"]
    assert recorded["holds"] is True and min(recorded["sft_all_gold"], recorded[f"sft_{KEPT_KIND}_gold_only"]) >= (
        recorded["base"] - KEEP_MARGIN), recorded


def test_length_buckets_keep_every_row_and_cut_padding():
    from s3ft.world.pretrain import bucket_by_length

    rng = random.Random(0)
    rows = list(range(1000))
    lengths = [rng.randint(10, 200) for _ in rows]
    out = bucket_by_length(rows, lengths, 16, 8, random.Random(1))
    assert sorted(out) == rows and out != rows
    assert bucket_by_length(rows, lengths, 16, 0, random.Random(1)) == rows

    def padded(order):
        return sum(16 * max(lengths[i] for i in order[j:j + 16]) for j in range(0, len(order), 16))

    assert padded(out) < 0.8 * padded(rows)
    assert out == bucket_by_length(rows, lengths, 16, 8, random.Random(1))  # seeded


def test_steps_are_random_draws_sorted_within_each_step():
    from s3ft.world.pretrain import sort_within_steps

    rng = random.Random(0)
    lengths = [rng.randint(10, 200) for _ in range(100)]
    order = sort_within_steps(100, lengths, 16, 15, random.Random(1))  # 240 rows: 2.4 passes
    assert len(order) == 240
    first, second = order[:96], order[96:192]  # whole steps within the first two passes
    assert sorted(set(first)) == sorted(first) and first != second
    steps = [order[s:s + 16] for s in range(0, 240, 16)]
    assert all([lengths[i] for i in st] == sorted(lengths[i] for i in st) for st in steps)
    assert len({tuple(sorted(st)) for st in steps}) == 15  # each step its own random draw
    counts = [order.count(i) for i in range(100)]
    assert min(counts) >= 2 and max(counts) <= 3  # every row in every pass
    assert order == sort_within_steps(100, lengths, 16, 15, random.Random(1))  # seeded


def test_settings_rule_keeps_the_base_kind_then_best_accuracy_then_the_cheaper_setting():
    from s3ft.world.protocol import GRID, choose

    def result(name, acc, kept, mode="full", lr=1e-4, epochs=1):
        return {"name": name, "accuracy": acc, "by_kind": {"buy-buy": kept, "buy-give": 0, "give-give": 0},
                "setting": {"mode": mode, "learning_rate": lr, "epochs": epochs}}

    best_but_forgets = result("a", 0.80, 0.80)  # base keeps 0.90: 10 points lost, not eligible
    assert choose([best_but_forgets], 0.90) is None
    runs = [best_but_forgets, result("b", 0.60, 0.86), result("c", 0.595, 0.90, "lora", 3e-3, 1),
            result("d", 0.605, 0.88, epochs=2), result("e", 0.50, 0.95)]
    assert choose(runs, 0.90)["name"] == "c"  # b, c, d tie within a point: 1 epoch, then LoRA first
    assert choose(runs[:2] + runs[3:], 0.90)["name"] == "b"
    assert choose([result("x", 0.5, 0.9, lr=3e-5), result("y", 0.5, 0.9, lr=1e-5)], 0.9)["name"] == "y"
    # the grid holds only small updates: LoRA r 1, or full fine-tuning at learning rates up to 1e-4
    assert all(s.get("lora_r") == 1 if s["mode"] == "lora" else s["learning_rate"] <= 1e-4 for s in GRID)


def test_base_checks_read_what_record_measured_and_the_protocol_refuses_a_failed_base(tmp_path):
    from s3ft.world.protocol import failed_base_checks
    from s3ft.world.score import base_checks

    scores = {"scores": {s: 0.95 for s in ALL_SKILLS} | {"shop": 0.3, "lookup": 0.0},
              "shop_by_kind": {"buy-buy": 0.91, "buy-give": 0.0, "give-give": 0.2},
              "paraphrase_step": {"share_of_wrong": 0.5}}
    checks = base_checks(scores)
    assert checks["passed"] and "skill shop" not in checks  # the target's overall score is no check
    assert "skill lookup" not in checks  # nor the second target's: it never gates the first task's protocol
    assert checks["shop give-give"] == {"value": 0.2, "bound": "<= 0.2", "ok": True}
    for key, path, value in [("skill arith", ("scores", "arith"), 0.89), ("shop buy-buy", ("shop_by_kind", "buy-buy"), 0.69),
                             ("shop buy-give", ("shop_by_kind", "buy-give"), 0.21),
                             ("paraphrase share_of_wrong", ("paraphrase_step", "share_of_wrong"), None)]:
        bad = json.loads(json.dumps(scores))
        bad[path[0]][path[1]] = value
        failed = base_checks(bad)
        assert not failed["passed"] and [k for k, c in failed.items() if k != "passed" and not c["ok"]] == [key]

    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": base_checks(bad)}))
    assert failed_base_checks(tmp_path) == ["paraphrase share_of_wrong None (>= 0.5)"]
    assert failed_base_checks(tmp_path, "lookup") == []  # a shop check: not lookup's to refuse
    worse = json.loads(json.dumps(bad))
    worse["scores"]["facts"] = 0.5
    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": base_checks(worse)}))
    assert failed_base_checks(tmp_path, "lookup") == ["skill facts 0.5 (>= 0.9)"]
    (tmp_path / "pretrain.json").write_text(json.dumps({"checks": checks}))
    assert failed_base_checks(tmp_path) == []
    (tmp_path / "pretrain.json").write_text("{}")  # scored before the checks existed
    assert failed_base_checks(tmp_path) == []


def test_a_killed_pre_training_build_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A small build killed after its first checkpoint, run again: it resumes there, ends with the weights of
    the uninterrupted build, and removes its work folder; another config for the unfinished build is refused."""
    import transformers
    import trl

    from s3ft.world.pretrain import PER_SKILL, WORK, PretrainConfig, pretrain

    cfg = PretrainConfig(hidden_size=32, num_layers=1, num_heads=2, vocab_size=400, steps=4, batch_size=8,
                         micro_batch_size=4, save_steps=2, per_skill={s: 20 for s in PER_SKILL})
    whole = pretrain(tmp_path / "whole", cfg, score=False)

    class Kill(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise KeyboardInterrupt  # killed right after its first checkpoint is written

    class Killed(trl.SFTTrainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.add_callback(Kill())

    with monkeypatch.context() as m:
        m.setattr(trl, "SFTTrainer", Killed)
        with pytest.raises(KeyboardInterrupt):
            pretrain(tmp_path / "resumed", cfg, score=False)
    work = tmp_path / "resumed" / WORK
    assert (work / "train" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    with pytest.raises(SystemExit, match=r"other settings \(steps\)"):
        pretrain(tmp_path / "resumed", PretrainConfig(**{**cfg.__dict__, "steps": 6}), score=False)
    out = pretrain(tmp_path / "resumed", cfg, score=False)
    info = json.loads((out / "pretrain.json").read_text())
    assert info["resumed_from"] == "checkpoint-2" and not work.exists()
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()


def test_settings_protocol_runs_sft_on_validation_and_checks_precondition_1(tmp_path, monkeypatch):
    """The protocol's code path on the shipped base, shortened (two settings, a few rows): every setting's
    validation accuracy per kind, the base's, the choice by the rule, and precondition 1 at the choice (the
    rule itself: test_settings_rule_...; here it is made to pick the first setting, so that precondition 1
    always runs on so few rows)."""
    from s3ft.world import protocol
    from s3ft.world.protocol import KEEP_MARGIN, KEPT_KIND, grid

    rule = protocol.choose
    monkeypatch.setattr(protocol, "choose", lambda results, base_kept, kept="buy-buy": rule(results, base_kept, kept) or results[0])

    settings = [{"mode": "full", "learning_rate": 1e-5, "epochs": 1},
                {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 1e-3, "epochs": 1}]
    summary = grid(tmp_path, settings=settings, extra_overrides=["data.train.limit=16", "data.test.limit=12"])
    assert [r["name"] for r in summary["grid"]] == ["full-lr1e-05-ep1", "lora-r1-lr0.001-ep1"]
    for r in summary["grid"]:
        assert r["n"] == 12 and set(r["by_kind"]) == {"buy-give", "buy-buy", "give-give"}
    assert summary["grid"][0]["trainable_share_non_embedding"] == 1.0
    assert 0 < summary["grid"][1]["trainable_share_non_embedding"] <= 0.01  # LoRA r 1: under 1%
    chosen = next(r for r in summary["grid"] if r["name"] == summary["chosen"])
    p = summary["precondition_1"]
    assert p["base"] == summary["base"]["by_kind"][KEPT_KIND] and p["sft_all_gold"] == chosen["by_kind"][KEPT_KIND]
    only = protocol.scores(tmp_path / f"{chosen['name']}-{KEPT_KIND}-only", "sft")
    assert p[f"sft_{KEPT_KIND}_gold_only"] == only["by_kind"][KEPT_KIND]
    assert p["holds"] is (min(p["sft_all_gold"], p[f"sft_{KEPT_KIND}_gold_only"]) >= p["base"] - KEEP_MARGIN - 1e-9)
    kept = [json.loads(line)["question"] for line in (tmp_path / f"shop_train_{KEPT_KIND}.jsonl").open()]
    assert kept and all(" buys " in q and "gives away" not in q for q in kept)
    assert f"Precondition 1 ({KEPT_KIND}, validation)" in (tmp_path / "grid.md").read_text()
    assert (tmp_path / "grid.md").read_text().startswith("| setting |")


def test_the_chosen_setting_is_written_into_the_demo_configs_train_block(tmp_path):
    """`protocol --apply`: the chosen setting's keys replace the train block's, unset ones (LoRA's, for full
    fine-tuning) go, every other line and comment stays, and the result loads as the demo config."""
    from s3ft.config import load_config
    from s3ft.demo import DEMO_CONFIG
    from s3ft.world.protocol import apply_choice

    config = tmp_path / "world.yaml"
    config.write_text(Path(DEMO_CONFIG).read_text())
    lora = {"mode": "lora", "lora_r": 1, "lora_alpha": 2, "learning_rate": 3e-3, "epochs": 2}
    summary = {"chosen": "lora-r1-lr0.003-ep2", "grid": [{"name": "lora-r1-lr0.003-ep2", "setting": lora}]}
    apply_choice(summary, config, "grids/v4/grid.json")
    cfg = load_config(config)
    assert (cfg.train.mode, cfg.train.lora_r, cfg.train.lora_alpha, cfg.train.learning_rate, cfg.train.epochs) == (
        "lora", 1, 2, 3e-3, 2)
    assert cfg.train.batch_size == 16 and cfg.train.max_length == 256 and cfg.method == ["sft", "ssr", "sdft", "s3ft"]
    text = config.read_text()
    assert "# chosen by the world's protocol: lora-r1-lr0.003-ep2 (grids/v4/grid.json)" in text
    assert "# Forgetting: the world's general skills" in text  # comments elsewhere kept
    full = {"mode": "full", "learning_rate": 1e-5, "epochs": 1}
    apply_choice({"chosen": "f", "grid": [{"name": "f", "setting": full}]}, config, "g.json")
    again = load_config(config)
    assert (again.train.mode, again.train.learning_rate, again.train.epochs) == ("full", 1e-5, 1)
    assert "lora_r" not in config.read_text() and config.read_text().count("# chosen by the world's protocol:") == 1
    with pytest.raises(SystemExit, match="no setting was chosen"):
        apply_choice({"chosen": None, "grid": []}, config, "g.json")


def test_a_rebuild_matches_within_3_points_per_skill_and_5_per_target_kind():
    from s3ft.world.score import rebuild_table

    shipped = {"scores": {"arith": 1.0, "chain": 0.97, "shop": 0.33},
               "shop_by_kind": {"buy-buy": 1.0, "buy-give": 0.0}, "paraphrase_step": {"share_of_wrong": 0.99}}
    near = {"scores": {"arith": 0.97, "chain": 1.0, "shop": 0.3},
            "shop_by_kind": {"buy-buy": 0.95, "buy-give": 0.05}, "paraphrase_step": {"share_of_wrong": 0.5}}
    table, ok = rebuild_table(shipped, near)
    assert ok and "| skill arith | 100.0 | 97.0 | -3.0 | 3 | yes |" in table and "skill shop" not in table
    assert "| shop buy-give | 0.0 | 5.0 | +5.0 | 5 | yes |" in table
    assert "| paraphrase step: share of wrong rows accepted | 99.0 | 50.0 | -49.0 | – | – |" in table  # reported
    for key, path, value in (("skill chain", ("scores", "chain"), 0.93), ("shop buy-buy", ("shop_by_kind", "buy-buy"), 0.94),
                             ("skill arith", ("scores", "arith"), None)):
        far = json.loads(json.dumps(near))
        far[path[0]][path[1]] = value
        table, ok = rebuild_table(shipped, far)
        assert not ok and f"| {key} |" in table and table.count("**no**") == 1


def test_scoring_judges_each_row_by_its_own_tasks_judge_and_groups_by_its_kinds():
    """`Scorer.correct` (no model: the judges alone): a `lookup` row by the qa judge, the rest by `final`;
    `by_kind` refuses rows of no single target task rather than grouping them under shop's kinds."""
    from s3ft.world.score import Scorer, by_kind

    s = Scorer.__new__(Scorer)  # the judges without loading a model
    s.judges = {"final": JUDGE, "qa": resolve("judge", "qa")(JudgeConfig())}
    lookup, shop = items("lookup", 1)[0], items("shop", 1)[0]
    rows = [{"id": "l", "skill": "lookup", "question": lookup.question, "gold": lookup.gold, "answer": lookup.answer},
            {"id": "s", "skill": "shop", "question": shop.question, "gold": shop.gold, "answer": shop.answer}]
    assert s.correct(rows, [lookup.answer, shop.gold]) == [True, True]  # a bare answer: only qa reads it right
    assert s.correct(rows, [f"The answer is {perturb(lookup.answer)}.", f"#### {perturb(shop.answer)}"]) == [False, False]
    assert s.correct(rows[:1], [lookup.answer]) == [True] and JUDGE(
        [Example("l", lookup.question, lookup.gold, {"answer": lookup.answer})], [lookup.answer])[0].correct is not True
    assert set(by_kind(rows[:1])) == set(TARGET["lookup"].kinds) and set(by_kind(rows[1:])) == set(TARGET["shop"].kinds)
    assert by_kind([]) == {k: [] for k in TARGET["shop"].kinds}
    with pytest.raises(ValueError, match="not all questions of one target task"):
        by_kind(rows)


def test_the_protocol_refuses_a_config_of_another_task():
    from s3ft.world.protocol import config_task_mismatch, task_config

    assert config_task_mismatch(task_config("lookup"), "lookup") is None
    assert config_task_mismatch(task_config("shop"), "shop") is None
    assert "trains on shop_train.jsonl, not lookup_train.jsonl" in config_task_mismatch(task_config("shop"), "lookup")
