"""World v5's full replication (docs/world_v5.md, section 6): `python -m research.world.v5.replicate OUT --base DIR ...`.

The demo's config (`s3ft/configs/world_v5.yaml`, its frozen training setting) run once per base with fine-tuning
seed 0, the four methods, on the whole test splits: the target's 300 problems and 300 items of each of the
seven general skills (the demo scores 150 and 60). Then `OUT/summary.md` and `summary.json`, as the demo writes
them: each method's changes per base and the paired differences over bases with their 95% t-interval (the
primary outcome: S3FT − SFT in the change of mean general-skill accuracy). Resumable: every base's run directory
resumes, and bases already finished are not redone, so bases can be added as they are built (the plan fixes
N = 8; an interim summary is reported as interim). Writes nothing outside OUT.
"""

from __future__ import annotations

import argparse


def full_size_overrides(n_general: int) -> list[str]:
    """The overrides that lift the demo's sampling: every test item of the target and of each general skill."""
    return ["data.test.limit=null", *[f"evaluate.general.{i}.source.limit=null" for i in range(n_general)]]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.world.v5.replicate", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--base", action="append", required=True, help="a built base (repeat, in seed order)")
    p.add_argument("overrides", nargs="*", help="further key=value overrides (none for the registered runs)")
    args = p.parse_args(argv)
    from s3ft.config import load_config
    from s3ft.demo import V5_CONFIG, demo_bases
    from s3ft.logs import setup_logging

    setup_logging()
    n = len(load_config(V5_CONFIG).evaluate.general)
    summary = demo_bases(args.base, args.out_dir, [*full_size_overrides(n), *args.overrides])
    print(summary.read_text())


if __name__ == "__main__":
    main()
