"""World v5 (docs/world_v5.md): answers in words in three house styles, a paraphrase voice that follows the
reference, a balanced target of four kinds, general skills made hard enough to sit off the ceiling, and
held-out references in every style for a continuous forgetting measure.

- `styles`: how each answer is written in each style (`so`, `step`, `we`, the paraphrase voice `ref`, `gold`);
- `skills`: the generators (general skills, the target `shop`, the `paraphrase` skill);
- `build`: the splits the demo ships and the pre-training rows a base is built from.
"""
