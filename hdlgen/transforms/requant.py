"""Which requantization unit follows each matrix-vector layer (docs/int8.md).

Streamlining always finds the exact thresholds: per row and output level, the smallest accumulator
that reaches the level. A unit replaces the table only where its own thresholds, worked out in
closed form or by bisection on its golden function, are the same numbers over the row's whole
range:

- ``shift``: ``(P + offset) >> shift`` with round half to even or floor. Recognised from the
  thresholds themselves, so it serves any source whose rescale is a power of two (ONNX QDQ or
  QONNX). Chosen automatically when exact and the output has 4 bits or more (below that a few
  comparators cost less): an adder and a shifter instead of a table.
- ``fixed``: gemmlowp's fixed-point multiplier with a rounding shift, for layers imported from
  ONNX QDQ (multiplier below 1). onnxruntime rescales in float32 and rounds half to even, so this
  unit can differ from it where a sum lands within float32 rounding of a tie; ``differing``
  counts those places. Used only when asked for (``build --requant fixed``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import HdlgenError
from ..cores.thresholds import SEARCH_FROM_BITS
from ..golden.requant import fixed_point_codes, fixed_point_multiplier
from ..ir.lowered import MatrixVectorLayer, RequantUnit
from ..ir.model import Requantize
from .bisect import smallest_reaching

__all__ = ["MODES", "choose_unit", "fit_shift", "fixed_unit", "fit_scores"]

MODES = ("auto", "thresholds", "fixed")
MAX_SHIFT = 40


def _clamped(candidate: np.ndarray, p_max: int) -> np.ndarray:
    return np.clip(candidate, 0, p_max + 1)


def _shift_thresholds(k: np.ndarray, shift: int, offset: int, half_even: bool) -> np.ndarray:
    """Thresholds of the shift unit: code >= k from ``P = k * 2^shift - offset`` (plus 1 at odd k for
    round half to even, where that point is a tie that goes down)."""
    t = (k << shift) - offset
    return t + (k & 1) if half_even and shift > 0 else t


def _fit_row(t: np.ndarray, p_max: int, half_even: bool) -> tuple[int, int] | None:
    k = np.arange(1, len(t) + 1, dtype=np.int64)
    inside = np.flatnonzero((t > 0) & (t <= p_max))
    if len(inside) == 0:             # a constant row: the code is the count of thresholds at 0, everywhere
        shift = (p_max + 2).bit_length()             # P + 1 < 2^shift: no tie, no carry into the code
        return (int(np.count_nonzero(t == 0)) << shift) + 1, shift
    j = inside[0]
    for shift in range(MAX_SHIFT):
        offset = int(_shift_thresholds(k[j:j + 1], shift, 0, half_even)[0] - t[j])
        if np.array_equal(_clamped(_shift_thresholds(k, shift, offset, half_even), p_max), t):
            return offset, shift
    return None


def fit_shift(layer: MatrixVectorLayer) -> RequantUnit | None:
    """The shift unit that gives exactly the layer's thresholds on every row, if there is one."""
    if layer.thresholds is None:
        return None
    p_max = layer.row_p_max
    thresholds = np.clip(layer.thresholds, 0, p_max[:, None] + 1)
    for half_even in (True, False):
        rows = [_fit_row(t, int(p), half_even) for t, p in zip(thresholds, p_max)]
        if all(r is not None for r in rows):
            offset, shift = zip(*rows)
            return RequantUnit("shift", np.array(offset), np.array(shift), half_even=half_even)
    return None


