"""The arithmetic of the source model, shared by the float reference and by streamlining.

Streamlining folds batch norm, scales and quantizers into integer thresholds by searching the
breakpoints of exactly these functions, so the lowered model agrees with the reference on every
input, float ties included. Channel parameters broadcast on the last axis.

Every function computes in the float type of its input array (``float64`` for native models,
``float32`` for QONNX models, whose executor works in float32) and follows the executor's order of
operations: batch norm as onnxruntime computes it, quantizers as ``qonnx.custom_op.general`` does.
"""

from __future__ import annotations

import numpy as np

from .quant import QuantType

__all__ = ["ROUNDING_MODES", "FLOAT_TYPES", "dense_affine", "batchnorm", "elementwise", "clip", "quantize",
           "multithreshold", "trunc", "round_mode", "requantize", "shift_batchnorm"]

FLOAT_TYPES = {"float64": np.float64, "float32": np.float32}


def _half_up(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _half_down(x):
    return np.sign(x) * np.ceil(np.abs(x) - 0.5)


def _up(x):
    return np.sign(x) * np.ceil(np.abs(x))


# QONNX rounding modes (qonnx.custom_op.general.intquant.resolve_rounding_mode).
ROUNDING_MODES = {"ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "UP": _up,
                  "DOWN": np.fix, "HALF_UP": _half_up, "HALF_DOWN": _half_down}


def round_mode(mode: str):
    return ROUNDING_MODES[mode.upper()]


def _like(y: np.ndarray, value):
    """A parameter in the float type of ``y`` (the executor stores every constant in that type)."""
    return np.asarray(value, dtype=y.dtype)


def dense_affine(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray | None, dtype=np.float64) -> np.ndarray:
    """A dense layer's real output from its exact integer dot products.

    ``multiplier`` is the input scale times the per-output weight scale. The product is exact in
    float64 and rounded once to ``dtype``: what a float32 executor computes whenever its own dot
    product is exact (power-of-two scales, which is what Brevitas' constant scales give).
    """
    y = (np.asarray(acc, dtype=np.float64) * np.asarray(multiplier, dtype=np.float64)).astype(dtype)
    return y if bias is None else y + _like(y, bias)


def batchnorm(y: np.ndarray, gamma, beta, mean, var, eps: float) -> np.ndarray:
    """Inference batch norm as onnxruntime computes it:
    ``s = gamma * (1 / sqrt(var + eps))``, ``y * s + (beta - mean * s)``."""
    one = _like(y, 1.0)
    scale = _like(y, gamma) * (one / np.sqrt(_like(y, var) + _like(y, eps)))
    return y * scale + (_like(y, beta) - _like(y, mean) * scale)


def shift_batchnorm(y: np.ndarray, mean, beta, norm_shift, gamma_shift, sign) -> np.ndarray:
    """Shift-based batch norm: ``sign * ((y - mean) * 2^norm_shift) * 2^gamma_shift + beta``. The
    scalings by powers of two are exact; the subtraction and the addition round as the float type does."""
    x_hat = (y - _like(y, mean)) * _like(y, np.ldexp(1.0, np.asarray(norm_shift)))
    return _like(y, sign) * (x_hat * _like(y, np.ldexp(1.0, np.asarray(gamma_shift)))) + _like(y, beta)


def elementwise(y: np.ndarray, op: str, operand) -> np.ndarray:
    """``y op operand`` for op in mul, add, sub, div."""
    c = _like(y, operand)
    if op == "mul":
        return y * c
    if op == "add":
        return y + c
    if op == "sub":
        return y - c
    if op == "div":
        return y / c
    raise ValueError(f"unknown elementwise op {op!r}")


def clip(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``min(max(y, lo), hi)``; either bound may be infinite (ReLU is ``clip(y, 0, inf)``)."""
    return np.minimum(np.maximum(y, _like(y, lo)), _like(y, hi))


def quantize(y: np.ndarray, quant: QuantType, scale, rounding: str = "ROUND") -> np.ndarray:
    """Integer values of an activation quantizer (its real output is ``values * scale``).

    Bipolar: ``y >= 0 -> +1`` else ``-1`` (QONNX BipolarQuant; a 1-bit signed Quant compares
    ``y / scale``, which differs only where that quotient underflows to zero).
    Otherwise ``rounding(clip(y / scale, lo, hi))`` (QONNX Quant with zero point 0: it clamps
    before rounding, which gives the same integers as rounding first since the bounds are integers).
    """
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float64)
    if quant.is_bipolar:
        return np.where(y >= 0, 1, -1).astype(np.int64)
    v = y / _like(y, scale)
    return round_mode(rounding)(np.clip(v, quant.lo, quant.hi)).astype(np.int64)


def multithreshold(y: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """QONNX MultiThreshold's count: how many of the channel's thresholds ``y`` reaches (``>=``).

    ``thresholds`` is (channels or 1, steps); ``y`` has channels on its last axis.
    """
    t = _like(y, thresholds)
    if t.shape[0] == 1:
        t = t[0]
    return np.count_nonzero(y[..., None] >= t, axis=-1).astype(np.int64)


def trunc(y: np.ndarray, in_scale, out_quant: QuantType, out_scale, rounding: str) -> np.ndarray:
    """Integer values of a QONNX Trunc (opset 2, zero point 0): ``round(y / in_scale)`` divided by the
    power of two nearest ``out_scale / in_scale``, clamped to ``out_quant``, then ``rounding``."""
    v = np.round(y / _like(y, in_scale))
    shift = 2.0 ** np.round(np.log2(np.float64(out_scale) / np.float64(in_scale)))
    v = v / _like(y, shift)
    return round_mode(rounding)(np.clip(v, out_quant.lo, out_quant.hi)).astype(np.int64)


def requantize(acc: np.ndarray, bias, multiplier, quant: QuantType) -> np.ndarray:
    """Integer values of an int32 accumulator rescaled as onnxruntime's QLinearConv, QGemm and
    QLinearMatMul kernels do it (MLAS ``MlasRequantizeOutput``): the bias is added in int32, the sum
    converted to float32 and multiplied by the channel's float32 ``multiplier`` (input scale times
    weight scale, divided by the output scale, each step in float32), clamped to the output type's
    range less its zero point, and rounded half to even. The stored integer is ``values + zero_point``.
    """
    total = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    y = total.astype(np.float32) * np.asarray(multiplier, dtype=np.float32)
    y = np.minimum(np.maximum(y, np.float32(quant.lo)), np.float32(quant.hi))
    return np.round(y).astype(np.int64)
