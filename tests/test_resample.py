"""Best-of-k self answers (`s3ft.stages.resample`, the method `s3ft-k`): where the judge did not accept the greedy
answer, k seeded samples are judged and the likeliest correct one under the base is kept; rows with none go on to
the paraphrase. A stand-in backend (no model) plants which samples are correct and their NLLs, so the rows
recovered and the samples kept are known; like `hf`, it seeds a batch, so a sample's text depends on the other rows
of its call too (a second stand-in seeds each request, like vLLM). The judge is the real `final` judge. A rerun draws
nothing again (the cache), a stage killed while sampling or scoring resumes to the same rows, a rerun over other rows
samples as a fresh run does, no sample is generate's own answer, and `s3ft validate` refuses `s3ft-k` without
samples. One test runs the real CLI on the tiny offline model through every stage.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

import s3ft
from s3ft.backends.base import Completion, Failed
from s3ft.cli import main
from s3ft.config.load import locate
from s3ft.errors import ConfigError, StageError
from s3ft.results import collect
from s3ft.rundir import read_json, read_jsonl, stage_root
from s3ft.stages.report import resample_lines
from s3ft.stages.resample import sample_seed

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data" / "tiny_gsm8k_train.jsonl"
ROWS = [json.loads(line) for line in DATA.open()][:12]
INDEX = {r["question"]: n for n, r in enumerate(ROWS)}
GOLD = [int(r["answer"].rsplit("####", 1)[1]) for r in ROWS]
K = 4
SEEDS = [sample_seed(0, j) for j in range(K)]  # resample.seed 0
GREEDY_RIGHT = {0, 1, 2, 3}
HEDGED = 8  # its greedy answer hedges: undecided, resampled like a wrong one
PLANTED = {4: {0: 0.9, 2: 0.4}, 5: {1: 0.7}, 6: {0: 0.2, 1: 0.2}, 7: {3: 0.5}, 8: {1: 0.3}, 9: {0: 0.1}}
"""Row -> {index of a correct sample: its NLL per token}; every other sample is wrong."""
CUT = {(9, 0)}  # row 9's only correct sample is cut off at max_new_tokens: never kept
NLL_FAILED = {(6, 1)}  # too long to score (row 6 keeps its sample 0 all the same)
GOLD_FAILED = 10  # row 10's gold is too long to score; any other gold: 2.0 per token
KEPT = {4: 2, 5: 1, 6: 0, 7: 3, 8: 1}  # the lowest NLL per token (row 6: a tie, the lower index)
PARAPHRASE_WRONG = {11}
CALLS = {"sampled": 0, "greedy": 0, "nll": 0}


class SampleBackend:
    """A stand-in model: greedy answers right on rows 0-3, samples right where `PLANTED` says (sample j: the one
    seeded `SEEDS[j]`), paraphrases right but for row 11. Like `hf`, it seeds a whole call: a sample's text names
    its index and a tag of its seed and the other rows of its call. NLL per token of a sample as planted, of a gold
    2.0, 1.5 for any other text; too long to score where `NLL_FAILED` and `GOLD_FAILED` say."""

    seeds_batches = True

    def __init__(self, model_cfg, batch_size: int = 8, adapter: str | None = None, **engine):
        self.model_id, self.batch_size = f"stand-in:{model_cfg.path}", batch_size

    def generate(self, prompts, params):
        CALLS["sampled" if params.temperature > 0 else "greedy"] += len(prompts)
        call = [INDEX[question_of(p[-1]["content"])] for p in prompts] if self.seeds_batches else None
        return [self._one(p[-1]["content"], params, call) for p in prompts]

    @staticmethod
    def _one(text: str, params, call: list[int] | None) -> Completion:
        n = INDEX[question_of(text)]
        if "Reference answer:" in text:
            return Completion(f"In my own words: the answer is {GOLD[n] + (n in PARAPHRASE_WRONG)}.", "stop")
        if params.temperature == 0:
            if n == HEDGED:
                return Completion("The answer is 7 or 9.", "stop")
            return Completion(f"So the answer is {GOLD[n] + (n not in GREEDY_RIGHT)}.", "stop")
        j = SEEDS.index(params.seed) if params.seed in SEEDS else f"seed{params.seed}"
        digest = hashlib.sha256(repr((params.seed, call)).encode()).digest()
        tag = "".join(chr(97 + b % 26) for b in digest[:6])  # letters only: the answer stays the last number
        right = j in PLANTED.get(n, {})
        finish = "length" if (n, j) in CUT else "stop"
        return Completion(f"Sample {j} ({tag}): the answer is {GOLD[n] + (not right) * 2}.", finish)

    def nll(self, prompts, completions):
        CALLS["nll"] += len(prompts)
        out = []
        for p, c in zip(prompts, completions, strict=True):
            n, j = INDEX[question_of(p[-1]["content"])], re.match(r"Sample (\d+) ", c)
            tokens = len(c.split())
            if (n, j and int(j[1])) in NLL_FAILED or (n == GOLD_FAILED and is_gold(c)):
                out.append(Failed(f"{tokens} tokens, more than the stand-in's context"))
                continue
            per = PLANTED.get(n, {}).get(int(j[1]), 1.5) if j else 2.0 if is_gold(c) else 1.5
            out.append((per * tokens, tokens))
        return out


class RequestSeeded(SampleBackend):
    """The stand-in seeding each request, like vLLM: a sample's text depends on its prompt and seed only."""

    seeds_batches = False


