"""The latency rule's exact one-sided binomial tail (harness/checkers/latency.py), against the same
sum in exact integer arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from harness.checkers.latency import binomial_tail


def _exact(n: int, k: int) -> float:
    """P(X >= k), X ~ Binomial(n, 1/100), as a ratio of integers: sum of C(n, i) 99^(n-i) / 100^n."""
    return float(Fraction(sum(math.comb(n, i) * 99 ** (n - i) for i in range(max(k, 0), n + 1)), 100**n))


CASES = [
    (n, k)
    for n in (1, 2, 7, 37, 100, 250, 1000)
    for k in sorted({0, 1, 2, 3, 4, n // 100, n // 100 + 1, n // 33, n // 10, n // 2, n})
]


@pytest.mark.parametrize(("n", "k"), CASES)
def test_the_tail_is_exact_to_floating_point(n: int, k: int) -> None:
    assert binomial_tail(n, k, 0.01) == pytest.approx(_exact(n, k), rel=1e-10, abs=1e-300)


def test_its_edges() -> None:
    assert binomial_tail(0, 0, 0.01) == 1.0
    assert binomial_tail(10, -1, 0.01) == 1.0
    assert binomial_tail(10, 11, 0.01) == 0.0
    assert binomial_tail(10, 10, 0.01) == pytest.approx(1e-20, rel=1e-12)


def test_ten_million_ops_take_no_time_and_stay_in_range() -> None:
    """The sum stops when its terms no longer count: a few hundred at ten million ops."""
    assert binomial_tail(10**7, 10**5, 0.01) == pytest.approx(0.5, abs=0.01)
    assert 0.0 <= binomial_tail(10**7, 2 * 10**5, 0.01) < 1e-300
    assert binomial_tail(10**7, 10**4, 0.01) == 1.0
