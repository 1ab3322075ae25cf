"""The numbers of a judge audit (`s3ft audit`, `s3ft.judge_audit`), as plain functions of plain values: the seeded
stratified sample, Cohen's kappa on a weighted confusion table, and a stratified share with its 95% interval.

Reads and writes nothing. The rules, as docs/audit.md states them:

- **Sample.** Each verdict's rank is the sha256 of `seed:kind:id`; a stratum's sample is its lowest ranks, so a
  larger `n` (or a resumed audit) keeps every row a smaller one drew. `n` is split equally over the non-empty
  strata, a stratum smaller than its share giving the rest to the others (`allocate`).
- **Weights.** A sampled row stands for `stratum size / rows sampled in it` verdicts of the run (`weights`).
- **Kappa.** Cohen's kappa of the weighted confusion table (`kappa`): over the rows both judges decided (the
  primary number), and with undecided as a third category.
- **Share.** `stratified_share`: a share over strata of known sizes, each estimated from a simple random sample
  of it; a Wilson interval on the effective sample size of its stratified variance (at smoothed stratum shares;
  a stratum sampled whole adds none).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

LABELS = ("correct", "wrong", "undecided")
Z95 = 1.959963984540054


def label(correct: bool | None) -> str:
    """A verdict's `correct` as its category: `correct`, `wrong` or `undecided`."""
    return "undecided" if correct is None else ("correct" if correct else "wrong")


def rank(seed: int, kind: str, id_: str) -> str:
    """A row's place in its stratum's sample order: the same for a seed wherever the row sits in the file."""
    return hashlib.sha256(f"{seed}:{kind}:{id_}".encode()).hexdigest()


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """How many rows to draw from each stratum (`sizes`: rows in it): `n` split equally over the non-empty
    strata, none given more than it holds, what a small stratum cannot take going to the others; all of every
    stratum where `n` reaches their total. The remainder of an uneven split goes to the strata first in order."""
    take = dict.fromkeys(sizes, 0)
    left = max(0, n)
    while left > 0:
        open_ = [s for s in sizes if take[s] < sizes[s]]
        if not open_:
            break
        share, extra = divmod(left, len(open_))
        for i, s in enumerate(open_):
            add = min(share + (i < extra), sizes[s] - take[s])
            take[s] += add
            left -= add
    return take


def weights(sizes: dict[str, int], sampled: dict[str, int]) -> dict[str, float]:
    """Each stratum's weight per sampled row: its size over the rows sampled in it (0 where none was)."""
    return {s: sizes[s] / sampled[s] if sampled.get(s) else 0.0 for s in sizes}


def kappa(pairs: Iterable[tuple[str, str, float]], categories: tuple[str, ...]) -> float | None:
    """Cohen's kappa of weighted (first, second, weight) pairs over `categories` (pairs outside them are left
    out): (p_o - p_e) / (1 - p_e). None where it is undefined: no pair, or chance agreement of 1 (both judges
    gave one and the same category throughout: agreement is then no evidence either way)."""
    table: dict[tuple[str, str], float] = {}
    for a, b, w in pairs:
        if a in categories and b in categories:
            table[a, b] = table.get((a, b), 0.0) + w
    total = sum(table.values())
    if total <= 0:
        return None
    p_o = sum(table.get((c, c), 0.0) for c in categories) / total
    first = {c: sum(table.get((c, d), 0.0) for d in categories) / total for c in categories}
    second = {c: sum(table.get((d, c), 0.0) for d in categories) / total for c in categories}
    p_e = sum(first[c] * second[c] for c in categories)
    if p_e >= 1 - 1e-12:
        return None
    return round((p_o - p_e) / (1 - p_e), 4)


def wilson(p: float, n_eff: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a share `p` seen on `n_eff` (effective) rows; [p, p] where `n_eff` is
    infinite (every row was seen: no sampling error)."""
    if math.isinf(n_eff):
        return p, p
    if n_eff <= 0:
        return 0.0, 1.0
    z2 = z * z / n_eff
    centre = (p + z2 / 2) / (1 + z2)
    half = z * math.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff)) / (1 + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified_share(strata: list[tuple]) -> dict | None:
    """A share over strata, each (size, sampled, hits): `size` rows of which `sampled` were drawn at random and
    `hits` of those counted; or (size, sampled, hits, True) for a stratum none of whose rows was drawn, whose share
    is taken from `sampled` other rows standing in for them.

    The estimate is sum W_h p_h (W_h = size_h / total, p_h = hits_h / sampled_h). The 95% interval is Wilson's on
    a Kish effective sample size, n_eff = q (1 - q) / V, where V = sum W_h^2 q_h (1 - q_h) / n_h is the stratified
    variance taken at smoothed stratum shares q_h = (hits_h + 1) / (sampled_h + 2), and q = sum W_h q_h; a stratum
    sampled whole adds nothing to V (its share is known). So a stratum whose sample shows no hit (or only hits)
    still widens the interval by what its unsampled rows might hold, the interval stays inside [0, 1], one stratum
    gives Wilson's interval, and it is [p, p] when every row was seen. No other finite-population correction is
    made: it would narrow the interval, where Wilson's already covers too little for a share near 0 or 1 on a small
    sample (0 hits in 7 of 19 rows: with the correction it ends at 25.7%, below the 31.6% that the exact
    hypergeometric bound allows; without, at 35.4%). None where a stratum holding rows had none sampled."""
    strata = [(s[0], s[1], s[2], s[3:] == (True,)) for s in strata if s[0] > 0]
    total = sum(size for size, *_ in strata)
    if not strata or any(n <= 0 for _, n, *_ in strata):
        return None
    p = sum(size / total * hits / n for size, n, hits, _ in strata)
    smooth = [(size / total, n, 0.0 if n >= size and not stand_in else 1.0, (hits + 1) / (n + 2))
              for size, n, hits, stand_in in strata]
    var = sum(w * w * fpc * q * (1 - q) / n for w, n, fpc, q in smooth)
    q = sum(w * q for w, *_, q in smooth)
    n_eff = q * (1 - q) / var if var > 0 else math.inf
    low, high = wilson(p, n_eff)
    return {"share": round(p, 4), "low": round(low, 4), "high": round(high, 4),
            "sampled": sum(n for _, n, *_ in strata), "of": total,
            "effective_n": None if math.isinf(n_eff) else round(n_eff, 1)}
