"""Streamlining: a source model to a lowered, integer-only model.

Recognised pattern, repeated: a dense or convolution layer, any chain of elementwise layers (batch
norm, scalar or per-channel mul/add/sub/div, clip/ReLU), then a quantizing layer (quantizer,
MultiThreshold or Trunc), optionally followed by max pooling and flattening. The
last dense layer may instead end the model with its elementwise chain: its outputs come back in
model units through ``OutputStage``. Each layer's input must be the input quantizer or a
quantizing layer; its weights are bipolar, ternary, signed integers of 2 to 8 bits, or powers of
two (see ``hardware_weight_type``).

A max pool on a convolution's real outputs, before its activation (TensorLayer's BinaryNet puts
batch norm after the pool), moves after the activation: the activation is monotone per channel, so
the pool takes the maximum of the codes where the activation rises and their minimum where it
falls (batch-norm gamma < 0).

A convolution becomes a padding stage (when it pads; zero padding widens a bipolar image to
ternary codes so a padded tap adds exactly 0), a sliding window and a matrix-vector unit whose
weight columns are in the window's (ky, kx, c) order. A grouped convolution (depthwise: one group
per input channel, with any depth multiplier) gets the full matrix, zero outside each output
channel's group (bipolar weights become ternary there): the zero-skipping unit
(``transforms.zero_skip``) then spends no cycle on the blocks outside a group. Images stream with channels innermost, so a
dense layer after an image has its weight columns permuted from ONNX's C, H, W order.

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

import dataclasses

import numpy as np

from ..errors import HdlgenError
from ..ir.evaluate import apply_elementwise, apply_quantizer, real_output
from ..ir.lowered import (GlobalPoolStage, LoweredModel, MatrixVectorLayer, OutputStage, PadStage, PoolStage,
                          WindowMaxStage, WindowStage)
from ..ir.model import (ELEMENTWISE, QUANTIZING, AvgPool2d, BatchNorm, Conv2d, Dense, Elementwise, Flatten, GlobalAvgPool,
                        MaxPool2d, Model, Requantize, ShiftBatchNorm)
from ..ir.quant import MAX_BITS, TERNARY, QuantKind, QuantType
from .bisect import smallest_reaching
from .requant import choose_unit, fit_scores
from ..golden.layers import accumulator_outputs

def _describe(layer) -> str:
    return f"layer {layer.name!r}: a {type(layer).__name__.lower()}"


def _groups(model: Model):
    """Split the layer chain into (Dense | Conv2d, [elementwise...], quantizing layer | None) groups, with
    MaxPool2d and Flatten layers as groups of their own."""
    layers, groups, i = model.layers, [], 0
    quantized = True
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, (Flatten, MaxPool2d)):
            if isinstance(layer, MaxPool2d) and not quantized:
                raise HdlgenError(f"{_describe(layer)} on real values is supported only between a convolution and "
                                  f"its activation quantizer (with elementwise layers around it); put it after the "
                                  f"activation")
            groups.append(layer)
            i += 1
            continue
        if isinstance(layer, (GlobalAvgPool, AvgPool2d)) and not quantized:
            raise HdlgenError(f"{_describe(layer)} on real values is not supported; quantize its input")
        if not isinstance(layer, (Dense, Conv2d, GlobalAvgPool, AvgPool2d)):
            after = layers[i - 1].name if i else model.input.name
            raise HdlgenError(f"{_describe(layer)} after {after!r} is not a supported pattern; layers must come as "
                              f"dense or conv, elementwise layers (batch norm, scale, bias, clip), quantizer")
        j = i + 1
        while j < len(layers) and isinstance(layers[j], ELEMENTWISE + (Flatten,)):
            j += 1
        quant = layers[j] if j < len(layers) and isinstance(layers[j], QUANTIZING) else None
        rest = layers[j + (quant is not None):]
        if quant is None and any(not isinstance(r, Flatten) for r in rest):
            raise HdlgenError(f"layer {layers[j].name!r}: only the last dense layer may go without a quantizer; "
                              f"add a quantizer after {layers[j - 1].name!r}")
        if quant is None and isinstance(layer, (GlobalAvgPool, AvgPool2d)):
            raise HdlgenError(f"{_describe(layer)} must be followed by a quantizer (Trunc or Quant), optionally "
                              f"after elementwise layers")
        groups.append((layer, tuple(t for t in layers[i + 1:j] if not isinstance(t, Flatten)), quant))
        quantized = quant is not None
        i = j + (quant is not None)
    return groups


def _direction(dense: Dense | Conv2d, tail) -> np.ndarray:
    """Per output channel: +1 where the chain rises with the dot product, -1 where it falls, 0 if constant."""
    sign = np.ones(dense.weight.shape[0])
    for layer in tail:
        if isinstance(layer, BatchNorm):
            sign = sign * np.sign(layer.gamma)
        elif isinstance(layer, ShiftBatchNorm):
            sign = sign * layer.sign
        elif isinstance(layer, Elementwise) and layer.op in ("mul", "div"):
            sign = sign * np.sign(layer.operand)
    return sign


def _codes(dense: Dense, tail, quant, in_scale: float, dtype, acc: np.ndarray) -> np.ndarray:
    """The source model's output codes for dot products ``acc`` (k, channels), straight from its arithmetic."""
    if isinstance(quant, Requantize):
        return quant.quant.encode(quant.values(acc))
    real = real_output(dense, acc, in_scale, dtype)
    for layer in tail:
        real = apply_elementwise(layer, real)
    return quant.quant.encode(apply_quantizer(quant, real))


