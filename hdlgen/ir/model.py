"""The source model: a chain of quantized layers with float scales, as it was trained.

Layers are immutable records. A model validates itself when built: every tensor has the shape its
layer needs, holds finite numbers, and weights hold only values of their quant type. Errors name
the layer and what to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import HdlgenError
from .quant import MAX_BITS, MAX_INPUT_BITS, QuantKind, QuantType
from .semantics import ROUNDING_MODES, requantize

__all__ = ["HostOp", "InputQuantizer", "AvgPool2d", "Dense", "Conv2d", "BatchNorm", "ShiftBatchNorm", "Elementwise", "Clip", "Quantizer", "MultiThreshold",
           "Requantize", "Trunc", "MaxPool2d", "GlobalAvgPool", "Flatten", "Layer", "Model", "QUANTIZING", "ELEMENTWISE", "channels"]


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


def _rounding(name: str, rounding) -> str:
    if not isinstance(rounding, str) or rounding.upper() not in ROUNDING_MODES:
        raise HdlgenError(f"layer {name!r}: rounding {rounding!r} is not one of {', '.join(ROUNDING_MODES)}")
    return rounding.upper()


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _ints(value) -> tuple[int, ...] | None:
    """``value`` as a tuple of ints if it is a sequence of integers (no floats, strings or bools), else None."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return None
    values = tuple(value)
    return tuple(int(v) for v in values) if all(_is_int(v) for v in values) else None


def _shape(name: str, shape) -> tuple[int, ...]:
    given, shape = shape, _ints(shape)
    if shape is None:
        raise HdlgenError(f"layer {name!r}: shape {given!r} must be a list of positive integers")
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise HdlgenError(f"layer {name!r}: shape {shape!r} must be (features,) or (channels, height, width)")
    return shape


def _activation_type(name: str, quant: QuantType, max_bits: int = MAX_BITS) -> None:
    if quant.is_pow2:
        raise HdlgenError(f"layer {name!r}: {quant} is a weight type; quantize activations to a signed, unsigned or "
                          f"bipolar type")
    if quant.bits > max_bits:
        what = "the input" if max_bits == MAX_INPUT_BITS else "activations (only the input may have more)"
        raise HdlgenError(f"layer {name!r}: {quant} has {quant.bits} bits; {what} take at most {max_bits}")


def _quantized_weights(layer, ndim: int, expected: str) -> None:
    """Validate and normalize a weighted layer's ``weight``, ``weight_scale`` and ``bias`` in place."""
    name, quant = layer.name, layer.weight_quant
    if quant.bits > MAX_BITS:
        raise HdlgenError(f"layer {name!r}: {quant} weights have {quant.bits} bits; weights take at most {MAX_BITS}")
    weight = _finite(name, "weight", layer.weight)
    if weight.ndim != ndim or 0 in weight.shape:
        raise HdlgenError(f"layer {name!r}: weight has shape {weight.shape}, expected {expected}")
    if not quant.contains(weight):
        allowed = "-1 or +1" if quant.is_bipolar else f"0 and +-1 .. +-{quant.hi} in powers of two" if quant.is_pow2 \
            else f"integers from {quant.lo} to {quant.hi}"
        raise HdlgenError(f"layer {name!r}: weight holds values outside {quant} ({allowed}); "
                          f"store the integer weights and put their scale in weight_scale")
    object.__setattr__(layer, "weight", weight.astype(np.int64))
    scale = _channel_vector(name, "weight_scale", layer.weight_scale, weight.shape[0])
    if np.any(scale <= 0):
        raise HdlgenError(f"layer {name!r}: weight_scale must be positive; fold a sign into the weights instead")
    object.__setattr__(layer, "weight_scale", scale)
    if layer.bias is not None:
        object.__setattr__(layer, "bias", _channel_vector(name, "bias", layer.bias, weight.shape[0]))


