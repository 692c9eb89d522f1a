"""Small QONNX graphs written with ``onnx.helper``, and qonnx's executor to run them."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"


class Graph:
    """A chain under construction: each method adds ops on the current tensor and returns self."""

    def __init__(self, shape, batch: int, opset: int = 13):
        self.batch, self.opset = batch, opset
        self.nodes, self.inits, self.count, self.annotations = [], [], 0, {}
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *shape])
        self.cur = "x"

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, value, stem="c") -> str:
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type, *extra, domain="", outputs=1, **attrs) -> Graph:
        out = self.fresh(op_type.lower())
        names = [out] + [self.fresh("unused") for _ in range(outputs - 1)]
        self.nodes.append(helper.make_node(op_type, [self.cur, *extra], names, name=self.fresh(f"{op_type}_"),
                                           domain=domain, **attrs))
        self.cur = out
        return self

    # -- QONNX ops -------------------------------------------------------------------------------
    def quant(self, scale, bits, *, signed=True, narrow=False, rounding="ROUND", zero=0.0) -> Graph:
        return self.op("Quant", self.const(scale), self.const(zero), self.const(bits), domain=QONNX_DOMAIN,
                       signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def bipolar(self, scale=1.0) -> Graph:
        return self.op("BipolarQuant", self.const(scale), domain=QONNX_DOMAIN)

    def multithreshold(self, thresholds, out_scale=1.0, out_bias=0.0) -> Graph:
        return self.op("MultiThreshold", self.const(thresholds), domain=QONNX_DOMAIN,
                       out_scale=float(out_scale), out_bias=float(out_bias), out_dtype="INT8")

    def trunc(self, scale, out_scale, out_bits, *, rounding="FLOOR", signed=True) -> Graph:
        return self.op("Trunc", self.const(scale), self.const(0.0), self.const(8.0), self.const(out_scale),
                       self.const(out_bits), domain=QONNX_DOMAIN, rounding_mode=rounding, signed=int(signed),
                       narrow=0)

    def quantized_weight(self, w_int, scale, *, bits=None, narrow=False, domain=QONNX_DOMAIN) -> str:
        """A weight tensor as exporters write it: float weights through a Quant (or BipolarQuant) node."""
        w_real = np.asarray(w_int, dtype=np.float32) * np.asarray(scale, dtype=np.float32)
        raw = self.const(w_real, "w")
        out = self.fresh("wq")
        if bits is None:
            self.nodes.append(helper.make_node("BipolarQuant", [raw, self.const(scale)], [out], domain=domain,
                                               name=self.fresh("wquant")))
        else:
            self.nodes.append(helper.make_node("Quant", [raw, self.const(scale), self.const(0.0), self.const(bits)],
                                               [out], domain=domain, signed=1, narrow=int(narrow),
                                               rounding_mode="ROUND", name=self.fresh("wquant")))
        return out

    # -- ONNX QDQ ops ------------------------------------------------------------------------------
    def stored(self, values, dtype, stem="q") -> str:
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def quantize_linear(self, scale, zero_point=0, dtype=np.uint8) -> Graph:
        return self.op("QuantizeLinear", self.const(scale), self.stored(zero_point, dtype, "zp"))

    def dequantize_linear(self, scale, zero_point=0, dtype=np.uint8) -> Graph:
        return self.op("DequantizeLinear", self.const(scale), self.stored(zero_point, dtype, "zp"))

    def qdq(self, scale, zero_point=0, dtype=np.uint8) -> Graph:
        """A QuantizeLinear and its DequantizeLinear, as onnxruntime's quantizer puts on an activation."""
        return self.quantize_linear(scale, zero_point, dtype).dequantize_linear(scale, zero_point, dtype)

    def dequantized(self, values, scale, *, dtype=np.int8, zero_point=0, axis=0) -> str:
        """A constant stored as integers with a DequantizeLinear (per channel along ``axis`` for a vector scale)."""
        out = self.fresh("dq")
        scale = np.asarray(scale, dtype=np.float32)
        zero = np.broadcast_to(np.asarray(zero_point, dtype=dtype), scale.shape)
        attrs = {"axis": axis} if scale.ndim else {}
        self.nodes.append(helper.make_node("DequantizeLinear", [self.stored(values, dtype, "w"), self.const(scale),
                                                                self.stored(zero, dtype, "wzp")], [out],
                                           name=self.fresh("dequantize"), **attrs))
        return out

    # -- standard ops ----------------------------------------------------------------------------
    def gemm(self, weight: str, bias=None, **attrs) -> Graph:
        extra = [weight] + ([bias if isinstance(bias, str) else self.const(bias)] if bias is not None else [])
        return self.op("Gemm", *extra, **attrs)

    def matmul(self, weight: str) -> Graph:
        return self.op("MatMul", weight)

    def batchnorm(self, gamma, beta, mean, var, eps=1e-5) -> Graph:
        return self.op("BatchNormalization", self.const(gamma), self.const(beta), self.const(mean), self.const(var),
                       epsilon=eps)

    def binary(self, op_type, value, *, constant_first=False) -> Graph:
        c = self.const(value)
        if not constant_first:
            return self.op(op_type, c)
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, [c, self.cur], [out], name=self.fresh(f"{op_type}_")))
        self.cur = out
        return self

    def clip(self, lo, hi) -> Graph:
        return self.op("Clip", self.const(lo), self.const(hi))

    def reshape(self, shape) -> Graph:
        name = self.fresh("shape")
        self.inits.append(numpy_helper.from_array(np.asarray(shape, dtype=np.int64), name))
        return self.op("Reshape", name)

    def annotate(self, tensor: str, datatype: str) -> Graph:
        """A QONNX ``finn_datatype`` annotation, as FINN's models carry on their input."""
        self.annotations[tensor] = datatype
        return self

    def model(self) -> onnx.ModelProto:
        out_type = TensorProto.INT64 if self.nodes and self.nodes[-1].op_type == "ArgMax" else TensorProto.FLOAT
        out = helper.make_tensor_value_info(self.cur, out_type, None)
        graph = helper.make_graph(self.nodes, "test", [self.input], [out], self.inits)
        for tensor, datatype in self.annotations.items():
            annotation = onnx.TensorAnnotation(tensor_name=tensor)
            annotation.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype", value=datatype))
            graph.quantization_annotation.append(annotation)
        domains = {QONNX_DOMAIN: 2, **getattr(self, "opsets", {})}
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)] +
                                  [helper.make_opsetid(domain, version) for domain, version in domains.items()])
        proto.ir_version = 8
        return proto

    def save(self, path) -> str:
        onnx.save(self.model(), str(path))
        return str(path)


