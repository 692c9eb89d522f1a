"""Integer golden model of each hardware stage and of a whole lowered model.

Functions take the same objects the cores are built from (a lowered stage, its folding where it
matters) and work on batches: arrays whose first axis is the batch and whose last axis is
channels (features), images as (batch, H, W, C).
"""

from __future__ import annotations

import numpy as np

from .requant import fixed_point_codes, shift_codes

from .classes import class_indices
from .host_ops import apply_host_op

from ..ir.evaluate import apply_elementwise
from ..ir.lowered import (GlobalPoolStage, LoweredModel, MatrixVectorLayer, PadStage, PoolStage, WindowMaxStage,
                          WindowStage)
from ..ir.semantics import dense_affine
from .reference import input_values


def matrix_vector(layer: MatrixVectorLayer, codes: np.ndarray) -> np.ndarray:
    """Hardware accumulators ``P`` (..., MH) for input codes (..., MW); see ``ir.lowered``."""
    codes = np.asarray(codes, dtype=np.int64)
    pos, neg = np.maximum(layer.weights, 0), np.maximum(-layer.weights, 0)
    return codes @ pos.T + (layer.code_max - codes) @ neg.T


def packed_sums(weights: np.ndarray, codes: np.ndarray, code_bits: int, bias: int) -> np.ndarray:
    """What a dot-product array with PACKED products sums per row: ``sum(w * v + bias)`` over the
    codes given, ``v = u - 2^(code_bits - 1)`` being the centred code (see ``cores.products``)."""
    centred = np.asarray(codes, dtype=np.int64) - (1 << (code_bits - 1))
    weights = np.asarray(weights, dtype=np.int64)
    return centred @ weights.T + weights.shape[1] * bias


def row_correction(layer: MatrixVectorLayer, code_bits: int, bias: int) -> np.ndarray:
    """Per row, ``P`` minus the PACKED sums over all of the layer's inputs."""
    w = layer.weights
    return layer.code_max * np.maximum(-w, 0).sum(axis=1) + (1 << (code_bits - 1)) * w.sum(axis=1) - layer.mw * bias


def thresholds(layer: MatrixVectorLayer, acc: np.ndarray) -> np.ndarray:
    """Output codes: how many of each row's thresholds its accumulator reaches, or what the layer's
    requantization unit gives in their place."""
    acc = np.asarray(acc, dtype=np.int64)
    unit = layer.requant
    if unit is not None and unit.kind == "shift":
        return shift_codes(acc, unit.offset, unit.shift, unit.half_even, layer.out_type.levels)
    if unit is not None:
        return fixed_point_codes(acc, layer.acc_gain, unit.offset, unit.m0, unit.shift, unit.lo, unit.hi)
    return np.sum(acc[..., None] >= layer.thresholds, axis=-1)


