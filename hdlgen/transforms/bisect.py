"""Thresholds of a monotone code function, found by bisection."""

from __future__ import annotations

import numpy as np

__all__ = ["smallest_reaching"]


def smallest_reaching(codes, levels: int, upper: np.ndarray) -> np.ndarray:
    """Per row and level ``k = 1 .. levels - 1``, the smallest integer ``p`` in ``0 .. upper[row]``
    with ``codes(p) >= k`` (``upper + 1`` where none does). ``codes`` maps an array (levels - 1,
    rows) of accumulators to their codes and must not fall as ``p`` grows. Returns (rows, levels - 1)."""
    steps = np.arange(1, levels)[:, None]
    upper = np.asarray(upper, dtype=np.int64)
    lo = np.zeros((len(steps), upper.size), dtype=np.int64)
    hi = np.broadcast_to(upper + 1, lo.shape).copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        reached = codes(mid) >= steps
        hi = np.where((lo < hi) & reached, mid, hi)
        lo = np.where((lo < hi) & ~reached, mid + 1, lo)
    return lo.T