def is_gold(text: str) -> bool:
    return not text.startswith(("Sample ", "In my own words", "So the answer", "The answer is 7 or 9"))


def question_of(prompt: str) -> str:
    return prompt.split("Question: ", 1)[1].split("\n\nReference answer:", 1)[0].strip()


def config(tmp: Path, run: str, methods: list[str], backend: str = "SampleBackend", limit: int = len(ROWS),
           generate: dict | None = None, **extra) -> str:
    model = tmp / "model"
    if not model.exists():
        model.mkdir()
        (model / "weights.bin").write_bytes(b"stand-in")
    cfg = {"run_dir": str(tmp / run), "method": methods, "model": {"path": str(model)},
           "data": {"task": "gsm8k", "train": {"path": str(DATA), "limit": limit}, "test": None},
           "generate": {"backend": f"{__name__}:{backend}", "batch_size": 3, "max_new_tokens": 40, **(generate or {})},
           "judge": {"name": "final"}, "resample": {"k": K, "temperature": 0.8, "seed": 0}, **extra}
    path = tmp / f"{run}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def indexed(run: Path, path: Path) -> dict[int, dict]:
    """A rows file keyed by the row's place in the data."""
    place = {r["id"]: INDEX[r["question"]] for r in read_jsonl(stage_root(run, "data") / "train.jsonl")}
    return {place[r["id"]]: r for r in read_jsonl(path)}


@pytest.fixture(scope="module", autouse=True)
def stand_in_scores():
    """The stand-in scores NLLs itself (a backend of the user's own is otherwise replaced by hf for scoring)."""
    from s3ft.context import Context

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Context, "scorer", lambda self: self.backend())
        yield


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resample")
    cfg = config(tmp, "run", ["s3ft", "s3ft-k"])
    CALLS.update(sampled=0, greedy=0, nll=0)
    assert main(["run", cfg, "--until", "select"]) == 0
    return tmp, cfg, tmp / "run", dict(CALLS)


