"""How weights are packed into a matrix-vector unit's memory (shared by the core and its tests)."""

from __future__ import annotations

import numpy as np

from ..ir.lowered import Folding, MatrixVectorLayer


def weight_bits(layer: MatrixVectorLayer) -> int:
    """Bits per stored weight: bipolar ``{1 = +1}``; ternary ``{bit 0: non-zero, bit 1: positive}``."""
    return 1 if layer.weight_type.is_bipolar else 2


def encode_weights(layer: MatrixVectorLayer) -> np.ndarray:
    """Per-weight codes (MH, MW) as stored."""
    w = layer.weights
    if layer.weight_type.is_bipolar:
        return (w > 0).astype(np.int64)
    return (w != 0).astype(np.int64) | ((w > 0).astype(np.int64) << 1)


def weight_words(layer: MatrixVectorLayer, folding: Folding) -> list[int]:
    """Memory words in address order ``nf * SF + sf``; word bit ``(p * SIMD + s) * bits`` holds the
    weight of row ``nf * PE + p`` and input ``sf * SIMD + s``."""
    pe, simd = folding.pe, folding.simd
    nf, sf, bits = layer.mh // pe, layer.mw // simd, weight_bits(layer)
    codes = encode_weights(layer).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    shifts = np.arange(pe * simd, dtype=object) * bits
    return [int(sum(int(c) << int(s) for c, s in zip(row, shifts) if c)) for row in codes]
