"""Cohen's kappa: how far two raters (the judge and a human) agree beyond chance.

Twenty lines of exact arithmetic (``fractions``) instead of a scikit-learn dependency
(and numpy and scipy with it) for one formula; the tests check it against published
and scikit-learn values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction
from typing import Literal, TypeVar

_T = TypeVar("_T", bound=Hashable)


def cohen_kappa(rater_a: Sequence[_T], rater_b: Sequence[_T]) -> float | None:
    """Cohen's kappa of two raters' labels for the same items.

    ``(p_o - p_e) / (1 - p_e)``: observed agreement corrected for the agreement the two
    raters' label frequencies would give by chance. 1 is perfect agreement, 0 is chance.
    None when it is undefined (no items, or both raters gave every item the same label).

    Raises:
        ValueError: the two sequences differ in length.

    Example:
        >>> judge = ["pass"] * 25 + ["fail"] * 25
        >>> human = ["pass"] * 20 + ["fail"] * 5 + ["pass"] * 10 + ["fail"] * 15
        >>> cohen_kappa(judge, human)
        0.4
    """
    n = _check(rater_a, rater_b)
    if n == 0:
        return None
    observed = Fraction(sum(1 for a, b in zip(rater_a, rater_b, strict=True) if a == b), n)
    count_a, count_b = Counter(rater_a), Counter(rater_b)
    expected = sum(
        (Fraction(count_a[label] * count_b[label], n * n) for label in count_a), Fraction(0)
    )
    if expected == 1:
        return None
    return float((observed - expected) / (1 - expected))


def weighted_kappa(
    rater_a: Sequence[int],
    rater_b: Sequence[int],
    categories: Sequence[int],
    weights: Literal["linear", "quadratic"] = "quadratic",
) -> float | None:
    """Weighted Cohen's kappa of two raters' ordinal scores (such as 1-5).

    A disagreement costs its distance on the scale (``linear``) or its square
    (``quadratic``), so 4 against 5 counts less than 1 against 5. ``categories`` is the
    scale in order. None when undefined (no items, or no disagreement is possible by
    chance).

    Raises:
        ValueError: lengths differ, or a score is not one of ``categories``.

    Example:
        >>> weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 5, 4], categories=[1, 2, 3, 4, 5])
        0.9
    """
    n = _check(rater_a, rater_b)
    index = {category: i for i, category in enumerate(categories)}
    unknown = sorted({s for s in (*rater_a, *rater_b) if s not in index})
    if unknown:
        raise ValueError(f"scores {unknown} are not among the categories {list(categories)}")
    k = len(categories)
    if n == 0 or k < 2:
        return None
    power = 1 if weights == "linear" else 2
    scale = Fraction((k - 1) ** power)

    def weight(i: int, j: int) -> Fraction:
        return Fraction(abs(i - j) ** power) / scale

    count_a = Counter(index[s] for s in rater_a)
    count_b = Counter(index[s] for s in rater_b)
    observed = (
        sum(
            (weight(index[a], index[b]) for a, b in zip(rater_a, rater_b, strict=True)), Fraction(0)
        )
        / n
    )
    expected = sum(
        (weight(i, j) * Fraction(count_a[i] * count_b[j], n * n) for i in count_a for j in count_b),
        Fraction(0),
    )
    if expected == 0:
        return None
    return float(1 - observed / expected)


def _check(rater_a: Sequence[object], rater_b: Sequence[object]) -> int:
    if len(rater_a) != len(rater_b):
        raise ValueError(f"{len(rater_a)} ratings against {len(rater_b)}: rate the same items")
    return len(rater_a)
