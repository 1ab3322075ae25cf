"""`s3ft audit`: a second judge re-judges a seeded stratified sample of a finished run's verdicts (`s3ft.judge_audit`).

A second judge that agrees everywhere gives kappa 1 and no rejected target; one that disagrees on a planted set
gives exactly the planted counts (and, re-judging every verdict, exactly the planted share with a zero-width
interval; on a sample, an interval around it); one that answers nonsense (undecided everywhere, garbage verdicts
and reasons, a garbage model behind the llm judge) is handled and reported by the stated kappa rule. The audit is
a unit of its own (`10_audit/<judge>/`): sealed, skipped when done, redone when tampered, shown by `s3ft status`,
read by the report and the cards, and making no unit of the run stale. Bad runs and bad judge configs are one
line naming the file and key.

The run is test_shards' stand-in model (no torch) judged by the real math judge, trained by test_rundir_tamper's
stand-in; the CLI runs in this process, so that the stand-in judges below resolve as `test_audit:Name`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
import yaml
from test_rundir_tamper import stand_in_training
from test_shards import DATA, config

import s3ft
from s3ft.agreement import allocate, kappa, stratified_share, wilson
from s3ft.cli import main
from s3ft.judges.math import MathJudge
from s3ft.records import Verdict
from s3ft.rundir import read_json, read_jsonl

METHODS = ["ssr", "s3ft"]


def planted(text: str, every: int) -> bool:
    """Whether the flipping judge below flips its verdict on `text`: a known set, about one in `every`."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % every == 0


class Flipping:
    """The run's own judge (math), with its decided verdicts flipped on the planted texts."""

    name, version = "flipping", "1"

    def __init__(self, cfg):
        self.inner, self.every = MathJudge(cfg), cfg.options.get("every", 3)

    def __call__(self, examples, predictions):
        return [Verdict(not v.correct, "planted flip") if v.correct is not None and planted(p, self.every) else v
                for v, p in zip(self.inner(examples, predictions), predictions, strict=True)]

    def close(self):
        self.inner.close()


GARBAGE = ["", "|a|b|\n\n| c |", "\ud800 a lone surrogate", "x" * 5000, None, 42, "\x00\x1b[31m", ["a list"]]


class Nonsense:
    """A judge that answers nonsense: undecided everywhere (`mode: undecided`), or random decisions, non-decisions
    ("yes", 1) and garbage reasons and extractions."""

    name, version = "nonsense", "1"

    def __init__(self, cfg):
        self.mode, self.rng = cfg.options.get("mode"), random.Random(cfg.options.get("seed", 0))

    def __call__(self, examples, predictions):
        if self.mode == "undecided":
            return [Verdict(None, "") for _ in predictions]
        return [Verdict(self.rng.choice([True, False, None, "yes", 1]), self.rng.choice(GARBAGE),
                        extracted=self.rng.choice(GARBAGE)) for _ in predictions]


CALLS: list[int] = []  # the texts of each call of the failing judge below
FAIL: list[bool] = []  # while it holds True, the failing judge raises on its second call


class FailingOnce:
    """The math judge, raising on its second call while `FAIL` says so (a judge's service that went away)."""

    name, version = "failing", "1"

    def __init__(self, cfg):
        self.inner = MathJudge(cfg)

    def __call__(self, examples, predictions):
        CALLS.append(len(predictions))
        if FAIL and len(CALLS) == 2:
            raise RuntimeError("the judge's service went away")
        return self.inner(examples, predictions)

    def close(self):
        self.inner.close()


