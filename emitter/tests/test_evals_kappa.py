"""Cohen's kappa against published examples and scikit-learn's values."""

from __future__ import annotations

import pytest

from llmtel.evals import cohen_kappa, weighted_kappa


def ratings(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Two raters' labels from a contingency table {(a, b): count}."""
    a: list[str] = []
    b: list[str] = []
    for (x, y), count in table.items():
        a += [x] * count
        b += [y] * count
    return a, b


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        # Wikipedia, "Cohen's kappa", worked example: p_o 0.7, p_e 0.5.
        ({("y", "y"): 20, ("y", "n"): 5, ("n", "y"): 10, ("n", "n"): 15}, 0.4),
        # Same p_o 0.6, different marginals: 3/23 and 7/27 (Wikipedia's paradox examples).
        ({("y", "y"): 45, ("y", "n"): 15, ("n", "y"): 25, ("n", "n"): 15}, 3 / 23),
        ({("y", "y"): 25, ("y", "n"): 35, ("n", "y"): 5, ("n", "n"): 35}, 7 / 27),
        # Perfect agreement, and agreement exactly at chance.
        ({("y", "y"): 3, ("n", "n"): 2}, 1.0),
        ({("y", "y"): 1, ("y", "n"): 1, ("n", "y"): 1, ("n", "n"): 1}, 0.0),
    ],
)
def test_cohen_kappa_matches_published_values(
    table: dict[tuple[str, str], int], expected: float
) -> None:
    """Verify that cohen_kappa gives the textbook values of 2x2 tables."""
    assert cohen_kappa(*ratings(table)) == expected


SCORES_A = [1, 2, 3, 4, 5, 3, 2, 4, 5, 1, 3, 3]
SCORES_B = [1, 3, 3, 4, 4, 2, 2, 5, 5, 2, 3, 1]


def test_kappas_of_ordinal_scores_match_scikit_learn() -> None:
    """Verify unweighted, linear and quadratic kappa against sklearn.metrics.cohen_kappa_score."""
    # scikit-learn 1.9.1: cohen_kappa_score(a, b) = 0.368421052631579 (7/19),
    # weights="linear" 0.6037735849056602 (32/53), "quadratic" 0.7804878048780488 (32/41).
    assert cohen_kappa(SCORES_A, SCORES_B) == 7 / 19
    assert weighted_kappa(SCORES_A, SCORES_B, range(1, 6), "linear") == 32 / 53
    assert weighted_kappa(SCORES_A, SCORES_B, range(1, 6), "quadratic") == 32 / 41


def test_kappa_is_undefined_without_items_or_without_possible_disagreement() -> None:
    """Verify that kappa is None for no items, or when both raters used one same label."""
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["pass"] * 4, ["pass"] * 4) is None
    assert weighted_kappa([3, 3], [3, 3], range(1, 6)) is None


def test_kappa_rejects_unequal_lengths_and_scores_off_the_scale() -> None:
    """Verify that mismatched inputs raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="3 ratings against 2"):
        cohen_kappa(["a", "b", "c"], ["a", "b"])
    with pytest.raises(ValueError, match=r"scores \[7\]"):
        weighted_kappa([1, 7], [1, 2], range(1, 6))
