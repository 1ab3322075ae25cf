"""Best-of-k self answers (`s3ft.stages.resample`, the method `s3ft-k`): where the judge did not accept the greedy
answer, k seeded samples are judged and the likeliest correct one under the base is kept; rows with none go on to
the paraphrase. A stand-in backend (no model) plants which samples are correct and their NLLs, so the rows
recovered and the samples kept are known; the judge is the real `final` judge. A rerun draws nothing again (the
cache), a killed stage resumes to the same rows, and `s3ft validate` refuses `s3ft-k` without samples. One test runs
the real CLI on the tiny offline model through every stage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import s3ft
from s3ft.backends.base import Completion
from s3ft.cli import main
from s3ft.config.load import locate
from s3ft.errors import ConfigError
from s3ft.rundir import read_json, read_jsonl, stage_root

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data" / "tiny_gsm8k_train.jsonl"
ROWS = [json.loads(line) for line in DATA.open()][:12]
INDEX = {r["question"]: n for n, r in enumerate(ROWS)}
GOLD = [int(r["answer"].rsplit("####", 1)[1]) for r in ROWS]
K = 4
GREEDY_RIGHT = {0, 1, 2, 3}
HEDGED = 8  # its greedy answer hedges: undecided, resampled like a wrong one
PLANTED = {4: {0: 0.9, 2: 0.4}, 5: {1: 0.7}, 6: {0: 0.2, 1: 0.2}, 7: {3: 0.5}, 8: {1: 0.3}, 9: {0: 0.1}}
"""Row -> {seed of a correct sample: its NLL per token}; every other sample is wrong."""
CUT = {(9, 0)}  # row 9's only correct sample is cut off at max_new_tokens: never kept
KEPT = {4: 2, 5: 1, 6: 0, 7: 3, 8: 1}  # the lowest NLL per token (row 6: a tie, the lower index)
PARAPHRASE_WRONG = {11}
CALLS = {"sampled": 0, "greedy": 0, "nll": 0}


class SampleBackend:
    """A stand-in model: greedy answers right on rows 0-3, samples right where `PLANTED` says, paraphrases right but
    for row 11; NLL per token of a sample as planted, 1.5 for any other text. Each text depends on its prompt and
    seed only."""

    def __init__(self, model_cfg, batch_size: int = 8, adapter: str | None = None, **engine):
        self.model_id = f"stand-in:{model_cfg.path}"

    def generate(self, prompts, params):
        CALLS["sampled" if params.temperature > 0 else "greedy"] += len(prompts)
        return [self._one(p[-1]["content"], params) for p in prompts]

    @staticmethod
    def _one(text: str, params) -> Completion:
        n = INDEX[question_of(text)]
        if "Reference answer:" in text:
            return Completion(f"In my own words: the answer is {GOLD[n] + (n in PARAPHRASE_WRONG)}.", "stop")
        if params.temperature == 0:
            if n == HEDGED:
                return Completion("The answer is 7 or 9.", "stop")
            return Completion(f"So the answer is {GOLD[n] + (n not in GREEDY_RIGHT)}.", "stop")
        right = params.seed in PLANTED.get(n, {})
        finish = "length" if (n, params.seed) in CUT else "stop"
        return Completion(f"Sample {params.seed}: the answer is {GOLD[n] + (not right) * 2}.", finish)

    def nll(self, prompts, completions):
        CALLS["nll"] += len(prompts)
        out = []
        for p, c in zip(prompts, completions, strict=True):
            n, seed = INDEX[question_of(p[-1]["content"])], re.match(r"Sample (\d+):", c)
            per = PLANTED.get(n, {}).get(int(seed[1]), 1.5) if seed else 1.5
            tokens = len(c.split())
            out.append((per * tokens, tokens))
        return out


def question_of(prompt: str) -> str:
    return prompt.split("Question: ", 1)[1].split("\n\nReference answer:", 1)[0].strip()


def config(tmp: Path, run: str, methods: list[str], **extra) -> str:
    model = tmp / "model"
    if not model.exists():
        model.mkdir()
        (model / "weights.bin").write_bytes(b"stand-in")
    cfg = {"run_dir": str(tmp / run), "method": methods, "model": {"path": str(model)},
           "data": {"task": "gsm8k", "train": {"path": str(DATA), "limit": len(ROWS)}, "test": None},
           "generate": {"backend": f"{__name__}:SampleBackend", "batch_size": 3, "max_new_tokens": 40},
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
        assert [s["seed"] for s in rows[n]["samples"]] == list(range(K))
        assert [s["nll"] is not None for s in rows[n]["samples"]] == [s in PLANTED[n] for s in range(K)]
    m = read_json(stage_root(run, "resample") / "manifest.json")
    assert stage_root(run, "resample").name == "03_resample" and stage_root(run, "report").name == "09_report"
    assert {k: m["counts"][k] for k in ("rows", "k", "recovered", "samples", "correct_samples")} == {
        "rows": 8, "k": K, "recovered": 5, "samples": 32, "correct_samples": 8}
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
        assert r["completion"][0]["content"] == f"Sample {j}: the answer is {GOLD[n]}."
        assert r["resample"] == {"k": K, "n_correct": len(PLANTED[n]), "kept": j, "seed": j,
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
    assert CALLS["sampled"] == 0 and CALLS["nll"] == 0  # samples and their NLLs: from the model-call cache
    assert (stage_root(run, "resample") / "rows.jsonl").read_bytes() == before


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_a_killed_stage_resumes_to_the_same_rows(made, tmp_path, monkeypatch, cache):
    _, _, done, _ = made
    want = (stage_root(done, "resample") / "rows.jsonl").read_bytes()
    cfg = config(tmp_path, "killed", ["s3ft-k"], cache={"enabled": cache})
    assert main(["run", cfg, "--until", "judge"]) == 0
    from s3ft.stages import resample

    real = resample.score

    def killed(ctx, rows, *args):  # a kill after the first batch of rows is written
        real(ctx, rows, *args)
        lines = rows.path.read_bytes().splitlines(keepends=True)
        rows.path.write_bytes(b"".join(lines[:3]) + lines[3][:20])  # three rows and a torn one
        raise KeyboardInterrupt

    monkeypatch.setattr(resample, "score", killed)
    with pytest.raises(KeyboardInterrupt):
        s3ft.run(s3ft.load_config(cfg), until="resample")
    monkeypatch.setattr(resample, "score", real)
    unit = stage_root(tmp_path / "killed", "resample")
    assert (unit / "samples.jsonl").is_file() and not (unit / "manifest.json").exists()
    CALLS.update(sampled=0, greedy=0, nll=0)
    results = s3ft.run(s3ft.load_config(cfg), until="resample")
    assert {r["unit"]: r["action"] for r in results}["resample"] == "resumed"
    assert CALLS["sampled"] == 0  # the samples drawn before the kill are kept (in samples.jsonl, and the cache)
    assert (unit / "rows.jsonl").read_bytes() == want


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
    assert "resample: k=4, temperature 0.8, top_p 1.0, seeds 0..3, max_new_tokens 40" in lines
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


def test_shards_resample_their_own_rows_and_merge_into_one_runs(made, tmp_path):
    _, _, done, _ = made
    cfg = config(tmp_path, "sharded", ["s3ft-k"])
    assert main(["run", cfg, "--until", "data"]) == 0
    for i in (1, 0):
        assert main(["run", cfg, "--shard", f"{i}/2"]) == 0
    run = tmp_path / "sharded"
    assert not (stage_root(run, "resample") / "rows.jsonl").exists()
    assert main(["run", cfg, "--until", "select"]) == 0
    assert (stage_root(run, "resample") / "rows.jsonl").read_bytes() == (
        stage_root(done, "resample") / "rows.jsonl").read_bytes()
    assert read_json(stage_root(run, "resample") / "manifest.json")["counts"]["from_shards"] == 8
    assert sorted(indexed(run, stage_root(run, "paraphrase") / "rows.jsonl")) == [9, 10, 11]
