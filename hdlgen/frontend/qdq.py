"""ONNX QDQ import: a model quantized by onnxruntime (``quantize_static``, or ``hdlgen quantize``).

QuantizeLinear / DequantizeLinear pairs mark where a float graph holds integers. onnxruntime, with
its default session options, fuses ``DQ -> Conv | Gemm | MatMul -> Q`` into QLinearConv / QGemm /
QLinearMatMul: integer dot products of the stored integers less their zero points, an int32 bias,
then a float32 rescale (``ir.semantics.requantize``). The importer reads the same patterns into the
same arithmetic, so the hardware equals onnxruntime running the file:

=====================================================  ==========================================
pattern                                                IR
=====================================================  ==========================================
input -> QuantizeLinear                                InputQuantizer (round half to even)
DQ -> Conv | Gemm | MatMul [-> Relu] -> QuantizeLinear  Conv2d | Dense, then Requantize
DQ -> MaxPool | Flatten | Reshape -> Q (same scale)    MaxPool2d | Flatten on the integers
DQ -> AveragePool -> QuantizeLinear                    AvgPool2d, then Quantizer (half to even)
QuantizeLinear -> DequantizeLinear (same scale)        nothing: the integers travel on
DequantizeLinear -> output [-> Softmax | ArgMax]        the output in model units
=====================================================  ==========================================

Weights are DequantizeLinear of int8 constants with zero point 0 (symmetric, per tensor or per
output channel); biases are DequantizeLinear of int32 constants whose scale is the input scale times
the weight scale. Activations are uint8 or int8 with any zero point: the zero point becomes part of
the quant type (``uint8_zp3``) and folds exactly into each row's accumulator offset. A Relu before
the output QuantizeLinear is accepted where the quantizer's saturation already does its work (zero
point at the type's minimum), as onnxruntime's fusion assumes.

An AveragePool is the window's exact sum times the input scale, rounded once to float32, divided by
the window's size (``ir.evaluate.window_mean``), then quantized half to even. onnxruntime's fused
kernel computes in float32 with other roundings: with scales that are not powers of two, a mean
exactly on a tie of the output's steps can come out one step up or down; nowhere else
(``tests/unit/test_qdq_import.py`` counts them; with power-of-two scales there are none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from ..ir.model import Conv2d, Dense, InputQuantizer, Model, Quantizer, Requantize
from ..ir.quant import MAX_BITS, QuantType
from .qonnx import F32, QConst, _Importer

__all__ = ["load_qdq", "is_qdq", "QDQ_OPS", "SUPPORTED_QDQ_OPS"]

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm")
SUPPORTED_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "MatMul", "Relu", "MaxPool", "AveragePool",
                     "Flatten",
                     "Reshape", "Identity", "Dropout", "QLinearConv", "QLinearMatMul", "QGemm (com.microsoft)",
                     "Softmax (last)", "LogSoftmax (last)", "ArgMax (last)")
MICROSOFT = "com.microsoft"
QGEMM_INPUTS = (6, 9)
_INT_TYPES = {np.dtype(np.uint8): (False, 8), np.dtype(np.int8): (True, 8),
              np.dtype(np.uint16): (False, 16), np.dtype(np.int16): (True, 16)}


def is_qdq(proto) -> bool:
    """Whether the graph is quantized the ONNX way: QDQ (QuantizeLinear / DequantizeLinear) or the
    QOperator form (QLinearConv, QLinearMatMul, onnxruntime's QGemm)."""
    return any(node.op_type in QDQ_OPS and node.domain in ("", "ai.onnx", MICROSOFT) for node in proto.graph.node)


@dataclass(frozen=True)
class _Params:
    """A quantized activation: its scale, and its type with the zero point."""

    scale: float
    quant: QuantType

    def same(self, other: _Params) -> bool:
        return self.scale == other.scale and self.quant == other.quant


@dataclass(frozen=True)
class _Stored:
    """A constant DequantizeLinear reads: stored integers, scale and zero point broadcast to them."""

    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    dtype: np.dtype


class _NodeView:
    """A QOperator node seen as the float op of its QDQ pattern (same name, other inputs)."""

    def __init__(self, node, inputs: list[str]):
        self.input, self.output, self.name = inputs, node.output, node.name
        self.op_type, self.doc_string = node.op_type, node.doc_string


@dataclass
class _Pending:
    """A weighted layer waiting for the QuantizeLinear that requantizes its sums."""

    layer: Dense | Conv2d
    node: object
    multiplier_in: np.ndarray          # input scale times weight scale per channel, in float32
    bias: np.ndarray
    relu: object = None                # the Relu node between the layer and its quantizer


class _QdqImporter(_Importer):
    def __init__(self, path: Path, proto):
        super().__init__(path, proto)
        self.state = "float"           # float (before the input quantizer), int (stored integers), real (dequantized)
        self.params: _Params | None = None
        self.pending: _Pending | None = None
        self.pooled = False            # an AveragePool waits for the QuantizeLinear of its means

    # -- constants ------------------------------------------------------------------------------------
    def fold_constant(self, node):
        if node.op_type == "DequantizeLinear":
            self.const[node.output[0]] = self.stored(node, self.attrs(node))
        elif node.op_type == "QuantizeLinear":
            self.node_fail(node, "quantizes a constant while loading; store the weights quantized (int8 initializers "
                                 "with a DequantizeLinear, as onnxruntime's quantize_static writes them)")
        else:
            super().fold_constant(node)

    def stored(self, node, a) -> _Stored:
        return self.stored_named(node, *(list(node.input) + [""])[:3], a.get("axis", 1))

    def stored_named(self, node, values: str, scale_name: str, zero_name: str, axis: int) -> _Stored:
        x = self.const.get(values)
        if x is None or isinstance(x, (_Stored, QConst)) or not np.issubdtype(np.asarray(x).dtype, np.integer):
            self.node_fail(node, "dequantizes something that is not stored integers")
        x = np.asarray(x)
        scale = np.asarray(self.constant(node, scale_name, "scale"), dtype=F32)
        zero = np.asarray(self.const[zero_name]) if zero_name else np.zeros((), x.dtype)
        if np.any(scale <= 0):
            self.node_fail(node, "its scale must be positive")
        if zero.size not in (1, scale.size) or (zero.size > 1 and scale.size == 1):
            self.node_fail(node, f"its zero point has {zero.size} values for {scale.size} scales")
        if scale.size > 1:
            if scale.ndim != 1 or not -x.ndim <= axis < x.ndim or x.shape[axis] != scale.size:
                self.node_fail(node, f"its scale of shape {scale.shape} does not fit axis {axis} of {x.shape}")
            shape = [1] * x.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), np.asarray(zero).reshape(shape if zero.size > 1 else ())
        return _Stored(x.astype(np.int64), np.broadcast_to(scale, x.shape), np.broadcast_to(zero, x.shape).astype(np.int64),
                       x.dtype)

    def weights(self, node, name: str, what: str) -> QConst:
        w = self.const.get(name)
        if not isinstance(w, _Stored):
            self.node_fail(node, f"its {what} ({name!r}) must be a DequantizeLinear of stored int8 constants")
        if np.any(w.zero_point != 0):
            self.node_fail(node, f"its {what} have a non-zero zero point; hdlgen needs symmetric weights (quantize "
                                 f"with weight_type=QInt8, as hdlgen quantize does)")
        signed, bits = _INT_TYPES.get(w.dtype, (None, None))
        if signed is None or bits > MAX_BITS:
            self.node_fail(node, f"its {what} are stored as {w.dtype}; hdlgen takes int8 or uint8 weights")
        quant = QuantType.int(bits) if signed else QuantType.uint(bits)
        return QConst(w.values, w.scale.astype(F32), quant, (w.values * w.scale).astype(F32))

    def bias(self, node, name: str, channels: int, expected: np.ndarray) -> np.ndarray:
        b = self.const.get(name)
        if not isinstance(b, _Stored) or b.dtype != np.int32 or np.any(b.zero_point != 0):
            self.node_fail(node, f"its bias ({name!r}) must be a DequantizeLinear of int32 constants with zero point "
                                 f"0, as onnxruntime's quantizer writes it; quantize the bias too")
        if b.values.size not in (1, channels):
            self.node_fail(node, f"its bias has {b.values.size} values for {channels} outputs")
        scale = np.broadcast_to(b.scale.reshape(-1), (channels,)) if b.values.size == 1 else b.scale.reshape(-1)
        if not np.allclose(scale, expected, rtol=1e-6, atol=0):
            self.node_fail(node, "its bias scale is not its input scale times its weight scale; onnxruntime's fused "
                                 "kernels would add the int32 bias as if it were")
        return np.broadcast_to(b.values.reshape(-1), (channels,)).copy()

    def activation_params(self, node, names: tuple[str, str] | None = None) -> _Params:
        scale_name, zero_name = names or (list(node.input) + ["", ""])[1:3]
        scale = np.asarray(self.constant(node, scale_name, "scale"), dtype=F32)
        if scale.size != 1 or not scale.reshape(()) > 0:
            self.node_fail(node, "activations take one positive scale per tensor")
        zero = np.asarray(self.const[zero_name]) if zero_name else np.zeros((), np.uint8)
        if zero.size != 1:
            self.node_fail(node, "activations take one zero point per tensor")
        signed, bits = _INT_TYPES.get(zero.dtype, (None, None))
        if signed is None or bits > MAX_BITS:
            self.node_fail(node, f"{zero.dtype} activations are not supported; use uint8 or int8 (onnxruntime runs "
                                 f"16-bit QDQ layers in float, not as integer kernels)")
        zp = int(zero.reshape(()))
        quant = QuantType.int(bits, zero_point=zp) if signed else QuantType.uint(bits, zero_point=zp)
        return _Params(float(scale.reshape(())), quant)

    def check_node(self, node):
        if node.op_type == "QGemm" and node.domain == MICROSOFT:
            lo, hi = QGEMM_INPUTS
            if not lo <= len(node.input) <= hi or len(node.output) != 1:
                self.node_fail(node, f"it has {len(node.input)} inputs; QGemm takes {lo} to {hi} and gives one output")
            return
        super().check_node(node)

    # -- the chain --------------------------------------------------------------------------------------
    def activation_op(self, node):
        if node.op_type not in {op.split()[0] for op in SUPPORTED_QDQ_OPS}:
            self.node_fail(node, f"op {node.op_type} is not supported in a QDQ model; supported ops are "
                                 f"{', '.join(SUPPORTED_QDQ_OPS)}")
        if self.pooled and node.op_type != "QuantizeLinear":
            self.node_fail(node, "follows an AveragePool; hdlgen needs its means quantized (a QuantizeLinear) first")
        if self.pending is not None and node.op_type not in ("QuantizeLinear", "Relu"):
            self.node_fail(self.pending.node, f"its output goes to {node.op_type} {node.name!r}, not to a "
                                              f"QuantizeLinear; hdlgen needs every Conv, Gemm and MatMul requantized")
        if self.state == "float" and node.op_type != "QuantizeLinear":
            self.node_fail(node, "comes before the input is quantized: a QDQ model starts with a QuantizeLinear")
        super().activation_op(node)

    def op_QuantizeLinear(self, node, a):
        params = self.activation_params(node)
        if self.state == "float":
            shape = self.shape if len(self.shape) == 3 else None
            try:
                self.input_quant = InputQuantizer(int(np.prod(self.shape)), params.quant, params.scale,
                                                  rounding="HALF_EVEN", shape=shape)
            except HdlgenError as e:
                self.node_fail(node, str(e))
        elif self.state == "int":
            self.node_fail(node, "quantizes values that are already quantized")
        elif self.pending is not None:
            self.requantize(node, params)
        elif self.pooled:
            self.pooled = False
            try:
                self.add(Quantizer(self.unique(node), params.quant, params.scale, rounding="HALF_EVEN"))
            except HdlgenError as e:
                self.node_fail(node, str(e))
        elif not params.same(self.params):
            self.node_fail(node, f"requantizes from scale {self.params.scale:g} ({self.params.quant}) to "
                                 f"{params.scale:g} ({params.quant}) with no layer in between; hdlgen requantizes "
                                 f"only the outputs of Conv, Gemm and MatMul")
        self.state, self.params = "int", params

    def requantize(self, node, params: _Params):
        p, self.pending = self.pending, None
        if p.relu is not None and params.quant.lo < 0:
            self.node_fail(p.relu, f"a Relu before a quantizer whose zero point ({params.quant.zero_point}) lets "
                                   f"negative values through has no integer form here; quantize with a zero point "
                                   f"at the type's minimum (onnxruntime does for calibrated ReLU outputs)")
        multiplier = (p.multiplier_in / F32(params.scale)).astype(F32)
        name, k = f"{p.layer.name}_requant", 1
        while name in self.names:
            k += 1
            name = f"{p.layer.name}_requant_{k}"
        self.names.add(name)
        try:
            self.add(Requantize(name, params.quant, params.scale, multiplier, p.bias))
        except HdlgenError as e:
            self.node_fail(node, str(e))

    def op_DequantizeLinear(self, node, a):
        if self.state != "int":
            self.node_fail(node, "dequantizes a tensor that is not quantized")
        params = self.activation_params(node)
        if not params.same(self.params):
            self.node_fail(node, f"dequantizes with scale {params.scale:g} ({params.quant}), but its input was "
                                 f"quantized with {self.params.scale:g} ({self.params.quant})")
        self.state = "real"

    def weighted(self, node, layer: Dense | Conv2d, w: QConst, bias_name: str | None):
        """Add ``layer`` (its dot products) and wait for the quantizer of its outputs."""
        if self.state != "real":
            self.node_fail(node, "its input must be a DequantizeLinear of the quantized activations")
        channels = layer.weight.shape[0]
        w_scale = self.out_channel_scale(node, w).astype(F32)
        multiplier_in = (F32(self.params.scale) * np.broadcast_to(w_scale, (channels,))).astype(F32)
        bias = np.zeros(channels, np.int64) if bias_name is None else self.bias(node, bias_name, channels, multiplier_in)
        self.add(layer)
        self.pending = _Pending(layer, node, multiplier_in, bias)

    def op_Conv(self, node, a):
        w = self.conv_weights(node, a)
        try:
            conv = Conv2d(self.unique(node), w.values, w.quant, stride=a.get("strides", (1, 1)),
                          padding=a.get("pads", (0, 0, 0, 0)), dilation=a.get("dilations", (1, 1)),
                          groups=int(a.get("group", 1)))
            shape = conv.out_shape(self.shape)
        except HdlgenError as e:
            self.node_fail(node, str(e))
        self.weighted(node, conv, w, node.input[2] if len(node.input) > 2 and node.input[2] else None)
        self.shape = shape

    def dense_layer(self, node, w: QConst, bias_name: str | None):
        features = int(np.prod(self.shape))
        if w.values.shape[1] != features:
            self.node_fail(node, f"weights take {w.values.shape[1]} inputs but its input has {features} values")
        self.weighted(node, Dense(self.unique(node), w.values, w.quant), w, bias_name)
        self.shape = (w.values.shape[0],)

    def op_Gemm(self, node, a):
        if F32(a.get("alpha", 1.0)) != 1 or F32(a.get("beta", 1.0)) != 1:
            self.node_fail(node, "alpha and beta must keep their defaults (1, 1)")
        w = self.gemm_weights(node, a)
        self.dense_layer(node, w, node.input[2] if len(node.input) > 2 and node.input[2] else None)

    def op_MatMul(self, node, a):
        if node.input[0] != self.act:
            self.node_fail(node, "the weights must be its second input (x @ W)")
        w = self.weights(node, node.input[1], "weights")
        if w.values.ndim != 2:
            self.node_fail(node, f"weights must be a matrix, not shape {w.values.shape}")
        self.dense_layer(node, QConst(w.values.T, w.scale.T, w.quant, w.real.T), None)

    # -- the QOperator form: one node per quantized layer ---------------------------------------------
    def qoperator(self, node, w_index: int, w_axis: int, y_index: int, bias_index: int | None, make):
        """A QLinearConv / QLinearMatMul / QGemm as its QDQ pattern: the input ``(a, a_scale, a_zp)``
        at inputs 0-2, weights with scale and zero point from ``w_index`` (per channel along
        ``w_axis``), the int32 bias at ``bias_index``, the output's scale and zero point from
        ``y_index``. ``make(weights, bias)`` adds the layer from those constants' names."""
        if self.state != "int":
            self.node_fail(node, "its input must be quantized integers (a QuantizeLinear or another quantized layer)")
        given = self.activation_params(node, (node.input[1], node.input[2]))
        if not given.same(self.params):
            self.node_fail(node, f"its input scale {given.scale:g} ({given.quant}) is not its input's "
                                 f"{self.params.scale:g} ({self.params.quant})")
        ins = list(node.input) + [""] * 9
        weights, bias = f"{node.output[0]}:weights", None
        self.const[weights] = self.stored_named(node, ins[w_index], ins[w_index + 1], ins[w_index + 2], w_axis)
        if bias_index is not None and ins[bias_index]:
            values = self.const.get(ins[bias_index])
            channels = self.const[weights].values.shape[w_axis]
            if not isinstance(values, np.ndarray) or values.dtype != np.int32 or values.size not in (1, channels):
                self.node_fail(node, f"its bias must be an int32 constant with 1 or {channels} values")
            w_scale = np.moveaxis(self.const[weights].scale, w_axis, 0).reshape(channels, -1)[:, 0]
            bias = f"{node.output[0]}:bias"
            self.const[bias] = _Stored(np.broadcast_to(values.astype(np.int64).reshape(-1), (channels,)),
                                       (F32(self.params.scale) * w_scale).astype(F32), np.zeros(channels, np.int64),
                                       values.dtype)
        self.state = "real"                  # from here on, exactly the QDQ pattern
        make(weights, bias)
        params = self.activation_params(node, (ins[y_index], ins[y_index + 1]))
        self.requantize(node, params)
        self.state, self.params = "int", params

    def op_QLinearConv(self, node, a):
        def make(weights, bias):
            view = _NodeView(node, [node.input[0], weights] + ([bias] if bias else []))
            self.op_Conv(view, a)
        self.qoperator(node, 3, 0, 6, 8, make)

    def op_QLinearMatMul(self, node, a):
        if node.input[0] != self.act:
            self.node_fail(node, "the weights must be its second input (a @ b)")
        self.qoperator(node, 3, 1, 6, None, lambda weights, bias: self.op_MatMul(_NodeView(node, [node.input[0], weights]), a))

    def op_QGemm(self, node, a):
        if len(node.input) < 8 or not node.input[7]:
            self.node_fail(node, "its output is float (no y_scale); hdlgen needs it requantized to integers")
        view_attrs = {"transA": a.get("transA", 0), "transB": a.get("transB", 0), "alpha": a.get("alpha", 1.0)}

        def make(weights, bias):
            self.op_Gemm(_NodeView(node, [node.input[0], weights] + ([bias] if bias else [])), view_attrs)
        self.qoperator(node, 3, 0 if a.get("transB", 0) else 1, 7, 6, make)

    def op_Relu(self, node, a):
        if self.pending is None or self.pending.relu is not None:
            self.node_fail(node, "a Relu is supported between a Conv, Gemm or MatMul and its QuantizeLinear")
        self.pending.relu = node

    def op_MaxPool(self, node, a):
        if self.state == "float":
            self.node_fail(node, "pools values that are not quantized")
        super().op_MaxPool(node, a)

    def op_AveragePool(self, node, a):
        if self.state != "real":
            self.node_fail(node, "its input must be a DequantizeLinear of the quantized activations")
        super().op_AveragePool(node, a)
        self.pooled = True

    def run(self) -> Model:
        model = super().run()
        if self.pending is not None:
            self.node_fail(self.pending.node, "its output is not requantized (no QuantizeLinear after it); hdlgen "
                                              "needs every Conv, Gemm and MatMul requantized, the last one too")
        if self.state != "real":
            self.fail(f"the output {self.graph.output[0].name!r} is {'quantized integers' if self.state == 'int' else 'not quantized'}; "
                      f"a QDQ model ends with a DequantizeLinear (optionally then Softmax or ArgMax)")
        return model


def load_qdq(path: str | Path, proto) -> Model:
    """Import an ONNX QDQ model (already read by ``qonnx.read_onnx``) into the source-model IR."""
    return _QdqImporter(Path(path), proto).run()