def test_the_rows_recovered_and_the_samples_kept_are_the_planted_ones(made):
    _, _, run, calls = made
    rows = indexed(run, stage_root(run, "resample") / "rows.jsonl")
    assert sorted(rows) == list(range(4, 12))  # every row whose greedy answer was not accepted, the hedge too
    assert calls["sampled"] == K * 8
    assert {n: r["kept"] for n, r in rows.items() if r["kept"] is not None} == KEPT
    assert {n: r["n_correct"] for n, r in rows.items()} == {n: len(PLANTED.get(n, {})) for n in range(4, 12)}
    assert rows[9]["kept"] is None and rows[9]["samples"][0]["finish"] == "length"  # correct, but cut off
    for n, j in KEPT.items():
        assert rows[n]["nll_per_token"] == pytest.approx(PLANTED[n][j])
        assert [s["seed"] for s in rows[n]["samples"]] == SEEDS
        assert [s["nll"] is not None for s in rows[n]["samples"]] == [
            j in PLANTED[n] and (n, j) not in NLL_FAILED for j in range(K)]
    assert "too long" in rows[6]["samples"][1]["nll_failed"]
    m = read_json(stage_root(run, "resample") / "manifest.json")
    assert stage_root(run, "resample").name == "03_resample" and stage_root(run, "report").name == "09_report"
    assert {k: m["counts"][k] for k in ("rows", "k", "recovered", "samples", "correct_samples", "failed_samples")} == {
        "rows": 8, "k": K, "recovered": 5, "samples": 32, "correct_samples": 8, "failed_samples": 1}
    assert all(isinstance(m["counts"][k], float) for k in ("generate_s", "judge_s", "nll_s"))
    assert sorted(p.name for p in stage_root(run, "resample").iterdir()) == ["manifest.json", "progress.json",
                                                                            "rows.jsonl"]


def test_s3ft_k_trains_on_the_kept_sample_with_its_provenance(made):
    _, _, run, _ = made
    k_rows = indexed(run, stage_root(run, "select") / "s3ft-k" / "train.jsonl")
    plain = indexed(run, stage_root(run, "select") / "s3ft" / "train.jsonl")
    want = {**dict.fromkeys(range(4), "self"), **dict.fromkeys(KEPT, "self_sample"), 9: "paraphrase", 10: "paraphrase",
            11: "gold"}
    assert {n: r["source"] for n, r in k_rows.items()} == want
    assert {n: r["source"] for n, r in plain.items()} == {**dict.fromkeys(range(4), "self"),
                                                          **dict.fromkeys(range(4, 11), "paraphrase"), 11: "gold"}
    for n, j in KEPT.items():
        r = k_rows[n]
        assert re.fullmatch(rf"Sample {j} \([a-z]{{6}}\): the answer is {GOLD[n]}\.", r["completion"][0]["content"])
        assert r["resample"] == {"k": K, "n_correct": len(PLANTED[n]), "kept": j, "seed": SEEDS[j],
                                 "nll_per_token": pytest.approx(PLANTED[n][j]), "verdict": r["resample"]["verdict"]}
        assert r["resample"]["verdict"]["correct"] is True and r["self_verdict"]["correct"] is not True
    assert k_rows[9]["resample"] == {"k": K, "n_correct": 1, "kept": None} and "resample" not in k_rows[0]
    stats = read_json(stage_root(run, "select") / "s3ft-k" / "stats.json")
    assert stats["composition"]["counts"] == {"self": 4, "self_sample": 5, "paraphrase": 2, "gold": 1}
    assert stats["target_nll_per_token_by_source"]["self_sample"] is not None
    assert read_json(stage_root(run, "select") / "s3ft" / "stats.json")["composition"]["counts"] == {
        "self": 4, "paraphrase": 7, "gold": 1}


def test_with_s3ft_k_alone_only_rows_with_no_correct_sample_are_paraphrased(made):
    tmp, _, _, _ = made
    cfg = config(tmp, "alone", ["s3ft-k"])
    assert main(["run", cfg, "--until", "select"]) == 0
    run = tmp / "alone"
    assert sorted(indexed(run, stage_root(run, "paraphrase") / "rows.jsonl")) == [9, 10, 11]
    assert read_json(stage_root(run, "paraphrase") / "manifest.json")["counts"]["scope"] == "unrecovered"
    rows = indexed(run, stage_root(run, "select") / "s3ft-k" / "train.jsonl")
    assert [rows[n]["source"] for n in (9, 10, 11)] == ["paraphrase", "paraphrase", "gold"]


