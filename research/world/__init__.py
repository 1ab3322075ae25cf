"""How the miniature world's shipped files were built, and how to build them again (docs/world.md).

Run from the repository root; each command writes only to the paths on its command line:

- `python -m research.world.build OUT_DIR`: the world's held-out splits and `world.json` (`build`, with the
  skill generators in `skills/`); the package ships seed 0's in `src/s3ft/data/world/`;
- `python -m research.world.pretrain OUT_DIR`: a base model pre-trained on the world, with its scores and
  checks in `OUT_DIR/pretrain.json` (`pretrain`, scored by `score`);
- `python -m research.world.score REBUILT_DIR`: whether a rebuilt base matches the shipped one;
- `python -m research.world.protocol OUT_DIR --base DIR [--record]`: the settings grid and precondition 1;
- `python -m research.world.label_probe MODEL_DIR`, `python -m research.world.step_labels RUN_DIR`: the two
  probes of builds 4 to 6.

What `s3ft demo` needs at run time (the shipped files, the target tasks' kinds, the preconditions) is in the
package, `s3ft.world`, which this code imports. The history of the builds is `NOTES.md`; the records of every
base and run are in `docs/world_results.md`.
"""
