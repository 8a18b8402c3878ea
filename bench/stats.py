"""Medians and spreads for noisy measurements on a shared machine."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation, or NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float]) -> tuple[float, float]:
    """The interquartile range (p25, p75): robust against the odd preempted window."""
    return quantile(values, 0.25), quantile(values, 0.75)


def fmt(value: float, digits: int = 0) -> str:
    """A number for the table; ``-`` for NaN."""
    return "-" if value != value else f"{value:,.{digits}f}"


def fmt_spread(values: Sequence[float], digits: int = 0) -> str:
    """``median [p25-p75]``."""
    low, high = spread(values)
    return f"{fmt(median(values), digits)} [{fmt(low, digits)}-{fmt(high, digits)}]"
