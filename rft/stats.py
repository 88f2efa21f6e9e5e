"""Pass rates: the unbiased pass@k estimator, difficulty buckets and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

ALL_PASS, ALL_FAIL, MIXED, UNVERIFIED, INVALID = "all_pass", "all_fail", "mixed", "unverified", "invalid"


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed: ``1 - C(n-c, k) / C(n, k)``.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (Chen et al., 2021), which stays exact in
    floating point where the binomials overflow. None when ``n < k`` (the estimate is undefined).
    """
    if k < 1 or c < 0 or c > n:
        raise ValueError(f"pass@k needs k >= 1 and 0 <= c <= n (got n={n}, c={c}, k={k})")
    if n < k:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bucket(n: int, c: int) -> str:
    """``all_pass`` / ``all_fail`` / ``mixed`` (the RL pool: 0 < pass rate < 1); ``unverified`` when n == 0."""
    if n == 0:
        return UNVERIFIED
    if c == n:
        return ALL_PASS
    return ALL_FAIL if c == 0 else MIXED


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles, mean and max of ``values`` (rounded to ms); empty when there are none."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {f"p{p}": round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 4) for p in points}
    out["mean"] = round(sum(ordered) / len(ordered), 4)
    out["max"] = round(ordered[-1], 4)
    return out
