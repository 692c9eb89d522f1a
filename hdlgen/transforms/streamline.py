"""Streamlining: a source model to a lowered, integer-only model.

Recognised pattern, repeated: a dense layer, any chain of elementwise layers (batch norm, scalar
or per-channel mul/add/sub/div, clip/ReLU), then a quantizing layer (quantizer, MultiThreshold or
Trunc). The last dense layer may instead end the model with its elementwise chain: its outputs
come back in model units through ``OutputStage``. Each dense layer's input must be the input
quantizer or a quantizing layer, and its weights bipolar, ternary or 2-bit narrow signed (the
same values as ternary).

Thresholds are found by bisection on the source model's own arithmetic (``ir.semantics``, in its
float type): for each output channel and each output level, the smallest accumulator whose
activation reaches that level. That makes the lowered model agree with the reference on every
input, rounding ties and float rounding included. Every layer of the chain is monotone per
channel; a channel whose activation falls as the dot product grows (negative multiplier, divisor
or batch-norm gamma) has its weight row negated so that every threshold is a ``>=`` comparison. A
constant channel (gamma = 0, or a clip that saturates) gets thresholds that are always or never
reached.
"""

from __future__ import annotations

import numpy as np

from ..errors import HdlgenError
from ..ir.evaluate import apply_elementwise, apply_quantizer, real_output
from ..ir.lowered import LoweredModel, MatrixVectorLayer, OutputStage
from ..ir.model import ELEMENTWISE, QUANTIZING, BatchNorm, Conv2d, Dense, Elementwise, Flatten, MaxPool2d, Model
from ..ir.quant import TERNARY, QuantKind, QuantType

HARDWARE_WEIGHTS = (QuantKind.BIPOLAR, QuantKind.TERNARY)


def _describe(layer) -> str:
    return f"layer {layer.name!r}: a {type(layer).__name__.lower()}"


def _groups(model: Model):
    """Split the layer chain into (Dense, [elementwise...], quantizing layer | None) groups."""
    layers, groups, i = tuple(layer for layer in model.layers if not isinstance(layer, Flatten)), [], 0
    while i < len(layers):
        dense = layers[i]
        if isinstance(dense, (Conv2d, MaxPool2d)):
            raise HdlgenError(f"{_describe(dense)} layer has no hardware generator yet: hdlgen imports and "
                              f"evaluates convolutions and pooling (hdlgen inspect, golden model) but cannot build them")
        if not isinstance(dense, Dense):
            after = layers[i - 1].name if i else model.input.name
            raise HdlgenError(f"{_describe(dense)} after {after!r} is not a supported pattern; layers must come as "
                              f"dense, elementwise layers (batch norm, scale, bias, clip), quantizer")
        j = i + 1
        while j < len(layers) and isinstance(layers[j], ELEMENTWISE):
            j += 1
        quant = layers[j] if j < len(layers) and isinstance(layers[j], QUANTIZING) else None
        if quant is None and j < len(layers):
            raise HdlgenError(f"layer {layers[j].name!r}: only the last dense layer may go without a quantizer; "
                              f"add a quantizer after {layers[j - 1].name!r}")
        groups.append((dense, layers[i + 1:j], quant))
        i = j + (quant is not None)
    return groups


def _direction(dense: Dense, tail) -> np.ndarray:
    """Per output channel: +1 where the chain rises with the dot product, -1 where it falls, 0 if constant."""
    sign = np.ones(dense.out_features)
    for layer in tail:
        if isinstance(layer, BatchNorm):
            sign = sign * np.sign(layer.gamma)
        elif isinstance(layer, Elementwise) and layer.op in ("mul", "div"):
            sign = sign * np.sign(layer.operand)
    return sign


def _codes(dense: Dense, tail, quant, in_scale: float, dtype, acc: np.ndarray) -> np.ndarray:
    """The source model's output codes for dot products ``acc`` (k, channels), straight from its arithmetic."""
    real = real_output(dense, acc, in_scale, dtype)
    for layer in tail:
        real = apply_elementwise(layer, real)
    return quant.quant.encode(apply_quantizer(quant, real))


def _thresholds(layer: MatrixVectorLayer, dense: Dense, tail, quant, in_scale: float, dtype,
                flip: np.ndarray) -> np.ndarray:
    """Smallest P per (row, level) whose activation reaches that level, by bisection."""
    levels = np.arange(1, quant.quant.levels)[:, None]
    gain, offset = layer.acc_gain, layer.acc_offset
    sign = np.where(flip, -1, 1)
    lo = np.zeros((len(levels), layer.mh), dtype=np.int64)
    hi = np.broadcast_to(layer.row_p_max + 1, lo.shape).copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        reached = _codes(dense, tail, quant, in_scale, dtype, sign * (gain * mid + offset)) >= levels
        hi = np.where((lo < hi) & reached, mid, hi)
        lo = np.where((lo < hi) & ~reached, mid + 1, lo)
    return lo.T


def hardware_weight_type(dense: Dense) -> QuantType:
    q = dense.weight_quant
    if q.kind in HARDWARE_WEIGHTS:
        return QuantType(q.kind, q.bits)
    if q == QuantType.int(2, narrow=True):
        return TERNARY
    raise HdlgenError(f"layer {dense.name!r}: {q} weights are not supported by the hardware generators yet; "
                      f"quantize this layer's weights to bipolar or ternary (2-bit narrow signed)")


def streamline(model: Model) -> LoweredModel:
    """Lower ``model`` to integer matrix-vector layers with thresholds (see the module docstring)."""
    in_type, in_scale, dtype = model.input.quant, model.input.scale, model.dtype
    layers, output = [], None
    for dense, tail, quant in _groups(model):
        weight_type = hardware_weight_type(dense)
        if quant is None:
            layers.append(MatrixVectorLayer(dense.name, in_type, weight_type, dense.weight, None, None))
            output = OutputStage(multiplier=in_scale * dense.weight_scale, bias=dense.bias, tail=tuple(tail))
            continue
        flip = _direction(dense, tail) < 0
        weights = np.where(flip[:, None], -dense.weight, dense.weight)
        unfolded = MatrixVectorLayer(dense.name, in_type, weight_type, weights, None, None)
        thresholds = _thresholds(unfolded, dense, tail, quant, in_scale, dtype, flip)
        layers.append(MatrixVectorLayer(dense.name, in_type, weight_type, weights, thresholds, quant.quant))
        in_type, in_scale = quant.quant, quant.scale
        output = OutputStage(quant=quant.quant, scale=quant.scale)
    return LoweredModel(model.name, model.input, tuple(layers), output, model.arithmetic)
