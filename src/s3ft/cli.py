"""The `s3ft` command: run, status, validate, ls, demo, export, audit, make-tiny.

Every subcommand is a thin wrapper over the Python API (`s3ft.run`, `s3ft.status`, ...).
Errors a user can fix (bad config, bad data) print one line naming the file, line and key, and
exit with status 2; no computed rows are lost, since each stage writes its rows as it goes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from s3ft.errors import S3FTError
from s3ft.logs import setup_logging
from s3ft.methods import METHOD_NEEDS
from s3ft.rundir import STAGES


def _version() -> str:
    from s3ft import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="s3ft", description="Selective Self-to-Supervised Fine-Tuning.")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--version", action="version", version=f"s3ft {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the pipeline (finished stages are skipped)")
    r.add_argument("config")
    r.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=1 method=[sft,s3ft]")
    r.add_argument("--until", choices=STAGES, help="stop after this stage")
    r.add_argument("--force", action="append", default=[], choices=STAGES,
                   help="rerun this stage and every stage after it (repeatable)")
    r.add_argument("--only", action="append", choices=STAGES, help="run only this stage (repeatable)")
    r.add_argument("--shard", metavar="I/N",
                   help="past one machine: run generate, judge and paraphrase (and its judge) for shard I of N of "
                        "the examples (I from 0); the next plain run merges the shards (docs/gpu.md)")
    s = sub.add_parser("status", help="show each stage of a run directory, or of a config's run_dir")
    s.add_argument("run_dir", metavar="RUN_DIR|CONFIG",
                   help="a run directory (read wherever it lies), or a config file: its run_dir, as `run` reads it")
    s.add_argument("overrides", nargs="*", help="with a config file: key=value overrides, as given to `run`")
    s.add_argument("--verify", action="store_true",
                   help="hash every finished unit's files again (otherwise sizes and modification times are compared)")
    v = sub.add_parser("validate", help="check a config without loading a model")
    v.add_argument("config")
    v.add_argument("overrides", nargs="*")
    sub.add_parser("ls", help="list tasks, judges, backends and methods")
    x = sub.add_parser("export", help="write a run's training sets (HF datasets, LLaMA-Factory, axolotl) with cards, "
                                      "and with --merge its trained models")
    x.add_argument("run_dir")
    x.add_argument("--out", help="output folder (default RUN_DIR/export)")
    x.add_argument("--method", nargs="+", action="extend", choices=list(METHOD_NEEDS),
                   help="export these methods (default: every method with a training set)")
    x.add_argument("--merge", action="store_true",
                   help="also write each trained model as full weights: a LoRA adapter merged into the base")
    x.add_argument("--adapter", action="store_true",
                   help="also write each LoRA-trained model's adapter alone, with its card (a peft model repository)")
    x.add_argument("--push", metavar="REPO_ID",
                   help="upload the exported dataset (and model) of one method to the Hugging Face hub as REPO_ID")
    a = sub.add_parser("audit", help="re-judge a seeded stratified sample of a finished run's verdicts with a second "
                                     "judge: agreement, Cohen's kappa, the share of targets it rejects (docs/audit.md)")
    a.add_argument("run_dir", metavar="RUN_DIR")
    a.add_argument("--judge", required=True, metavar="CONFIG",
                   help="a YAML file naming the second judge as a run config does: `judge: {name: math}`, or "
                        "`judge: {name: llm, llm: {model: {path: ...}}}`, or `data: {judge: qa}`")
    a.add_argument("--n", type=int, default=200, help="verdicts to draw, split equally over the strata (default 200)")
    a.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    d = sub.add_parser("demo", help="the miniature world: every method, several seeds, one summary")
    d.add_argument("overrides", nargs="*", help="key=value overrides of the demo config")
    d.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    d.add_argument("--run-dir", default=None, help="default runs/world (shop), runs/world-lookup (lookup)")
    d.add_argument("--world", default="v4", choices=("v4", "v5"),
                   help="v4: the shipped base over several fine-tuning seeds (the default until v5's bases ship); "
                        "v5: the four methods on each base, paired differences over bases (docs/world_v5.md)")
    d.add_argument("--base", action="append", default=None, metavar="DIR",
                   help="world v5: a base to run (repeatable; default: the shipped v5 bases)")
    d.add_argument("--task", default="shop", choices=("shop", "lookup"),
                   help="the world's target task: shop (word problems, GSM8K-style golds; the default) or lookup "
                        "(open-answer questions with bare short golds, the qa judge)")
    t = sub.add_parser("make-tiny", help="build a tiny random Llama model and tokenizer offline")
    t.add_argument("out_dir")
    t.add_argument("--hidden-size", type=int, default=64)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--teach", action="store_true",
                   help="then teach it the embedded default task's house style (s3ft.tiny.teaching_rows)")
    t.add_argument("--teach-steps", type=int, default=300)
    return p


STATUS_KEYS = {"train": ("train_loss", "steps", "epochs", "mode", "resumed_from", "reused_from")}


def _status_table(rows: list[dict]) -> str:
    from s3ft.pipeline import MEMORY_KEYS
    from s3ft.provenance import listed

    shown = [k for k in MEMORY_KEYS if k in ("rows_per_s", "peak_rss_mib") or any(r.get(k) is not None for r in rows)]
    lines = [f"{'unit':<24} {'state':<8} {'seconds':>8}" + "".join(f" {MEMORY_KEYS[k]:>9}" for k in shown) + "  counts"]
    for r in rows:
        counts = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (r["counts"] or {}).items()
            if isinstance(v, (int, float, str)) and k in STATUS_KEYS.get(r["unit"].split("/")[0], (k,))
        )
        secs = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        redo = "`s3ft audit` redoes it" if r["unit"].startswith("audit/") else "run redoes it"
        why = f"  (changed: {listed(r['why'])}): the next {redo}" if r.get("why") else ""
        why += f"  (refused to seal: {r['refused']}; the next run redoes it)" if r.get("refused") else ""
        why += f"  ({r['shards']})" if r.get("shards") else ""
        nums = "".join(f" {(f'{r[k]:.1f}' if r.get(k) is not None else '-'):>9}" for k in shown)
        lines.append(f"{r['unit']:<24} {r['state']:<8} {secs:>8}{nums}  {counts}{why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    import s3ft

    try:
        if args.cmd == "run":
            cfg = s3ft.load_config(args.config, args.overrides)
            results = s3ft.run(cfg, until=args.until, force=args.force, only=args.only, shard=args.shard)
            ran = sum(r["action"] != "skipped" for r in results)
            print(f"{ran} stage unit(s) ran, {len(results) - ran} skipped; run directory: {cfg.run_dir}")
            if args.shard:
                print(f"shard {args.shard.strip()}: when every shard is done, `s3ft run {args.config}` (same overrides) "
                      "merges them and goes on")
        elif args.cmd == "status":
            print(_status_table(s3ft.status(args.run_dir, args.overrides, verify=args.verify)))
        elif args.cmd == "validate":
            cfg = s3ft.load_config(args.config, args.overrides)
            print("\n".join(s3ft.validate(cfg)) + f"\n{args.config}: OK")
        elif args.cmd == "demo" and args.world == "v5":
            from s3ft.demo import demo_bases

            print(f"summary: {demo_bases(args.base, args.run_dir or 'runs/world-v5', args.overrides)}")
        elif args.cmd == "demo":
            from s3ft.demo import demo

            seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
            if not seeds:
                raise S3FTError(f"--seeds {args.seeds!r}: give one or more comma-separated seeds, e.g. 0,1,2")
            from s3ft.world import task_config

            run_dir = args.run_dir or ("runs/world" if args.task == "shop" else f"runs/world-{args.task}")
            print(f"summary: {demo(seeds, run_dir, args.overrides, task_config(args.task))}")
        elif args.cmd == "ls":
            print(s3ft.listing())
        elif args.cmd == "export":
            from s3ft.export import summary

            print(summary(s3ft.export(args.run_dir, args.out, args.method, merge=args.merge, push=args.push,
                                      adapter=args.adapter)))
        elif args.cmd == "audit":
            from s3ft.judge_audit import summary

            print(summary(s3ft.audit(args.run_dir, args.judge, n=args.n, seed=args.seed)))
        elif args.cmd == "make-tiny":
            from s3ft.tiny import build_tiny_model

            out = build_tiny_model(args.out_dir, hidden_size=args.hidden_size, num_layers=args.layers, seed=args.seed)
            if args.teach:
                from s3ft.tiny import teach, teaching_rows

                teach(out, teaching_rows(), steps=args.teach_steps, seed=args.seed)
            print(f"wrote {out}")
    except S3FTError as e:
        from s3ft.config.load import locate
        from s3ft.errors import ConfigError

        kept = f" (the traceback: {e.detail_in})" if e.detail_in else ""  # in run.log
        if isinstance(e, ConfigError):  # a check after loading: name the config file and the key's line in it
            saved = Path(args.run_dir) / "config.yaml" if args.cmd == "export" else None  # the run's own
            e = locate(e, getattr(args, "config", None) or saved)
        print(f"error: {e}{kept}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, OSError, RuntimeError) as e:  # Ctrl-C, a full disk, a file-size limit: one line
        from s3ft.stops import explain

        if (line := explain(e)) is None:
            raise
        print(f"{'stopped' if isinstance(e, KeyboardInterrupt) else 'error'}: {line}", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
