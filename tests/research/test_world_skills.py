"""The world's skill generators (`research.world.skills`): every answer checkable, seeded, in the styles the
world's design asks for; writes nothing."""

from __future__ import annotations

import random
import re

import pytest
from world_testing import PROMPTS, generic_task, items, perturb, verdict

from research.world.skills import ALL_SKILLS, THINGS, FactBase, annotated, worked
from s3ft.config import JudgeConfig
from s3ft.records import Example
from s3ft.registry import resolve
from s3ft.world import TARGET, target_of

FINAL_JUDGED = tuple(s for s in ALL_SKILLS if s not in TARGET or TARGET[s].judge == "final")
"""The skills whose answers `s3ft.judges.final` reads (all but `lookup`, whose golds are bare answers)."""



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


def test_the_packages_target_kinds_tell_the_generated_tasks_apart():
    """What `s3ft.world` reads a question's task and kind by holds of freshly generated items, not only of the
    shipped ones (tests/test_world_runtime.py): a target's questions are all its own, no other skill's are."""
    claimed = {skill: [t.name for t in TARGET.values() if any(t.kind_of(it.question) for it in items(skill, 100))]
               for skill in ALL_SKILLS}
    assert claimed == {skill: [skill] if skill in TARGET else [] for skill in ALL_SKILLS}
    assert all(target_of([it.question for it in items(name, 100)]) is t for name, t in TARGET.items())


def test_opaque_chain_references_alone_say_what_to_do():
    """`OpaqueChain`'s made-up operation words carry no meaning: the same word stands for adding in one item
    and subtracting in another, and the question never shows an operation, so a paraphrase must read the
    reference's worked lines. Its items are as checkable as every skill's, and never use the target's words."""
    from research.world.skills import OpaqueChain

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
    from research.world.skills import OpaqueChain, gerund, story_verbs, third_person

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
    from research.world.skills import PROBE_STEMS, gerund, third_person
    from s3ft.world import SHOP_KINDS

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
    from research.world.skills import GENERAL

    for skill in GENERAL:
        if skill == "paraphrase":
            continue
        starts = {it.question.split()[0] for it in items(skill, 200)}
        assert len(starts) >= 2, (skill, starts)


def test_paraphrase_practises_multi_step_references_most():
    refs = [it.question.split("Reference answer: ", 1)[1] for it in items("paraphrase", 400)]
    two_step = sum(r.count("<<") == 2 for r in refs)
    assert 0.3 < two_step / len(refs) < 0.6
