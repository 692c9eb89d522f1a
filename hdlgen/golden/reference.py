"""The source model evaluated as trained: exact integer dot products, float64 everything else."""

from __future__ import annotations

import numpy as np

from ..errors import HdlgenError
from ..ir.model import BatchNorm, Dense, Model, Quantizer
from ..ir.semantics import batchnorm, dense_affine, quantize


def check_inputs(features: int, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != features:
        raise HdlgenError(f"{what} have shape {x.shape}; the model takes (batch, {features})")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise HdlgenError(f"{what} must be finite numbers")
    return x.astype(np.float64)


def run_reference(model: Model, x: np.ndarray) -> np.ndarray:
    """Outputs of ``model`` for a batch ``x`` of shape (batch, features), in the model's units."""
    x = check_inputs(model.input.features, x)
    values = quantize(x, model.input.quant, model.input.scale)
    scale, real = model.input.scale, None
    for layer in model.layers:
        if isinstance(layer, Dense):
            acc = values @ layer.weight.T
            real = dense_affine(acc, scale * layer.weight_scale, layer.bias)
        elif isinstance(layer, BatchNorm):
            real = batchnorm(real, layer.gamma, layer.beta, layer.mean, layer.var, layer.eps)
        elif isinstance(layer, Quantizer):
            values, scale, real = quantize(real, layer.quant, layer.scale), layer.scale, None
    return real if real is not None else values * scale
