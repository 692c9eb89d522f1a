"""Integer golden model of each hardware layer and of a whole lowered model.

Functions take the same objects the cores are built from (a lowered layer, its folding where it
matters) and work on batches: arrays whose last axis is features.
"""

from __future__ import annotations

import numpy as np

from ..ir.evaluate import apply_elementwise
from ..ir.lowered import LoweredModel, MatrixVectorLayer
from ..ir.semantics import dense_affine
from .reference import input_values


def matrix_vector(layer: MatrixVectorLayer, codes: np.ndarray) -> np.ndarray:
    """Hardware accumulators ``P`` (batch, MH) for input codes (batch, MW); see ``ir.lowered``."""
    codes = np.asarray(codes, dtype=np.int64)
    pos = (layer.weights > 0).astype(np.int64)
    neg = (layer.weights < 0).astype(np.int64)
    if layer.in_type.is_bipolar:
        return codes @ pos.T + (1 - codes) @ neg.T
    return codes @ pos.T + (layer.in_code_max - codes) @ neg.T


def thresholds(layer: MatrixVectorLayer, acc: np.ndarray) -> np.ndarray:
    """Output codes: how many of each row's thresholds its accumulator reaches."""
    acc = np.asarray(acc, dtype=np.int64)
    return np.sum(acc[..., None] >= layer.thresholds, axis=-1)


def layer_output(layer: MatrixVectorLayer, codes: np.ndarray) -> np.ndarray:
    acc = matrix_vector(layer, codes)
    return acc if layer.thresholds is None else thresholds(layer, acc)


def run_lowered(model: LoweredModel, codes: np.ndarray) -> np.ndarray:
    """What the hardware emits (codes, or accumulators of the last layer) for input codes."""
    for layer in model.layers:
        codes = layer_output(layer, codes)
    return codes


def quantize_input_codes(model: LoweredModel, x: np.ndarray) -> np.ndarray:
    """Real-valued model inputs (batch, features or input shape) to the codes the hardware's input stream takes."""
    return model.input.quant.encode(input_values(model.input, x, model.dtype))


def to_model_units(model: LoweredModel, hw_out: np.ndarray) -> np.ndarray:
    """The hardware's output words (batch, MH) in the source model's units."""
    out, last = model.output, model.layers[-1]
    hw_out = np.asarray(hw_out, dtype=np.int64)
    if out.quant is not None:
        return (out.quant.decode(hw_out) * np.float64(out.scale)).astype(model.dtype)
    acc = last.acc_gain * hw_out + last.acc_offset
    real = dense_affine(acc, out.multiplier, out.bias, model.dtype)
    for layer in out.tail:
        real = apply_elementwise(layer, real)
    return real


def predict(model: LoweredModel, x: np.ndarray) -> np.ndarray:
    """Whole lowered model, real inputs to real outputs."""
    return to_model_units(model, run_lowered(model, quantize_input_codes(model, x)))
