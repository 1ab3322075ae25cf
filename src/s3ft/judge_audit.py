"""`s3ft audit RUN_DIR --judge CONFIG`: a second judge re-judges a seeded stratified sample of a finished run's
verdicts, and says how far the two agree and what share of the training targets the second would reject.

Reads the run's examples (`01_data`), its answers and verdicts (`02_generate`, `03_judge`), paraphrases and their
verdicts (`04_paraphrase`, `05_judge_paraphrase`), and each method's training set (`06_select/<m>/train.jsonl`:
which texts became targets); writes one unit of its own, `10_audit/<judge>/`: `rows.jsonl` (each re-judged text:
`id` `<kind>:<example id>`, `kind`, `stratum`, `targets`: the methods it is a target of, `first` and `second`
verdicts with their reasons, the text), `audit.json` (the numbers) and `audit.md`, sealed by its `manifest.json`
as a stage unit is (`s3ft.rundir`): a killed audit resumes row by row, a finished one is skipped, one whose files
or upstream changed is made again. No unit of the run reads it, so none goes stale; the report stage and export's
cards show it where it is sealed (`s3ft.results.audits`). The numbers' rules: `s3ft.agreement`, docs/audit.md.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tqdm.auto import tqdm

from s3ft import lock, stops
from s3ft.agreement import LABELS, allocate, kappa, label, rank, stratified_share, weights
from s3ft.config import Config, load_config
from s3ft.config.load import locate, read_mapping
from s3ft.config.paths import resolve_paths
from s3ft.context import Context
from s3ft.errors import ConfigError, S3FTError, StageError
from s3ft.pipeline import plan
from s3ft.provenance import named_inputs, versions
from s3ft.records import Verdict
from s3ft.registry import resolve
from s3ft.results import audit_markdown, share_text
from s3ft.rundir import (
    Rows,
    UnitDir,
    audit_root,
    read_json,
    read_jsonl,
    rows_by_id,
    stage_root,
    unit_fingerprint,
    write_json_atomic,
)
from s3ft.stages.data import load_examples
from s3ft.stages.judge import unjudged
from s3ft.verify import require_sealed_rows

log = logging.getLogger("s3ft.audit")
KINDS = {"self": ("judge", "generate", "prediction"), "paraphrase": ("judge_paraphrase", "paraphrase", "paraphrase")}
"""Text kind: (the stage whose verdicts are audited, the stage that wrote the text, the text's field)."""
STRATA = tuple(f"{k}/{v}" for k in KINDS for v in LABELS)


def judge_config(path: str | Path, run_cfg: Config) -> Config:
    """The run's config with its judge replaced by the one the audit's CONFIG names: a YAML mapping holding a
    `judge` section (as a run config's: `name`, `llm`, `timeout_s`, ...) and/or `data.judge` (a judge's name);
    its relative paths are read against its folder. Anything else, or a judge that does not resolve, is a
    `ConfigError` naming the file, the key and its line."""
    path = Path(path)
    text, raw = read_mapping(path, "judge config",
                             "a judge config is a mapping: `judge: {name: ...}` or `data: {judge: ...}`")
    raw = resolve_paths(raw, path.parent)
    data = raw.get("data") if raw.get("data") is not None else {}
    section = raw.get("judge") if raw.get("judge") is not None else {}
    extra = [k for k in raw if k not in ("judge", "data")]
    extra += [f"data.{k}" for k in (data if isinstance(data, dict) else {}) if k != "judge"]
    if extra:
        raise locate(ConfigError(None, extra[0], "unknown key: an audit's judge config holds a `judge` section, as a "
                                 "run config's, and `data.judge`"), path)
    for key, value, shape in (("data", data, "data: {judge: NAME}"), ("judge", section, "judge: {name: NAME}")):
        if not isinstance(value, dict):
            raise locate(ConfigError(None, key, f"must be a section (`{shape}`)"), path)
    name = section.get("name") or data.get("judge")
    if not name:
        raise locate(ConfigError(None, "judge.name", "names no judge: set judge.name (final, math, code, qa, llm or "
                                 "package.module:Class), or data.judge"), path)
    merged = run_cfg.model_dump(mode="json")
    merged["judge"] = {**section, "name": name}
    try:
        cfg = load_config(raw=merged)
        resolve("judge", str(name))
    except ConfigError as e:
        raise locate(e, path) from None
    except S3FTError as e:  # an unknown name, a plug-in that does not import
        raise locate(ConfigError(None, "judge.name" if section.get("name") else "data.judge", str(e)), path) from None
    return cfg


def audit_name(cfg: Config) -> str:
    """The audit's folder under `10_audit/`: the second judge's name, for the llm judge with its model's folder
    name (`llm-<model>`, `llm-base` where the base model judges), in file-name characters."""
    name = cfg.judge.name or "judge"
    if name == "llm":
        model = cfg.judge.llm and cfg.judge.llm.model
        name = f"llm-{Path(model.path.rstrip('/')).name}" if model else "llm-base"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "judge"


def finished(ctx: Context) -> dict:
    """The run's units by name, refusing a run whose judge verdicts, paraphrase verdicts or training sets are not
    all done: one line naming the unit's folder."""
    units = {u.name: u for u in plan(ctx)}
    if "judge" not in units:
        raise S3FTError(f"{ctx.run_dir}: no judge verdicts to audit: its methods ({', '.join(ctx.cfg.method)}) "
                        "judge no answer of the model (sft alone)")
    for name, u in units.items():
        if (u.stage in ("judge", "judge_paraphrase", "select")) and (state := u.state()) != "done":
            raise S3FTError(f"{u.dir.path / 'manifest.json'}: not a finished run: unit {name} is {state}; an audit "
                            "reads its verdicts and training sets: finish the run first (`s3ft run CONFIG`)")
    return units


def population(ctx: Context, units: dict) -> tuple[list[dict], dict[str, int]]:
    """Every verdict the run's judge made, as {kind, id, stratum, first, text}; and, by kind, the verdicts it did
    not make (a row that failed, a paraphrase rejected before judging), which are not audited."""
    rows, left_out = [], {}
    for kind, (stage, text_stage, field) in KINDS.items():
        if stage not in units:
            continue
        verdicts = rows_by_id(stage_root(ctx.run_dir, stage) / "rows.jsonl")
        texts = rows_by_id(stage_root(ctx.run_dir, text_stage) / "rows.jsonl")
        require_sealed_rows(stage_root(ctx.run_dir, stage) / "rows.jsonl", verdicts)
        left_out[kind] = 0
        for id_, v in verdicts.items():
            t = texts.get(id_)
            if t is None or unjudged(t):
                left_out[kind] += 1
                continue
            first = {"correct": v.get("correct"), "reason": v.get("reason")}
            rows.append({"id": f"{kind}:{id_}", "example": id_, "kind": kind,
                         "stratum": f"{kind}/{label(first['correct'])}", "first": first, "text": t.get(field) or ""})
    return rows, left_out


def targets(ctx: Context) -> dict[str, set[str]]:
    """Each method's texts that became training targets (`06_select/<m>/train.jsonl`, source self or paraphrase),
    as audit row ids; methods with none are left out."""
    out = {}
    for m in ctx.cfg.method:
        rows = read_jsonl(stage_root(ctx.run_dir, "select") / m / "train.jsonl")
        ids = {f"{r['source']}:{r['id']}" for r in rows if r.get("source") in KINDS}
        if ids:
            out[m] = ids
    return out


def draw(rows: list[dict], n: int, seed: int) -> list[dict]:
    """The sample: in each stratum its lowest-ranked rows (`agreement.rank`), as many as `agreement.allocate`
    gives it; in stratum order, then rank order."""
    strata = {s: sorted((r for r in rows if r["stratum"] == s), key=lambda r: rank(seed, r["kind"], r["example"]))
              for s in STRATA}
    take = allocate({s: len(v) for s, v in strata.items()}, n)
    return [r for s, v in strata.items() for r in v[: take[s]]]


def second_verdict(v: object) -> dict:
    """A second judge's verdict as a row records it; what is not a decision (True, False or None) is undecided,
    and a reason or extraction that is not text is written as text."""
    if not isinstance(v, Verdict):
        return {"correct": None, "reason": f"undecided: the judge gave {type(v).__name__}, not a Verdict"}
    ok = v.correct if v.correct is None or isinstance(v.correct, bool) else None
    reason = v.reason if isinstance(v.reason, str) else repr(v.reason)
    if ok is None and v.correct is not None:
        reason = f"undecided: the judge gave correct={v.correct!r}; {reason}"
    extracted = v.extracted if v.extracted is None or isinstance(v.extracted, str) else repr(v.extracted)
    return {"correct": ok, "reason": reason, "extracted": extracted}


def rejudge(ctx: Context, rows: Rows, sample: list[dict], examples: dict, desc: str) -> int:
    """Re-judge every sampled text not yet in `rows`, one chunk (`generate.batch_size`) at a time, each chunk's
    rows written before the next; a judge that raises or answers the wrong number of verdicts stops the audit
    naming the chunk (the rows before it are kept). Returns how many were judged now."""
    todo = [r for r in sample if r["id"] not in rows]
    judge = ctx.judge() if todo else None
    chunks = -(-len(todo) // ctx.chunk)
    with tqdm(total=len(sample), initial=len(sample) - len(todo), desc=desc, unit="ex") as bar:
        for k, start in enumerate(range(0, len(todo), ctx.chunk), 1):
            part = todo[start : start + ctx.chunk]
            ids = [r["id"] for r in part]
            try:
                verdicts = list(judge([examples[r["example"]] for r in part], [r["text"] for r in part]))
            except Exception as e:
                raise StageError(desc, k, chunks, ids, len(rows), f"the judge raised {type(e).__name__}: {e}") from e
            if len(verdicts) != len(part):
                raise StageError(desc, k, chunks, ids, len(rows), f"the judge returned {len(verdicts)} verdicts for "
                                 f"{len(part)} texts")
            rows.append({**r, "second": second_verdict(v)} for r, v in zip(part, verdicts, strict=True))
            bar.update(len(part))
    return len(todo)


def summarize(pop: list[dict], done: list[dict], methods: dict[str, set[str]], left_out: dict[str, int]) -> dict:
    """audit.json: the sample by stratum, the confusion table, kappa, and each method's rejected targets."""
    size = {s: sum(r["stratum"] == s for r in pop) for s in STRATA}
    sampled = {s: sum(r["stratum"] == s for r in done) for s in STRATA}
    w = weights(size, sampled)
    pairs = [(label(r["first"]["correct"]), label(r["second"]["correct"]), w[r["stratum"]]) for r in done]
    unweighted = [(a, b, 1.0) for a, b, _ in pairs]
    confusion = {a: {b: sum(1 for x, y, _ in pairs if (x, y) == (a, b)) for b in LABELS} for a in LABELS}
    agree = sum(a == b for a, b, _ in pairs)
    out = {"population": size, "sampled": sampled, "weights": {s: round(x, 4) for s, x in w.items()},
           "not_audited": left_out, "rows": len(done), "agree": agree,
           "confusion": confusion,
           "confusion_weighted": {a: {b: round(sum(x for f, s, x in pairs if (f, s) == (a, b)), 2) for b in LABELS}
                                  for a in LABELS},
           "kappa": {"decided": kappa(pairs, ("correct", "wrong")), "with_undecided": kappa(pairs, LABELS),
                     "decided_rows": sum(a != "undecided" and b != "undecided" for a, b, _ in pairs),
                     "sample_decided": kappa(unweighted, ("correct", "wrong")),
                     "sample_with_undecided": kappa(unweighted, LABELS)},
           "targets": {}}
    for m, ids in methods.items():
        t = {"targets": sum(r["id"] in ids for r in pop),
             **{k: sum(r["id"] in ids and r["kind"] == k for r in pop) for k in KINDS}, "fallback": []}
        for what, hit in (("rejected", lambda c: c is False), ("not_confirmed", lambda c: c is not True)):
            strata = []
            for s in STRATA:
                m_h = sum(r["id"] in ids and r["stratum"] == s for r in pop)
                rows = [r for r in done if r["stratum"] == s and r["id"] in ids]
                stand_in = bool(m_h and not rows)
                if stand_in:  # targets, none sampled: the stratum's sample stands for them (docs/audit.md)
                    rows = [r for r in done if r["stratum"] == s]
                    t["fallback"] = sorted({*t["fallback"], s})
                strata.append((m_h, len(rows), sum(hit(r["second"]["correct"]) for r in rows), *[True] * stand_in))
            t[what] = stratified_share(strata)
        t["rejected_in_sample"] = sum(r["id"] in ids and r["second"]["correct"] is False for r in done)
        t["sampled"] = sum(r["id"] in ids for r in done)
        out["targets"][m] = t
    return out


def audit(run_dir: str | Path, judge: str | Path, n: int = 200, seed: int = 0) -> dict:
    """Audit the finished run in `run_dir` with the judge the YAML file `judge` names; returns audit.json's
    contents with `folder`, the unit's folder. A finished audit of the same judge, `n` and `seed` over the same
    upstream is not made again."""
    if n < 1:
        raise S3FTError(f"--n {n}: draw at least one verdict")
    run_dir = Path(run_dir)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise S3FTError(f"{run_dir}: not a run directory (no config.yaml)")
    run_cfg = load_config(saved).model_copy(update={"run_dir": str(run_dir)})
    cfg = judge_config(judge, run_cfg)
    ctx, second = Context(run_cfg), Context(cfg)
    with lock.for_run(run_dir):
        units = finished(ctx)
        read = [u for u in units.values() if u.stage in ("judge", "judge_paraphrase", "select")]
        inputs = {"judge": second.judge_parts, "n": n, "seed": seed, "upstream": [u.dir.fp for u in read]}
        unit = UnitDir(audit_root(run_dir) / audit_name(cfg), unit_fingerprint("audit", inputs))
        unit.upstream = {u.name: u.dir for u in read}
        name = f"audit/{unit.path.name}"
        if unit.state() == "done":
            log.info("%s: done, skipped (%s)", name, unit.path / "audit.md")
            return {**(read_json(unit.path / "audit.json") or {}), "folder": str(unit.path)}
        stops.at(name, unit.path)
        try:
            unit.begin()
            pop, left_out = population(ctx, units)
            sample = draw(pop, n, seed)
            examples = {ex.id: ex for ex in load_examples(stage_root(run_dir, "data"), "train")}
            methods = targets(ctx)
            sample = [{**r, "targets": [m for m, ids in methods.items() if r["id"] in ids]} for r in sample]
            rows = Rows(unit.path / "rows.jsonl")
            log.info("%s: %d of %d verdicts drawn (n %d, seed %d), %d to judge", name, len(sample), len(pop), n, seed,
                     sum(r["id"] not in rows for r in sample))
            try:
                rejudge(second, rows, sample, examples, name)
            except ConfigError as e:  # the judge's model does not load, its template is bad
                raise locate(e, judge) from None
            finally:
                second.release()
            rows.reorder(r["id"] for r in sample)
            done = [rows.rows[r["id"]] for r in sample]
            result = {"run": str(run_dir), "task": run_cfg.data.task, "first_judge": ctx.judge_name,
                      "second_judge": cfg.judge.name, "folder_name": unit.path.name,
                      "second_judge_config": second.judge_parts["cfg"], "n": n, "seed": seed,
                      **summarize(pop, done, methods, left_out)}
            write_json_atomic(unit.path / "audit.json", result)
            (unit.path / "audit.md").write_text(audit_markdown(result, done), encoding="utf-8")
            k = result["kappa"]
            unit.finish("audit", {"rows": len(done), "agree": result["agree"],
                                  **({"kappa": k["decided"]} if k["decided"] is not None else {})},
                        named_inputs(inputs, {u.dir.fp: u.name for u in read}), versions())
        finally:
            stops.at(None)
    log.info("%s: wrote %s", name, unit.path / "audit.md")
    return {**result, "folder": str(unit.path)}


def summary(result: dict) -> str:
    """What `s3ft audit` prints: kappa, each method's rejected share, and where audit.md is."""
    k = result["kappa"]
    lines = [f"{result['rows']} verdicts re-judged by {result['second_judge']}, {result['agree']} agreeing; Cohen's "
             f"kappa {k['decided']} over rows both decided ({k['with_undecided']} with undecided as a category)"]
    lines += [f"{m}: the second judge rejects an estimated {share_text(t['rejected'])} of its {t['targets']} self and "
              f"paraphrase targets" for m, t in result["targets"].items()]
    return "\n".join([*lines, f"wrote {Path(result['folder']) / 'audit.md'}"])
