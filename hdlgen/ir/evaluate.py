"""Each source-model layer applied to a batch, in the model's own arithmetic (see ``semantics``).

Activations are channels-last: ``(batch, features)`` or ``(batch, height, width, channels)``, the
order in which hardware streams them. Quantized activations travel as integer values with their
scale; everything else as floats of the model's arithmetic type.
"""

from __future__ import annotations

import numpy as np

from .model import AvgPool2d, BatchNorm, ShiftBatchNorm, Clip, Conv2d, Dense, Elementwise, MaxPool2d, MultiThreshold, Quantizer, Requantize, Trunc
from .semantics import batchnorm, shift_batchnorm, clip, dense_affine, elementwise, multithreshold, quantize, trunc

__all__ = ["apply_elementwise", "apply_quantizer", "dense_values", "conv_values", "maxpool", "flatten_chw",
           "real_output", "global_mean", "window_mean", "to_channels_last", "to_channels_first"]


def apply_elementwise(layer, y: np.ndarray) -> np.ndarray:
    """A batch norm, elementwise or clip layer on real values ``y`` (channels on the last axis)."""
    if isinstance(layer, BatchNorm):
        return batchnorm(y, layer.gamma, layer.beta, layer.mean, layer.var, layer.eps)
    if isinstance(layer, ShiftBatchNorm):
        return shift_batchnorm(y, layer.mean, layer.beta, layer.norm_shift, layer.gamma_shift, layer.sign)
    if isinstance(layer, Elementwise):
        return elementwise(y, layer.op, layer.operand)
    if isinstance(layer, Clip):
        return clip(y, layer.lo, layer.hi)
    raise TypeError(f"{type(layer).__name__} is not an elementwise layer")


def apply_quantizer(layer, y: np.ndarray | None, acc: np.ndarray | None = None) -> np.ndarray:
    """The integer values a quantizing layer gives for real values ``y``; its output is ``values * layer.scale``.
    A ``Requantize`` layer takes the previous layer's exact dot products ``acc`` instead."""
    if isinstance(layer, Requantize):
        return layer.values(acc)
    if isinstance(layer, Quantizer):
        return quantize(y, layer.quant, layer.scale, layer.rounding)
    if isinstance(layer, MultiThreshold):
        return layer.quant.decode(multithreshold(y, layer.thresholds))
    if isinstance(layer, Trunc):
        return trunc(y, layer.in_scale, layer.quant, layer.scale, layer.rounding)
    raise TypeError(f"{type(layer).__name__} is not a quantizing layer")


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(batch, C, H, W) to (batch, H, W, C); vectors pass through."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """(batch, H, W, C) to ONNX's (batch, C, H, W); vectors pass through."""
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def flatten_chw(values: np.ndarray) -> np.ndarray:
    """Channels-last (batch, H, W, C) to (batch, C*H*W) in ONNX's C, H, W order; vectors pass through."""
    if values.ndim == 4:
        values = values.transpose(0, 3, 1, 2)
    return values.reshape(len(values), -1)


def dense_values(layer: Dense, values: np.ndarray) -> np.ndarray:
    """Exact integer dot products of integer input values."""
    return flatten_chw(values) @ layer.weight.T


def conv_values(layer: Conv2d, values: np.ndarray) -> np.ndarray:
    """Exact integer convolution of channels-last integer values; padded taps hold ``pad_value`` (0 adds exactly 0)."""
    n, h, w, c = values.shape
    oc, icg, kh, kw = layer.weight.shape
    top, left, bottom, right = layer.padding
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    _, oh, ow = layer.out_shape((c, h, w))
    padded = np.pad(values, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=layer.pad_value)
    out = np.zeros((n, oh, ow, oc), dtype=np.int64)
    ocg = oc // layer.groups
    for ky in range(kh):
        for kx in range(kw):
            patch = padded[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for g in range(layer.groups):
                out[..., g * ocg:(g + 1) * ocg] += patch[..., g * icg:(g + 1) * icg] @ layer.weight[g * ocg:(g + 1) * ocg, :, ky, kx].T
    return out


def maxpool(layer: MaxPool2d, values: np.ndarray) -> np.ndarray:
    """Max over each window of channels-last values; padded taps hold the type's lowest value."""
    n, h, w, c = values.shape
    top, left, bottom, right = layer.window_padding((h, w))
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    _, oh, ow = layer.out_shape((c, h, w))
    low = np.iinfo(values.dtype).min if np.issubdtype(values.dtype, np.integer) else -np.inf
    padded = np.pad(values, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=low)
    out = None
    for ky in range(kh):
        for kx in range(kw):
            patch = padded[:, ky: ky + sh * (oh - 1) + 1: sh, kx: kx + sw * (ow - 1) + 1: sw, :]
            out = patch if out is None else np.maximum(out, patch)
    return out


def global_mean(values: np.ndarray, scale: float, dtype) -> np.ndarray:
    """Channel means of channels-last integer values (batch, H, W, C) -> (batch, 1, 1, C): the exact sum
    times the scale, rounded once to ``dtype``, divided by H * W in ``dtype``."""
    n, h, w, c = values.shape
    total = (values.reshape(n, h * w, c).sum(axis=1) * np.float64(scale)).astype(dtype)
    return (total / np.asarray(h * w, dtype=dtype)).reshape(n, 1, 1, c)


def window_mean(layer: AvgPool2d, values: np.ndarray, scale: float, dtype) -> np.ndarray:
    """Average pooling of channels-last integer values (batch, H, W, C): each window's exact sum
    (padded taps hold 0) times the scale, rounded once to ``dtype``, divided by the window's count
    (``AvgPool2d.counts``) in ``dtype``."""
    n, h, w, c = values.shape
    top, left, bottom, right = layer.padding
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    _, oh, ow = layer.out_shape((c, h, w))
    padded = np.pad(values.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    total = sum(padded[:, ky: ky + sh * (oh - 1) + 1: sh, kx: kx + sw * (ow - 1) + 1: sw, :]
                for ky in range(kh) for kx in range(kw))
    counts = layer.counts((h, w)).astype(dtype)[None, :, :, None]
    return (total * np.float64(scale)).astype(dtype) / counts


def real_output(layer, acc: np.ndarray, in_scale: float, dtype) -> np.ndarray:
    """A dense or convolution layer's real output from its exact integer dot products."""
    return dense_affine(acc, in_scale * layer.weight_scale, layer.bias, dtype)
