"""The source model evaluated as trained: exact integer dot products, the model's float arithmetic
(float64 for native descriptions, float32 for QONNX) for everything else."""

from __future__ import annotations

import numpy as np

from ..errors import HdlgenError
from .host_ops import apply_host_op
from ..ir.evaluate import (apply_elementwise, apply_quantizer, conv_values, dense_values, flatten_chw, global_mean, maxpool, real_output,
                           window_mean,
                           to_channels_first, to_channels_last)
from ..ir.model import (ELEMENTWISE, QUANTIZING, AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, InputQuantizer, MaxPool2d, Model,
                        Requantize)
from ..ir.semantics import quantize


def check_inputs(model_input: InputQuantizer, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Inputs as (batch, features): accepts any (batch, ...) array of ``features`` values per input, in C, H, W order."""
    x = np.asarray(x)
    shape, features = model_input.shape, model_input.features
    if x.shape == shape or x.shape == (features,):
        x = x[None]
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != features:
        wanted = f"(batch, {features})" + ("" if len(shape) == 1 else f" or (batch, {', '.join(map(str, shape))})")
        raise HdlgenError(f"{what} have shape {x.shape}; the model takes {wanted}")
    if len(x) == 0:
        raise HdlgenError(f"{what} hold no frames (shape {x.shape}); give at least one input row")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise HdlgenError(f"{what} must be finite numbers")
    return x.reshape(len(x), features)


def input_values(model_input: InputQuantizer, x: np.ndarray, dtype) -> np.ndarray:
    """Integer input values (batch, features) for real inputs, quantized in the model's arithmetic."""
    x = check_inputs(model_input, x).astype(dtype)
    for layer in model_input.preprocess:
        x = apply_elementwise(layer, x)
    if model_input.given is not None:
        given = quantize(x, model_input.given, model_input.given_scale, model_input.rounding)
        return model_input.quant.decode(model_input.given.encode(given))
    return quantize(x, model_input.quant, model_input.scale, model_input.rounding)


def run_reference(model: Model, x: np.ndarray) -> np.ndarray:
    """Outputs of ``model`` for a batch of inputs, in the model's units and ONNX's layout."""
    dtype = model.dtype
    values = input_values(model.input, x, dtype).reshape((-1,) + model.input.shape)
    values, scale, real, acc = to_channels_last(values), model.input.scale, None, None
    for layer in model.layers:
        if isinstance(layer, Requantize):
            values, scale, real = layer.values(acc), layer.scale, None
            continue
        if isinstance(layer, (Dense, Conv2d)):
            acc = dense_values(layer, values) if isinstance(layer, Dense) else conv_values(layer, values)
            real, values = real_output(layer, acc, scale, dtype), None
        elif isinstance(layer, (GlobalAvgPool, AvgPool2d)):
            if values is None:
                raise HdlgenError(f"layer {layer.name!r}: average pooling of unquantized values is not supported")
            real = global_mean(values, scale, dtype) if isinstance(layer, GlobalAvgPool) else \
                window_mean(layer, values, scale, dtype)
            values = None
        elif isinstance(layer, Flatten):
            values, real = (None if v is None else flatten_chw(v) for v in (values, real))
        elif isinstance(layer, MaxPool2d):
            if values is not None:
                values = maxpool(layer, values)
            else:
                real = maxpool(layer, real)
        elif isinstance(layer, ELEMENTWISE):
            if real is None:
                real, values = (values * np.float64(scale)).astype(dtype), None
            real = apply_elementwise(layer, real)
        elif isinstance(layer, QUANTIZING):
            if real is None:
                real = (values * np.float64(scale)).astype(dtype)
            values, scale, real = apply_quantizer(layer, real), layer.scale, None
    out = real if real is not None else (values * np.float64(scale)).astype(dtype)
    return apply_host_op(model.host, to_channels_first(out))
