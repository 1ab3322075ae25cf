"""Past one machine: the per-row stages run as shards (`s3ft run CONFIG --shard i/N`) and merge into the bytes
one unsharded run writes; bad `--shard`s and shards of two counts are errors.

No model is loaded: generation is a stand-in backend (registered as `test_shards:FakeBackend` through the
`package.module:Class` escape hatch), whose text for a prompt depends on that prompt only, never on the
other prompts of its batch (as with vLLM, or `hf` with batch size 1; batched `hf` generation pads and may
not be, docs/gpu.md). The judge is the real math judge. The CLI runs in this process (`s3ft.cli.main`), so
that the backend resolves; nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

import s3ft
from s3ft.backends.base import Completion
from s3ft.cli import main
from s3ft.errors import S3FTError
from s3ft.rundir import Rows, read_json, read_jsonl, stage_root
from s3ft.shards import Shard, shard_of

DATA = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data" / "tiny_gsm8k_train.jsonl"
ROW_STAGES = ("generate", "judge", "paraphrase", "judge_paraphrase")
GOLD = {r["question"]: r["answer"].rsplit("####", 1)[1].strip() for r in map(json.loads, DATA.open())}
BATCHES: list[tuple[str, ...]] = []  # every batch the stand-in backend was given (its prompts' questions)
LOADS: list[str] = []  # every stand-in backend built


class FakeBackend:
    """A stand-in model: right on about half the questions, paraphrases that keep the reference's answer (some
    wrong, some rejected for naming the reference), texts of varied lengths (longest-first batching reorders
    them), some cut off. Each text is a function of its own prompt."""

    def __init__(self, model_cfg, batch_size: int = 8, adapter: str | None = None, **engine):
        self.model_id = f"fake:{model_cfg.path}"
        LOADS.append(self.model_id)

    def generate(self, prompts, params):
        BATCHES.append(tuple(question_of(p[-1]["content"]) for p in prompts))
        return [self._one(p[-1]["content"]) for p in prompts]

    @staticmethod
    def _one(text: str) -> Completion:
        h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        pad = "Let me think it through. " * (h % 6)
        finish = "length" if h % 9 == 0 else "stop"
        if "Reference answer:" in text:  # the paraphrase prompt: the reference ends "The answer is N."
            answer = re.findall(r"The answer is (\S+?)\.", text)[-1]
            if h % 5 == 0:
                return Completion(f"{pad}As the reference answer says, the answer is {answer}.", finish)
            wrong = h % 4 == 0
            return Completion(f"In my own words: {pad}The answer is {int(answer) + wrong}.", finish)
        answer = int(GOLD[question_of(text)]) + (h % 2)  # right on about half
        return Completion(f"{pad}So the answer is {answer}.\nThe answer is {answer}.", finish)


def question_of(prompt: str) -> str:
    """The question in a predict or paraphrase prompt of the gsm8k task."""
    return prompt.split("Question: ", 1)[1].split("\n\nReference answer:", 1)[0].strip()


def config(tmp: Path, run: str, methods: list[str], **extra) -> str:
    model = tmp / "model"
    if not model.exists():  # once: its files' mtimes enter the fingerprints
        model.mkdir()
        (model / "weights.bin").write_bytes(b"stand-in")
    cfg = {
        "run_dir": str(tmp / run), "method": methods, "model": {"path": str(model)},
        "data": {"task": "gsm8k", "train": {"path": str(DATA), "limit": 40}, "test": None},
        "generate": {"backend": f"{__name__}:FakeBackend", "batch_size": 4, "max_new_tokens": 40},
        "paraphrase": {"max_new_tokens": 40}, "judge": {"workers": 1}, **extra,
    }
    path = tmp / f"{run}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def cli(*args: str) -> int:
    return main(list(args))


def rows_bytes(run: Path) -> dict[str, bytes]:
    return {s: (stage_root(run, s) / "rows.jsonl").read_bytes() for s in ROW_STAGES}


def data_ids(run: Path) -> list[str]:
    return [r["id"] for r in read_jsonl(stage_root(run, "data") / "train.jsonl")]


@pytest.mark.parametrize("methods", [["s3ft"], ["sdft", "ssr"]], ids=["paraphrase-wrong", "paraphrase-all"])
def test_three_shards_merge_into_the_bytes_of_one_run(tmp_path, methods, capsys):
    BATCHES.clear()
    assert cli("run", config(tmp_path, "one", methods), "--until", "judge_paraphrase") == 0
    one_batches = set(BATCHES)
    cfg = config(tmp_path, "sharded", methods)
    run = tmp_path / "sharded"
    assert cli("run", cfg, "--until", "data") == 0
    BATCHES.clear()
    for i in (2, 0, 1):  # any order: no shard reads another's rows
        assert cli("run", cfg, "--shard", f"{i}/3") == 0
    assert set(BATCHES) != one_batches  # the shards batched other prompts together: the texts must not care
    assert "when every shard is done" in capsys.readouterr().out

    ids = data_ids(run)
    for stage in ROW_STAGES:  # each shard made its own examples' rows, in the data's order, and nothing else
        assert not (stage_root(run, stage) / "rows.jsonl").exists()
        made = [read_jsonl(run / "shards" / f"shard-{i}-of-3" / stage_root(run, stage).name / "rows.jsonl")
                for i in range(3)]
        for i, rows in enumerate(made):
            assert [r["id"] for r in rows] == [x for x in ids if x in {r["id"] for r in rows}]
            assert all(shard_of(r["id"], 3) == i for r in rows)
        assert sum(len(rows) for rows in made) == len(read_jsonl(stage_root(tmp_path / "one", stage) / "rows.jsonl"))
    shards = {r["unit"]: r.get("shards") for r in s3ft.status(run)}
    assert shards["generate"] == shards["judge_paraphrase"] == "3 of 3 shards done"
    assert cli("status", str(run)) == 0
    assert "(3 of 3 shards done)" in capsys.readouterr().out

    LOADS.clear()
    assert cli("run", cfg, "--until", "judge_paraphrase") == 0  # the merge
    assert LOADS == []  # every row came from the shards: no model loaded to merge them
    assert rows_bytes(run) == rows_bytes(tmp_path / "one")
    gen = read_jsonl(stage_root(run, "generate") / "rows.jsonl")
    assert [r["id"] for r in gen] == ids  # the data's order, not the longest-first order rows were made in
    assert {r["correct"] for r in read_jsonl(stage_root(run, "judge") / "rows.jsonl")} == {True, False}
    assert any(r["rejected"] for r in read_jsonl(stage_root(run, "paraphrase") / "rows.jsonl"))
    assert not (run / "shards").exists()  # merged: the shard folders are gone
    for stage in ROW_STAGES:
        m, m1 = (read_json(stage_root(r, stage) / "manifest.json") for r in (run, tmp_path / "one"))
        assert m["fingerprint"] == m1["fingerprint"]
        assert m["counts"].pop("from_shards") == m["counts"]["rows"]
        assert m["counts"] == {**m1["counts"], **({"generated": 0} if "generated" in m1["counts"] else {})}
    assert all(r["state"] == "done" for r in s3ft.status(run) if r["unit"] in ROW_STAGES)


def test_unfinished_shards_are_completed_by_the_merge_and_merged_stages_are_read_not_rerun(tmp_path):
    methods = ["s3ft"]
    assert cli("run", config(tmp_path, "one", methods), "--until", "judge_paraphrase") == 0
    cfg = config(tmp_path, "sharded", methods)
    run = tmp_path / "sharded"
    assert cli("run", cfg, "--until", "data") == 0
    assert cli("run", cfg, "--shard", "0/3") == 0
    assert cli("run", cfg, "--shard", "1/3", "--until", "judge") == 0  # shard 2/3 never ran
    st = {r["unit"]: r.get("shards") for r in s3ft.status(run)}
    assert st["generate"] == "2 of 3 shards done" and st["paraphrase"] == "1 of 3 shards done"
    BATCHES.clear()
    assert cli("run", cfg, "--until", "judge_paraphrase") == 0
    questions = {r["id"]: r["question"].strip() for r in read_jsonl(stage_root(run, "data") / "train.jsonl")}
    made_here = {q for batch in BATCHES for q in batch}
    assert made_here and made_here <= {q for i, q in questions.items() if shard_of(i, 3) != 0}
    assert rows_bytes(run) == rows_bytes(tmp_path / "one")

    # a later stage made stale (other paraphrase settings): shards read the merged generate and judge rows
    changed = {"paraphrase": {"max_new_tokens": 40, "reject_patterns": ["reference answer says"]}}
    assert cli("run", config(tmp_path, "one", methods, **changed), "--until", "judge_paraphrase") == 0
    cfg = config(tmp_path, "sharded", methods, **changed)
    for i in range(3):
        assert cli("run", cfg, "--shard", f"{i}/3") == 0
    made = sorted(p.name for p in (run / "shards" / "shard-0-of-3").iterdir() if p.is_dir())
    assert made == ["04_paraphrase", "05_judge_paraphrase"]  # generate and judge: done, not run again
    assert cli("run", cfg, "--until", "judge_paraphrase") == 0
    assert rows_bytes(run) == rows_bytes(tmp_path / "one")


@pytest.mark.parametrize("bad", ["3", "a/b", "3/3", "0/0", "1/-3", "1/2/3", "1 of 3", ""])
def test_a_bad_shard_is_an_error_naming_it(tmp_path, bad, capsys):
    with pytest.raises(S3FTError, match="^--shard"):
        Shard.parse(bad)
    assert cli("run", config(tmp_path, "run", ["s3ft"]), f"--shard={bad}") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --shard") and ("I/N" in err or "0 to N-1" in err or "at least 1" in err), err
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_a_shard_needs_the_data_stage_and_takes_no_force_or_only(tmp_path, capsys):
    cfg = config(tmp_path, "run", ["s3ft"])
    assert cli("run", cfg, "--shard", "0/2") == 2
    assert "run `s3ft run CONFIG --until data` once" in capsys.readouterr().err
    for flag in ("--force", "--only"):
        assert cli("run", cfg, "--shard", "0/2", flag, "generate") == 2
        assert "not with --force or --only" in capsys.readouterr().err


def test_shards_of_two_counts_do_not_mix(tmp_path, capsys):
    cfg = config(tmp_path, "run", ["s3ft"])
    run = tmp_path / "run"
    assert cli("run", cfg, "--until", "data") == 0
    assert cli("run", cfg, "--shard", "0/3", "--until", "generate") == 0
    assert cli("run", cfg, "--shard", "0/2", "--until", "generate") == 2
    err = capsys.readouterr().err
    assert "shards of 3 (shard-0-of-3)" in err and "this run is a shard of 2" in err and "do not mix" in err
    assert not (run / "shards" / "shard-0-of-2").exists()
    shutil.copytree(run / "shards" / "shard-0-of-3", run / "shards" / "shard-1-of-2")  # a mix, made by hand
    assert cli("run", cfg, "--until", "generate") == 2
    assert "a merge takes one count" in capsys.readouterr().err
    assert not (stage_root(run, "generate") / "rows.jsonl").exists()  # nothing merged
    shutil.rmtree(run / "shards" / "shard-1-of-2")
    changed = config(tmp_path, "run", ["s3ft"], generate={"backend": f"{__name__}:FakeBackend", "batch_size": 4,
                                                          "max_new_tokens": 41})
    assert cli("run", changed, "--shard", "1/2", "--until", "generate") == 0  # 0/3's rows are stale: no mix


def test_shard_of_is_a_stable_partition():
    assert [shard_of(x, 4) for x in ["a", "b", "c", "gsm8k-0123456789ab", "é", "\ud800"]] == [2, 2, 2, 0, 3, 0]
    assert [shard_of(x, 1000) for x in ["a", "b"]] == [250, 946]  # sha256, never Python's salted hash()
    ids = [f"id-{n}" for n in range(200)]
    for n in (1, 2, 3, 7):
        owners = [[i for i in range(n) if Shard(i, n).owns(x)] for x in ids]
        assert all(len(o) == 1 for o in owners)
    assert str(Shard.parse(" 2 / 4 ")) == "2/4" and Shard.parse("0/1").name == "shard-0-of-1"


def test_reorder_rewrites_rows_in_the_given_order_as_append_wrote_them(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = Rows(path)
    rows.append([{"id": "c", "t": "\ud800 é"}, {"id": "a", "x": 1.5}, {"id": "z"}, {"id": "b", "n": None}])
    lines = {json.loads(line)["id"]: line for line in path.read_bytes().splitlines(keepends=True)}
    rows.reorder(["a", "b", "c", "d"])
    assert path.read_bytes() == lines["a"] + lines["b"] + lines["c"] + lines["z"]  # unlisted ids last
    assert list(rows.rows) == ["a", "b", "c", "z"] and list(Rows(path).rows) == ["a", "b", "c", "z"]
    before = path.stat().st_mtime_ns
    rows.reorder(["a", "b", "c"])  # in order already: not rewritten
    assert path.stat().st_mtime_ns == before