@dataclass(frozen=True, eq=False)
class InputQuantizer:
    """Turns the model's real-valued input into integers: ``quantize(x, quant, scale, rounding)``.

    ``shape`` is the input tensor without its batch axis: ``(features,)`` or ``(channels, height,
    width)`` in ONNX's order; ``features`` is its size.

    ``given`` (with ``given_scale``) is the type the model's input is declared to hold when that
    differs from what its first layer sees: a QONNX ``finn_datatype`` annotation followed by
    preprocessing such as ``(x + 1) / 2`` on a bipolar input. Then ``x`` is quantized to ``given``
    and the preprocessing, an increasing affine map onto ``quant``'s values times ``scale``, keeps
    every code: the first layer sees ``quant.decode(given.encode(quantize(x, given, given_scale)))``.

    ``preprocess`` holds elementwise layers with scalar operands that the model applies to its input
    before the quantizer (BNN-PYNQ's ``2 * x - 1``); the host applies them, in the model's arithmetic.
    """

    features: int
    quant: QuantType
    scale: float = 1.0
    name: str = "input"
    rounding: str = "ROUND"
    shape: tuple[int, ...] | None = None
    given: QuantType | None = None
    given_scale: float = 1.0
    preprocess: tuple = ()

    def __post_init__(self):
        if not _is_int(self.features) or self.features < 1:
            raise HdlgenError(f"input: features must be a positive integer, not {self.features!r}")
        if self.quant.kind is QuantKind.TERNARY:
            raise HdlgenError("input: a ternary input quantizer is not supported; use 'narrow_int2' for the same values")
        _activation_type(self.name, self.quant, MAX_INPUT_BITS)
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))
        object.__setattr__(self, "given_scale", _positive_scale(self.name, "given_scale", self.given_scale))
        object.__setattr__(self, "rounding", _rounding(self.name, self.rounding))
        object.__setattr__(self, "preprocess", tuple(self.preprocess))
        for layer in self.preprocess:
            if not isinstance(layer, Elementwise) or layer.operand.ndim:
                raise HdlgenError(f"input: preprocessing layer {getattr(layer, 'name', layer)!r} must be an "
                                  f"elementwise op with a scalar operand")
        if self.given is not None and self.preprocess:
            raise HdlgenError("input: preprocessing before the quantizer and a given type exclude each other")
        if self.given is not None and self.given.levels != self.quant.levels:
            raise HdlgenError(f"input: the given type {self.given} has {self.given.levels} values, but {self.quant} "
                              f"has {self.quant.levels}; preprocessing must map one onto the other")
        shape = (self.features,) if self.shape is None else _shape(self.name, self.shape)
        if math.prod(shape) != self.features:
            raise HdlgenError(f"input: shape {shape} holds {math.prod(shape)} values, not features={self.features}")
        object.__setattr__(self, "shape", shape)


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
        _quantized_weights(self, 2, "(out_features, in_features)")

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
class ShiftBatchNorm:
    """Shift-based batch norm (Courbariaux et al. 2016, arXiv 1602.02830, Alg. 3):
    ``y = sign * ((x - mean) * 2^norm_shift) * 2^gamma_shift + beta``, where ``2^norm_shift`` is
    AP2(1 / sqrt(var + eps)) and ``sign * 2^gamma_shift`` is AP2(gamma), AP2(v) being
    ``sign(v) * 2^round(log2|v|)``. ``sign`` is -1, 0 (gamma = 0: the channel is ``beta``) or +1.
    Both multiplications are by powers of two, so hardware shifts instead of multiplying."""

    name: str
    mean: np.ndarray
    beta: np.ndarray
    norm_shift: np.ndarray
    gamma_shift: np.ndarray
    sign: np.ndarray

    def __post_init__(self):
        mean = _finite(self.name, "mean", self.mean)
        if mean.ndim != 1:
            raise HdlgenError(f"layer {self.name!r}: mean has shape {mean.shape}, expected (features,)")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "beta", _channel_vector(self.name, "beta", self.beta, mean.shape[0]))
        for what in ("norm_shift", "gamma_shift", "sign"):
            value = _channel_vector(self.name, what, getattr(self, what), mean.shape[0])
            if np.any(value != np.round(value)) or np.any(np.abs(value) > 64):
                raise HdlgenError(f"layer {self.name!r}: {what} must hold integers (exponents of two up to 64)")
            object.__setattr__(self, what, value.astype(np.int64))
        if not np.all(np.isin(self.sign, (-1, 0, 1))):
            raise HdlgenError(f"layer {self.name!r}: sign must be -1, 0 or +1 in each channel")

    @property
    def features(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def from_batchnorm(cls, bn: BatchNorm) -> ShiftBatchNorm:
        """An ordinary batch norm with its multipliers rounded to powers of two (AP2)."""
        inv = 1.0 / np.sqrt(bn.var + bn.eps)
        gamma = np.where(bn.gamma == 0, 1.0, np.abs(bn.gamma))
        return cls(bn.name, bn.mean, bn.beta, np.round(np.log2(inv)), np.round(np.log2(gamma)), np.sign(bn.gamma))


@dataclass(frozen=True, eq=False)
class Quantizer:
    """Activation quantizer: real values to ``quant`` integers times ``scale`` (see ``semantics.quantize``)."""

    name: str
    quant: QuantType
    scale: float = 1.0
    rounding: str = "ROUND"

    def __post_init__(self):
        _activation_type(self.name, self.quant)
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))
        object.__setattr__(self, "rounding", _rounding(self.name, self.rounding))


