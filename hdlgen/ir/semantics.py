"""The arithmetic of the source model, shared by the float reference and by streamlining.

Streamlining folds batch norm and quantizers into integer thresholds by searching the
breakpoints of exactly these functions, so the lowered model agrees with the reference on every
input, float ties included. Channel parameters broadcast on the last axis.
"""

from __future__ import annotations

import numpy as np

from .quant import QuantType

__all__ = ["dense_affine", "batchnorm", "quantize"]


def dense_affine(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A dense layer's real output from its exact integer dot products.

    ``multiplier`` is the input scale times the per-output weight scale (computed once, float64).
    """
    y = np.asarray(acc, dtype=np.float64) * multiplier
    return y if bias is None else y + bias


def batchnorm(y: np.ndarray, gamma, beta, mean, var, eps: float) -> np.ndarray:
    """Inference batch norm, ``(y - mean) / sqrt(var + eps) * gamma + beta``."""
    return (y - mean) / np.sqrt(var + eps) * gamma + beta


def quantize(y: np.ndarray, quant: QuantType, scale: float) -> np.ndarray:
    """Integer values of an activation quantizer (its real output is ``values * scale``).

    Bipolar: ``x >= 0 -> +1`` else ``-1`` (QONNX BipolarQuant). Otherwise
    ``clip(round_half_even(x / scale), lo, hi)`` (QONNX Quant with zero point 0).
    """
    y = np.asarray(y, dtype=np.float64)
    if quant.is_bipolar:
        return np.where(y >= 0, 1, -1).astype(np.int64)
    return np.clip(np.rint(y / scale), quant.lo, quant.hi).astype(np.int64)