def test_a_rerun_is_a_no_op_and_a_forced_one_draws_from_the_cache(made):
    _, cfg, run, _ = made
    before = (stage_root(run, "resample") / "rows.jsonl").read_bytes()
    CALLS.update(sampled=0, greedy=0, nll=0)
    results = s3ft.run(s3ft.load_config(cfg), until="select")
    assert all(r["action"] == "skipped" for r in results) and CALLS == {"sampled": 0, "greedy": 0, "nll": 0}
    results = s3ft.run(s3ft.load_config(cfg), until="select", force=["resample"])
    assert {r["unit"]: r["action"] for r in results}["resample"] == "ran"
    assert CALLS["sampled"] == 0  # samples and their NLLs: from the model-call cache
    assert CALLS["nll"] == len(NLL_FAILED)  # but for the sample too long to score (never cached): asked again
    assert (stage_root(run, "resample") / "rows.jsonl").read_bytes() == before


@pytest.mark.parametrize("where", ["sampling", "scoring"])
@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_a_killed_stage_resumes_to_the_same_rows(made, tmp_path, monkeypatch, cache, where):
    _, _, done, _ = made
    want = (stage_root(done, "resample") / "rows.jsonl").read_bytes()
    cfg = config(tmp_path, "killed", ["s3ft-k"], cache={"enabled": cache})
    assert main(["run", cfg, "--until", "judge"]) == 0
    from s3ft.stages import resample

    real_score, real_generate = resample.score, SampleBackend.generate

    def killed_scoring(ctx, rows, *args):  # a kill after the first batch of rows is written
        real_score(ctx, rows, *args)
        lines = rows.path.read_bytes().splitlines(keepends=True)
        rows.path.write_bytes(b"".join(lines[:3]) + lines[3][:20])  # three rows and a torn one
        raise KeyboardInterrupt

    def killed_sampling(self, prompts, params):  # a kill in the second batch's second sample
        if params.temperature > 0 and CALLS["sampled"] == (K + 1) * 3:
            raise KeyboardInterrupt
        return real_generate(self, prompts, params)

    monkeypatch.setattr(*(resample, "score", killed_scoring) if where == "scoring" else
                        (SampleBackend, "generate", killed_sampling))
    CALLS.update(sampled=0, greedy=0, nll=0)
    with pytest.raises(KeyboardInterrupt):
        s3ft.run(s3ft.load_config(cfg), until="resample")
    monkeypatch.setattr(resample, "score", real_score)
    monkeypatch.setattr(SampleBackend, "generate", real_generate)
    unit = stage_root(tmp_path / "killed", "resample")
    assert (unit / "samples.jsonl").is_file() and not (unit / "manifest.json").exists()
    assert where == "scoring" or (len(read_jsonl(unit / "samples.jsonl")) == 3 and not (unit / "verdicts.jsonl").exists())
    CALLS.update(sampled=0, greedy=0, nll=0)
    results = s3ft.run(s3ft.load_config(cfg), until="resample")
    assert {r["unit"]: r["action"] for r in results}["resample"] == "resumed"
    # the samples drawn before the kill are kept (in samples.jsonl; the second batch's first, in the cache)
    assert CALLS["sampled"] == {"scoring": 0, "sampling": K * 5 - 3 * cache}[where]
    assert (unit / "rows.jsonl").read_bytes() == want


def test_a_rerun_over_other_rows_samples_as_a_fresh_run_does(tmp_path):
    """Seeded per batch (`hf`): fewer rows, other batches, must not take samples cached from the first run's."""
    for run, limit in (("moved", len(ROWS)), ("moved", 10), ("fresh", 10)):
        assert main(["run", config(tmp_path, run, ["s3ft-k"], limit=limit), "--until", "resample"]) == 0
    got, want = (read_jsonl(stage_root(tmp_path / r, "resample") / "rows.jsonl") for r in ("moved", "fresh"))
    assert len(want) == 6 and got == want