def run_onnxruntime(path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on ``path`` with its default session options (so QDQ patterns run as its fused
    integer kernels), on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def execute(path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor on ``path`` after qonnx's cleanup, as FINN runs a model, for a batch ``x``
    (the graph's input holds that batch size)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some old-style domain attributes", category=UserWarning)
        model = cleanup_model(ModelWrapper(str(path)))
    name = model.graph.input[0].name
    batch = model.get_tensor_shape(name)[0]
    outs = [execute_onnx(model, {name: x[i:i + batch].astype(np.float32)})[model.graph.output[0].name]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def cybersecurity_mlp(rng, batch: int, *, inputs=600, hidden=(64, 64)) -> Graph:
    """An MLP in the style of FINN's cybersecurity example (UNSW-NB15): bipolar inputs annotated
    BIPOLAR, ``(x + 1) / 2`` in front, 2-bit narrow (ternary) weights, batch norm, 2-bit unsigned
    ReLU quantizers, and one bipolar output. Batch-norm statistics come from random inputs, as
    training would give them, so that every unit and both output classes vary with the input."""
    g = Graph([inputs], batch).annotate("x", "BIPOLAR")
    g.binary("Add", 1.0).binary("Div", 2.0)
    h = (rng.choice([-1.0, 1.0], size=(512, inputs)) + 1) / 2
    for n in hidden:
        w = rng.choice([-1, 0, 1], size=(n, h.shape[1]))
        acc = h @ w.T
        mean, var = acc.mean(0), acc.var(0) + 1
        gamma, beta = rng.uniform(0.5, 1.5, n), rng.uniform(0.25, 1.0, n)
        g.gemm(g.quantized_weight(w, 1.0, bits=2, narrow=True), transB=1)
        g.batchnorm(gamma, beta, mean, var)
        g.op("Relu").quant(0.5, 2, signed=False)
        h = np.clip(np.round(np.maximum((acc - mean) / np.sqrt(var) * gamma + beta, 0) / 0.5), 0, 3) * 0.5
    w = rng.choice([-1, 1], size=(1, h.shape[1]))
    g.gemm(g.quantized_weight(w, 1.0, bits=2, narrow=True), bias=np.array([-np.median(h @ w.T)], np.float32) + 0.25,
           transB=1)
    return g.bipolar()


FINN_DOMAIN = "finn.custom_op.general"


def qkeras_mlp(rng, batch: int, *, inputs=16, hidden=12, classes=5) -> Graph:
    """A QKeras model as ``qonnx.converters.from_keras`` writes it: Quant nodes in the finn domain on
    weights and biases, MatMul (Keras' (in, out) weights on the right) then Add of the bias, Relu then
    an unsigned Quant, a final Softmax, and an input no quantizer covers (hls4ml gives it a
    fixed-point type: build with --input-type)."""
    g = Graph([inputs], batch)
    g.opsets = {FINN_DOMAIN: 1}
    width = inputs
    for n, last in ((hidden, False), (classes, True)):
        w = rng.choice([-1, 0, 1], size=(width, n))
        g.matmul(g.quantized_weight(w, 2.0 ** -2, bits=2, narrow=True, domain=FINN_DOMAIN))
        bias = rng.integers(-8, 8, size=n) * 2.0 ** -3
        g.op("Add", g.quantized_weight(np.round(bias / 2.0 ** -3), 2.0 ** -3, bits=8, domain=FINN_DOMAIN))
        if not last:
            g.op("Relu")
            g.op("Quant", g.const(2.0 ** -2), g.const(0.0), g.const(4.0), domain=FINN_DOMAIN, signed=0, narrow=0,
                 rounding_mode="ROUND")
        width = n
    return g.op("Softmax", axis=-1)


def kws_style_mlp(rng, batch: int, *, inputs=120, hidden=(32, 32), classes=12) -> tuple[Graph, list[dict]]:
    """An MLP with the scales of finn-examples' keyword-spotting model: an INT8 input with scale 0.83,
    ternary weights with per-channel scales that are not powers of two, a per-channel bias Add, 3-bit
    ReLU quantizers with scale 0.37, and an INT8 output quantizer with scale 0.29.

    Most channels have arbitrary scales. In two channels of each layer the scales are chosen so that,
    in exact arithmetic, some quantizer inputs land on rounding ties (u = acc * m + q with m = 3/32 or
    5/32, q a multiple of 1/4): the stored float32 constants put them a few ulps to either side,
    where float32 arithmetic decides the rounding. Returns the graph and each layer's constants, for
    :func:`kws_quantizer_inputs`."""
    g = Graph([inputs], batch).quant(0.83, 8)
    layers, in_scale, width = [], np.float32(0.83), inputs
    for n, out_scale, signed, bits in [(h, np.float32(0.37), False, 3) for h in hidden] + \
                                      [(classes, np.float32(0.29), True, 8)]:
        t = rng.choice([-1, 0, 1], size=(width, n))
        m = rng.uniform(0.05, 0.3, size=n)
        m[:2] = [3 / 32, 5 / 32]
        w_scale = (m * out_scale / in_scale).astype(np.float32)
        bias = (rng.integers(-8, 8, size=n) * 0.25 * out_scale).astype(np.float32)
        g.matmul(g.quantized_weight(t, w_scale.reshape(1, n), bits=2, narrow=True))
        g.binary("Add", bias)
        if not signed:
            g.op("Relu")
        g.quant(out_scale, bits, signed=signed)
        layers.append(dict(t=t, w_scale=w_scale, bias=bias, in_scale=in_scale, out_scale=out_scale, signed=signed,
                           bits=bits))
        in_scale, width = out_scale, n
    return g, layers


def kws_quantizer_inputs(x: np.ndarray, layers: list[dict]) -> list[np.ndarray]:
    """The inputs of each layer's output quantizer, in units of its scale, computed in float64 from
    the stored float32 constants: the model's arithmetic without float32's rounding. Integer dot
    products are exact; each value is within about 1e-15 of its real value."""
    codes = np.round(x.astype(np.float64) / np.float64(np.float32(0.83))).clip(-128, 127)
    out = []
    for layer in layers:
        acc = codes @ layer["t"]
        v = acc * (np.float64(layer["in_scale"]) * layer["w_scale"].astype(np.float64)) + layer["bias"].astype(np.float64)
        if not layer["signed"]:
            v = np.maximum(v, 0)
        u = v / np.float64(layer["out_scale"])
        out.append(u)
        lo, hi = (-(2 ** (layer["bits"] - 1)), 2 ** (layer["bits"] - 1) - 1) if layer["signed"] else (0, 2 ** layer["bits"] - 1)
        codes = np.round(u).clip(lo, hi)
    return out


def pool_then_batchnorm_cnn(rng, batch: int, *, act: str = "bipolar") -> Graph:
    """TensorLayer's BinaryNet order: conv (SAME zero padding) -> max pool 2x2 -> batch norm ->
    activation, twice, then dense; some channels have gamma < 0 (their pool becomes a min) or 0."""
    g = Graph([1, 8, 8], batch).quant(2 ** -4, 4)
    channels, size = 1, 8
    for out in (6, 8):
        g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(out, channels, 3, 3)), 1.0), kernel_shape=[3, 3],
             pads=[1, 1, 1, 1])
        g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
        spread = np.float32(3 * np.sqrt(channels))
        gamma = rng.normal(0, 1, out).astype(np.float32)
        gamma[:2] = [-1.0, 0.0]
        g.batchnorm(gamma, rng.normal(0, 0.5, out), rng.normal(0, spread / 3, out), rng.uniform(0.5, 2, out) * spread ** 2)
        g.bipolar() if act == "bipolar" else g.op("Relu").quant(0.5, 2, signed=False)
        channels, size = out, size // 2
    g.reshape([batch, -1])
    return g.gemm(g.quantized_weight(rng.choice([-1, 1], size=(10, channels * size * size)), 1.0), transB=1)


def rtl_equals_executor(outdir, path, x: np.ndarray, target: str = "ecp5-85k") -> np.ndarray:
    """Build ``path`` into ``outdir`` for ``target``, run ``x`` through the RTL on Verilator, and check
    that it equals the golden model and qonnx's executor bit for bit, at the modelled cycles per
    frame. Returns the executor's outputs."""
    from hdlgen.flow import BuildDir, build, simulate

    build(path, outdir, target=target)
    result = simulate(BuildDir.open(outdir), x)
    want = execute(path, x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, want)
    assert result.interval == result.interval_model        # (measured over 5 frames or more)
    return want


IN, OUT = 16, 6          # the one-layer QDQ model's inputs and outputs


def qdq_dense(rng, *, x_scale, w_scale, y_scale, x_zp=7, y_zp=131, relu=False, y_dtype=np.uint8, w_max=127):
    """A one-layer QDQ model as onnxruntime's quantizer writes it: quantized input, int8 weights per
    channel, an int32 bias, a quantized output. Returns the graph and the input's integer range."""
    g = Graph((IN,), batch=None).qdq(x_scale, x_zp)
    w = rng.integers(-w_max, w_max + 1, size=(OUT, IN))
    w_scale = np.broadcast_to(np.asarray(w_scale, np.float32), (OUT,))
    bias_scale = (np.float32(x_scale) * w_scale).astype(np.float32)
    bias = g.dequantized(rng.integers(-3000, 3000, size=OUT), bias_scale, dtype=np.int32)
    g.gemm(g.dequantized(w, w_scale), bias, transB=1)
    if relu:
        g.op("Relu")
    return g.qdq(y_scale, y_zp, y_dtype)


def inputs(rng, frames: int, x_scale: float, x_zp: int) -> np.ndarray:
    """Real inputs on the quantization grid, so every stored integer 0..255 occurs."""
    return ((rng.integers(0, 256, size=(frames, IN)) - x_zp) * np.float32(x_scale)).astype(np.float32)


def depthwise_separable_cnn(rng, batch: int) -> Graph:
    """MobileNetV1's blocks, small: an 8-bit image, a 3x3 convolution, a strided depthwise 3x3 with a
    pointwise 1x1 after it, a grouped 3x3 (4 groups of 4 inputs, 8 outputs each), then a bipolar
    depthwise 3x3 with zero padding, into a dense layer. Batch norm and ReLU between them, weights
    with power-of-two scales (so the executor's float sums are exact)."""
    g = Graph([3, 10, 10], batch).quant(2 ** -7, 8)

    def conv(out, per_group, kernel, *, bits=4, scale=0.125, **attrs):
        w = rng.integers(-7, 8, size=(out, per_group, kernel, kernel)) if bits else \
            rng.choice([-1, 1], size=(out, per_group, kernel, kernel))
        g.op("Conv", g.quantized_weight(w, scale if bits else 1.0, bits=bits or None), kernel_shape=[kernel, kernel],
             **attrs)

    conv(8, 3, 3, scale=0.0625, pads=[1, 1, 1, 1])
    g.batchnorm(*_batchnorm(rng, 8, 8.0)).op("Relu").quant(0.25, 4, signed=False)
    conv(8, 1, 3, pads=[1, 1, 1, 1], group=8, strides=[2, 2])                     # depthwise, 10x10 -> 5x5
    g.batchnorm(*_batchnorm(rng, 8, 4.0)).op("Relu").quant(0.25, 4, signed=False)
    conv(16, 8, 1)                                                                 # pointwise
    g.op("Relu").quant(0.5, 4, signed=False)
    conv(32, 4, 3, group=4)                                                        # grouped, 5x5 -> 3x3
    g.op("Relu").quant(0.5, 4, signed=False)
    conv(32, 1, 3, bits=0, group=32, pads=[1, 1, 1, 1])                           # bipolar depthwise
    g.quant(1.0, 4).op("Flatten", axis=1)
    return g.gemm(g.quantized_weight(rng.integers(-7, 8, size=(5, 32 * 9)), 0.125, bits=4), transB=1)


def _batchnorm(rng, n, spread):
    gamma = rng.normal(0, 1, n).astype(np.float32)
    gamma[:2] = [-1.5, 0.0]
    return (gamma, rng.normal(0, 1, n).astype(np.float32), rng.normal(0, spread, n).astype(np.float32),
            rng.uniform(0.2, 3, n).astype(np.float32) * spread)


def float_depthwise_cnn(rng) -> onnx.ModelProto:
    """A float CNN for ``hdlgen quantize``: a 3x3 convolution, a depthwise 3x3 with a depth
    multiplier of 2, a pointwise 1x1, ReLUs between, a 3x3 average pool, into a dense layer."""
    nodes, inits = [], []

    def conv(x, out, shape, **attrs):
        k = len(nodes)
        inits.extend([numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), f"w{k}"),
                      numpy_helper.from_array(rng.normal(0, 0.1, shape[0]).astype(np.float32), f"b{k}")])
        nodes.append(helper.make_node("Conv", [x, f"w{k}", f"b{k}"], [f"c{k}"], name=f"conv{k}", **attrs))
        nodes.append(helper.make_node("Relu", [f"c{k}"], [out], name=f"relu{k}"))

    conv("x", "r0", (8, 1, 3, 3), pads=[1, 1, 1, 1])
    conv("r0", "r1", (16, 1, 3, 3), pads=[1, 1, 1, 1], group=8)
    conv("r1", "r2", (8, 16, 1, 1))
    # 3x3 windows: a mean of 9 values seldom lands exactly on a tie of the output's steps, where
    # onnxruntime's kernel may round the other way (tests/unit/test_qdq_import.py counts those)
    nodes.append(helper.make_node("AveragePool", ["r2"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["p"], ["f"], name="flat"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (10, 8 * 3 * 3)).astype(np.float32), "wf"))
    nodes.append(helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "depthwise", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def ds_cnn(rng, batch: int) -> Graph:
    """MLPerf Tiny's keyword-spotting DS-CNN, small: an 8-bit 12x8 "spectrogram", a strided 3x3
    convolution, two depthwise-separable blocks (depthwise 3x3, pointwise 1x1, batch norm and ReLU
    after each) with a 3x3 average pool (stride 1, zero padding counted) between them, then the
    average over the whole map followed by a Trunc as Brevitas' TruncAvgPool2d exports it, into a
    dense layer of 12 classes."""
    g = Graph([1, 12, 8], batch).quant(2 ** -7, 8)

    def conv(out, per_group, kernel, **attrs):
        w = rng.integers(-7, 8, size=(out, per_group, kernel, kernel))
        scale = 2.0 ** -round(np.log2(7 * np.sqrt(per_group * kernel * kernel)))      # outputs of about +-4
        g.op("Conv", g.quantized_weight(w, scale, bits=4), kernel_shape=[kernel, kernel], **attrs)
        if per_group == 1:                     # batch norm after the depthwise layers (a mild one: no dead channels)
            g.batchnorm(rng.uniform(0.5, 1.5, out), rng.normal(0.5, 0.25, out), np.zeros(out), np.ones(out))
        g.op("Relu").quant(0.25, 4, signed=False)

    conv(16, 1, 3, pads=[1, 1, 1, 1], strides=[2, 2])                              # 12x8 -> 6x4
    conv(16, 1, 3, pads=[1, 1, 1, 1], group=16)
    conv(16, 16, 1)
    g.op("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1).quant(0.25, 4, signed=False)
    conv(16, 1, 3, pads=[1, 1, 1, 1], group=16)
    conv(16, 16, 1)
    g.op("AveragePool", kernel_shape=[6, 4]).trunc(2 ** -5, 2 ** -4, 6, signed=False)
    g.op("Flatten", axis=1)
    return g.gemm(g.quantized_weight(rng.integers(-7, 8, size=(12, 16)), 0.125, bits=4), transB=1)
