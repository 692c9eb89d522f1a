"""Streamlining: a source model to a lowered, integer-only model.

Recognised pattern, repeated: ``Dense [BatchNorm] Quantizer``, and at the end either the same or
``Dense [BatchNorm]`` (outputs in model units). Each dense layer's input must be the input
quantizer or a quantizer, and its weights bipolar or ternary.

Thresholds are found by bisection on the source model's own float arithmetic
(``ir.semantics``): for each output channel and each output level, the smallest accumulator whose
activation reaches that level. That makes the lowered model agree with the reference on every
input, rounding ties and float rounding included. A channel whose activation falls as the dot
product grows (gamma < 0) has its weight row negated so that every threshold is a ``>=``
comparison; gamma = 0 gives thresholds that are always or never reached.
"""

from __future__ import annotations

import numpy as np

from ..errors import HdlgenError
from ..ir.lowered import LoweredModel, MatrixVectorLayer, OutputStage
from ..ir.model import BatchNorm, Dense, Model, Quantizer
from ..ir.quant import QuantKind, QuantType
from ..ir.semantics import batchnorm, dense_affine, quantize

HARDWARE_WEIGHTS = (QuantKind.BIPOLAR, QuantKind.TERNARY)


def _groups(model: Model):
    """Split the layer chain into (Dense, BatchNorm | None, Quantizer | None) groups."""
    layers, groups, i = model.layers, [], 0
    while i < len(layers):
        dense = layers[i]
        if not isinstance(dense, Dense):
            after = layers[i - 1].name if i else model.input.name
            raise HdlgenError(f"layer {dense.name!r}: a {type(dense).__name__.lower()} after {after!r} is not a "
                              f"supported pattern; layers must come as dense, optional batchnorm, quantizer")
        bn = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], BatchNorm) else None
        j = i + 1 + (bn is not None)
        quant = layers[j] if j < len(layers) and isinstance(layers[j], Quantizer) else None
        if quant is None and j < len(layers):
            raise HdlgenError(f"layer {layers[j].name!r}: only the last dense layer may go without a quantizer; "
                              f"add a quantizer after {layers[j - 1].name!r}")
        groups.append((dense, bn, quant))
        i = j + (quant is not None)
    return groups


def _real_pre_activation(dense: Dense, bn: BatchNorm | None, in_scale: float, rows: np.ndarray, acc: np.ndarray):
    """The source model's real value before the quantizer, for accumulators ``acc`` (rows x k)."""
    col = (slice(None), None)
    bias = None if dense.bias is None else dense.bias[rows][col]
    real = dense_affine(acc, (in_scale * dense.weight_scale)[rows][col], bias)
    if bn is not None:
        real = batchnorm(real, bn.gamma[rows][col], bn.beta[rows][col], bn.mean[rows][col], bn.var[rows][col], bn.eps)
    return real


def _thresholds(layer: MatrixVectorLayer, dense: Dense, bn: BatchNorm | None, quant: Quantizer,
                in_scale: float, flip: np.ndarray) -> np.ndarray:
    """Smallest P per (row, level) whose activation reaches that level, by bisection."""
    levels = quant.quant.values()[1:]
    rows = np.arange(layer.mh)
    gain, offset = layer.acc_gain, layer.acc_offset[:, None]
    sign = np.where(flip, -1, 1)[:, None]
    lo = np.zeros((layer.mh, len(levels)), dtype=np.int64)
    hi = np.broadcast_to(layer.row_p_max[:, None] + 1, lo.shape).copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        real = _real_pre_activation(dense, bn, in_scale, rows, sign * (gain * mid + offset))
        reached = quantize(real, quant.quant, quant.scale) >= levels
        hi = np.where((lo < hi) & reached, mid, hi)
        lo = np.where((lo < hi) & ~reached, mid + 1, lo)
    return lo


def streamline(model: Model) -> LoweredModel:
    """Lower ``model`` to integer matrix-vector layers with thresholds (see the module docstring)."""
    in_type, in_scale = model.input.quant, model.input.scale
    layers, output = [], None
    for dense, bn, quant in _groups(model):
        if dense.weight_quant.kind not in HARDWARE_WEIGHTS:
            raise HdlgenError(f"layer {dense.name!r}: {dense.weight_quant} weights are not supported by the hardware "
                              f"generators yet; quantize this layer's weights to bipolar or ternary")
        weight_type = QuantType(dense.weight_quant.kind, dense.weight_quant.bits)
        if quant is None:
            layer = MatrixVectorLayer(dense.name, in_type, weight_type, dense.weight, None, None)
            bn_params = None if bn is None else dict(gamma=bn.gamma, beta=bn.beta, mean=bn.mean, var=bn.var, eps=bn.eps)
            output = OutputStage(multiplier=in_scale * dense.weight_scale, bias=dense.bias, batchnorm=bn_params)
        else:
            flip = np.zeros(dense.out_features, dtype=bool) if bn is None else bn.gamma < 0
            weights = np.where(flip[:, None], -dense.weight, dense.weight)
            unfolded = MatrixVectorLayer(dense.name, in_type, weight_type, weights, None, None)
            layer = MatrixVectorLayer(dense.name, in_type, weight_type, weights,
                                      _thresholds(unfolded, dense, bn, quant, in_scale, flip), quant.quant)
            in_type, in_scale = quant.quant, quant.scale
            output = OutputStage(quant=quant.quant, scale=quant.scale)
        layers.append(layer)
    return LoweredModel(model.name, model.input, tuple(layers), output)
