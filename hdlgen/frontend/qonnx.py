"""QONNX import: a ``.onnx`` file from Brevitas, QKeras/hls4ml or FINN to the source-model IR.

The graph must be one chain from its single input to its single output; everything off the chain
must be constant (weights, scales and the ops that compute them, such as a weight ``Quant``).
Constants are folded here with qonnx's own semantics, so a weight ``Quant`` becomes integer weights
and a per-channel scale. Activation ops map to IR layers:

======================================  =========================================================
ONNX / QONNX op                         IR layer
======================================  =========================================================
Quant, BipolarQuant (first on input)    InputQuantizer (the hardware input format)
Quant, BipolarQuant                     Quantizer (1-bit signed Quant is bipolar)
MultiThreshold                          MultiThreshold (outputs must be a quant type times a scale)
Trunc (qonnx opset 2)                   Trunc
Gemm, MatMul (constant weights)         Dense (alpha into the scale, beta * C as the bias)
Conv, MaxPool                           Conv2d, MaxPool2d
AveragePool                             AvgPool2d
GlobalAveragePool                       GlobalAvgPool
Pad (constant, before a Conv)           the Conv's padding and pad value (e.g. +-1 for bipolar)
BatchNormalization                      BatchNorm
Add, Sub, Mul, Div by a constant        Elementwise (``c - x`` becomes ``x * -1 + c``)
Relu, Clip (HardTanh exports as Clip)   Clip
Reshape, Flatten to (batch, features)   Flatten (C, H, W order; nothing for vectors)
Identity, Dropout, Transpose            nothing (a Transpose only when it moves axes of size 1)
Transpose of (batch, features)          the (features, batch) layout, where MatMul takes the
                                        weights on the left (W @ x) and elementwise ops take
                                        (features, 1) constants, until a Transpose back
======================================  =========================================================

Arithmetic is float32, as in ``qonnx.core.onnx_exec.execute_onnx``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from ..ir.model import (AvgPool2d, BatchNorm, HostOp, Clip, Conv2d, Dense, Elementwise, Flatten, GlobalAvgPool, InputQuantizer, MaxPool2d,
                        Model, MultiThreshold, Quantizer, Trunc)
from ..ir.quant import BIPOLAR, MAX_BITS, MAX_INPUT_BITS, TERNARY, QuantType
from ..ir.semantics import round_mode
from ..golden.host_ops import apply_host_op
from .input_types import EXAMPLES as INPUT_TYPE_EXAMPLES
from .input_types import DeclaredInput, absorb_preprocessing, declared_input

__all__ = ["load_qonnx", "read_graph", "read_onnx", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "Trunc", "Gemm", "MatMul", "Conv", "Pad", "MaxPool", "AveragePool",
                 "GlobalAveragePool",
                 "BatchNormalization", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Identity", "Dropout",
                 "Reshape", "Flatten", "Transpose", "Softmax (last)", "LogSoftmax (last)", "ArgMax (last)")
CONSTANT_OPS = ("Constant", "Quant", "BipolarQuant", "Identity", "Transpose", "Reshape", "Flatten", "Mul", "Div",
                "Add", "Sub", "Cast", "Squeeze", "Unsqueeze", "Neg")
F32 = np.float32
ORIGINAL_NAME = "hdlgen: named in the file "
# ops that may stand between a declared input and its format: scalar preprocessing, a quantizer, reshapes
INPUT_SIDE_OPS = ("Add", "Sub", "Mul", "Div", "Quant", "BipolarQuant", "Identity", "Dropout", "Reshape", "Flatten",
                  "Transpose")
CUSTOM_OPS = {"Quant": (4, 4), "BipolarQuant": (2, 2), "MultiThreshold": (2, 2), "Trunc": (5, 6)}   # inputs taken
# ops on a (features, batch) tensor, between a Transpose and the Transpose back
COLUMN_OPS = ("MatMul", "Quant", "BipolarQuant", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Identity", "Dropout",
              "Transpose")
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass
class QConst:
    """A constant that went through a weight quantizer: ``real = values * scale`` (scale broadcast to values)."""

    values: np.ndarray
    scale: np.ndarray
    quant: QuantType | None
    real: np.ndarray            # what qonnx's executor holds: (values - 0) * scale in float32


def _real(c) -> np.ndarray:
    return c.real if isinstance(c, QConst) else c


def _quant_type(bits: float, signed: bool, narrow: bool, max_bits: int = MAX_BITS) -> QuantType | None:
    """The IR type of a Quant's integers, or None when none fits (more than ``max_bits``, unsigned narrow)."""
    if not np.isfinite(bits) or bits != int(bits) or bits < 1:
        return None
    bits = int(bits)
    if bits == 1 and signed:
        return BIPOLAR
    if bits > max_bits or (narrow and not signed):
        return None
    return QuantType.int(bits, narrow=narrow) if signed else QuantType.uint(bits)


def _int_attrs(a: dict, rounding: str) -> tuple[bool, bool, str]:
    """A Quant's or Trunc's ``signed``, ``narrow`` and ``rounding_mode`` attributes, with qonnx's defaults."""
    mode = a.get("rounding_mode", rounding)
    mode = mode.decode() if isinstance(mode, bytes) else mode
    return bool(a.get("signed", 1)), bool(a.get("narrow", 0)), mode.upper()


def _int_quant(x, scale, zero, bits, signed, narrow, rounding):
    """qonnx's ``int_quant`` returning the integers (before the zero point and scale come back)."""
    v = x / scale + zero
    if bits == 1 and signed:
        return np.where(v >= 0, 1.0, -1.0).astype(v.dtype)
    bits = int(bits)
    lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - int(narrow)
    return round_mode(rounding)(np.clip(v, lo, hi))