class GarbageModel:
    """A stand-in model behind the real llm judge: replies that are neither yes nor no."""

    def __init__(self, model_cfg, batch_size: int = 8, adapter: str | None = None, **engine):
        self.model_id = f"garbage:{model_cfg.path}"

    def generate(self, prompts, params):
        replies = ["Maybe? ¯\\_(ツ)_/¯", "", "Yes/No", "<think>hmm</think> perhaps"]
        return [replies[i % len(replies)] for i in range(len(prompts))]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of SSR and S3FT (every stage, the report's plots off), its config and its folder."""
    tmp = tmp_path_factory.mktemp("audit")
    cfg = config(tmp, "run", METHODS, select={"nll": False}, report={"plots": False},
                 data={"task": "gsm8k", "train": {"path": str(DATA), "limit": 40}, "test": {"path": str(DATA), "limit": 4}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("s3ft.stages.train.train_model", stand_in_training)
        assert main(["run", cfg]) == 0
    return cfg, tmp / "run"


def judge_file(folder: Path, name: str, **section) -> str:
    path = folder / f"{name.replace(':', '_')}.yaml"
    path.write_text(yaml.safe_dump({"judge": {"name": name, "workers": 1, **section}}))
    return str(path)


def texts(run: Path) -> dict[str, str]:
    """Every audited text by audit row id (`self:<id>`, `paraphrase:<id>`)."""
    out = {f"self:{r['id']}": r["prediction"] for r in read_jsonl(run / "02_generate" / "rows.jsonl")}
    return out | {f"paraphrase:{r['id']}": r["paraphrase"] for r in read_jsonl(run / "04_paraphrase" / "rows.jsonl")}


def target_ids(run: Path, method: str) -> set[str]:
    return {f"{r['source']}:{r['id']}" for r in read_jsonl(run / "06_select" / method / "train.jsonl")
            if r["source"] in ("self", "paraphrase")}


def all_done(run: Path) -> dict[str, str]:
    states = {r["unit"]: r["state"] for r in s3ft.status(run, verify=True)}
    assert set(states.values()) == {"done"}, states
    return states


def test_an_agreeing_judge_through_the_cli(finished, tmp_path, capsys):
    cfg, run = finished
    before = {r["unit"]: r for r in s3ft.status(run)}
    capsys.readouterr()
    assert main(["audit", str(run), "--judge", judge_file(tmp_path, "math"), "--n", "30"]) == 0
    printed = capsys.readouterr().out
    unit = run / "10_audit" / "math"
    assert {p.name for p in unit.iterdir()} == {"rows.jsonl", "audit.json", "audit.md", "manifest.json", "progress.json"}
    a = read_json(unit / "audit.json")
    assert a["rows"] == 30 == a["agree"] == len(read_jsonl(unit / "rows.jsonl"))
    assert a["kappa"]["decided"] == 1.0 and a["kappa"]["with_undecided"] == 1.0
    assert sum(a["confusion"][f][s] for f in a["confusion"] for s in a["confusion"][f] if f != s) == 0
    assert set(a["targets"]) == set(METHODS)
    for t in a["targets"].values():
        assert t["rejected"]["share"] == 0 and t["rejected"]["low"] == 0 and t["rejected"]["high"] > 0
    assert "kappa 1.0" in printed and "audit.md" in printed
    md = (unit / "audit.md").read_text()
    assert "# Judge audit: `math` re-judged by `math`" in md and "**1.000**" in md
    states = all_done(run)  # the run is done, the audit too, and nothing went stale
    assert states["audit/math"] == "done" and set(states) - {"audit/math"} == set(before)
    assert all(r["state"] == "done" for r in before.values())
    sealed = read_json(unit / "manifest.json")
    assert main(["audit", str(run), "--judge", judge_file(tmp_path, "math"), "--n", "30"]) == 0  # done: skipped
    assert read_json(unit / "manifest.json") == sealed and (unit / "audit.md").read_text() == md
    assert main(["status", str(run)]) == 0 and "audit/math" in capsys.readouterr().out

    # the report, made again, and a card show it; a tampered audit is named, and redone by the next audit
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("s3ft.stages.train.train_model", stand_in_training)
        assert main(["run", cfg, "--force", "report"]) == 0
    assert "## Judge audit" in (run / "09_report" / "report.md").read_text()
    from s3ft.export.cards import card
    from s3ft.results import collect

    rows = read_jsonl(run / "06_select" / "s3ft" / "train.jsonl")
    text = card("dataset", run, s3ft.run_config(run), "s3ft", rows, collect(run, METHODS))
    assert "## Judge audit" in text and "s3ft: of its" in text and "ssr: of its" not in text
    (unit / "rows.jsonl").write_text((unit / "rows.jsonl").read_text().replace('"correct": true', '"correct": false', 1))
    (row,) = [r for r in s3ft.status(run) if r["unit"] == "audit/math"]
    assert row["state"] == "stale" and "10_audit/math/rows.jsonl changed" in row["why"][0]
    assert main(["audit", str(run), "--judge", judge_file(tmp_path, "math"), "--n", "30"]) == 0
    assert (unit / "audit.md").read_text() == md
    all_done(run)


@pytest.mark.parametrize("n", [1000, 12], ids=["every-verdict", "sampled"])
def test_a_planted_disagreement_is_counted_exactly(finished, tmp_path, n):
    cfg, run = finished
    a = s3ft.audit(run, judge_file(tmp_path, "test_audit:Flipping", options={"every": 3}), n=n, seed=1)
    rows, text = read_jsonl(Path(a["folder"]) / "rows.jsonl"), texts(run)
    assert len(rows) == min(n, sum(a["population"].values()))
    flipped = [r for r in rows if planted(text[r["id"]], 3) and r["first"]["correct"] is not None]
    assert flipped and all(r["second"]["correct"] is (not r["first"]["correct"]) for r in flipped)
    assert a["agree"] == len(rows) - len(flipped)
    off = sum(a["confusion"][f][s] for f in ("correct", "wrong") for s in ("correct", "wrong") if f != s)
    assert off == len(flipped)
    assert a["kappa"]["decided"] is not None and a["kappa"]["decided"] < 1
    for m in METHODS:
        ids = target_ids(run, m)
        true = sum(planted(text[i], 3) for i in ids) / len(ids)  # targets are judged correct: planted ones flip
        est = a["targets"][m]["rejected"]
        assert est["of"] == len(ids) and est["low"] <= round(true, 4) <= est["high"], (m, true, est)
        assert a["targets"][m]["rejected_in_sample"] == sum(r["id"] in ids for r in flipped)
        if n == 1000:  # every verdict re-judged: the share is the planted one, with no sampling error
            assert est["share"] == est["low"] == est["high"] == round(true, 4)


@pytest.mark.parametrize("options", [{"mode": "undecided"}, {"seed": 3}], ids=["undecided", "garbage"])
def test_a_judge_answering_nonsense_is_handled(finished, tmp_path, options):
    cfg, run = finished
    a = s3ft.audit(run, judge_file(tmp_path, "test_audit:Nonsense", options=options), n=40)
    rows = read_jsonl(Path(a["folder"]) / "rows.jsonl")
    assert len(rows) == a["rows"] == 40 and all(isinstance(r["second"]["reason"], str) for r in rows)
    assert all(r["second"]["correct"] in (True, False, None) for r in rows)
    if options.get("mode") == "undecided":
        assert a["kappa"]["decided"] is None and a["kappa"]["decided_rows"] == 0  # no row both decided: undefined
        assert a["kappa"]["with_undecided"] == 0.0  # the second judge's one category: agreement no better than chance
        for t in a["targets"].values():
            assert t["rejected"]["share"] == 0 and t["not_confirmed"]["share"] == 1
    else:
        assert any(r["second"]["reason"].startswith("undecided: the judge gave correct=") for r in rows)
    assert "undefined" in (Path(a["folder"]) / "audit.md").read_text() or a["kappa"]["decided"] is not None
    all_done(run)


def test_a_killed_audit_resumes_from_its_rows(finished, tmp_path, capsys):
    cfg, run = finished
    CALLS.clear()
    FAIL[:] = [True]
    path = judge_file(tmp_path, "test_audit:FailingOnce")
    assert main(["audit", str(run), "--judge", str(path), "--n", "20"]) == 2
    err = capsys.readouterr().err
    assert "audit/test_audit-FailingOnce: chunk 2 of 5" in err and "the 4 rows written before it are kept" in err
    (row,) = [r for r in s3ft.status(run) if r["unit"] == "audit/test_audit-FailingOnce"]
    assert row["state"] == "partial"
    CALLS.clear()
    FAIL.clear()
    a = s3ft.audit(run, path, n=20)  # the same judge config: the unit's fingerprint, so it resumes
    assert sum(CALLS) == 16 and a["rows"] == 20 == a["agree"]  # only the rows not written before
    all_done(run)


def test_the_llm_judge_with_a_model_answering_garbage(finished, tmp_path):
    cfg, run = finished
    model = tmp_path / "judge-model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"stand-in")
    a = s3ft.audit(run, judge_file(tmp_path, "llm", llm={"model": {"path": str(model)},
                                                         "backend": "test_audit:GarbageModel"}), n=8)
    assert Path(a["folder"]).name == "llm-judge-model" and a["rows"] == 8
    assert all(r["second"]["correct"] is None for r in read_jsonl(Path(a["folder"]) / "rows.jsonl"))


def test_the_llm_judge_with_a_tiny_model(finished, tmp_path, tiny_model_dir):
    """A real (tiny, random) model behind the llm judge, on a few rows: its verdicts are whatever it says."""
    cfg, run = finished
    a = s3ft.audit(run, judge_file(tmp_path, "llm", llm={"model": {"path": str(tiny_model_dir)},
                                                         "generate": {"max_new_tokens": 4}}), n=3)
    rows = read_jsonl(Path(a["folder"]) / "rows.jsonl")
    assert len(rows) == 3 and all(r["second"]["reason"] for r in rows)
    assert (Path(a["folder"]) / "audit.md").is_file()


def test_a_run_that_is_not_finished_and_bad_judge_configs_are_one_line(finished, tmp_path, capsys):
    cfg, run = finished
    early = config(tmp_path, "early", ["s3ft"], select={"nll": False})
    assert main(["run", early, "--until", "generate"]) == 0
    capsys.readouterr()
    good = judge_file(tmp_path, "math")
    assert main(["audit", str(tmp_path / "early"), "--judge", good]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "03_judge/manifest.json: not a finished run: unit judge is todo" in err
    assert main(["audit", str(tmp_path / "nowhere"), "--judge", good]) == 2
    assert "not a run directory" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    for text, says in [("judge:\n  name: math\n  nmae: x\n", "bad.yaml:3: judge.nmae: unknown key"),
                       ("judge:\n  name: nosuch\n", "bad.yaml:2: judge.name: unknown judge 'nosuch'"),
                       ("judge:\n  name: math\n  timeout_s: -1\n", "bad.yaml:3: judge.timeout_s:"),
                       ("model: {path: x}\n", "bad.yaml:1: model: unknown key"),
                       ("judge: {}\n", "judge.name: names no judge"),
                       ("judge: [math]\n", "bad.yaml:1: judge: must be a section")]:
        bad.write_text(text)
        assert main(["audit", str(run), "--judge", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and says in err, (text, err)
    assert main(["audit", str(run), "--judge", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: <file>: no such judge config file" in capsys.readouterr().err
    bad.write_text("data: {judge: math}\n")  # data.judge names a judge too
    assert main(["audit", str(run), "--judge", str(bad), "--n", "2"]) == 0


@pytest.mark.unit
def test_allocation_kappa_and_the_interval():
    assert allocate({"a": 100, "b": 3, "c": 0, "d": 50}, 30) == {"a": 14, "b": 3, "c": 0, "d": 13}
    assert allocate({"a": 4, "b": 3}, 100) == {"a": 4, "b": 3}
    pairs = [("correct", "correct", 20), ("correct", "wrong", 5), ("wrong", "correct", 10), ("wrong", "wrong", 15)]
    assert kappa(pairs, ("correct", "wrong")) == 0.4  # p_o 0.7, p_e 0.5
    assert kappa([("correct", "correct", 1.0)], ("correct", "wrong")) is None  # one category: undefined
    low, high = wilson(0.2, 100)
    assert round(low, 4) == 0.1334 and round(high, 4) == 0.2888
    assert stratified_share([(10, 10, 2), (5, 5, 0)]) == {"share": round(2 / 15, 4), "low": round(2 / 15, 4),
                                                         "high": round(2 / 15, 4), "sampled": 15, "of": 15,
                                                         "effective_n": None}
    s = stratified_share([(100, 10, 1), (50, 10, 0)])
    assert s["share"] == round(100 / 150 * 0.1, 4) and 0 < s["low"] < s["share"] < s["high"] < 1
    assert stratified_share([(100, 0, 0)]) is None
    assert json.dumps(s)