@dataclass(frozen=True, eq=False)
class Elementwise:
    """``y = x op operand`` with ``op`` one of mul, add, sub, div and a scalar or per-channel operand."""

    name: str
    op: str
    operand: np.ndarray

    OPS = ("mul", "add", "sub", "div")

    def __post_init__(self):
        if self.op not in self.OPS:
            raise HdlgenError(f"layer {self.name!r}: elementwise op {self.op!r} is not one of {', '.join(self.OPS)}")
        operand = _finite(self.name, "operand", self.operand)
        if operand.ndim > 1:
            raise HdlgenError(f"layer {self.name!r}: operand has shape {operand.shape}; give a scalar or one value per channel")
        if self.op == "div" and np.any(operand == 0):
            raise HdlgenError(f"layer {self.name!r}: division by zero")
        object.__setattr__(self, "operand", operand)


@dataclass(frozen=True, eq=False)
class Clip:
    """``y = min(max(x, lo), hi)``; ReLU is ``Clip(lo=0, hi=inf)``, HardTanh ``Clip(-1, 1)``."""

    name: str
    lo: float = -np.inf
    hi: float = np.inf

    def __post_init__(self):
        lo, hi = float(self.lo), float(self.hi)
        if np.isnan(lo) or np.isnan(hi) or lo > hi:
            raise HdlgenError(f"layer {self.name!r}: clip bounds [{lo}, {hi}] must be numbers with lo <= hi")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)


@dataclass(frozen=True, eq=False)
class MultiThreshold:
    """QONNX MultiThreshold: the count ``c`` of a channel's thresholds the input reaches becomes the
    value ``quant.decode(c) * scale``. ``thresholds`` is (channels or 1, quant.levels - 1)."""

    name: str
    thresholds: np.ndarray
    quant: QuantType
    scale: float = 1.0

    def __post_init__(self):
        _activation_type(self.name, self.quant)
        t = np.asarray(self.thresholds, dtype=np.float64)
        if t.ndim != 2 or np.any(np.isnan(t)):
            raise HdlgenError(f"layer {self.name!r}: thresholds must be a (channels, steps) array of numbers, not shape {t.shape}")
        if t.shape[1] != self.quant.levels - 1:
            raise HdlgenError(f"layer {self.name!r}: {t.shape[1]} thresholds per channel, but {self.quant} needs "
                              f"{self.quant.levels - 1}")
        if np.any(np.diff(t, axis=1) < 0):
            raise HdlgenError(f"layer {self.name!r}: each channel's thresholds must be ascending")
        object.__setattr__(self, "thresholds", t)
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))