class _Importer:
    def __init__(self, path: Path, proto, input_type: str | None = None):
        import onnx.numpy_helper as nph

        self.path, self.graph, self.input_type = path, proto.graph, input_type
        self.declared: DeclaredInput | None = None      # the input's format, where no quantizer gives it
        self.host: HostOp | None = None                  # a final Softmax, LogSoftmax or ArgMax
        self.preprocess: list[Elementwise] = []         # scalar ops between the input and its quantizer or first layer
        self.opsets = {o.domain: o.version for o in proto.opset_import}
        self.const: dict[str, object] = {}
        for init in self.graph.initializer:
            try:
                value = nph.to_array(init)
            except Exception as e:       # a damaged tensor or missing external data
                self.fail(f"initializer {init.name!r} cannot be read ({str(e)[:200]})")
            self.const[init.name] = self.real(value, f"initializer {init.name!r}")
        self.layers: list = []
        self.pending_pad = None                 # (padding, value) of a Pad waiting for its Conv
        self.names: set[str] = set()
        self.input_quant: InputQuantizer | None = None
        self.columns = False                    # the chain's tensor is (features, batch), as for W @ x

    def real(self, value: np.ndarray, what: str) -> np.ndarray:
        """A constant tensor of real, finite numbers (a NaN weight would otherwise quantize to a valid one)."""
        if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
            self.fail(f"{what} holds {value.dtype} values; hdlgen reads real numbers")
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            self.fail(f"{what} holds {value[bad] if bad else value} at index {bad}; every value must be a finite number")
        return value

    def fail(self, message: str):
        raise HdlgenError(f"{self.path}: {message}")

    def node_fail(self, node, message: str):
        original = node.doc_string[len(ORIGINAL_NAME):] if node.doc_string.startswith(ORIGINAL_NAME) else node.name
        named = f"{node.name!r}" if original == node.name else f"{original!r} ({node.name!r} after qonnx's cleanup)"
        self.fail(f"node {named if node.name or original else '(unnamed)'} ({node.op_type}): {message}")

    # -- names, attributes, constants -------------------------------------------------------------
    def unique(self, node) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node.name or node.op_type.lower()).strip("_") or node.op_type.lower()
        if base[0].isdigit():
            base = f"n_{base}"
        name, k = base, 1
        while name in self.names or name == "input":
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    @staticmethod
    def attrs(node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def constant(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.const:
            self.node_fail(node, f"its {what} ({name!r}) must be a constant")
        return _real(self.const[name])

    def scalar(self, node, name: str, what: str) -> float:
        value = self.constant(node, name, what)
        if value.size != 1:
            self.node_fail(node, f"its {what} must be a single number, not shape {value.shape}")
        value = float(value.reshape(()))
        if not np.isfinite(value):
            self.node_fail(node, f"its {what} is {value}; it must be a finite number")
        return value

    # -- the graph ----------------------------------------------------------------------------------
    def run(self) -> Model:
        graph = self.graph
        inputs = [i for i in graph.input if i.name not in self.const]
        if len(inputs) != 1:
            self.fail(f"the graph has {len(inputs)} non-constant inputs ({', '.join(i.name for i in inputs)}); "
                      f"hdlgen needs exactly one")
        if len(graph.output) != 1:
            self.fail(f"the graph has {len(graph.output)} outputs; hdlgen needs exactly one")
        graph_input = inputs[0]
        tensor_type = graph_input.type.tensor_type
        if tensor_type.elem_type != 1:
            self.fail(f"input {graph_input.name!r} must be float32")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            self.fail(f"input {graph_input.name!r} has shape {dims}; hdlgen needs (batch, features) or "
                      f"(batch, channels, height, width) with known sizes")
        self.act, self.shape, self.batch = graph_input.name, tuple(dims[1:]), dims[0]
        self.declared = self.declared_input(graph_input.name)
        consumers: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                consumers[name] = consumers.get(name, 0) + 1
        for node in graph.node:
            self.check_node(node)
            on_chain = [name for name in node.input if name == self.act]
            unknown = [name for name in node.input if name and name != self.act and name not in self.const]
            if unknown:
                self.node_fail(node, f"input {unknown[0]!r} is neither the network's main path nor a constant; "
                                     f"hdlgen supports one chain of layers (no branches or skip connections)")
            if not on_chain:
                self.fold_constant(node)
                continue
            if consumers.get(self.act, 0) > 1:
                self.node_fail(node, f"tensor {self.act!r} feeds {consumers[self.act]} nodes; hdlgen supports one "
                                     f"chain of layers (no branches or skip connections)")
            if node.input[0] != self.act and node.op_type not in ("Add", "Mul", "Sub", "Div", "MatMul"):
                self.node_fail(node, "the network's main path must be its first input")
            self.activation_op(node)
            self.act = node.output[0]
        if graph.output[0].name != self.act:
            self.fail(f"output {graph.output[0].name!r} is not the end of the layer chain ({self.act!r})")
        if self.columns:
            self.fail(f"output {graph.output[0].name!r} is (features, batch); hdlgen emits (batch, features): "
                      f"end the graph with a Transpose back")
        if self.input_quant is None and self.declared is not None:
            self.input_quant = self.absorbed_input()
        if self.input_quant is None:
            self.fail("the input is never quantized and has no finn_datatype annotation: declare its format with "
                      f"--input-type (a QONNX DataType name such as {INPUT_TYPE_EXAMPLES})")
        if not self.layers:
            self.fail("the graph has no layers after its input quantizer")
        try:
            return Model(re.sub(r"[^A-Za-z0-9_]", "_", self.path.stem), self.input_quant, tuple(self.layers),
                         arithmetic="float32", host=self.host)
        except HdlgenError as e:
            self.fail(str(e))

    def check_node(self, node):
        """The node's domain and its count of inputs and outputs, before anything reads them.

        QONNX's ops come from a QONNX custom-op domain, the rest from standard ONNX: an op of the same
        name from another domain may mean something else. Standard ops are checked against ONNX's own
        schema for the model's opset."""
        import onnx.defs

        custom = node.op_type in CUSTOM_OPS
        if node.domain not in (QONNX_DOMAINS if custom else STANDARD_DOMAINS):
            expected = f"one of the QONNX domains {', '.join(QONNX_DOMAINS)}" if custom else "the standard ONNX domain"
            self.node_fail(node, f"its domain {node.domain!r} is not {expected}; hdlgen does not know this op's meaning")
        if custom:
            lo, hi = CUSTOM_OPS[node.op_type]
        else:
            opset = self.opsets.get("", self.opsets.get("ai.onnx", onnx.defs.onnx_opset_version()))
            try:
                schema = onnx.defs.get_schema(node.op_type, opset, "")
            except onnx.defs.SchemaError:
                return                  # not an ONNX op: refused where it is used, with the supported ones
            lo, hi = schema.min_input, schema.max_input
        if not lo <= len(node.input) <= hi or len(node.output) < 1:
            takes = f"{lo}" if lo == hi else f"{lo} to {hi}"
            self.node_fail(node, f"it has {len(node.input)} inputs and {len(node.output)} outputs; {node.op_type} takes "
                                 f"{takes} inputs and gives an output")

    def declared_input(self, name: str) -> DeclaredInput | None:
        """The format the user (--input-type) or a finn_datatype annotation declares for the input."""
        if self.input_type is not None:
            return declared_input(self.input_type, "--input-type")
        for annotation in self.graph.quantization_annotation:
            if annotation.tensor_name == name:
                for entry in annotation.quant_parameter_tensor_names:
                    if entry.key == "finn_datatype":
                        return declared_input(entry.value, f"{self.path}: input {name!r} (finn_datatype)")
        return None

    def absorbed_input(self) -> InputQuantizer:
        features = int(np.prod(self.shape))
        shape = self.shape if len(self.shape) == 3 else (features,)
        try:
            return absorb_preprocessing(self.declared, self.preprocess, features=features, shape=shape)
        except HdlgenError as e:
            self.fail(str(e))

    def add(self, layer):
        if self.input_quant is None and self.declared is None and isinstance(layer, Elementwise) \
                and layer.operand.ndim == 0 and not self.layers:
            self.preprocess.append(layer)        # before the input quantizer: the host applies it
            return
        if self.input_quant is None and self.declared is not None:
            if isinstance(layer, Elementwise):
                if layer.operand.ndim:
                    self.fail(f"layer {layer.name!r}: per-channel preprocessing of the {self.declared.name} input is "
                              f"not supported; only scalar operands")
                self.preprocess.append(layer)
                return
            self.input_quant = self.absorbed_input()
        if self.input_quant is None:
            self.fail(f"layer {layer.name!r} ({type(layer).__name__}) comes before the input is quantized: give the "
                      f"input a Quant or BipolarQuant or a finn_datatype annotation, or declare its format with "
                      f"--input-type (a QONNX DataType name such as {INPUT_TYPE_EXAMPLES})")
        self.layers.append(layer)

    # -- constant folding ---------------------------------------------------------------------------
    def fold_constant(self, node):
        op, a, ins = node.op_type, self.attrs(node), [n for n in node.input]
        if op not in CONSTANT_OPS:
            self.node_fail(node, f"op {op} on constants is not supported; constant ops hdlgen folds are "
                                 f"{', '.join(CONSTANT_OPS)}")
        c = [self.const[n] if n else None for n in ins]
        try:
            self.const[node.output[0]] = self.fold(node, op, a, c)
        except (ValueError, TypeError, IndexError) as e:      # shapes or values the op cannot take
            self.node_fail(node, f"cannot be computed from its constant inputs ({str(e)[:200]})")

    def fold(self, node, op: str, a: dict, c: list):
        if op == "Constant":
            out = self.constant_value(node, a)
        elif op == "Quant":
            x, scale, zero, bits = (np.asarray(_real(v), dtype=F32) for v in c[:4])
            signed, narrow, rounding = _int_attrs(a, "ROUND")
            if bits.size != 1 or not np.isfinite(bits).all() or not 1 <= float(bits) <= 32:
                self.node_fail(node, f"its bit width must be one number from 1 to 32, not {bits.tolist()}")
            q = _int_quant(x, scale, zero, float(bits), signed, narrow, rounding)
            real = ((q - zero) * scale).astype(F32)
            quant = _quant_type(float(bits), signed, narrow) if np.all(zero == 0) else None
            out = QConst(q.astype(np.int64), np.broadcast_to(scale, x.shape).astype(F32), quant, real)
        elif op == "BipolarQuant":
            x, scale = (np.asarray(_real(v), dtype=F32) for v in c[:2])
            q = np.where(x >= 0, 1, -1)
            out = QConst(q, np.broadcast_to(scale, x.shape).astype(F32), BIPOLAR, (q * scale).astype(F32))
        elif op in ("Identity", "Cast"):
            out = c[0] if op == "Identity" else _real(c[0]).astype(self.cast_type(node, a))
        elif op == "Neg":
            out = -_real(c[0])
        elif op in ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            out = self.reshape_constant(node, op, a, c)
        else:
            x, y = (_real(v) for v in c[:2])
            out = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}[op](x, y)
        return out

    def constant_value(self, node, a):
        from onnx import numpy_helper

        if "value" in a:
            from onnx.external_data_helper import uses_external_data

            if uses_external_data(a["value"]):
                self.node_fail(node, "its value is stored as external data; hdlgen reads external data for "
                                     "initializers only: store it as an initializer")
            return self.real(numpy_helper.to_array(a["value"]), f"node {node.name or '(unnamed)'!r} (Constant)")
        for key, dtype in (("value_float", F32), ("value_floats", F32), ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return np.asarray(a[key], dtype=dtype)
        self.node_fail(node, "unsupported Constant form (use value, value_float(s) or value_int(s))")

    def cast_type(self, node, a):
        from onnx import helper

        try:
            return helper.tensor_dtype_to_np_dtype(a["to"])
        except (KeyError, TypeError, ValueError):
            self.node_fail(node, "unsupported Cast target")

    def reshape_constant(self, node, op, a, c):
        def apply(x):
            if op == "Transpose":
                return np.transpose(x, a.get("perm"))
            if op == "Reshape":
                target = [int(d) for d in _real(c[1])]
                target = [x.shape[i] if d == 0 and not a.get("allowzero", 0) else d for i, d in enumerate(target)]
                return x.reshape(target)
            if op == "Flatten":
                axis = a.get("axis", 1) % max(x.ndim, 1)
                return x.reshape(int(np.prod(x.shape[:axis])), -1)
            axes = a.get("axes") if "axes" in a else (None if len(c) < 2 or c[1] is None else [int(v) for v in _real(c[1])])
            if op == "Squeeze":
                return np.squeeze(x, axis=None if axes is None else tuple(axes))
            return np.expand_dims(x, tuple(axes))
        x = c[0]
        if isinstance(x, QConst):
            return QConst(apply(x.values), apply(x.scale), x.quant, apply(x.real))
        return apply(x)

    # -- the chain ----------------------------------------------------------------------------------
    def channel_operand(self, node, value: np.ndarray) -> np.ndarray:
        """A constant operand that varies at most per channel, as a scalar or a channel vector."""
        value = np.asarray(value, dtype=F32)
        channels = self.shape[0]
        if value.size == 1:
            return value.reshape(())
        if self.columns:
            if value.ndim > 2 or (value.shape[0], value.shape[1] if value.ndim == 2 else 1) != (channels, 1):
                self.node_fail(node, f"constant of shape {value.shape} does not vary only along the features of its "
                                     f"(features, batch) input {(channels, self.batch or 1)}; hdlgen supports scalars "
                                     f"and ({channels}, 1) constants there")
            return value.reshape(channels)
        full = (1,) + self.shape
        squeezed = [d for d in value.shape]
        while len(squeezed) < len(full):
            squeezed.insert(0, 1)
        per_channel = len(squeezed) == len(full) and squeezed[1] == channels and all(d == 1 for i, d in enumerate(squeezed) if i != 1)
        if not per_channel:
            self.node_fail(node, f"constant of shape {value.shape} varies along more than the channel axis of its "
                                 f"input {full}; hdlgen supports scalars and per-channel constants")
        return value.reshape(channels)

    def weights(self, node, name: str, what: str) -> QConst:
        if name not in self.const:
            self.node_fail(node, f"its {what} ({name!r}) must be constant")
        w = self.const[name]
        if isinstance(w, QConst):
            if w.quant is None:
                self.node_fail(node, "its weight quantizer gives a type hdlgen does not support (more than 8 bits, "
                                     "unsigned narrow or a non-zero zero point)")
            return w
        w = np.asarray(w, dtype=F32)
        for quant, allowed in ((BIPOLAR, {-1.0, 1.0}), (TERNARY, {-1.0, 0.0, 1.0})):
            if set(np.unique(w).tolist()) <= allowed:
                return QConst(w.astype(np.int64), np.ones_like(w), quant, w)
        self.node_fail(node, f"its {what} are not quantized; put a Quant or BipolarQuant on them (or store "
                             f"them as -1/0/+1)")

    def out_channel_scale(self, node, w: QConst) -> np.ndarray:
        scale = w.scale
        first = scale.reshape(scale.shape[0], -1)[:, :1].reshape((scale.shape[0],) + (1,) * (scale.ndim - 1))
        if not np.all(scale == first):
            self.node_fail(node, "its weight scale varies within an output channel; hdlgen supports per-tensor "
                                 "and per-output-channel weight scales")
        return first.reshape(-1)

    def activation_op(self, node):
        op, a = node.op_type, self.attrs(node)
        if self.host is not None:
            self.node_fail(node, f"it follows the {self.host.op}, which hdlgen runs on the host and supports only as "
                                 f"the model's last op")
        if self.pending_pad is not None and op != "Conv":
            self.node_fail(node, "a Pad is supported only directly before a Conv")
        if self.input_quant is None and self.declared is not None and op not in INPUT_SIDE_OPS:
            self.input_quant = self.absorbed_input()       # before the handler reshapes or checks the input
        if self.columns and op not in COLUMN_OPS:
            self.node_fail(node, f"its input is (features, batch) after a Transpose; there hdlgen supports "
                                 f"{', '.join(COLUMN_OPS)}: transpose back to (batch, features) first")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            self.node_fail(node, f"op {op} is not supported; supported ops are {', '.join(SUPPORTED_OPS)}")
        handler(node, a)

    def op_Identity(self, node, a):
        pass

    def host_op(self, node, a):
        """A final Softmax, LogSoftmax or ArgMax over the features of a (batch, features) tensor: the
        hardware emits the logits and the host applies it. Any other axis would mix frames."""
        if any(not isinstance(v, int) for v in a.values()):
            self.node_fail(node, "its attributes must be integers")
        opset = self.opsets.get("", self.opsets.get("ai.onnx", 13))
        default = 0 if node.op_type == "ArgMax" else (1 if opset < 13 else -1)
        if len(self.shape) != 1 or a.get("axis", default) not in (1, -1):
            self.node_fail(node, f"hdlgen runs a final {node.op_type} over the features of a (batch, features) "
                                 f"tensor (axis 1), not axis {a.get('axis', default)} of {(self.batch or 1,) + self.shape}")
        self.host = HostOp(node.op_type, tuple({**a, "axis": 1}.items()), opset)
        try:
            apply_host_op(self.host, np.zeros((2, self.shape[0]), np.float32))
        except Exception as e:            # noqa: BLE001 - onnxruntime refuses the node as given
            self.node_fail(node, f"onnxruntime cannot run it as given ({str(e).strip()[:200]})")

    op_Softmax = op_LogSoftmax = op_ArgMax = host_op

    op_Dropout = op_Identity

    def quantizer(self, node, quant: QuantType, scale: float, rounding: str):
        if self.input_quant is None and self.input_type is not None:
            self.node_fail(node, f"this quantizer gives the input its format, so --input-type {self.input_type} does not "
                                 f"apply; leave it out")
        if self.input_quant is None and not self.layers:
            features = int(np.prod(self.shape))
            shape = self.shape if len(self.shape) == 3 else (features,)
            self.input_quant = InputQuantizer(features, quant, scale, rounding=rounding, shape=shape,
                                              preprocess=tuple(self.preprocess))
        else:
            self.add(Quantizer(self.unique(node), quant, scale, rounding))

    def op_Quant(self, node, a):
        scale = self.scalar(node, node.input[1], "scale (per-channel activation scales are not supported)")
        zero = self.scalar(node, node.input[2], "zero point")
        bits = self.scalar(node, node.input[3], "bit width")
        signed, narrow, rounding = _int_attrs(a, "ROUND")
        if zero != 0:
            self.node_fail(node, f"zero point {zero:g} is not supported; quantize activations with a zero point of 0")
        on_input = self.input_quant is None and not self.layers
        limit = MAX_INPUT_BITS if on_input else MAX_BITS
        quant = _quant_type(bits, signed, narrow, limit)
        if quant is None:
            self.node_fail(node, f"a {'signed' if signed else 'unsigned'}{' narrow' if narrow else ''} {bits:g}-bit "
                                 f"quantizer is not supported; {'the input takes' if on_input else 'activations take'} "
                                 f"1 to {limit} bits (unsigned not narrow)")
        if scale <= 0:
            self.node_fail(node, f"scale {scale} must be positive")
        self.quantizer(node, quant, F32(scale), rounding)

    def op_BipolarQuant(self, node, a):
        scale = self.scalar(node, node.input[1], "scale")
        if scale <= 0:
            self.node_fail(node, f"scale {scale} must be positive")
        self.quantizer(node, BIPOLAR, F32(scale), "ROUND")

    def op_MultiThreshold(self, node, a):
        t = np.asarray(self.constant(node, node.input[1], "thresholds"), dtype=F32)
        out_scale, out_bias = float(a.get("out_scale", 1.0)), float(a.get("out_bias", 0.0))
        layout = a.get("data_layout", b"NCHW")
        layout = layout.decode() if isinstance(layout, bytes) else layout
        if len(self.shape) == 3 and layout != "NCHW":
            self.node_fail(node, f"data_layout {layout} is not supported; use NCHW")
        if t.ndim != 2:
            self.node_fail(node, f"thresholds must be (channels or 1, steps), not shape {t.shape}")
        steps = t.shape[1]
        if out_scale <= 0:
            self.node_fail(node, f"out_scale {out_scale} must be positive")
        if steps == 1 and out_bias == -out_scale / 2:
            quant, scale = BIPOLAR, out_scale / 2
        else:
            lo = out_bias / out_scale
            candidates = [QuantType.uint(b) for b in range(1, MAX_BITS + 1)] + \
                         [QuantType.int(b, narrow=n) for b in range(2, MAX_BITS + 1) for n in (False, True)]
            quant = next((q for q in candidates if q.lo == lo and q.levels == steps + 1), None)
            scale = out_scale
            if quant is None:
                self.node_fail(node, f"{steps} thresholds with out_scale {out_scale:g} and out_bias {out_bias:g} give "
                                     f"values {lo:g} .. {lo + steps:g} (times {out_scale:g}), which is no signed, "
                                     f"unsigned or bipolar type of up to {MAX_BITS} bits")
        if self.input_quant is None and not self.layers:
            self.node_fail(node, "a MultiThreshold on the input is not supported; quantize the input with Quant")
        self.add(MultiThreshold(self.unique(node), t, quant, F32(scale)))

    def op_Trunc(self, node, a):
        if len(node.input) < 6:
            self.node_fail(node, "this is Trunc from qonnx opset 1; hdlgen reads opset 2 Trunc (scale, zero point, "
                                 "input bit width, output scale, output bit width): re-export with a current Brevitas")
        in_scale = self.scalar(node, node.input[1], "scale")
        zero = self.scalar(node, node.input[2], "zero point")
        out_scale = self.scalar(node, node.input[4], "output scale")
        bits = self.scalar(node, node.input[5], "output bit width")
        signed, narrow, rounding = _int_attrs(a, "FLOOR")
        quant = _quant_type(bits, signed, narrow)
        if zero != 0 or quant is None or quant.is_bipolar:
            self.node_fail(node, "only a zero point of 0 and 2- to 8-bit outputs are supported")
        self.add(Trunc(self.unique(node), F32(in_scale), quant, F32(out_scale), rounding))

    def dense(self, node, weight: np.ndarray, w: QConst, scale: np.ndarray, bias):
        features = int(np.prod(self.shape))
        if weight.shape[1] != features:
            self.node_fail(node, f"weights take {weight.shape[1]} inputs but its input has {features} values")
        self.add(Dense(self.unique(node), weight, w.quant, scale, bias))
        self.shape = (weight.shape[0],)

    def op_MatMul(self, node, a):
        """x @ W on (batch, features), or W @ x on (features, batch) after a Transpose."""
        left = node.input[1] == self.act
        if left != self.columns:
            layout = "(features, batch)" if self.columns else "(batch, features)"
            order = "W @ x" if self.columns else "x @ W"
            self.node_fail(node, f"it multiplies across the batch: on a {layout} tensor the weights go "
                                 f"{'first' if self.columns else 'second'} ({order})")
        w = self.weights(node, node.input[0] if left else node.input[1], "weights")
        if w.values.ndim != 2:
            self.node_fail(node, f"weights must be a matrix, not shape {w.values.shape}")
        if not left:
            w = QConst(w.values.T, w.scale.T, w.quant, w.real.T)
        self.dense(node, w.values, w, self.out_channel_scale(node, w), None)

    def gemm_weights(self, node, a) -> QConst:
        """A Gemm's checked weights as (out, in), whatever transB says."""
        if a.get("transA", 0):
            self.node_fail(node, "transA=1 is not supported")
        w = self.weights(node, node.input[1], "weights")
        if w.values.ndim != 2:
            self.node_fail(node, f"weights must be a matrix, not shape {w.values.shape}")
        return w if a.get("transB", 0) else QConst(w.values.T, w.scale.T, w.quant, w.real.T)

    def op_Gemm(self, node, a):
        w = self.gemm_weights(node, a)
        alpha, beta = F32(a.get("alpha", 1.0)), F32(a.get("beta", 1.0))
        if alpha <= 0:
            self.node_fail(node, f"alpha={alpha} must be positive")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            c = np.asarray(self.constant(node, node.input[2], "bias C"), dtype=F32)
            if c.size not in (1, w.values.shape[0]):
                self.node_fail(node, f"bias C of shape {c.shape} must be per output ({w.values.shape[0]}) or a scalar")
            bias = np.broadcast_to((beta * c).reshape(-1), (w.values.shape[0],)).astype(F32)
        scale = self.out_channel_scale(node, w) * np.float64(alpha)
        self.dense(node, w.values, w, scale, bias)

    def conv_weights(self, node, a) -> QConst:
        """A Conv's checked input shape, attributes and weights."""
        if len(self.shape) != 3:
            self.node_fail(node, f"needs a (batch, channels, height, width) input, not {(1,) + self.shape}")
        w = self.weights(node, node.input[1], "weights")
        if w.values.ndim != 4:
            self.node_fail(node, f"only 2-D convolutions are supported (weights of shape {w.values.shape})")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            self.node_fail(node, "auto_pad is not supported; export with explicit pads")
        return w

    def op_Conv(self, node, a):
        w = self.conv_weights(node, a)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = np.asarray(self.constant(node, node.input[2], "bias"), dtype=F32).reshape(-1)
        pads, pad_value = a.get("pads", [0, 0, 0, 0]), 0
        if self.pending_pad is not None:
            if any(pads):
                self.node_fail(node, "a Pad before a Conv that pads as well is not supported")
            (pads, pad_value), self.pending_pad = self.pending_pad, None
        conv = Conv2d(self.unique(node), w.values, w.quant, self.out_channel_scale(node, w), bias,
                      stride=a.get("strides", (1, 1)), padding=pads, dilation=a.get("dilations", (1, 1)),
                      groups=int(a.get("group", 1)), pad_value=pad_value)
        try:
            self.shape = conv.out_shape(self.shape)
        except HdlgenError as e:
            self.node_fail(node, str(e))
        self.add(conv)

    def op_Pad(self, node, a):
        """A constant Pad in front of a Conv: the convolution's padding with that value (e.g. +-1)."""
        mode = a.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant" or len(self.shape) != 3:
            self.node_fail(node, "only constant padding of (batch, channels, height, width) tensors is supported")
        if "pads" in a:                          # opset < 11 keeps pads and value as attributes
            pads, value = [int(p) for p in a["pads"]], float(a.get("value", 0.0))
        else:
            pads = [int(p) for p in self.constant(node, node.input[1], "pads")]
            value = self.scalar(node, node.input[2], "value") if len(node.input) > 2 and node.input[2] else 0.0
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            self.node_fail(node, f"pads {pads} must pad height and width only, by non-negative amounts")
        last = self.layers[-1] if self.layers else None
        if self.input_quant is None or not (last is None or isinstance(last, (Quantizer, MultiThreshold, Trunc, MaxPool2d))):
            self.node_fail(node, "a Pad must follow a quantizer (it pads quantized values)")
        scale = self.current_scale()
        if value / scale != round(value / scale):
            self.node_fail(node, f"pad value {value:g} is not a multiple of the input's scale {scale:g}")
        self.pending_pad = ((pads[2], pads[3], pads[6], pads[7]), int(round(value / scale)))

    def current_scale(self) -> float:
        for layer in reversed(self.layers):
            if isinstance(layer, (Quantizer, MultiThreshold, Trunc)):
                return layer.scale
        return self.input_quant.scale

    def pool(self, node, a, pool) -> None:
        """A MaxPool's or AveragePool's checks, then ``pool`` (made from ``node``'s attributes) added."""
        if len(self.shape) != 3:
            self.node_fail(node, f"needs a (batch, channels, height, width) input, not {(1,) + self.shape}")
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            self.node_fail(node, "dilations are not supported")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            self.node_fail(node, "auto_pad is not supported; export with explicit pads")
        self.shape = pool.out_shape(self.shape)
        self.add(pool)

    def op_MaxPool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            self.node_fail(node, "the Indices output is not supported")
        self.pool(node, a, MaxPool2d(self.unique(node), a["kernel_shape"], a.get("strides", (1, 1)),
                                     a.get("pads", (0, 0, 0, 0)), bool(a.get("ceil_mode", 0))))

    def op_AveragePool(self, node, a):
        if a.get("ceil_mode", 0):
            self.node_fail(node, "ceil_mode is not supported for average pooling; export with ceil_mode=0")
        self.pool(node, a, AvgPool2d(self.unique(node), a["kernel_shape"], a.get("strides", (1, 1)),
                                     a.get("pads", (0, 0, 0, 0)), bool(a.get("count_include_pad", 0))))

    def op_GlobalAveragePool(self, node, a):
        if len(self.shape) != 3:
            self.node_fail(node, f"needs a (batch, channels, height, width) input, not {(1,) + self.shape}")
        self.add(GlobalAvgPool(self.unique(node)))
        self.shape = (self.shape[0], 1, 1)

    def op_BatchNormalization(self, node, a):
        if a.get("training_mode", 0):
            self.node_fail(node, "training_mode=1 is not supported; export the model in eval mode")
        params = []
        for name, what in zip(node.input[1:5], ("scale", "bias", "mean", "var")):
            value = np.asarray(self.constant(node, name, what), dtype=F32).reshape(-1)
            if value.size != self.shape[0]:
                self.node_fail(node, f"its {what} has {value.size} values for {self.shape[0]} channels")
            params.append(value)
        self.add(BatchNorm(self.unique(node), *params, eps=F32(a.get("epsilon", 1e-5))))

    def elementwise(self, node, op: str):
        first_on_chain = node.input[0] == self.act
        other = node.input[1] if first_on_chain else node.input[0]
        operand = self.channel_operand(node, self.constant(node, other, "constant operand"))
        if first_on_chain or op in ("mul", "add"):
            self.add(Elementwise(self.unique(node), op, operand))
        elif op == "sub":
            self.add(Elementwise(self.unique(node), "mul", F32(-1)))
            self.add(Elementwise(self.unique(node), "add", operand))
        else:
            self.node_fail(node, "dividing a constant by the activation is not supported")

    def op_Add(self, node, a):
        self.elementwise(node, "add")

    def op_Sub(self, node, a):
        self.elementwise(node, "sub")

    def op_Mul(self, node, a):
        self.elementwise(node, "mul")

    def op_Div(self, node, a):
        self.elementwise(node, "div")

    def op_Relu(self, node, a):
        self.add(Clip(self.unique(node), 0.0, np.inf))

    def op_Clip(self, node, a):
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar(node, node.input[1], "min")
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar(node, node.input[2], "max")
        self.add(Clip(self.unique(node), float(F32(lo)), float(F32(hi))))

    def reshaped(self, node, target: tuple[int, ...]):
        """Accept reshapes that leave the data's meaning alone: flattening, a vector staying a vector (axes
        of size 1 added or removed), and anything before the input quantizer."""
        size = int(np.prod(self.shape))
        if int(np.prod(target)) != size:
            self.node_fail(node, f"reshapes {(1,) + self.shape} to {(1,) + target}; hdlgen supports reshapes that "
                                 f"keep the batch axis")
        quantized = self.input_quant is not None
        vector = sum(d != 1 for d in self.shape) <= 1 and sum(d != 1 for d in target) <= 1
        if len(target) == 1 and len(self.shape) == 3 and quantized:
            self.add(Flatten(self.unique(node)))      # also for (C, 1, 1): the output becomes (batch, C) as in ONNX
        elif quantized and not (len(target) == 1 or vector or target == self.shape):
            self.node_fail(node, f"reshapes {(1,) + self.shape} to {(1,) + target}; hdlgen supports flattening "
                                 f"and, before the input quantizer, reshaping to (batch, channels, height, width)")
        self.shape = target

    def op_Reshape(self, node, a):
        target = [int(d) for d in self.constant(node, node.input[1], "shape")]
        full = (self.batch or 1,) + self.shape
        target = [full[i] if d == 0 and not a.get("allowzero", 0) else d for i, d in enumerate(target)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(full)) // max(known, 1)
        if not target or target[0] != full[0]:
            self.node_fail(node, f"reshapes {full} to {tuple(target)}; the batch axis must stay first")
        self.reshaped(node, tuple(target[1:]))

    def op_Flatten(self, node, a):
        if a.get("axis", 1) != 1:
            self.node_fail(node, "only axis=1 (keep the batch axis) is supported")
        self.reshaped(node, (int(np.prod(self.shape)),))

    def op_Transpose(self, node, a):
        full = (1,) + self.shape
        perm = a.get("perm", list(range(len(full)))[::-1])
        if len(full) == 2 and list(perm) == [1, 0]:
            self.columns = not self.columns          # (batch, features) <-> (features, batch)
            return
        moved = [axis for axis in perm if full[axis] != 1]
        if moved != sorted(moved) or perm[0] != 0 and full[perm[0]] != 1:
            self.node_fail(node, f"transpose {perm} of {full} reorders data; hdlgen supports transposes that only "
                                 f"move axes of size 1")
        target = tuple(full[axis] for axis in perm)
        if perm[0] != 0:
            self.node_fail(node, f"transpose {perm} moves the batch axis")
        self.reshaped(node, target[1:])


def load_qonnx(path: str | Path, input_type: str | None = None, proto=None) -> Model:
    """Import a QONNX file (its external ``.onnx.data`` beside it) into the source-model IR.

    ``input_type`` (a QONNX DataType name) declares the input's format where no quantizer gives it;
    it overrides a ``finn_datatype`` annotation. ``proto`` is the file as ``read_onnx`` gives it, if
    already read."""
    proto = read_onnx(path) if proto is None else proto
    return _Importer(Path(path), _cleanup(Path(path), proto), input_type).run()


def read_graph(path: str | Path):
    """The ONNX model in ``path`` with its external data, checked and cleaned up by qonnx."""
    return _cleanup(Path(path), read_onnx(path))


def _looks_like_text(head: bytes) -> bool:
    """Whether a file's first bytes are text (JSON, protobuf text format) rather than a binary protobuf,
    whose tags and lengths are control bytes within the first few bytes."""
    return bool(head) and all(b >= 0x20 or b in b"\t\n\r" for b in head)


def read_onnx(path: str | Path):
    """The ONNX model in ``path`` with its external data (only from a file beside it), as stored.

    Only the binary protobuf that ``onnx.save`` writes is read: onnx would parse a ``.json`` or
    ``.textproto`` file as text by its name, and text is never an hdlgen model in ONNX form."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise HdlgenError(f"{path}: model file not found")
    try:
        # format="protobuf": binary whatever the file's name (onnx 1.14 takes and ignores it)
        proto, failure = onnx.load(str(path), format="protobuf", load_external_data=False), None
    except (DecodeError, ValueError, RuntimeError, RecursionError) as e:
        proto, failure = None, e
    if proto is None or not proto.HasField("graph"):
        with open(path, "rb") as f:
            head = f.read(4096)
        if not head:
            raise HdlgenError(f"{path}: the file is empty; an ONNX model is a binary protobuf, as onnx.save writes it")
        if _looks_like_text(head):
            hint = ("a .json model description is built with hdlgen build" if head.lstrip()[:1] in (b"{", b"[")
                    else "this one is text")
            raise HdlgenError(f"{path}: not an ONNX model file: hdlgen reads binary .onnx files (onnx.save); {hint}")
        if failure is not None:
            raise HdlgenError(f"{path}: not an ONNX model ({type(failure).__name__}: {str(failure)[:200]})")
        raise HdlgenError(f"{path}: holds no ONNX graph (not an ONNX model, or an empty one); give the .onnx file "
                          f"that onnx.save wrote")
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    folder = path.parent.resolve()
    external = {entry.value for t in proto.graph.initializer if uses_external_data(t)
                for entry in t.external_data if entry.key == "location"}
    for location in sorted(external):
        if "\0" in location:
            raise HdlgenError(f"{path}: its external data location {location!r} holds a NUL byte")
        where = (folder / location).resolve()
        if Path(location).is_absolute() or folder not in where.parents:
            raise HdlgenError(f"{path}: its weights are said to be in {location!r}, outside the model's folder; "
                              f"external data must be a file beside the model")
        if not where.is_file():
            raise HdlgenError(f"{path}: its weights are stored in {location!r}, which is not beside it "
                              f"({path.parent / location}); copy that file along with the model")
    if external:
        try:
            load_external_data_for_model(proto, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise HdlgenError(f"{path}: cannot read its external weights ({str(e)[:200]})") from None
    return proto


def _cleanup(path: Path, proto):
    """qonnx's own cleanup, as the ecosystem runs it: shape inference, constant folding (shape
    subgraphs such as Shape -> Gather -> Unsqueeze -> Concat -> Reshape fold away; quantizers stay),
    unique node names and no static inputs. Every node is checked first, so that a malformed one
    gets its own message rather than a failure inside qonnx."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    checker = _Importer(path, proto)          # reads every initializer: real, finite numbers only
    for node in proto.graph.node:
        checker.check_node(node)
        node.doc_string = ORIGINAL_NAME + node.name    # the cleanup renames nodes; messages quote both names
    try:
        with warnings.catch_warnings():
            # qonnx notes that it renamed the old finn.* domains to qonnx's: no news to the user
            warnings.filterwarnings("ignore", message="Some old-style domain attributes", category=UserWarning)
            return cleanup_model(ModelWrapper(proto)).model
    except Exception as e:                   # noqa: BLE001 - any failure of the library on this file
        raise HdlgenError(f"{path}: qonnx's cleanup cannot process this graph ({type(e).__name__}: "
                          f"{str(e).strip()[:200]})") from None
