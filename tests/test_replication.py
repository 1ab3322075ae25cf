"""Paired differences over bases with a 95% t-interval, and what the interval says."""

from __future__ import annotations

import pytest

from s3ft.replication import interval, over_bases, reading, replication_markdown, t975


def report(sft: float, s3ft: float, gain=(0.5, 0.6)) -> dict:
    def method(change: float, g: float) -> dict:
        return {"general_mean_delta_vs_base": change, "accuracy_delta_vs_base": g,
                "general_delta_vs_base": {"chain": change * 2, "facts": 0.0},
                "general_reference_nll_mean_delta_vs_base": -change / 10}
    return {"methods": {"sft": method(sft, gain[0]), "s3ft": method(s3ft, gain[1]), "ssr": method(s3ft, gain[0])}}


def test_the_interval_is_the_textbook_one():
    iv = interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(2) = 4.303
    assert iv["mean"] == 2.0 and iv["sd"] == 1.0
    assert iv["low"] == pytest.approx(2 - 4.303 / 3 ** 0.5, abs=1e-4) and iv["high"] == pytest.approx(2 + 4.303 / 3 ** 0.5, abs=1e-4)
    assert interval([0.5])["low"] is None and interval([])["mean"] is None
    assert t975(7) == 2.365 and t975(22) == 2.086  # between rows: the smaller df's, a wider interval


def test_over_bases_reads_less_more_and_inconclusive():
    less = over_bases({"b1": report(-0.10, -0.05), "b2": report(-0.08, -0.02), "b3": report(-0.12, -0.06)},
                      template_sharing=("chain",))
    assert less["primary"]["reading"] == "S3FT forgets less than SFT" and less["primary"]["diffs"] == [0.05, 0.06, 0.06]
    assert less["per_base"]["b1"]["s3ft"]["template_sharing"] == -0.1 and less["per_base"]["b1"]["s3ft"]["other_skills"] == 0.0
    assert set(less["secondary"]) == {"s3ft-sft gain", "s3ft-sft reference_nll", "s3ft-sft template_sharing",
                                      "s3ft-sft other_skills", "ssr-sft general"}
    mixed = over_bases({"b1": report(-0.10, -0.05), "b2": report(-0.08, -0.12)})
    assert mixed["primary"]["reading"] == "inconclusive"
    more = over_bases({"b1": report(-0.02, -0.05), "b2": report(-0.01, -0.05), "b3": report(-0.03, -0.06)})
    assert more["primary"]["reading"] == "S3FT forgets more than SFT"
    assert reading(interval([0.1]), "a", "b").startswith("not known")
    md = "\n".join(replication_markdown(less))
    assert "| b1 | -10.0 | -5.0 | -5.0 | +5.0 |" in md and "95% CI [" in md and "S3FT forgets less than SFT" in md


def test_best_of_k_is_compared_with_sft_when_it_ran():
    reports = {b: report(-0.10, -0.05) for b in ("b1", "b2")}
    for r in reports.values():
        r["methods"]["s3ft-k"] = {**r["methods"]["s3ft"], "general_mean_delta_vs_base": -0.04}
    out = over_bases(reports)
    assert out["secondary"]["s3ft-k-sft general"]["diffs"] == [0.06, 0.06]