def test_no_sample_is_generates_own_answer(tmp_path):
    """generate samples with resample's settings and seed: sample 0 is still not generate's answer (cached)."""
    cfg = config(tmp_path, "warm", ["s3ft-k"], backend="RequestSeeded", generate={"temperature": 0.8, "seed": 0},
                 resample={"k": 1, "seed": 0})
    CALLS.update(sampled=0, greedy=0, nll=0)
    assert main(["run", cfg, "--until", "resample"]) == 0
    run = tmp_path / "warm"
    preds = indexed(run, stage_root(run, "generate") / "rows.jsonl")
    rows = indexed(run, stage_root(run, "resample") / "rows.jsonl")
    assert len(rows) == len(ROWS) and CALLS["sampled"] == 2 * len(ROWS)  # each sample drawn, none from the cache
    for n, r in rows.items():
        assert r["samples"][0]["seed"] == SEEDS[0] != 0 and r["samples"][0]["text"] != preds[n]["prediction"]
    assert {n for n, r in rows.items() if r["kept"] is not None} == {n for n in PLANTED if 0 in PLANTED[n]} - {9}


def test_a_scorer_failing_names_the_chunk_and_ids(tmp_path, monkeypatch):
    cfg = config(tmp_path, "scorer", ["s3ft-k"])
    assert main(["run", cfg, "--until", "judge"]) == 0

    def broken(self, prompts, completions):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(SampleBackend, "nll", broken)
    with pytest.raises(StageError, match=r"^resample \(nll\): chunk 1 of 3 \(3 rows, ids '.+' \.\. '.+'\) failed: "
                                         r"the scorer raised RuntimeError: CUDA error: out of memory; the 0 rows"):
        s3ft.run(s3ft.load_config(cfg), until="resample")


def test_the_report_counts_the_failed_samples_and_only_where_s3ft_k_is_a_method(made):
    _, _, run, _ = made
    found = collect(run)
    assert found["resample"]["failed_samples"] == 1
    assert "32 samples drawn, 8 correct, 1 too long for the model (not drawn, or not scored)" in " ".join(
        resample_lines(found["resample"]))
    assert "resample" not in collect(run, ["s3ft"])  # s3ft-k dropped: its stage's folder is stale


def test_paraphrase_vs_gold_compares_only_rows_where_both_were_scored(made):
    _, _, run, _ = made
    rows = indexed(run, stage_root(run, "select") / "s3ft" / "train.jsonl")
    para = [r for n, r in rows.items() if r["source"] == "paraphrase" and n != GOLD_FAILED]
    stats = read_json(stage_root(run, "select") / "s3ft" / "stats.json")
    assert stats["paraphrase_vs_gold_nll_per_token"] == {
        "rows": 6, "gold": 2.0,  # row 10's gold is too long to score: the row is left out of both means
        "paraphrase": round(sum(r["target_nll"] for r in para) / sum(r["target_tokens"] for r in para), 4)}


@pytest.mark.parametrize(("override", "key", "says"), [
    ("resample.k=0", "resample.k", "s3ft-k trains on the best of k samples"),
    ("resample.k=-1", "resample.k", "greater than or equal to 0"),
    ("resample.temperature=0", "resample.temperature", "greater than 0"),
    ("resample.top_p=1.5", "resample.top_p", "less than or equal to 1"),
    ("resample.seed=-2", "resample.seed", "greater than or equal to 0"),
    ("resample.max_new_tokens=0", "resample.max_new_tokens", "greater than or equal to 1"),
])
def test_validate_refuses_s3ft_k_without_samples_and_nonsense(tmp_path, override, key, says):
    path = Path(config(tmp_path, "v", ["sft", "s3ft-k"]))
    name, value = override.removeprefix("resample.").split("=")
    raw = yaml.safe_load(path.read_text())
    raw["resample"][name] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(raw))
    lines = path.read_text().splitlines()
    line = 1 + next(n for n in range(lines.index("resample:"), len(lines)) if lines[n].startswith(f"  {name}:"))
    with pytest.raises(ConfigError) as e:
        s3ft.validate(s3ft.load_config(path))
    err = locate(e.value, path)  # as `s3ft validate` names the file and line
    assert err.key == key and says in err.message and err.line == line, str(err)


def test_validate_names_the_resample_settings(tmp_path):
    lines = s3ft.validate(s3ft.load_config(config(tmp_path, "v", ["s3ft-k"])))
    assert "resample: k=4, temperature 0.8, top_p 1.0, seed 0 (k seeds hashed from it), max_new_tokens 40" in lines
    assert any(x.endswith("data → generate → judge → resample → paraphrase → judge_paraphrase → select → train → "
                          "evaluate → report") for x in lines)