def _thresholds(layer: MatrixVectorLayer, dense: Dense, tail, quant, in_scale: float, dtype,
                flip: np.ndarray) -> np.ndarray:
    """Smallest P per (row, level) whose activation reaches that level, by bisection."""
    gain, offset = layer.acc_gain, layer.acc_offset
    sign = np.where(flip, -1, 1)
    return smallest_reaching(lambda p: _codes(dense, tail, quant, in_scale, dtype, sign * (gain * p + offset)),
                             quant.quant.levels, layer.row_p_max)


def ungrouped_weight(conv: Conv2d) -> np.ndarray:
    """A grouped convolution's weight as an ordinary one, (out, in, kh, kw), zero between an output
    channel and the inputs outside its group."""
    if conv.groups == 1:
        return conv.weight
    out, per_group, kh, kw = conv.weight.shape
    full = np.zeros((out, per_group * conv.groups, kh, kw), dtype=conv.weight.dtype)
    per_out = out // conv.groups
    for o in range(out):
        g = o // per_out
        full[o, g * per_group:(g + 1) * per_group] = conv.weight[o]
    return full


def hardware_weight_type(dense: Dense | Conv2d) -> QuantType:
    """The layer's weight type as hardware multiplies it, recognised from the values it holds: a
    signed type whose weights are all -1, 0 or +1 is ternary, and one whose non-zero weights are
    all powers of two is POW2 (shifts instead of multiplications). A grouped convolution's bipolar
    weights are ternary, for the zeros between groups."""
    q, w = dense.weight_quant, np.abs(dense.weight)
    if q.kind is QuantKind.BIPOLAR and getattr(dense, "groups", 1) > 1:
        return TERNARY
    if q.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
        return q
    top = int(w.max())
    if top <= 1:
        return TERNARY
    if q.kind is QuantKind.INT and not np.any(w & (w - 1)) and top.bit_length() + 1 <= MAX_BITS:
        return QuantType.pow2(top.bit_length() + 1)
    return q


