"""Small-sample statistics for held-out comparisons (stdlib only): Wilson intervals and the exact McNemar test.

    from tool_n1.stats import wilson_interval, mcnemar_exact
    low, high = wilson_interval(successes=42, n=200)          # 95 % interval of a rate
    result = mcnemar_exact(before=[1, 0, 1, ...], after=[1, 1, 1, ...])   # paired, same prompts
    result["p_value"], result["b"], result["c"]

Used by ``scripts/e2e_report.py`` for the end-to-end table: each model's exact-match and format rate with a 95 %
Wilson score interval, and for a GRPO model against the model it started from a two-sided exact McNemar test on the
items both answered (``b`` = right before and wrong after, ``c`` = wrong before and right after).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (95 % by default); ``(0.0, 1.0)`` when ``n`` is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    rate = successes / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (twice the smaller tail, capped at 1)."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    mass = sum(math.comb(n, i) for i in range(tail + 1)) / 2**n
    return min(1.0, 2 * mass)


def mcnemar_exact(before: Sequence[bool | int], after: Sequence[bool | int]) -> dict[str, float | int]:
    """Exact (binomial) McNemar test of paired binary outcomes on the same items.

    Returns ``n`` pairs, ``b`` (right before, wrong after), ``c`` (wrong before, right after), the rates before and
    after, their difference and the two-sided ``p_value`` of ``b`` vs ``c`` under equal discordance.
    """
    if len(before) != len(after):
        raise ValueError(f"paired outcomes differ in length: {len(before)} vs {len(after)}")
    b = sum(1 for x, y in zip(before, after, strict=True) if x and not y)
    c = sum(1 for x, y in zip(before, after, strict=True) if y and not x)
    n = len(before)
    rate_before = sum(bool(x) for x in before) / n if n else 0.0
    rate_after = sum(bool(y) for y in after) / n if n else 0.0
    return {
        "n": n,
        "b": b,
        "c": c,
        "rate_before": rate_before,
        "rate_after": rate_after,
        "difference": rate_after - rate_before,
        "p_value": binomial_two_sided_p(b, b + c),
    }
