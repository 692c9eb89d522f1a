"""How weights are stored in a matrix-vector unit's memory (shared by the cores and their tests).

A bipolar weight is one bit, 1 for +1. Every other weight is a *magnitude field* with a sign bit
on top (1 = positive), so that negating a row (see ``ir.lowered``) flips one bit and a weight of
-128 negates to +128 without a wider type:

=============  ==========================================  ===================
weight type    magnitude field                             bits with the sign
=============  ==========================================  ===================
ternary        1 where the weight is non-zero              2
POW2 (k bits)  bit 0: non-zero; above it the exponent j    2 + bits of (k - 2)
               of ``|w| = 2^j``
INT (k bits)   ``|w|``                                     1 + bits of the
                                                           type's magnitude
=============  ==========================================  ===================

A layer whose products are PACKED (``cores.products.Packing``) stores, per group of ``lanes``
rows and per input, the packed word ``sum(w[r] << r * lane_bits)`` in two's complement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ir.lowered import Folding, MatrixVectorLayer
from ..ir.quant import QuantType

if TYPE_CHECKING:
    from .products import Packing


__all__ = ["field_bits", "exponent_bits", "weight_bits", "encode_weights", "weight_words", "word_width"]


def exponent_bits(weight_type: QuantType) -> int:
    """Bits of a POW2 weight's exponent (0 .. k - 2)."""
    return max(1, (weight_type.bits - 2).bit_length())


def field_bits(weight_type: QuantType) -> int:
    """Bits of the magnitude field (0 for bipolar weights, which have none)."""
    if weight_type.is_bipolar:
        return 0
    if weight_type.is_pow2:
        return 1 + exponent_bits(weight_type)
    return weight_type.magnitude.bit_length()


def weight_bits(layer_or_type: MatrixVectorLayer | QuantType) -> int:
    """Bits per stored weight."""
    weight_type = getattr(layer_or_type, "weight_type", layer_or_type)
    return 1 if weight_type.is_bipolar else field_bits(weight_type) + 1


def encode_weights(layer: MatrixVectorLayer) -> np.ndarray:
    """Per-weight codes (MH, MW) as stored."""
    w = layer.weights
    positive = (w > 0).astype(np.int64)
    if layer.weight_type.is_bipolar:
        return positive
    magnitude = np.abs(w)
    if layer.weight_type.is_pow2:
        exponent = np.log2(np.maximum(magnitude, 1)).astype(np.int64)
        field = (magnitude != 0).astype(np.int64) | (exponent << 1)
    else:
        field = magnitude
    return field | (positive << field_bits(layer.weight_type))


def groups(pe: int, packing: Packing | None) -> int:
    """Multipliers per input: rows made at once, packed ``lanes`` to a multiplier."""
    return pe if packing is None else -(-pe // packing.lanes)


def word_width(layer: MatrixVectorLayer, folding: Folding, packing: Packing | None = None) -> int:
    """Bits of one memory word."""
    if packing is None:
        return folding.pe * folding.simd * weight_bits(layer)
    return groups(folding.pe, packing) * folding.simd * packing.word_bits


def packed_weights(weights: np.ndarray, pe: int, packing: Packing) -> np.ndarray:
    """(MH / PE * groups, MW) packed words: rows ``g * lanes + r`` of each PE block in lane ``r``,
    as unsigned ``word_bits``-bit two's complement."""
    mh, mw = weights.shape
    lanes, count = packing.lanes, groups(pe, packing)
    padded = np.zeros((mh // pe, count * lanes, mw), dtype=object)
    padded[:, :pe] = weights.reshape(mh // pe, pe, mw).astype(object)
    shifts = np.array([1 << (r * packing.lane_bits) for r in range(lanes)], dtype=object)
    words = (padded.reshape(mh // pe, count, lanes, mw) * shifts[None, None, :, None]).sum(axis=2)
    return (words % (1 << packing.word_bits)).reshape(mh // pe * count, mw)


def weight_words(layer: MatrixVectorLayer, folding: Folding, packing: Packing | None = None) -> list[int]:
    """Memory words in address order ``nf * SF + sf``; word bit ``(p * SIMD + s) * bits`` holds the
    weight of row ``nf * PE + p`` and input ``sf * SIMD + s`` (with ``packing``, ``p`` counts groups
    of rows and ``bits`` is the packed word's)."""
    pe, simd = folding.pe, folding.simd
    nf, sf = layer.mh // pe, layer.mw // simd
    if packing is None:
        codes, rows, bits = encode_weights(layer), pe, weight_bits(layer)
    else:
        codes, rows, bits = packed_weights(layer.weights, pe, packing), groups(pe, packing), packing.word_bits
    codes = codes.reshape(nf, rows, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, rows * simd)
    shifts = np.arange(rows * simd, dtype=object) * bits
    return [int(sum(int(c) << int(s) for c, s in zip(row, shifts) if c)) for row in codes]