@dataclass(frozen=True, eq=False)
class Requantize:
    """An int32 accumulator requantized as onnxruntime runs a QDQ model's fused QLinearConv or QGemm
    (see ``semantics.requantize``): it follows a dense or convolution layer directly and takes its
    exact integer dot products, not their real values. ``bias`` is the int32 bias (in units of input
    scale times weight scale), ``multiplier`` the per-channel float32 rescale factor; the output is
    ``quant``'s values (stored integers less the zero point) times ``scale``."""

    name: str
    quant: QuantType
    scale: float
    multiplier: np.ndarray
    bias: np.ndarray = 0

    def __post_init__(self):
        _activation_type(self.name, self.quant)
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))
        multiplier = _finite(self.name, "multiplier", self.multiplier)
        if multiplier.ndim > 1 or np.any(multiplier <= 0):
            raise HdlgenError(f"layer {self.name!r}: multiplier must be one positive number or one per channel")
        object.__setattr__(self, "multiplier", multiplier.astype(np.float32).astype(np.float64))
        bias = _finite(self.name, "bias", self.bias)
        if bias.ndim > 1 or np.any(bias != np.round(bias)) or np.any(np.abs(bias) >= 2 ** 31):
            raise HdlgenError(f"layer {self.name!r}: bias must hold int32 values, one or one per channel")
        object.__setattr__(self, "bias", bias.astype(np.int64))

    def values(self, acc: np.ndarray) -> np.ndarray:
        """Integer output values for exact dot products ``acc`` (channels on the last axis)."""
        return requantize(acc, self.bias, self.multiplier, self.quant)


@dataclass(frozen=True, eq=False)
class Trunc:
    """QONNX Trunc (opset 2, zero point 0): re-quantizes values of scale ``in_scale`` to ``quant``
    with ``scale`` (see ``semantics.trunc``)."""

    name: str
    in_scale: float
    quant: QuantType
    scale: float
    rounding: str = "FLOOR"

    def __post_init__(self):
        _activation_type(self.name, self.quant)
        object.__setattr__(self, "in_scale", _positive_scale(self.name, "in_scale", self.in_scale))
        object.__setattr__(self, "scale", _positive_scale(self.name, "scale", self.scale))
        object.__setattr__(self, "rounding", _rounding(self.name, self.rounding))


def _pair(name: str, what: str, value, minimum: int) -> tuple[int, ...]:
    values = _ints(value)
    if values is None:
        raise HdlgenError(f"layer {name!r}: {what} must be a list of integers, not {value!r}")
    if any(v < minimum for v in values):
        raise HdlgenError(f"layer {name!r}: {what} {values} must be at least {minimum}")
    return values