def layer_output(layer: MatrixVectorLayer, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if not layer.spatial:
        codes = codes.reshape(len(codes), -1)
    acc = matrix_vector(layer, codes)
    unit = layer.requant
    if unit is not None and unit.kind == "scores":     # fixed-point outputs as width-bit two's complement words
        return (unit.sign * (acc << unit.shift) + unit.offset) & ((1 << unit.width) - 1)
    return acc if layer.thresholds is None else thresholds(layer, acc)


def pad(stage: PadStage, codes: np.ndarray) -> np.ndarray:
    top, left, bottom, right = stage.padding
    return np.pad(stage.convert(codes), ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=stage.pad_code)


def window(stage: WindowStage, codes: np.ndarray) -> np.ndarray:
    """(batch, OH, OW, kh * kw * C): each output pixel's window in (ky, kx, c) order."""
    (kh, kw), (sh, sw), (dh, dw) = stage.kernel, stage.stride, stage.dilation
    oh, ow = stage.out_spatial
    taps = [codes[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for ky in range(kh) for kx in range(kw)]
    return np.concatenate(taps, axis=-1)


def pool(stage: PoolStage, codes: np.ndarray) -> np.ndarray:
    (kh, kw), (oh, ow, c) = stage.kernel, stage.out_shape
    windows = codes[:, :oh * kh, :ow * kw, :].reshape(len(codes), oh, kh, ow, kw, c)
    if not stage.minimum:
        return windows.max(axis=(2, 4))
    return np.where(np.asarray(stage.minimum), windows.min(axis=(2, 4)), windows.max(axis=(2, 4)))


def window_max(stage: WindowMaxStage, codes: np.ndarray) -> np.ndarray:
    """The max over each window's taps: (batch, OH, OW, taps * C) to (batch, OH, OW, C)."""
    oh, ow, c = stage.out_shape
    return np.asarray(codes).reshape(len(codes), oh, ow, stage.taps, c).max(axis=3)


def global_pool(stage: GlobalPoolStage, codes: np.ndarray) -> np.ndarray:
    """Channel sums of codes over the image, through the stage's thresholds: (batch, 1, 1, C)."""
    sums = np.asarray(codes, dtype=np.int64).sum(axis=(1, 2), keepdims=True)
    return np.sum(sums[..., None] >= stage.thresholds, axis=-1)


def stage_output(stage, codes: np.ndarray) -> np.ndarray:
    if isinstance(stage, GlobalPoolStage):
        return global_pool(stage, codes)
    if isinstance(stage, MatrixVectorLayer):
        return layer_output(stage, codes)
    if isinstance(stage, PadStage):
        return pad(stage, codes)
    if isinstance(stage, WindowStage):
        return window(stage, codes)
    if isinstance(stage, WindowMaxStage):
        return window_max(stage, codes)
    return pool(stage, codes)


def run_lowered(model: LoweredModel, codes: np.ndarray) -> np.ndarray:
    """What the hardware emits, (batch, out_features) in stream order, for input codes (batch, in_features)."""
    codes = np.asarray(codes).reshape((-1,) + model.in_shape)
    for stage in model.layers:
        codes = stage_output(stage, codes)
    codes = codes.reshape(len(codes), -1)
    return codes if model.classes is None else class_indices(model.classes, codes)


def quantize_input_codes(model: LoweredModel, x: np.ndarray) -> np.ndarray:
    """Real-valued model inputs (batch, features or input shape) to the codes the hardware's input stream
    takes, (batch, in_features) in stream order (channels innermost for images)."""
    values = input_values(model.input, x, model.dtype)
    if len(model.input.shape) == 3:
        values = values.reshape((-1,) + model.input.shape).transpose(0, 2, 3, 1).reshape(len(values), -1)
    return model.input.quant.encode(values)


def accumulator_outputs(layer: MatrixVectorLayer, output, p: np.ndarray, dtype) -> np.ndarray:
    """The model's outputs for the last layer's accumulators ``p`` (rows on the last axis), when the
    host rescales them: ``tail(dense_affine(acc_gain * P + acc_offset, multiplier, bias))``."""
    real = dense_affine(layer.acc_gain * p + layer.acc_offset, output.multiplier, output.bias, dtype)
    for t in output.tail:
        real = apply_elementwise(t, real)
    return real


def model_outputs(model: LoweredModel, hw_out: np.ndarray) -> np.ndarray:
    """The last stage's output words (batch, out_features) as the model's outputs before a host op,
    in the stream's layout."""
    out, last = model.output, model.layers[-1]
    hw_out = np.asarray(hw_out, dtype=np.int64).reshape((-1,) + model.out_shape)
    if out.quant is not None:
        return (out.quant.decode(hw_out) * np.float64(out.scale)).astype(model.dtype)
    if last.requant is not None and last.requant.kind == "scores":
        width = last.requant.width
        fixed = np.where(hw_out >= 1 << (width - 1), hw_out - (1 << width), hw_out)
        return np.ldexp(fixed.astype(np.float64), -last.requant.fraction).astype(model.dtype)
    return accumulator_outputs(last, out, hw_out, model.dtype)


def to_model_units(model: LoweredModel, hw_out: np.ndarray) -> np.ndarray:
    """The hardware's output words (batch, out_features) in the source model's units and ONNX's layout;
    with a class output, the class indices (batch, 1), or (batch,) for an ArgMax with keepdims=0."""
    if model.classes is not None:
        classes = np.asarray(hw_out, dtype=np.int64).reshape(-1, 1)
        host = model.host
        keep = host is None or host.op != "ArgMax" or dict(host.attributes).get("keepdims", 1)
        return classes if keep else classes[:, 0]
    real = model_outputs(model, hw_out)
    return apply_host_op(model.host, real.transpose(0, 3, 1, 2) if real.ndim == 4 else real)


def predict(model: LoweredModel, x: np.ndarray) -> np.ndarray:
    """Whole lowered model, real inputs to real outputs."""
    return to_model_units(model, run_lowered(model, quantize_input_codes(model, x)))