def _rising_after_pool(layer, tail, channels: int) -> None:
    sign = np.ones(channels)
    for t in tail:
        sign = sign * (np.sign(t.gamma) if isinstance(t, BatchNorm) else t.sign if isinstance(t, ShiftBatchNorm) else
                       np.sign(t.operand) if isinstance(t, Elementwise) and t.op in ("mul", "div") else 1)
    if np.any(sign < 0):
        what = "global pooling" if isinstance(layer, GlobalAvgPool) else "average pooling"
        raise HdlgenError(f"layer {layer.name!r}: a falling activation (negative factor or gamma) after {what} "
                          f"is not supported")


def _avg_pool_stages(layer: AvgPool2d, tail, quant, shape, in_type: QuantType, in_scale: float, dtype):
    """Average pooling as a depthwise convolution with weights 1 (padding, sliding window, a layer
    with one weight a tap, zero-skipping its other channels) whose thresholds fold the division by
    the window's count, the elementwise chain and the quantizer."""
    h, w, c = shape
    counts = layer.counts((h, w))
    if np.any(counts != counts.flat[0]):
        raise HdlgenError(f"layer {layer.name!r}: average pooling with padding {layer.padding} and "
                          f"count_include_pad=0 divides border windows by fewer taps than the others, which hardware "
                          f"thresholds cannot follow; export with count_include_pad=1 or without padding")
    _rising_after_pool(layer, tail, c)
    ones = Conv2d(layer.name, np.ones((c, 1) + tuple(layer.kernel)), TERNARY, stride=layer.stride,
                  padding=layer.padding, groups=c)
    stages = _window_stages(ones, shape, in_type)
    window = stages[-1]
    weights = ungrouped_weight(ones).transpose(0, 2, 3, 1).reshape(c, -1)
    sums = MatrixVectorLayer(layer.name, window.in_type, TERNARY, weights, None, None, window.out_spatial)
    count = np.asarray(counts.flat[0], dtype=dtype)

    def codes(p):
        real = ((sums.acc_gain * p + sums.acc_offset) * np.float64(in_scale)).astype(dtype) / count
        for t in tail:
            real = apply_elementwise(t, real)
        return quant.quant.encode(apply_quantizer(quant, real))

    thresholds = smallest_reaching(codes, quant.quant.levels, sums.row_p_max)
    return stages + [MatrixVectorLayer(layer.name, window.in_type, TERNARY, weights, thresholds, quant.quant,
                                       window.out_spatial)]


def _global_pool_stage(layer: GlobalAvgPool | AvgPool2d, tail, quant, shape, in_type: QuantType, in_scale: float,
                       dtype) -> GlobalPoolStage:
    """Sum of codes per channel with thresholds that fold the mean, the elementwise chain and the quantizer."""
    _rising_after_pool(layer, tail, shape[2])
    probe = GlobalPoolStage(layer.name, shape, in_type, np.zeros((shape[2], quant.quant.levels - 1), np.int64), quant.quant)
    pixels = probe.pixels

    def codes(sums):
        real = (probe.value_sums(sums) * np.float64(in_scale)).astype(dtype) / np.asarray(pixels, dtype=dtype)
        for t in tail:
            real = apply_elementwise(t, real)
        return quant.quant.encode(apply_quantizer(quant, real))

    thresholds = smallest_reaching(codes, quant.quant.levels, np.full(shape[2], probe.acc_max))
    return GlobalPoolStage(layer.name, shape, in_type, thresholds, quant.quant)


def _window_stages(conv: Conv2d, shape: tuple[int, int, int], in_type: QuantType):
    """Padding and sliding-window stages in front of a convolution's matrix-vector unit."""
    stages = []
    if any(conv.padding):
        # a bipolar image has no code for 0, so zero padding widens it to ternary
        out_type = TERNARY if in_type.is_bipolar and conv.pad_value == 0 else in_type
        if not out_type.contains(np.array([conv.pad_value])):
            raise HdlgenError(f"layer {conv.name!r}: pad value {conv.pad_value} is not a value of its {in_type} input")
        stages.append(PadStage(f"{conv.name}_pad", shape, conv.padding, in_type, out_type,
                               int(out_type.encode(conv.pad_value))))
        shape, in_type = stages[-1].out_shape, out_type
    stages.append(WindowStage(f"{conv.name}_window", shape, conv.kernel, conv.stride, conv.dilation, in_type))
    return stages