@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution of quantized inputs, ONNX semantics (zero padding contributes exactly 0):
    ``y = conv(q_in, weight) * (scale_in * weight_scale) + bias``. ``weight`` is
    (out_channels, in_channels / groups, kh, kw); ``padding`` is (top, left, bottom, right).
    ``pad_value`` is the integer input value padded taps hold: 0 (ONNX Conv), or e.g. -1 or +1 for
    a bipolar model trained with +-1 padding (an ONNX Pad before the Conv)."""

    name: str
    weight: np.ndarray
    weight_quant: QuantType
    weight_scale: np.ndarray = 1.0
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    pad_value: int = 0

    def __post_init__(self):
        _quantized_weights(self, 4, "(out, in/groups, kh, kw)")
        if not isinstance(self.pad_value, (int, np.integer)) or isinstance(self.pad_value, bool):
            if not (isinstance(self.pad_value, float) and self.pad_value.is_integer()):
                raise HdlgenError(f"layer {self.name!r}: pad_value must be an integer input value, not {self.pad_value!r}")
        object.__setattr__(self, "pad_value", int(self.pad_value))
        weight = self.weight
        object.__setattr__(self, "stride", _pair(self.name, "stride", self.stride, 1))
        object.__setattr__(self, "dilation", _pair(self.name, "dilation", self.dilation, 1))
        object.__setattr__(self, "padding", _pair(self.name, "padding", self.padding, 0))
        if len(self.stride) != 2 or len(self.dilation) != 2 or len(self.padding) != 4:
            raise HdlgenError(f"layer {self.name!r}: stride and dilation take 2 values, padding 4 (top, left, bottom, right)")
        if not isinstance(self.groups, int) or self.groups < 1 or weight.shape[0] % self.groups:
            raise HdlgenError(f"layer {self.name!r}: groups={self.groups!r} must divide the {weight.shape[0]} output channels")

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        c, h, w = in_shape
        if c != self.weight.shape[1] * self.groups:
            raise HdlgenError(f"layer {self.name!r}: takes {self.weight.shape[1] * self.groups} input channels, "
                              f"but its input has {c}")
        return (self.weight.shape[0],) + _window_out(self.name, (h, w), self.kernel, self.stride, self.padding, self.dilation)


def _window_out(name, hw, kernel, stride, padding, dilation) -> tuple[int, int]:
    out = []
    for axis in range(2):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        size = hw[axis] + padding[axis] + padding[axis + 2] - span
        if size < 0:
            raise HdlgenError(f"layer {name!r}: a {kernel[0]}x{kernel[1]} window does not fit its "
                              f"{hw[0]}x{hw[1]} input (padding {padding})")
        out.append(size // stride[axis] + 1)
    return out[0], out[1]


def _pool_window(layer) -> None:
    """A pooling layer's ``kernel``, ``stride`` (the kernel when None) and ``padding``, checked and as tuples."""
    object.__setattr__(layer, "kernel", _pair(layer.name, "kernel", layer.kernel, 1))
    stride = layer.kernel if layer.stride is None else _pair(layer.name, "stride", layer.stride, 1)
    object.__setattr__(layer, "stride", stride)
    object.__setattr__(layer, "padding", _pair(layer.name, "padding", layer.padding, 0))
    if len(layer.kernel) != 2 or len(layer.stride) != 2 or len(layer.padding) != 4:
        raise HdlgenError(f"layer {layer.name!r}: kernel and stride take 2 values, padding 4")