def fixed_unit(layer: MatrixVectorLayer, source: Requantize) -> RequantUnit:
    """gemmlowp's unit for a layer imported from ONNX QDQ, and how often it differs from onnxruntime."""
    multiplier = np.broadcast_to(source.multiplier, (layer.mh,))
    if np.any(multiplier >= 1):
        raise HdlgenError(f"layer {layer.name!r}: its rescale factor reaches {multiplier.max():g}; the fixed-point "
                          f"unit takes factors below 1 (use --requant auto)")
    m0, shift = fixed_point_multiplier(multiplier)
    offset = layer.acc_offset + np.broadcast_to(source.bias, (layer.mh,))
    reach = np.maximum(np.abs(offset), np.abs(layer.acc_gain * layer.row_p_max + offset))
    if np.any(reach >= 2 ** 31):
        raise HdlgenError(f"layer {layer.name!r}: its sums reach {int(reach.max()):,}, past int32, which the "
                          f"fixed-point unit (as gemmlowp) takes; use --requant auto")
    quant = layer.out_type
    unit = RequantUnit("fixed", offset, shift, m0=m0, lo=quant.lo, hi=quant.hi)
    own = smallest_reaching(lambda p: fixed_point_codes(p, layer.acc_gain, offset, m0, shift, quant.lo, quant.hi),
                            quant.levels, layer.row_p_max)
    exact = np.clip(layer.thresholds, 0, layer.row_p_max[:, None] + 1)
    return dataclasses.replace(unit, differing=int(np.abs(own - exact).sum()))


def choose_unit(layer: MatrixVectorLayer, source, mode: str = "auto") -> MatrixVectorLayer:
    """``layer`` with the requantization unit ``mode`` asks for (see the module docstring)."""
    if mode not in MODES:
        raise HdlgenError(f"requantization {mode!r} is not one of {', '.join(MODES)}")
    if layer.thresholds is None or mode == "thresholds":
        return layer
    if mode == "fixed":
        if not isinstance(source, Requantize):
            return layer            # fixed-point units exist for onnxruntime's rescale; the rest keep thresholds
        return dataclasses.replace(layer, requant=fixed_unit(layer, source))
    if layer.out_type.bits < SEARCH_FROM_BITS:
        return layer            # a few comparators are cheaper than an adder and a shifter
    unit = fit_shift(layer)
    return layer if unit is None else dataclasses.replace(layer, requant=unit)


MAX_FRACTION = 48
MAX_CHECKED = 1 << 22          # accumulator values checked one by one; larger layers keep the host rescale


def fit_scores(layer: MatrixVectorLayer, outputs) -> RequantUnit | None:
    """A ``scores`` unit for the last layer, if its output map ``outputs(P)`` (real values, rows on
    the last axis) is exactly ``sign * 2^k * P + c`` per row with dyadic ``c``, on every ``P`` of
    every row's range. None otherwise: the host then rescales the accumulators."""
    p_max = layer.row_p_max
    if int((p_max + 1).sum()) > MAX_CHECKED:
        return None
    y0, y1 = (np.asarray(outputs(np.full(layer.mh, p)), dtype=np.float64) for p in (0, 1))
    slope = np.abs(y1 - y0)
    sign = np.sign(y1 - y0).astype(np.int64)
    with np.errstate(divide="ignore"):
        k = np.where(slope > 0, np.log2(np.where(slope > 0, slope, 1.0)), 0.0)
    if np.any(k != np.round(k)) or not np.all(np.isfinite(y0)):
        return None
    k = k.astype(np.int64)
    fraction = int(max(0, -int(k[sign != 0].min()) if np.any(sign != 0) else 0))
    while fraction <= MAX_FRACTION and np.any(np.ldexp(y0, fraction) != np.round(np.ldexp(y0, fraction))):
        fraction += 1
    if fraction > MAX_FRACTION:
        return None
    shift = np.where(sign != 0, k + fraction, 0)
    offset = np.ldexp(y0, fraction)
    if np.max(np.abs(offset)) >= 2.0 ** 52 or np.any(shift > 62):
        return None
    offset = offset.astype(np.int64)
    p = np.arange(int(p_max.max()) + 1)[:, None]           # every accumulator value of every row, exactly
    rows = np.minimum(p, p_max[None, :])
    want = np.ldexp(np.asarray(outputs(rows), dtype=np.float64), fraction)
    if not np.array_equal(want, sign * (rows << shift) + offset):
        return None
    ends = np.stack([offset, sign * (p_max << shift) + offset])
    width = int(np.abs(ends).max()).bit_length() + 1
    return RequantUnit("scores", offset, shift, sign=sign, fraction=fraction, width=width)
