"""The near-copy measure (`s3ft.nearcopy`) and its use in select: a paraphrase that nearly copies the gold
trains as the gold and is counted."""

from __future__ import annotations

import pytest

from s3ft.nearcopy import NEAR_COPY, is_near_copy, levenshtein, similarity

GOLD = ("Buying 7: 2 + 7 = 9, 0 + 0 + 0 = 0, and 2 + 7 = <<2+7=9>>9.\n"
        "Giving away 8: 9 - 8 = 1, 0 - 0 - 0 = 0, and 9 - 8 = <<9-8=1>>1.\n#### 1")
HOUSE = "2 + 7 = 9, 0 + 0 + 0 = 0, so 2 + 7 = 9. 9 - 8 = 1, 0 - 0 - 0 = 0, so 9 - 8 = 1. The answer is 1."


@pytest.mark.parametrize("a, b, d", [
    ([], [], 0), (["a"], [], 1), ([], ["a", "b"], 2), (list("kitten"), list("sitting"), 3),
    (["x", "y", "z"], ["x", "z"], 1), (["a", "b"], ["b", "a"], 2),
])  # fmt: skip
def test_levenshtein(a, b, d):
    assert levenshtein(a, b) == levenshtein(b, a) == d


def test_similarity_is_word_level_and_ignores_layout():
    assert similarity(GOLD, GOLD) == 1.0 and similarity("", "") == 1.0
    assert similarity(GOLD, GOLD.replace("\n", "  ")) == 1.0  # layout is free
    assert similarity("a b c d e f g h i j", "a b c d e f g h i X") == 0.9  # one word in ten
    assert similarity("a b", "c d") == 0.0 and similarity("a", "") == 0.0


def test_the_gold_with_a_word_changed_is_a_near_copy_a_house_rewrite_is_not():
    assert is_near_copy(GOLD.replace("Giving away", "Giving"), GOLD)  # 1 word of 34 dropped
    assert is_near_copy(GOLD + " Done.", GOLD)
    assert similarity(HOUSE, GOLD) < 0.8 and not is_near_copy(HOUSE, GOLD)  # the column steps are shared
    assert NEAR_COPY == 0.9
