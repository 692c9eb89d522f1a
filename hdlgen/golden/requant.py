"""Golden functions of the requantization units that may replace a threshold table
(``cores/requant.py``; docs/int8.md says when each is chosen).

Both take the unsigned lowered accumulator ``P`` of a matrix-vector row (see ``ir.lowered``) and
give the output code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shift_codes", "fixed_point_codes", "rounding_doubling_high_mul", "rounding_divide_by_pot",
           "fixed_point_multiplier"]


def shift_codes(p: np.ndarray, offset: np.ndarray, shift: np.ndarray, half_even: bool, levels: int) -> np.ndarray:
    """``q = (P + offset) >> shift`` (floor); with ``half_even``, ``q - 1`` where the shifted-out bits
    are all zero and ``q`` is odd (the offset holds the half, so those are the ties); clamped to
    ``0 .. levels - 1``. Channels on the last axis."""
    p = np.asarray(p, dtype=np.int64)
    v = p + np.asarray(offset, dtype=np.int64)
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), v.shape)
    q = v >> shift
    if half_even:
        tie = (shift > 0) & ((v & ((np.int64(1) << shift) - 1)) == 0) & ((q & 1) == 1)
        q = q - tie
    return np.clip(q, 0, levels - 1)


def rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` of int32 ``a`` and a positive int32 ``b``:
    ``(a * b + nudge) / 2^31`` truncated toward zero, ``nudge = 2^30`` for a non-negative product,
    ``1 - 2^30`` otherwise (so ties round up: 0.5 to 1 and -0.5 to 0)."""
    ab = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    t = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    return np.where(t >= 0, t >> 31, -((-t) >> 31))


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def fixed_point_multiplier(multiplier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(m0, shift)`` with ``multiplier = m0 * 2^-31 * 2^-shift`` exactly, ``m0`` in [2^30, 2^31):
    a float32 multiplier below 1 has 24 significant bits, so ``m0`` holds it without rounding."""
    multiplier = np.asarray(multiplier, dtype=np.float64)
    if np.any(multiplier <= 0) or np.any(multiplier >= 1):
        raise ValueError("a fixed-point multiplier must lie in (0, 1)")
    fraction, exponent = np.frexp(multiplier)
    m0 = np.round(fraction * 2.0 ** 31).astype(np.int64)
    if np.any(m0 * 2.0 ** (exponent - 31) != multiplier):
        raise ValueError("the multiplier has more than 31 significant bits")
    return m0, (-exponent).astype(np.int64)


def fixed_point_codes(p: np.ndarray, gain: int, offset: np.ndarray, m0: np.ndarray, shift: np.ndarray,
                      lo: int, hi: int) -> np.ndarray:
    """``x = gain * P + offset`` (the int32 sum onnxruntime's kernel holds), then
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m0), shift)`` clamped to the output
    values ``lo .. hi``; the code is the value less ``lo``."""
    x = gain * np.asarray(p, dtype=np.int64) + np.asarray(offset, dtype=np.int64)
    q = rounding_divide_by_pot(rounding_doubling_high_mul(x, m0), shift)
    return np.clip(q, lo, hi) - lo
