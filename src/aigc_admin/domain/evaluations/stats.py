"""Means with bootstrap confidence intervals, so that a small difference is not read as a win."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float  # the 95 % bootstrap percentile interval
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """The mean of ``values`` and its 95 % percentile interval over ``resamples`` resamples (seeded: the same
    values give the same interval)."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, 0.0, 0.0, 0)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    rng = random.Random(seed)  # noqa: S311  # a statistic, not a secret: seeded so that it is reproducible
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    cut = (1 - LEVEL) / 2
    return Estimate(mean, means[int(cut * resamples)], means[min(resamples - 1, int((1 - cut) * resamples))], n)


def paired_difference(a: Sequence[float], b: Sequence[float], **kw: int) -> Estimate:
    """The mean of ``b[i] - a[i]`` (the same samples scored twice) with its interval."""
    return bootstrap([y - x for x, y in zip(a, b, strict=True)], **kw)