def _max_pool_stages(pool: MaxPool2d, shape: tuple[int, int, int], in_type: QuantType, minimum: tuple[bool, ...]):
    """Non-overlapping, unpadded windows: one pooling stage (``PoolStage``). Otherwise padding with
    code 0 (the lowest value, which never wins), a sliding window and its maximum (``WindowMaxStage``)."""
    padding = pool.window_padding(shape[:2])
    if pool.stride == pool.kernel and not any(padding):
        return [PoolStage(pool.name, shape, pool.kernel, in_type, minimum)]
    if any(minimum):
        raise HdlgenError(f"layer {pool.name!r}: a max pool with stride {pool.stride} and padding {padding} between a "
                          f"convolution and an activation that falls in some channels (batch-norm gamma < 0) is not "
                          f"supported; put the pool after the activation")
    stages = []
    if any(padding):
        stages.append(PadStage(f"{pool.name}_pad", shape, padding, in_type, in_type, 0))
        shape = stages[-1].out_shape
    stages.append(WindowStage(f"{pool.name}_window", shape, pool.kernel, pool.stride, (1, 1), in_type))
    taps = pool.kernel[0] * pool.kernel[1]
    return stages + [WindowMaxStage(pool.name, stages[-1].out_shape, taps, in_type)]


def _hwc_columns(weight: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Dense weight columns from ONNX's C, H, W order to the stream's H, W, C order."""
    if len(shape) != 3:
        return weight
    h, w, c = shape
    return weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _pools_after_activations(model: Model) -> tuple[Model, dict[str, tuple[bool, ...]]]:
    """Move each max pool on a convolution's real outputs (conv -> [elementwise] -> pool ->
    [elementwise] -> quantizer, as TensorLayer's BinaryNet puts batch norm after the pool) to after
    the quantizer. The layers after the pool are monotone per channel, so ``act(max(x))`` is
    ``max(act(x))`` where the activation rises with x and ``min(act(x))`` where it falls (batch-norm
    gamma < 0); which one is found by evaluating the activation at the channel's extreme inputs.
    Returns the reordered model and, per moved pool, its channels that take the minimum."""
    layers, minimum = list(model.layers), {}
    scale, quant, i = model.input.scale, model.input.quant, 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, QUANTIZING):
            scale, quant = layer.scale, layer.quant
        if not isinstance(layer, Conv2d):
            i += 1
            continue
        j = i + 1
        while j < len(layers) and isinstance(layers[j], ELEMENTWISE):
            j += 1
        k = j + 1
        while k < len(layers) and isinstance(layers[k], ELEMENTWISE):
            k += 1
        if j >= len(layers) or not isinstance(layers[j], MaxPool2d) or k >= len(layers) \
                or not isinstance(layers[k], QUANTIZING):
            i += 1
            continue
        pool, before, after, act = layers[j], layers[i + 1:j], layers[j + 1:k], layers[k]
        reach = max(abs(quant.lo), abs(quant.hi)) * np.abs(layer.weight).reshape(len(layer.weight), -1).sum(axis=1)
        y = real_output(layer, np.stack([-reach, reach]), scale, model.dtype)
        for e in before:
            y = apply_elementwise(e, y)
        y = np.sort(y, axis=0)                   # the range the pool sees, per channel
        for e in after:
            y = apply_elementwise(e, y)
        q = apply_quantizer(act, y)
        minimum[pool.name] = tuple(bool(v) for v in q[1] < q[0])
        layers[j:k + 1] = [*after, act, pool]
        i = k + 1
    if not minimum:
        return model, minimum
    return Model(model.name, model.input, tuple(layers), model.arithmetic, model.host), minimum


def streamline(model: Model, requant: str = "auto") -> LoweredModel:
    """Lower ``model`` to integer pipeline stages with thresholds (see the module docstring), each
    followed by the requantization unit ``requant`` asks for (``transforms.requant``)."""
    model, pool_minimum = _pools_after_activations(model)
    in_type, in_scale, dtype = model.input.quant, model.input.scale, model.dtype
    s = model.input.shape
    shape = (s[1], s[2], s[0]) if len(s) == 3 else s          # the stream's shape: channels innermost
    stages, output = [], None
    for group in _groups(model):
        if isinstance(group, Flatten):
            continue
        if isinstance(group, MaxPool2d):
            stages += _max_pool_stages(group, shape, in_type, pool_minimum.get(group.name, ()))
            shape = stages[-1].out_shape
            continue
        layer, tail, quant = group
        if isinstance(layer, AvgPool2d) and (tuple(layer.kernel) != tuple(shape[:2]) or any(layer.padding)):
            stages += _avg_pool_stages(layer, tail, quant, shape, in_type, in_scale, dtype)
            shape, in_type, in_scale = stages[-1].out_shape, quant.quant, quant.scale
            output = OutputStage(quant=quant.quant, scale=quant.scale)
            continue
        if isinstance(layer, (GlobalAvgPool, AvgPool2d)):          # (a window the size of the image)
            stages.append(_global_pool_stage(layer, tail, quant, shape, in_type, in_scale, dtype))
            shape, in_type, in_scale = stages[-1].out_shape, quant.quant, quant.scale
            output = OutputStage(quant=quant.quant, scale=quant.scale)
            continue
        weight_type = hardware_weight_type(layer)
        if isinstance(layer, Conv2d):
            stages += _window_stages(layer, shape, in_type)
            window = stages[-1]
            in_type, spatial = window.in_type, window.out_spatial
            weight = ungrouped_weight(layer).transpose(0, 2, 3, 1).reshape(layer.weight.shape[0], -1)
        else:
            weight, spatial = _hwc_columns(layer.weight, shape), ()
        if quant is None:
            last = MatrixVectorLayer(layer.name, in_type, weight_type, weight, None, None, spatial)
            output = OutputStage(multiplier=in_scale * layer.weight_scale, bias=layer.bias, tail=tuple(tail))
            if requant != "thresholds":
                unit = fit_scores(last, lambda p, last=last, out=output: accumulator_outputs(last, out, p, dtype))
                last = last if unit is None else dataclasses.replace(last, requant=unit)
            stages.append(last)
            continue
        flip = _direction(layer, tail) < 0
        weights = np.where(flip[:, None], -weight, weight)
        unfolded = MatrixVectorLayer(layer.name, in_type, weight_type, weights, None, None, spatial)
        thresholds = _thresholds(unfolded, layer, tail, quant, in_scale, dtype, flip)
        lowered = MatrixVectorLayer(layer.name, in_type, weight_type, weights, thresholds, quant.quant, spatial)
        stages.append(choose_unit(lowered, quant, requant))
        shape = stages[-1].out_shape
        in_type, in_scale = quant.quant, quant.scale
        output = OutputStage(quant=quant.quant, scale=quant.scale)
    if not any(isinstance(stage, MatrixVectorLayer) for stage in stages):
        raise HdlgenError(f"model {model.name!r} has no dense or convolution layer")
    if requant == "fixed" and not any(getattr(stage, "requant", None) is not None and stage.requant.kind == "fixed"
                                      for stage in stages):
        raise HdlgenError(f"--requant fixed makes gemmlowp's fixed-point unit from onnxruntime's int32 rescale, and "
                          f"model {model.name!r} has none (it is not an ONNX QDQ model with a quantized layer "
                          f"between two others): leave --requant auto")
    return LoweredModel(model.name, model.input, tuple(stages), output, model.arithmetic, model.host)