def _flag(layer, what: str) -> None:
    value = getattr(layer, what)
    if not isinstance(value, (bool, np.bool_)):
        raise HdlgenError(f"layer {layer.name!r}: {what} must be true or false, not {value!r}")
    object.__setattr__(layer, what, bool(value))


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    """Max pooling over ``kernel`` windows (ONNX MaxPool; padded taps never win). With ``ceil_mode``
    the output takes a last, partial window where the input leaves one (ONNX's rule: a window that
    would start in the bottom or right padding is dropped), as if padded further at the bottom and
    right (``window_padding``)."""

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False

    def __post_init__(self):
        _pool_window(self)
        _flag(self, "ceil_mode")

    def window_padding(self, hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, bottom, right): the padding, with ``ceil_mode``'s partial windows as more."""
        top, left, bottom, right = self.padding
        if not self.ceil_mode:
            return self.padding
        extra = []
        for axis in range(2):
            size = hw[axis] + self.padding[axis] + self.padding[axis + 2]
            k, s = self.kernel[axis], self.stride[axis]
            if size < k:
                extra.append(0)
                continue
            out = -(-(size - k) // s) + 1
            if (out - 1) * s >= hw[axis] + self.padding[axis]:      # the last window starts in the padding
                out -= 1
            extra.append(max(0, (out - 1) * s + k - size))
        return top, left, bottom + extra[0], right + extra[1]

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        c, h, w = in_shape
        return (c,) + _window_out(self.name, (h, w), self.kernel, self.stride, self.window_padding((h, w)), (1, 1))


@dataclass(frozen=True, eq=False)
class AvgPool2d:
    """ONNX AveragePool of quantized values over ``kernel`` windows (``stride`` defaults to the
    kernel). Each window's sum is exact, and ``mean = float(sum * scale) / count``, one rounding and
    one division in the model's float type, as onnxruntime gives for exact sums. ``count`` is
    ``kh * kw``, or with ``count_include_pad`` false the window's taps inside the image (padded
    taps hold 0 either way)."""

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False

    def __post_init__(self):
        _pool_window(self)
        _flag(self, "count_include_pad")

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        c, h, w = in_shape
        return (c,) + _window_out(self.name, (h, w), self.kernel, self.stride, self.padding, (1, 1))

    def counts(self, hw: tuple[int, int]) -> np.ndarray:
        """The divisor of each output pixel, (OH, OW)."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        _, oh, ow = self.out_shape((1,) + tuple(hw))
        if self.count_include_pad:
            return np.full((oh, ow), kh * kw, dtype=np.int64)
        top, left, bottom, right = self.padding
        inside = np.pad(np.ones(hw, dtype=np.int64), ((top, bottom), (left, right)))
        return sum(inside[ky: ky + sh * (oh - 1) + 1: sh, kx: kx + sw * (ow - 1) + 1: sw]
                   for ky in range(kh) for kx in range(kw))


@dataclass(frozen=True, eq=False)
class GlobalAvgPool:
    """ONNX GlobalAveragePool: (C, H, W) to (C, 1, 1), the mean of each channel. On quantized values
    the sum is exact and ``mean = float(sum * scale) / (H * W)``, one rounding, as onnxruntime gives."""

    name: str


@dataclass(frozen=True, eq=False)
class Flatten:
    """(channels, height, width) to (features,) in C, H, W order, as ONNX's Flatten and Reshape do."""

    name: str


Layer = (AvgPool2d | GlobalAvgPool | Flatten | Dense | Conv2d | BatchNorm | ShiftBatchNorm | Elementwise | Clip | Quantizer | MultiThreshold | Trunc
         | Requantize | MaxPool2d)

#: Layers that produce quantized values (integers times a scale).
QUANTIZING = (Quantizer, MultiThreshold, Trunc, Requantize)
#: Layers that map each value on its own, monotonically, in the model's float arithmetic.
ELEMENTWISE = (BatchNorm, ShiftBatchNorm, Elementwise, Clip)
ARITHMETIC = ("float64", "float32")


def channels(shape: tuple[int, ...]) -> int:
    """The channel count of an activation shape: features of a vector, C of (C, H, W)."""
    return shape[0]


@dataclass(frozen=True)
class HostOp:
    """A model's last op when it is ``Softmax``, ``LogSoftmax`` or ``ArgMax``: the hardware emits its
    input (the logits) and the host applies it, as onnxruntime computes it at ``opset`` with the
    node's own ``attributes`` (integers only, as a sorted tuple of pairs)."""

    op: str
    attributes: tuple[tuple[str, int], ...] = ()
    opset: int = 13

    OPS = ("Softmax", "LogSoftmax", "ArgMax")

    def __post_init__(self):
        if self.op not in self.OPS:
            raise HdlgenError(f"host op {self.op!r} is not one of {', '.join(self.OPS)}")
        object.__setattr__(self, "attributes", tuple(sorted((str(k), int(v)) for k, v in dict(self.attributes).items())))


@dataclass(frozen=True, eq=False)
class Model:
    """A feed-forward chain: the input quantizer, then layers in order.

    ``arithmetic`` is the float type the source framework computes in: ``float64`` for native
    descriptions, ``float32`` for QONNX files (what qonnx's executor uses).
    """

    name: str
    input: InputQuantizer
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    arithmetic: str = "float64"
    host: HostOp | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.arithmetic not in ARITHMETIC:
            raise HdlgenError(f"model {self.name!r}: arithmetic {self.arithmetic!r} is not one of {', '.join(ARITHMETIC)}")
        if not self.layers:
            raise HdlgenError(f"model {self.name!r} has no layers")
        names = [self.input.name] + [layer.name for layer in self.layers]
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise HdlgenError(f"layer name {name!r} must be a valid identifier (letters, digits, underscores)")
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise HdlgenError(f"layer name {duplicate!r} is used twice; names must be unique")
        out_shape = self.shapes()[-1]
        if self.host is not None and len(out_shape) != 1:
            raise HdlgenError(f"model {self.name!r}: a final {self.host.op} is supported on (batch, features) outputs, "
                              f"not on {out_shape}")

    @property
    def dtype(self):
        return np.dtype(self.arithmetic)

    def shapes(self) -> list[tuple[int, ...]]:
        """Activation shape after the input quantizer and after each layer; checks that they connect.

        Shapes leave out the batch axis: ``(features,)`` or ``(channels, height, width)``. A dense
        layer after a (C, H, W) tensor takes it flattened in C, H, W order, as ONNX's Flatten does.
        """
        shape, quantized = self.input.shape, True
        shapes = [shape]
        for before, layer in zip((self.input,) + self.layers, self.layers):
            if isinstance(layer, Requantize):
                if not isinstance(before, (Dense, Conv2d)):
                    raise HdlgenError(f"layer {layer.name!r}: a requantize layer takes a dense or convolution layer's "
                                      f"integer sums, so it must follow one directly, not {before.name!r}")
                if layer.multiplier.size not in (1, channels(shape)) or layer.bias.size not in (1, channels(shape)):
                    raise HdlgenError(f"layer {layer.name!r}: multiplier and bias must have 1 or {channels(shape)} "
                                      f"values, one per channel")
            if isinstance(layer, (Dense, Conv2d)) and not quantized:
                raise HdlgenError(f"layer {layer.name!r}: a {type(layer).__name__.lower()} layer's input must be "
                                  f"quantized; add a quantizer before it")
            if isinstance(layer, Dense):
                features = int(np.prod(shape))
                if layer.in_features != features:
                    raise HdlgenError(f"layer {layer.name!r}: weight has {layer.in_features} input features but the "
                                      f"previous layer gives {features}; the weight must be ({layer.out_features}, {features})")
                shape, quantized = (layer.out_features,), False
            elif isinstance(layer, (Conv2d, MaxPool2d)):
                if len(shape) != 3:
                    raise HdlgenError(f"layer {layer.name!r}: needs a (channels, height, width) input, not {shape}")
                shape = layer.out_shape(shape)
                quantized = quantized and isinstance(layer, MaxPool2d)
            elif isinstance(layer, (BatchNorm, ShiftBatchNorm, Elementwise, MultiThreshold)):
                what, size = {BatchNorm: lambda l: ("batch norm", l.features),
                              ShiftBatchNorm: lambda l: ("batch norm", l.features),
                              Elementwise: lambda l: ("operand", l.operand.size),
                              MultiThreshold: lambda l: ("thresholds", l.thresholds.shape[0])}[type(layer)](layer)
                if size not in (1, channels(shape)) or (isinstance(layer, (BatchNorm, ShiftBatchNorm))
                                                        and size != channels(shape)):
                    raise HdlgenError(f"layer {layer.name!r}: {what} has {size} channels but its input has "
                                      f"{channels(shape)}")
                quantized = isinstance(layer, MultiThreshold)
            elif isinstance(layer, Clip):
                quantized = False
            elif isinstance(layer, Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, (GlobalAvgPool, AvgPool2d)):
                if not quantized:
                    raise HdlgenError(f"layer {layer.name!r}: average pooling needs quantized inputs; "
                                      f"add a quantizer before it")
                if len(shape) != 3:
                    raise HdlgenError(f"layer {layer.name!r}: needs a (channels, height, width) input, not {shape}")
                shape = (shape[0], 1, 1) if isinstance(layer, GlobalAvgPool) else layer.out_shape(shape)
                quantized = False
            elif isinstance(layer, (Quantizer, Trunc, Requantize)):
                quantized = True
            else:
                raise HdlgenError(f"layer {getattr(layer, 'name', layer)!r}: unsupported layer type {type(layer).__name__}")
            shapes.append(shape)
        return shapes

    @property
    def out_features(self) -> int:
        return int(np.prod(self.shapes()[-1]))