@pytest.mark.integration
def test_the_tiny_model_through_every_stage_with_s3ft_k_in_the_report(tiny_model_dir, tmp_path):
    data = DATA.parent
    cfg = {"run_dir": str(tmp_path / "run"), "method": ["sft", "s3ft", "s3ft-k"],
           "model": {"path": str(tiny_model_dir), "dtype": "float32"},
           "data": {"task": "gsm8k", "train": {"path": str(data / "tiny_gsm8k_train.jsonl"), "limit": 4},
                    "test": {"path": str(data / "tiny_gsm8k_test.jsonl"), "limit": 2}},
           "generate": {"batch_size": 4, "max_new_tokens": 8}, "paraphrase": {"max_new_tokens": 8},
           "resample": {"k": 2, "max_new_tokens": 8}, "judge": {"name": "final"}, "report": {"plots": False},
           "train": {"mode": "lora", "lora_r": 2, "lora_alpha": 4, "epochs": 1, "batch_size": 4, "max_length": 256}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    rows = read_jsonl(stage_root(run, "resample") / "rows.jsonl")
    assert rows and all(r["k"] == 2 and len(r["samples"]) == 2 for r in rows)
    report = (stage_root(run, "report") / "report.md").read_text()
    assert re.search(r"^\| s3ft-k \| ", report, re.MULTILINE) and "self sample %" in report
    assert "Best-of-k self answers (s3ft-k, `03_resample`)" in report
    assert read_json(stage_root(run, "report") / "metrics.json")["resample"]["samples"] == 2 * len(rows)


def test_the_export_card_names_the_sample_source(made):
    from s3ft.export.cards import composition_lines

    _, _, run, _ = made
    stats = read_json(stage_root(run, "select") / "s3ft-k" / "stats.json")
    text = "\n".join(composition_lines(stats, []))
    assert "| self | 4 |" in text and "| self_sample | 5 |" in text and "| gold | 1 |" in text
    assert "`self_sample`: where its greedy answer was not accepted, the likeliest of its k sampled answers" in text


def skeleton(row: dict) -> dict:
    """A resampled row but for its samples' texts (and what is read from them)."""
    return {"id": row["id"], "k": row["k"], "kept": row["kept"], "n_correct": row["n_correct"],
            "samples": [(s["index"], s["seed"], s["correct"], s["finish"]) for s in row["samples"]]}


@pytest.mark.parametrize("backend", ["RequestSeeded", "SampleBackend"])
def test_shards_resample_their_own_rows_and_merge_into_one_runs(made, tmp_path, backend):
    _, _, done, _ = made
    if backend == "RequestSeeded":
        assert main(["run", config(tmp_path, "whole", ["s3ft-k"], backend=backend), "--until", "resample"]) == 0
        done = tmp_path / "whole"
    cfg = config(tmp_path, "sharded", ["s3ft-k"], backend=backend)
    assert main(["run", cfg, "--until", "data"]) == 0
    for i in (1, 0):
        assert main(["run", cfg, "--shard", f"{i}/2"]) == 0
    run = tmp_path / "sharded"
    assert not (stage_root(run, "resample") / "rows.jsonl").exists()
    assert main(["run", cfg, "--until", "select"]) == 0
    got, want = (stage_root(r, "resample") / "rows.jsonl" for r in (run, done))
    if backend == "RequestSeeded":  # seeded per request (vLLM): a shard draws what one run draws
        assert got.read_bytes() == want.read_bytes()
    else:  # seeded per batch (hf): each shard cuts its own batches, so its samples are not one run's
        assert [skeleton(r) for r in read_jsonl(got)] == [skeleton(r) for r in read_jsonl(want)]
    assert read_json(stage_root(run, "resample") / "manifest.json")["counts"]["from_shards"] == 8
    assert sorted(indexed(run, stage_root(run, "paraphrase") / "rows.jsonl")) == [9, 10, 11]
