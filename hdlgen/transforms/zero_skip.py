"""When a layer skips its all-zero blocks of weights ("skip on zero", Deep Compression's hardware gain).

A folded layer multiplies one ``pe x simd`` block of weights a cycle. Where pruning has left whole
blocks zero, ``cores.sparse_mvu.SparseMatrixVectorUnit`` stores only the others, with their column
index, and issues only them: a vector takes ``max(SF, entries)`` cycles instead of ``NF * SF``.

A layer *can* skip zeros when its weights have a zero (not bipolar) and its products are not packed
into multipliers (a packed product adds a bias for every term, so a skipped block would change the
sum). Zero-skip *pays*, and ``auto`` folding chooses it, when it takes at most ``GAIN`` of the dense
unit's cycles at the same folding: the skipped blocks then save at least a quarter of the cycles,
against a small cost (the index ROM, an input buffer even where the dense unit streams).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..cores.products import ProductKind, choose_product
from ..ir.lowered import Folding, MatrixVectorLayer
from ..targets import Target

__all__ = ["GAIN", "can_skip_zeros", "skip_cycles", "dense_cycles", "pays", "layer_cycles"]

GAIN = 0.75


def can_skip_zeros(layer: MatrixVectorLayer, folding: Folding, target: Target | str) -> bool:
    """Weights that can be zero, and products not packed (a depthwise layer's vector-vector unit,
    ``cores.vvu``, never packs them)."""
    from ..cores.vvu import vector_unit_applies
    if layer.weight_type.is_bipolar:
        return False
    return (vector_unit_applies(layer, Folding(folding.pe, folding.simd, zero_skip=True))
            or choose_product(layer.in_type, layer.weight_type, target, pe=folding.pe).kind is not ProductKind.PACKED)


@lru_cache(maxsize=4096)
def _zero_share(layer: MatrixVectorLayer) -> float:
    return float(np.mean(layer.weights == 0))


def dense_cycles(layer: MatrixVectorLayer, folding: Folding) -> int:
    from ..cores.mvu import MatrixVectorUnit
    return MatrixVectorUnit.cycles_per_frame(layer, folding)


def skip_cycles(layer: MatrixVectorLayer, folding: Folding) -> int:
    from ..cores.sparse_mvu import SparseMatrixVectorUnit
    return SparseMatrixVectorUnit.cycles_per_frame(layer, folding)


def pays(layer: MatrixVectorLayer, folding: Folding, target: Target | str) -> bool:
    """Whether skipping zeros takes at most ``GAIN`` of the dense cycles at this folding."""
    # fewer than a quarter of zero weights cannot make a quarter of the blocks zero
    if _zero_share(layer) < 1 - GAIN or not can_skip_zeros(layer, folding, target):
        return False
    return skip_cycles(layer, folding) <= GAIN * dense_cycles(layer, folding)


def layer_cycles(layer: MatrixVectorLayer, folding: Folding) -> int:
    """Cycles per frame of a layer folded by ``folding`` (zero-skipping or not, as it says)."""
    return skip_cycles(layer, folding) if folding.zero_skip else dense_cycles(layer, folding)
