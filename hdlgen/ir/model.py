"""The source model: a chain of quantized layers with float scales, as it was trained.

Layers are immutable records. A model validates itself when built: every tensor has the shape its
layer needs, holds finite numbers, and weights hold only values of their quant type. Errors name
the layer and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import HdlgenError
from .quant import QuantKind, QuantType

__all__ = ["InputQuantizer", "Dense", "BatchNorm", "Quantizer", "Layer", "Model"]


def _finite(name: str, what: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise HdlgenError(f"layer {name!r}: {what} holds {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
                          f"every value must be a finite number")
    return array


def _channel_vector(name: str, what: str, value, channels: int) -> np.ndarray:
    array = _finite(name, what, value)
    if array.ndim == 0:
        array = np.full(channels, float(array))
    if array.shape != (channels,):
        raise HdlgenError(f"layer {name!r}: {what} has shape {array.shape}, expected ({channels},) or a scalar")
    return array


def _positive_scale(name: str, what: str, value) -> float:
    scale = _finite(name, what, value)
    if scale.ndim != 0 or scale <= 0:
        raise HdlgenError(f"layer {name!r}: {what} must be one positive number, not {value!r}")
    return float(scale)


@dataclass(frozen=True, eq=False)
class InputQuantizer:
    """Turns the model's real-valued input into integers: ``quantize(x, quant, scale)``."""

    features: int
    quant: QuantType
    scale: float = 1.0
    name: str = "input"

    def __post_init__(self):
        if not isinstance(self.features, int) or self.features < 1:
            raise HdlgenError(f"input: features must be a positive integer, not {self.features!r}")
        if self.quant.kind is QuantKind.TERNARY:
            raise HdlgenError("input: a ternary input quantizer is not supported; use 'narrow_int2' for the same values")
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected: ``y = (x_int @ weight.T) * (x_scale * weight_scale) + bias``.

    The dot product of integer values is exact; the scales multiply it afterwards.
    """

    name: str
    weight: np.ndarray
    weight_quant: QuantType
    weight_scale: np.ndarray = 1.0
    bias: np.ndarray | None = None

    def __post_init__(self):
        weight = _finite(self.name, "weight", self.weight)
        if weight.ndim != 2 or 0 in weight.shape:
            raise HdlgenError(f"layer {self.name!r}: weight has shape {weight.shape}, expected (out_features, in_features)")
        if not self.weight_quant.contains(weight):
            allowed = "-1 or +1" if self.weight_quant.is_bipolar else f"integers from {self.weight_quant.lo} to {self.weight_quant.hi}"
            raise HdlgenError(f"layer {self.name!r}: weight holds values outside {self.weight_quant} ({allowed}); "
                              f"store the integer weights and put their scale in weight_scale")
        object.__setattr__(self, "weight", weight.astype(np.int64))
        scale = _channel_vector(self.name, "weight_scale", self.weight_scale, weight.shape[0])
        if np.any(scale <= 0):
            raise HdlgenError(f"layer {self.name!r}: weight_scale must be positive; fold a sign into the weights instead")
        object.__setattr__(self, "weight_scale", scale)
        if self.bias is not None:
            object.__setattr__(self, "bias", _channel_vector(self.name, "bias", self.bias, weight.shape[0]))

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Inference batch norm over features: ``(y - mean) / sqrt(var + eps) * gamma + beta``."""

    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5

    def __post_init__(self):
        gamma = _finite(self.name, "gamma", self.gamma)
        if gamma.ndim != 1:
            raise HdlgenError(f"layer {self.name!r}: gamma has shape {gamma.shape}, expected (features,)")
        object.__setattr__(self, "gamma", gamma)
        for what in ("beta", "mean", "var"):
            object.__setattr__(self, what, _channel_vector(self.name, what, getattr(self, what), gamma.shape[0]))
        eps = float(_finite(self.name, "eps", self.eps))
        if np.any(self.var + eps <= 0):
            raise HdlgenError(f"layer {self.name!r}: var + eps must be positive in every channel")
        object.__setattr__(self, "eps", eps)

    @property
    def features(self) -> int:
        return self.gamma.shape[0]


@dataclass(frozen=True, eq=False)
class Quantizer:
    """Activation quantizer: real values to ``quant`` integers times ``scale`` (see ``semantics.quantize``)."""

    name: str
    quant: QuantType
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))


Layer = Dense | BatchNorm | Quantizer


@dataclass(frozen=True, eq=False)
class Model:
    """A feed-forward chain: the input quantizer, then layers in order."""

    name: str
    input: InputQuantizer
    layers: tuple[Layer, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise HdlgenError(f"model {self.name!r} has no layers")
        names = [self.input.name] + [layer.name for layer in self.layers]
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise HdlgenError(f"layer name {name!r} must be a valid identifier (letters, digits, underscores)")
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise HdlgenError(f"layer name {duplicate!r} is used twice; names must be unique")
        self.shapes()

    def shapes(self) -> list[int]:
        """Feature count after the input quantizer and after each layer; checks that they connect."""
        features, quantized = self.input.features, True
        shapes = [features]
        for layer in self.layers:
            if isinstance(layer, Dense):
                if layer.in_features != features:
                    raise HdlgenError(f"layer {layer.name!r}: weight has {layer.in_features} input features but the "
                                      f"previous layer gives {features}; the weight must be ({layer.out_features}, {features})")
                if not quantized:
                    raise HdlgenError(f"layer {layer.name!r}: a dense layer's input must be quantized; add a quantizer before it")
                features, quantized = layer.out_features, False
            elif isinstance(layer, BatchNorm):
                if layer.features != features:
                    raise HdlgenError(f"layer {layer.name!r}: batch norm has {layer.features} channels but its input has {features}")
                quantized = False
            elif isinstance(layer, Quantizer):
                quantized = True
            else:
                raise HdlgenError(f"layer {getattr(layer, 'name', layer)!r}: unsupported layer type {type(layer).__name__}")
            shapes.append(features)
        return shapes

    @property
    def out_features(self) -> int:
        return self.shapes()[-1]
