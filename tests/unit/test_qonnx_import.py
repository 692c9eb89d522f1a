"""QONNX import: for every supported op, the imported model and the lowered golden model give
exactly what qonnx's executor gives, on inputs that hit rounding ties and thresholds exactly."""

import re

import numpy as np
import onnx
import pytest

from hdlgen import HdlgenError
from hdlgen.frontend import load_model, load_qonnx
from hdlgen.golden import predict, run_reference
from hdlgen.ir import BIPOLAR, TERNARY, BatchNorm, Clip, Conv2d, Dense, MaxPool2d, MultiThreshold, \
    QuantType, Quantizer, Trunc
from hdlgen.transforms import streamline
from qonnx_graphs import Graph, execute

BATCH = 96
ROUNDINGS = ["ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN"]


def tie_inputs(rng, shape, scale, lo, hi, count=BATCH):
    """Inputs on whole and half steps of ``scale`` from beyond ``lo`` to beyond ``hi``: rounding ties and clamping."""
    halves = rng.integers(2 * lo - 4, 2 * hi + 5, size=(count, *shape))
    return (halves * 0.5 * scale).astype(np.float32)


def check(tmp_path, graph, x, *, hardware=True):
    """Import the graph; the reference (and the lowered model) must equal the executor bit for bit."""
    path = graph.save(tmp_path / "model.onnx")
    want = execute(path, x)
    model = load_qonnx(path)
    assert model.arithmetic == "float32"
    got = run_reference(model, x)
    assert got.dtype == want.dtype == (np.int64 if model.host and model.host.op == "ArgMax" else np.float32)
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"reference differs on {np.sum(got != want)} values"
    if hardware:
        lowered = predict(streamline(model), x)
        assert np.array_equal(lowered, want), f"lowered model differs on {np.sum(lowered != want)} values"
    return model


def bipolar_weights(rng, n_out, n_in):
    return rng.choice([-1, 1], size=(n_out, n_in))


def ternary_weights(rng, n_out, n_in):
    return rng.choice([-1, 0, 1], size=(n_out, n_in))


def batchnorm_params(rng, n, spread):
    gamma = rng.normal(0, 1, n).astype(np.float32)
    gamma[:3] = [-1.5, 0.0, -0.25]           # negative and zero gamma always present
    return (gamma, rng.normal(0, 1, n).astype(np.float32), rng.normal(0, spread, n).astype(np.float32),
            rng.uniform(0.2, 3, n).astype(np.float32) * spread)


@pytest.mark.parametrize("weight_op", ["gemm-transB", "gemm", "matmul"])
def test_binarized_mlp_with_batchnorm(tmp_path, rng, weight_op):
    n_in, n_hid, n_out = 32, 24, 10
    g = Graph([n_in], BATCH).quant(2 ** -7, 8)
    w0 = bipolar_weights(rng, n_hid, n_in)
    if weight_op == "gemm-transB":
        g.gemm(g.quantized_weight(w0, 1.0), transB=1)
    elif weight_op == "gemm":
        g.gemm(g.quantized_weight(w0.T, 1.0))
    else:
        g.matmul(g.quantized_weight(w0.T, 1.0))
    g.batchnorm(*batchnorm_params(rng, n_hid, 2.0)).bipolar()
    g.gemm(g.quantized_weight(bipolar_weights(rng, n_out, n_hid), 1.0), transB=1)
    g.batchnorm(*batchnorm_params(rng, n_out, 4.0))
    model = check(tmp_path, g, tie_inputs(rng, [n_in], 2 ** -7, -128, 127))
    assert [type(layer) for layer in model.layers] == [Dense, BatchNorm, Quantizer, Dense, BatchNorm]
    assert model.layers[0].weight_quant == BIPOLAR


def _weights_first(g, weight: str):
    """W @ x, as written for a (features, batch) tensor."""
    out = g.fresh("matmul")
    g.nodes.append(onnx.helper.make_node("MatMul", [weight, g.cur], [out], name=g.fresh("MatMul_")))
    g.cur = out
    return g


def test_matmul_with_the_weights_on_the_left(tmp_path, rng):
    """x^T, then W @ x^T with a (features, 1) bias and activations, W @ again, and a Transpose back;
    then x @ W as usual. Each frame stays its own column."""
    g = Graph([16], BATCH).quant(2 ** -3, 5).op("Transpose", perm=[1, 0])
    _weights_first(g, g.quantized_weight(ternary_weights(rng, 12, 16), 0.5, bits=2, narrow=True))
    g.binary("Add", rng.integers(-4, 4, size=(12, 1)) * 0.25).op("Relu").quant(0.5, 3, signed=False)
    _weights_first(g, g.quantized_weight(bipolar_weights(rng, 8, 12), 1.0))
    g.binary("Mul", 2.0).quant(1.0, 4).op("Transpose", perm=[1, 0])
    g.matmul(g.quantized_weight(bipolar_weights(rng, 5, 8).T, 1.0))
    model = check(tmp_path, g, tie_inputs(rng, [16], 2 ** -3, -16, 15))
    assert [layer.weight.shape for layer in model.layers if isinstance(layer, Dense)] == [(12, 16), (8, 12), (5, 8)]


@pytest.mark.parametrize("edit, message", [
    (lambda g, w: _weights_first(g, w), "it multiplies across the batch: on a (batch, features) tensor the weights "
                                        "go second (x @ W)"),
    (lambda g, w: g.op("Transpose", perm=[1, 0]).matmul(w), "it multiplies across the batch: on a (features, batch) "
                                                             "tensor the weights go first (W @ x)"),
    (lambda g, w: _weights_first(g.op("Transpose", perm=[1, 0]), w), "is (features, batch); hdlgen emits (batch, "
                                                                      "features): end the graph with a Transpose back"),
    (lambda g, w: g.op("Transpose", perm=[1, 0]).batchnorm(*batchnorm_params(np.random.default_rng(1), 16, 1.0)),
     "(BatchNormalization): its input is (features, batch) after a Transpose; there hdlgen supports MatMul"),
    (lambda g, w: g.op("Transpose", perm=[1, 0]).binary("Add", np.zeros((1, 16))),
     "constant of shape (1, 16) does not vary only along the features of its (features, batch) input (16, 4)"),
], ids=["left-on-rows", "right-on-columns", "ends-transposed", "batchnorm-on-columns", "row-constant-on-columns"])
def test_weights_on_the_wrong_side_of_the_batch(tmp_path, rng, edit, message):
    g = Graph([16], 4).quant(0.5, 4)
    w = g.quantized_weight(bipolar_weights(rng, 16, 16), 1.0)
    edit(g, w)
    with pytest.raises(HdlgenError, match=re.escape(message)):
        load_qonnx(g.save(tmp_path / "m.onnx"))


def test_ternary_weights_with_2bit_activations(tmp_path, rng):
    """2-bit signed narrow weights are ternary; activations are 2-bit signed (values -2..1)."""
    g = Graph([20], BATCH).quant(0.25, 4, signed=False)
    g.gemm(g.quantized_weight(ternary_weights(rng, 16, 20), 1.0, bits=2, narrow=True), transB=1)
    g.batchnorm(*batchnorm_params(rng, 16, 3.0)).quant(0.5, 2)
    g.gemm(g.quantized_weight(ternary_weights(rng, 6, 16), 0.5, bits=2, narrow=True), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [20], 0.25, 0, 15))
    assert model.layers[0].weight_quant == QuantType.int(2, narrow=True)
    assert streamline(model).layers[0].weight_type == TERNARY


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_quantizer_rounding_modes_on_exact_ties(tmp_path, rng, rounding):
    """Scale 0.5 after integer dot products puts half the accumulators exactly on rounding ties."""
    g = Graph([16], BATCH).quant(1.0, 3, rounding=rounding)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 12, 16), 1.0), transB=1)
    g.binary("Mul", 0.5).quant(1.0, 4, rounding=rounding)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 12), 1.0), transB=1)
    check(tmp_path, g, tie_inputs(rng, [16], 1.0, -4, 3))


@pytest.mark.parametrize("bits, signed, narrow", [(1, True, False), (2, True, True), (3, True, False),
                                                  (8, True, True), (1, False, False), (4, False, False),
                                                  (8, False, False)])
def test_narrow_and_wide_activation_ranges(tmp_path, rng, bits, signed, narrow):
    g = Graph([16], BATCH).quant(0.5, 4)
    g.gemm(g.quantized_weight(ternary_weights(rng, 16, 16), 1.0, bits=2, narrow=True), transB=1)
    g.binary("Add", rng.normal(0, 1, 16)).quant(0.75, bits, signed=signed, narrow=narrow)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 5, 16), 1.0), transB=1)
    check(tmp_path, g, tie_inputs(rng, [16], 0.5, -8, 7))


def test_multithreshold_with_thresholds_hit_exactly(tmp_path, rng):
    """Integer thresholds on integer accumulators: ``x >= T`` at equality, per channel, 2-bit signed output."""
    g = Graph([12], BATCH).bipolar()
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 12), 1.0), transB=1)
    thresholds = np.sort(rng.integers(-12, 13, size=(8, 3)), axis=1).astype(np.float32)
    g.multithreshold(thresholds, out_scale=1.0, out_bias=-2.0)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 3, 8), 1.0), transB=1)
    model = check(tmp_path, g, rng.choice([-1.0, 0.0, 1.0], size=(BATCH, 12)).astype(np.float32))
    assert isinstance(model.layers[1], MultiThreshold) and model.layers[1].quant == QuantType.int(2)


def test_bipolar_multithreshold_and_global_thresholds(tmp_path, rng):
    g = Graph([12], BATCH).bipolar()
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 12), 1.0), transB=1)
    g.multithreshold(np.array([[0.0]], dtype=np.float32), out_scale=2.0, out_bias=-1.0)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 3, 8), 1.0), transB=1)
    model = check(tmp_path, g, rng.choice([-1.0, 1.0], size=(BATCH, 12)).astype(np.float32))
    assert model.layers[1].quant == BIPOLAR


@pytest.mark.parametrize("op, value, constant_first", [
    ("Mul", -0.75, False), ("Div", -3.0, False), ("Div", 0.375, False), ("Sub", 1.5, False),
    ("Sub", 2.0, True), ("Add", 0.25, True), ("Mul", 0.0, False)])
def test_arithmetic_by_constants(tmp_path, rng, op, value, constant_first):
    """Scalar and per-channel constants, either operand order, negative factors that flip the direction."""
    n = 10
    g = Graph([14], BATCH).quant(1.0, 3)
    g.gemm(g.quantized_weight(bipolar_weights(rng, n, 14), 1.0), transB=1)
    g.binary("Mul", rng.choice([0.5, -0.5, 1.0], size=n))
    g.binary(op, value, constant_first=constant_first).quant(1.0, 3)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, n), 1.0), transB=1)
    g.binary("Mul", 0.125).binary("Add", rng.normal(0, 1, 4))
    check(tmp_path, g, tie_inputs(rng, [14], 1.0, -4, 3))


@pytest.mark.parametrize("activation", ["relu", "clip", "hardtanh"])
def test_relu_and_clip_before_a_quantizer(tmp_path, rng, activation):
    g = Graph([16], BATCH).quant(0.5, 4, signed=False)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 16), 1.0), transB=1)
    g.batchnorm(*batchnorm_params(rng, 10, 4.0))
    if activation == "relu":
        g.op("Relu").quant(0.25, 3, signed=False)
    elif activation == "clip":
        g.clip(-0.5, 1.25).quant(0.25, 4)
    else:
        g.clip(-1.0, 1.0).quant(0.5, 2)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 10), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [16], 0.5, 0, 15))
    assert isinstance(model.layers[2], Clip)


def test_gemm_alpha_beta_and_bias(tmp_path, rng):
    g = Graph([16], BATCH).quant(0.5, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16).T, 1.0), bias=rng.normal(0, 2, 8), alpha=0.5, beta=2.0)
    g.quant(1.0, 3)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), bias=rng.normal(0, 1, 4), transB=1)
    check(tmp_path, g, tie_inputs(rng, [16], 0.5, -8, 7))


def test_per_channel_weight_scales(tmp_path, rng):
    scale = (2.0 ** rng.integers(-2, 2, size=(8, 1))).astype(np.float32)
    g = Graph([16], BATCH).quant(0.5, 4)
    g.gemm(g.quantized_weight(ternary_weights(rng, 8, 16), scale, bits=2, narrow=True), transB=1)
    g.quant(1.0, 3)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), scale[:4]), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [16], 0.5, -8, 7))
    assert np.array_equal(model.layers[0].weight_scale, scale[:, 0])


def test_trunc_requantizes(tmp_path, rng):
    g = Graph([16], BATCH).quant(1.0, 4)
    g.gemm(g.quantized_weight(ternary_weights(rng, 8, 16), 1.0, bits=2, narrow=True), transB=1)
    g.trunc(1.0, 4.0, 4, rounding="FLOOR")
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [16], 1.0, -8, 7))
    assert isinstance(model.layers[1], Trunc)


def test_shape_ops_identity_dropout_reshape_flatten_transpose(tmp_path, rng):
    """An image input flattened three ways; Identity and size-1 transposes change nothing."""
    g = Graph([1, 4, 4], BATCH).op("Identity").quant(2 ** -4, 5, signed=False)
    g.op("Transpose", perm=[0, 1, 2, 3]).reshape([BATCH, -1]).op("Flatten", axis=1).op("Dropout")
    g.gemm(g.quantized_weight(bipolar_weights(rng, 6, 16), 1.0), transB=1)
    g.op("Identity").bipolar().reshape([BATCH, 6, 1]).op("Transpose", perm=[0, 2, 1]).op("Flatten", axis=1)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 3, 6), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [1, 4, 4], 2 ** -4, 0, 31))
    assert model.input.shape == (1, 4, 4)


def test_conv_and_maxpool_match_the_executor(tmp_path, rng):
    """Zero padding adds exactly 0 even between bipolar values; strides, dilation, groups and pooling."""
    g = Graph([3, 9, 9], 16).quant(2 ** -7, 8)
    w0 = rng.choice([-1, 1], size=(8, 3, 3, 3))
    g.op("Conv", g.quantized_weight(w0, 1.0), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.batchnorm(*batchnorm_params(rng, 8, 8.0)).bipolar()
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    w1 = rng.choice([-1, 0, 1], size=(8, 4, 3, 2))
    g.op("Conv", g.quantized_weight(w1, 1.0, bits=2, narrow=True), g.const(rng.normal(0, 1, 8)),
         kernel_shape=[3, 2], pads=[2, 0, 1, 1], strides=[1, 2], dilations=[2, 1], group=2)
    g.quant(1.0, 3).op("MaxPool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    g.op("Flatten", axis=1).gemm(g.quantized_weight(bipolar_weights(rng, 3, 8 * 3 * 2), 1.0), transB=1)
    model_proto_x = tie_inputs(rng, [3, 9, 9], 2 ** -7, -128, 127, count=32)
    model = check(tmp_path, g, model_proto_x)
    assert [type(layer) for layer in model.layers][:4] == [Conv2d, BatchNorm, Quantizer, MaxPool2d]
    stages = [type(stage).__name__ for stage in streamline(model).layers]
    assert stages[-4:-1] == ["PadStage", "WindowStage", "WindowMaxStage"]         # the overlapping, padded pool


@pytest.mark.parametrize("first_act", ["bipolar", "int2"])
def test_cnn_lowers_to_the_executor_exactly(tmp_path, rng, first_act):
    """8-bit image, zero-padded convolutions (padding widens bipolar to ternary), strides and dilation,
    max pooling on codes, flatten in C, H, W order into a dense layer."""
    g = Graph([3, 10, 9], 8).quant(2 ** -7, 8)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(6, 3, 3, 3)), 1.0), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.batchnorm(*batchnorm_params(rng, 6, 8.0))
    g.bipolar() if first_act == "bipolar" else g.quant(0.5, 2)
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    w1 = rng.choice([-1, 0, 1], size=(4, 6, 2, 3))
    g.op("Conv", g.quantized_weight(w1, 1.0, bits=2, narrow=True), kernel_shape=[2, 3], pads=[1, 0, 0, 2],
         strides=[1, 2], dilations=[2, 1])
    g.batchnorm(*batchnorm_params(rng, 4, 4.0)).quant(1.0, 3, signed=False)
    g.op("Flatten", axis=1)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 5, 4 * 4 * 2), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [3, 10, 9], 2 ** -7, -128, 127, count=32))
    stages = [type(stage).__name__ for stage in streamline(model).layers]
    assert stages == ["PadStage", "WindowStage", "MatrixVectorLayer", "PoolStage", "PadStage", "WindowStage",
                      "MatrixVectorLayer", "MatrixVectorLayer"]
    assert streamline(model).layers[0].widens is False and streamline(model).layers[4].widens is (first_act == "bipolar")


def test_weights_in_an_external_data_file(tmp_path, rng):
    g = Graph([16], BATCH).quant(0.5, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16), 1.0), transB=1)
    path = tmp_path / "ext.onnx"
    onnx.save_model(g.model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0)
    assert (tmp_path / "ext.onnx.data").exists()
    model = load_model(path)
    x = tie_inputs(rng, [16], 0.5, -8, 7)
    assert np.array_equal(run_reference(model, x), execute(path, x))
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(HdlgenError, match=r"ext.onnx: its weights are stored in 'ext.onnx.data', which is not beside it"):
        load_model(path)


def test_initializers_listed_as_graph_inputs(tmp_path, rng):
    """Older exporters list every initializer as a graph input too."""
    g = Graph([16], BATCH).quant(0.5, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16), 1.0), transB=1)
    proto = g.model()
    for init in proto.graph.initializer:
        proto.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    x = tie_inputs(rng, [16], 0.5, -8, 7)
    assert np.array_equal(run_reference(load_model(tmp_path / "m.onnx"), x), execute(tmp_path / "m.onnx", x))


def simple(rng) -> Graph:
    g = Graph([16], 4).quant(0.5, 4)
    return g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16), 1.0), transB=1)


@pytest.mark.parametrize("edit, message", [
    (lambda g: g.op("Tanh"), r"node 'Tanh_\d+' \('Tanh_0' after qonnx's cleanup\) \(Tanh\): op Tanh is not supported; "
                             r"supported ops are Quant, "),
    (lambda g: g.op("Sigmoid"), r"op Sigmoid is not supported"),
    (lambda g: g.quant(np.full((1, 8), 0.5), 4), "per-channel activation scales are not supported"),
    (lambda g: g.quant(0.5, 4, zero=1.0), "zero point 1 is not supported"),
    (lambda g: g.quant(0.5, 16), "16-bit quantizer is not supported"),
    (lambda g: g.quant(0.5, 4, signed=False, narrow=True), "unsigned narrow 4-bit quantizer is not supported"),
    (lambda g: g.binary("Div", 2.0, constant_first=True), "dividing a constant by the activation is not supported"),
    (lambda g: g.binary("Mul", np.ones((1, 8, 2))), r"varies along more than the channel axis"),
    (lambda g: g.op("Gemm", g.const(np.ones((8, 3)) * 0.3)), "its weights are not quantized"),
    (lambda g: g.multithreshold(np.zeros((8, 5)), 1.0, 0.0), "5 thresholds .* no signed, unsigned or bipolar type"),
])
def test_unsupported_input_gives_one_clear_error(tmp_path, rng, edit, message):
    g = simple(rng)
    edit(g)
    path = g.save(tmp_path / "bad.onnx")
    with pytest.raises(HdlgenError, match=message) as error:
        load_model(path)
    assert str(error.value).startswith(str(path))


def test_branches_are_rejected(tmp_path, rng):
    g = simple(rng)
    skip = g.cur
    g.quant(1.0, 3)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 8), 1.0), transB=1)
    g.nodes.append(onnx.helper.make_node("Add", [g.cur, skip], ["sum"], name="residual"))
    g.cur = "sum"
    with pytest.raises(HdlgenError, match="feeds 2 nodes; hdlgen supports one chain of layers"):
        load_model(g.save(tmp_path / "branch.onnx"))


def test_scalar_preprocessing_before_the_input_quantizer_runs_on_the_host(tmp_path, rng):
    g = Graph([16], BATCH).binary("Mul", 0.5).binary("Sub", 0.25).quant(0.5, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [16], 1.0, -10, 10))
    assert [layer.op for layer in model.input.preprocess] == ["mul", "sub"]


def test_per_channel_preprocessing_before_the_input_quantizer_is_rejected(tmp_path, rng):
    g = Graph([16], 4).binary("Mul", np.linspace(0.5, 1, 16, dtype=np.float32)).quant(0.5, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 8, 16), 1.0), transB=1)
    with pytest.raises(HdlgenError, match="comes before the input is quantized"):
        load_model(g.save(tmp_path / "pre.onnx"))


@pytest.mark.parametrize("content, message", [(b"not a protobuf at all", "not an ONNX model"), (None, "model file not found")])
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(HdlgenError, match=message):
        load_model(path)


@pytest.mark.parametrize("value", [-1.0, 1.0])
def test_plus_minus_one_padding_keeps_xnor_popcount(tmp_path, rng, value):
    """A model trained with +-1 padding (a constant Pad before the Conv) pads bipolar codes, no widening."""
    g = Graph([2, 6, 6], 8).quant(1.0, 4)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(4, 2, 3, 3)), 1.0), kernel_shape=[3, 3])
    g.batchnorm(*batchnorm_params(rng, 4, 6.0)).bipolar()
    pads = g.fresh("pads")
    g.inits.append(onnx.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), pads))
    g.op("Pad", pads, g.const(value), mode="constant")
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(3, 4, 3, 3)), 1.0), kernel_shape=[3, 3])
    g.batchnorm(*batchnorm_params(rng, 3, 6.0)).bipolar().op("Flatten", axis=1)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 5, 3 * 4 * 4), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [2, 6, 6], 1.0, -8, 7, count=32))
    pad = next(stage for stage in streamline(model).layers if type(stage).__name__ == "PadStage")
    assert not pad.widens and pad.pad_code == (1 if value > 0 else 0)


@pytest.mark.parametrize("quantizer", ["trunc", "quant"])
def test_global_average_pooling_lowers_to_sums_and_thresholds(tmp_path, rng, quantizer):
    """GlobalAveragePool of quantized values: exact sums, the mean rounded once, then a quantizer."""
    g = Graph([2, 6, 5], 16).quant(1.0, 3)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(4, 2, 3, 3)), 1.0), kernel_shape=[3, 3])
    g.batchnorm(*batchnorm_params(rng, 4, 6.0)).quant(0.5, 2)
    g.op("GlobalAveragePool")
    g.trunc(0.5, 1.0, 3, rounding="FLOOR") if quantizer == "trunc" else g.binary("Mul", 4.0).quant(0.25, 4)
    g.op("Flatten", axis=1)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 3, 4), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [2, 6, 5], 1.0, -5, 4, count=32))
    assert "GlobalPoolStage" in [type(stage).__name__ for stage in streamline(model).layers]


def test_shape_subgraph_folds_away_in_qonnx_cleanup(tmp_path, rng):
    """``x.view(x.size(0), -1)`` as the TorchScript exporter writes it: Shape -> Gather -> Unsqueeze ->
    Concat -> Reshape. qonnx's cleanup folds it into a constant Reshape; no pattern matcher needed."""
    from onnx import helper, numpy_helper

    g = Graph([2, 4, 4], BATCH).quant(2 ** -4, 4)
    ints = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64)}
    g.inits += [numpy_helper.from_array(v, k) for k, v in ints.items()]
    g.nodes += [helper.make_node("Shape", [g.cur], ["s"]),
                helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
                helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
                helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
                helper.make_node("Reshape", [g.cur, "target"], ["flat"])]
    g.cur = "flat"
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 32), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [2, 4, 4], 2 ** -4, 0, 15))
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]


def _lstm(g, rng):
    hidden = 3
    w = g.const(rng.normal(size=(1, 4 * hidden, 4)))
    r = g.const(rng.normal(size=(1, 4 * hidden, hidden)))
    return g.op("LSTM", w, r, hidden_size=hidden)


def _residual(g, rng):
    skip = g.cur
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 4), 1.0), transB=1)
    return g.op("Add", skip)


@pytest.mark.parametrize("build, message", [
    (_residual, "feeds 2 nodes; hdlgen supports one chain of layers (no branches or skip connections)"),
    (lambda g, rng: g.op("Concat", g.cur, axis=1), "hdlgen supports one chain of layers (no branches or skip connections)"),
    (lambda g, rng: g.op("Resize", "", g.const([1.0, 2.0]), mode="nearest"), "(Resize): op Resize is not supported; supported ops are"),
    (lambda g, rng: g.op("Upsample", g.const([1.0, 2.0]), mode="nearest"), "(Upsample): op Upsample is not supported"),
    (_lstm, "(LSTM): op LSTM is not supported; supported ops are"),
], ids=["residual-add", "concat", "resize", "upsample", "lstm"])
def test_graphs_hdlgen_does_not_support(tmp_path, rng, build, message):
    g = Graph([4], 1, opset=9 if "Upsample" in message else 13).quant(0.5, 4)
    build(g, rng)
    with pytest.raises(HdlgenError, match="node '[A-Za-z]+_[0-9]+' .*" + re.escape(message)):
        load_qonnx(g.save(tmp_path / "m.onnx"))


# -- declared input formats: finn_datatype annotations and --input-type ------------------------------------

def test_cybersecurity_style_mlp_with_annotated_bipolar_input(tmp_path, rng):
    """(x + 1) / 2 on a BIPOLAR input is absorbed: the hardware takes the bipolar codes as 0/1 values."""
    from qonnx_graphs import cybersecurity_mlp

    g = cybersecurity_mlp(rng, BATCH)
    x = rng.choice([-1.0, 1.0], size=(BATCH, 600)).astype(np.float32)
    model = check(tmp_path, g, x)
    assert model.input.given == BIPOLAR and model.input.quant == QuantType.uint(1) and model.input.scale == 1.0
    assert model.layers[-1].quant == BIPOLAR


@pytest.mark.parametrize("datatype, ops, values, quant, scale", [
    ("INT4", [("Div", 16.0)], np.arange(-8, 8), QuantType.int(4), 1 / 16),
    ("UINT8", [("Sub", 128.0)], np.arange(256), QuantType.int(8), 1.0),
    ("UINT2", [("Mul", 0.25), ("Sub", 0.5)], np.arange(4), QuantType.int(2), 0.25),
    ("BINARY", [("Mul", 2.0), ("Sub", 1.0)], np.arange(2), BIPOLAR, 1.0),
    ("INT3", [], np.arange(-4, 4), QuantType.int(3), 1.0),
], ids=["int4-scaled", "uint8-centred", "uint2-shifted", "binary-to-bipolar", "int3-no-preprocessing"])
def test_annotated_input_with_preprocessing(tmp_path, rng, datatype, ops, values, quant, scale):
    g = Graph([8], BATCH).annotate("x", datatype)
    for op, value in ops:
        g.binary(op, value)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    model = check(tmp_path, g, rng.choice(values, size=(BATCH, 8)).astype(np.float32))
    assert (model.input.quant, model.input.scale) == (quant, scale)


@pytest.mark.parametrize("input_type, values, quant, scale, rounding", [
    ("INT8", np.arange(-128, 128), QuantType.int(8), 1.0, "ROUND"),
    ("UINT4", np.arange(16), QuantType.uint(4), 1.0, "ROUND"),
    ("FIXED<8,3>", np.arange(-128, 128) / 32, QuantType.int(8), 1 / 32, "FLOOR"),
    ("BIPOLAR", np.array([-1, 1]), BIPOLAR, 1.0, "ROUND"),
])
def test_input_type_for_an_unquantized_input(tmp_path, rng, input_type, values, quant, scale, rounding):
    """A QKeras conversion has no input quantizer; --input-type declares the format, and it wins over an annotation."""
    g = Graph([8], BATCH)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 2.0 ** -3), transB=1)
    path = g.save(tmp_path / "m.onnx")
    x = rng.choice(values, size=(BATCH, 8)).astype(np.float32)
    model = load_qonnx(path, input_type)
    assert (model.input.quant, model.input.scale, model.input.rounding) == (quant, scale, rounding)
    assert np.array_equal(run_reference(model, x), execute(path, x))
    assert np.array_equal(predict(streamline(model), x), execute(path, x))


def test_input_type_wins_over_an_annotation(tmp_path, rng):
    g = Graph([8], 1).annotate("x", "INT2")
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    path = g.save(tmp_path / "m.onnx")
    assert load_qonnx(path).input.quant == QuantType.int(2)
    assert load_qonnx(path, "UINT8").input.quant == QuantType.uint(8)


def test_fixed_point_input_floors_like_hls4ml(tmp_path, rng):
    g = Graph([2], 1)
    g.gemm(g.quantized_weight(np.array([[1, 1]]), 1.0), transB=1)
    model = load_qonnx(g.save(tmp_path / "m.onnx"), "FIXED<4,2>")
    x = np.array([[0.3, -0.3], [5.0, -5.0]])
    assert run_reference(model, x).tolist() == [[0.25 - 0.5], [1.75 - 2.0]]


def test_sixteen_bit_fixed_point_input(tmp_path, rng):
    """hls4ml's default ap_fixed<16,6> input into 6-bit weights: the lowered model floors as hls4ml does."""
    g = Graph([12], BATCH)
    g.gemm(g.quantized_weight(rng.integers(-31, 32, size=(6, 12)), 2.0 ** -5, bits=6, narrow=True), transB=1)
    g.op("Relu").quant(2.0 ** -2, 4, signed=False)
    g.gemm(g.quantized_weight(rng.integers(-31, 32, size=(3, 6)), 2.0 ** -5, bits=6, narrow=True), transB=1)
    model = load_qonnx(g.save(tmp_path / "m.onnx"), "FIXED<16,6>")
    assert model.input.quant == QuantType.int(16) and model.input.scale == 2.0 ** -10
    x = rng.uniform(-40, 40, size=(BATCH, 12)).astype(np.float32)
    lowered = streamline(model)
    assert lowered.mvus[0].in_type == QuantType.int(16)
    assert np.array_equal(predict(lowered, x), run_reference(model, x))


@pytest.mark.parametrize("bits, message", [(16, None), (17, "the input takes 1 to 16 bits"), (9, "activations take 1 to 8 bits")])
def test_wide_quantizers(tmp_path, rng, bits, message):
    """A 16-bit input quantizer is the widest; a hidden activation takes at most 8 bits."""
    g = Graph([8], BATCH)
    g.quant(2.0 ** -8, bits if message != "activations take 1 to 8 bits" else 8)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    g.quant(1.0, bits if message == "activations take 1 to 8 bits" else 4)
    if message is None:
        check(tmp_path, g, tie_inputs(rng, [8], 2.0 ** -8, -200, 200))
    else:
        with pytest.raises(HdlgenError, match=message):
            load_qonnx(g.save(tmp_path / "m.onnx"))


@pytest.mark.parametrize("annotation, ops, input_type, message", [
    (None, [], None, "or declare its format with --input-type (a QONNX DataType name such as INT8"),
    ("FLOAT32", [], None, "or declare its format with --input-type"),
    (None, [], "INT17", "INT17 has 17 bits; hdlgen takes inputs of at most 16 bits"),
    (None, [], "FIXED<20,6>", "FIXED<20,6> has 20 bits; hdlgen takes inputs of at most 16 bits"),
    (None, [], "FOO9", "'FOO9' is not a QONNX DataType name"),
    ("BINARY", [("Add", 0.3)], None, "maps the BINARY input onto 0.3, 1.3, which is no integer grid"),
    ("INT2", [("Mul", -1.0)], None, "which is no integer grid with a positive step"),
    ("INT2", [("Mul", [1.0] * 7 + [2.0])], None, "per-channel preprocessing of the INT2 input is not supported"),
    ("INT4", [("Add", 1.0)], None, None),     # lo -7 gives 16 values no type holds
])
def test_declared_input_errors(tmp_path, rng, annotation, ops, input_type, message):
    g = Graph([8], 1)
    if annotation:
        g.annotate("x", annotation)
    for op, value in ops:
        g.binary(op, np.asarray(value, dtype=np.float32))
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    with pytest.raises(HdlgenError, match=re.escape(message or "no integer grid")):
        load_qonnx(g.save(tmp_path / "m.onnx"), input_type)


# -- a final Softmax, LogSoftmax or ArgMax runs on the host ------------------------------------------------

@pytest.mark.parametrize("op, attrs, opset", [("Softmax", {}, 13), ("Softmax", {"axis": 1}, 11),
                                             ("LogSoftmax", {}, 13), ("ArgMax", {"axis": 1}, 13),
                                             ("ArgMax", {"axis": 1, "keepdims": 0}, 13)])
def test_final_host_op(tmp_path, rng, op, attrs, opset):
    g = Graph([16], BATCH, opset=opset).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 16), 2 ** -3), transB=1)
    g.op(op, **attrs)
    model = check(tmp_path, g, tie_inputs(rng, [16], 2 ** -4, -8, 7))
    assert model.host.op == op


def test_a_host_op_must_come_last(tmp_path, rng):
    g = Graph([16], 1).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 16), 1.0), transB=1)
    g.op("Softmax").binary("Mul", 2.0)
    with pytest.raises(HdlgenError, match="it follows the Softmax, which hdlgen runs on the host and supports only as"):
        load_qonnx(g.save(tmp_path / "m.onnx"))


def test_qkeras_style_mlp(tmp_path, rng):
    """As from_keras writes it: finn-domain Quant on weights and biases, MatMul + Add, Relu + unsigned
    Quant, a final Softmax, and a fixed-point input declared with --input-type."""
    from qonnx_graphs import qkeras_mlp

    path = qkeras_mlp(rng, BATCH).save(tmp_path / "qkeras.onnx")
    model = load_qonnx(path, "FIXED<8,3>")
    assert model.host.op == "Softmax" and model.input.scale == 2.0 ** -5
    x = (rng.integers(-128, 128, size=(BATCH, 16)) / 32).astype(np.float32)
    want = execute(path, x)
    assert np.array_equal(run_reference(model, x), want)
    assert np.array_equal(predict(streamline(model), x), want)


@pytest.mark.parametrize("bits, narrow, values, lowered", [
    (4, True, range(-7, 8), "narrow_int4"), (8, False, range(-128, 128), "int8"), (2, False, range(-2, 2), "pow2_3"),
    (3, False, range(-4, 4), "int3"), (3, True, [-2, -1, 0, 1, 2], "pow2_3"), (5, False, [-8, -2, 0, 1, 4], "pow2_5"),
    (4, True, [-1, 0, 1], "ternary"),
])
def test_integer_weights_lower_to_the_executor_exactly(tmp_path, rng, bits, narrow, values, lowered):
    """2- to 8-bit weights, with or without narrow range, through batch norm and a quantizer, and as a
    last layer: the lowered model equals the executor. Weights that are all 0 or powers of two lower
    to POW2 (shifts), all -1, 0, +1 to ternary; -128 rows negated for a falling batch norm hold +128."""
    g = Graph([8], BATCH).quant(2 ** -4, 4)
    w = rng.choice(list(values), size=(6, 8))
    w[:, 0] = min(values)
    g.gemm(g.quantized_weight(w, 2 ** -3, bits=bits, narrow=narrow), transB=1)
    g.batchnorm(*batchnorm_params(rng, 6, 8.0)).quant(0.5, 3)
    g.gemm(g.quantized_weight(rng.choice(list(values), size=(3, 6)), 2 ** -3, bits=bits, narrow=narrow), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [8], 2 ** -4, -8, 7))
    assert str(model.layers[0].weight_quant) == f"{'narrow_' if narrow else ''}int{bits}"
    assert [str(layer.weight_type) for layer in streamline(model).mvus] == [lowered] * 2


def test_batchnorm_decomposed_as_older_exporters_write_it(tmp_path, rng):
    """BNN-PYNQ's last layer: (x - mean) / Pow(var + eps, 0.5) * gamma + beta, the Pow on constants."""
    from onnx import helper

    n = 10
    g = Graph([16], BATCH).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, n, 16), 2 ** -3), transB=1)
    gamma, beta, mean, var = batchnorm_params(rng, n, 1.0)
    g.binary("Sub", mean)
    var_eps, half, std = g.const(var + np.float32(1e-4)), g.const(0.5), g.fresh("std")
    g.nodes.append(helper.make_node("Pow", [var_eps, half], [std], name=g.fresh("Pow_")))
    g.op("Div", std)
    g.binary("Mul", gamma).binary("Add", beta)
    check(tmp_path, g, tie_inputs(rng, [16], 2 ** -4, -8, 7))


@pytest.mark.parametrize("op, attrs, opset, shape, message", [
    ("ArgMax", {}, 13, None, "not axis 0 of (1, 10)"),                  # ArgMax's default axis is the batch
    ("LogSoftmax", {"axis": 0}, 11, None, "not axis 0 of (1, 10)"),
    ("Softmax", {"axis": 1}, 13, [1, 1, 10], "a (batch, features) tensor (axis 1), not axis 1 of (1, 1, 10)"),
    ("ArgMax", {"axis": 1, "select_last_index": 1}, 11, None, "onnxruntime cannot run it as given"),
])
def test_host_ops_over_anything_but_the_features_are_refused(tmp_path, rng, op, attrs, opset, shape, message):
    g = Graph([16], 1, opset=opset).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 16), 1.0), transB=1)
    if shape:
        g.reshape(shape)
    g.op(op, **attrs)
    with pytest.raises(HdlgenError, match=re.escape(message)):
        load_qonnx(g.save(tmp_path / "m.onnx"))


@pytest.mark.parametrize("name", ["INT1", "FIXED<1,0>", "UINT0", "FIXED<1,1>", "INT0"])
def test_input_types_without_a_hardware_format(tmp_path, rng, name):
    g = Graph([8], 1)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    with pytest.raises(HdlgenError, match=r"is not supported as an input|is not a QONNX DataType name|needs I < W"):
        load_qonnx(g.save(tmp_path / "m.onnx"), name)


@pytest.mark.parametrize("first", ["conv", "maxpool"])
def test_declared_image_input_straight_into_a_window(tmp_path, rng, first):
    g = Graph([2, 6, 6], BATCH).annotate("x", "INT4")
    if first == "maxpool":
        g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(4, 2, 3, 3)), 1.0), kernel_shape=[3, 3])
    g.reshape([BATCH, -1])
    model = check(tmp_path, g, rng.integers(-8, 8, size=(BATCH, 2, 6, 6)).astype(np.float32), hardware=False)
    assert model.input.shape == (2, 6, 6) and model.input.quant == QuantType.int(4)


def test_an_annotated_input_with_preprocessing_and_a_quantizer(tmp_path, rng):
    """The quantizer gives the format; the annotation's type is then no news."""
    g = Graph([8], BATCH).annotate("x", "UINT8").binary("Mul", 2.0 ** -8).quant(2 ** -4, 4, signed=False)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    model = check(tmp_path, g, rng.integers(0, 256, size=(BATCH, 8)).astype(np.float32))
    assert model.input.quant == QuantType.uint(4) and len(model.input.preprocess) == 1


def test_input_type_where_a_quantizer_covers_the_input(tmp_path, rng):
    g = Graph([8], 1).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 4, 8), 1.0), transB=1)
    with pytest.raises(HdlgenError, match="so --input-type INT8 does not apply; leave it out"):
        load_qonnx(g.save(tmp_path / "m.onnx"), "INT8")


def test_host_op_survives_the_native_description(tmp_path, rng):
    from hdlgen.frontend import save_model

    g = Graph([16], BATCH).quant(2 ** -4, 4)
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 16), 1.0), transB=1)
    g.op("ArgMax", axis=1, keepdims=0)
    path = g.save(tmp_path / "m.onnx")
    save_model(load_qonnx(path), tmp_path / "native.json")
    x = tie_inputs(rng, [16], 2 ** -4, -8, 7)
    assert np.array_equal(run_reference(load_model(tmp_path / "native.json"), x), execute(path, x))


def test_build_notes_dot_products_past_float32s_exact_integers(tmp_path, rng):
    from hdlgen.inspect import exactness_notes

    g = Graph([4096], 1).quant(1.0, 8)
    g.gemm(g.quantized_weight(rng.integers(100, 128, size=(2, 4096)), 1.0, bits=8), transB=1)
    notes = exactness_notes(load_qonnx(g.save(tmp_path / "m.onnx")))
    assert len(notes) == 1 and "past 2^24, where a float32 executor rounds its partial sums" in notes[0]


# -- batch norm after max pooling (TensorLayer's BinaryNet): the pool moves after the activation ----------

@pytest.mark.parametrize("act", ["bipolar", "uint2"])
def test_batchnorm_after_maxpool(tmp_path, rng, act):
    """conv -> max pool -> batch norm -> activation, with gamma < 0 and = 0 in some channels: the
    activation of the max is the max of the activations where it rises, their min where it falls."""
    g = Graph([1, 8, 8], BATCH).quant(2 ** -4, 4)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(6, 1, 3, 3)), 1.0), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    gamma, beta, mean, var = batchnorm_params(rng, 6, 1.0)
    g.batchnorm(gamma, beta, mean, var)
    g.bipolar() if act == "bipolar" else g.op("Relu").quant(0.5, 2, signed=False)
    g.reshape([BATCH, -1])
    g.gemm(g.quantized_weight(bipolar_weights(rng, 10, 6 * 4 * 4), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [1, 8, 8], 2 ** -4, -8, 7))
    pools = [stage for stage in streamline(model).layers if type(stage).__name__ == "PoolStage"]
    assert len(pools) == 1 and any(pools[0].minimum)         # falling channels: gamma < 0 and not saturated
    assert all(g < 0 for g, takes_min in zip(gamma, pools[0].minimum) if takes_min)


@pytest.mark.parametrize("domain", ["qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas"])
@pytest.mark.parametrize("opset", [9, 11, 13, 18])
def test_custom_op_domains_and_opsets(tmp_path, rng, domain, opset):
    """The three QONNX custom-op domains in use, on the standard opsets exporters write."""
    import warnings

    from onnx import helper

    n = 6
    g = Graph([16], BATCH, opset=opset)
    g.opsets = {domain: 1}
    g.op("Quant", g.const(2 ** -4), g.const(0.0), g.const(4.0), domain=domain, signed=1, narrow=0, rounding_mode="ROUND")
    w = g.quantized_weight(bipolar_weights(rng, n, 16), 1.0, domain=domain)
    g.gemm(w, bias=rng.normal(0, 1, n).astype(np.float32), transB=1)      # opset 9's Gemm needs C
    gamma, beta, mean, var = batchnorm_params(rng, n, 3.0)
    g.batchnorm(gamma, beta, mean, var)
    out = g.fresh("bq")
    g.nodes.append(helper.make_node("BipolarQuant", [g.cur, g.const(1.0)], [out], domain=domain, name=g.fresh("bq_")))
    g.cur = out
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some old-style domain attributes", category=UserWarning)
        check(tmp_path, g, tie_inputs(rng, [16], 2 ** -4, -8, 7))


@pytest.mark.parametrize("kernel, stride, pads, count_pad, after", [
    (3, 1, [0, 0, 0, 0], 0, "quant"),
    (2, 2, [0, 0, 0, 0], 0, "multithreshold"),
    (3, 2, [1, 1, 1, 1], 1, "quant"),
    (5, 1, [2, 1, 2, 1], 1, "trunc"),
], ids=["3x3", "2x2-stride-2", "padded-counted", "5x5-trunc"])
def test_average_pool_lowers_to_the_executor_exactly(tmp_path, rng, kernel, stride, pads, count_pad, after):
    """The window's exact sum, one rounding, one division by its count: then a Quant (ties of the
    division included), a MultiThreshold or a Trunc (Brevitas' TruncAvgPool2d)."""
    g = Graph([4, 7, 7], BATCH).quant(0.5, 4, signed=False)
    g.op("AveragePool", kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads, count_include_pad=count_pad)
    if after == "quant":
        g.quant(0.25, 5, signed=False)
    elif after == "trunc":
        g.trunc(2 ** -4, 2 ** -3, 6, signed=False)
    else:
        g.multithreshold(np.sort(rng.uniform(0, 7.5, size=(4, 3)).round(2), axis=1))
    oh, ow = ((7 + pads[0] + pads[2] - kernel) // stride + 1, (7 + pads[1] + pads[3] - kernel) // stride + 1)
    g.op("Flatten", axis=1).gemm(g.quantized_weight(bipolar_weights(rng, 3, 4 * oh * ow), 1.0), transB=1)
    check(tmp_path, g, tie_inputs(rng, [4, 7, 7], 0.5, 0, 15))


def test_average_pool_not_counting_its_padding_is_refused_by_hardware_only(tmp_path, rng):
    g = Graph([4, 7, 7], BATCH).quant(0.5, 4, signed=False)
    g.op("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]).quant(0.25, 5, signed=False)
    g.op("Flatten", axis=1).gemm(g.quantized_weight(bipolar_weights(rng, 3, 4 * 4 * 4), 1.0), transB=1)
    model = check(tmp_path, g, tie_inputs(rng, [4, 7, 7], 0.5, 0, 15), hardware=False)
    with pytest.raises(HdlgenError, match=r"layer 'AveragePool_0': average pooling with padding \(1, 1, 1, 1\) and "
                                          r"count_include_pad=0 divides border windows .* export with count_include_pad=1"):
        streamline(model)


@pytest.mark.parametrize("kernel, stride, pads, ceil", [
    (3, 2, [0, 0, 0, 0], 0), (3, 2, [0, 0, 0, 0], 1), (2, 2, [0, 0, 0, 0], 1), (3, 2, [1, 1, 1, 1], 1),
    (2, 1, [1, 0, 0, 1], 0)], ids=["overlapping", "ceil", "ceil-2x2", "ceil-padded", "padded-stride-1"])
def test_max_pool_with_any_stride_padding_and_ceil_mode(tmp_path, rng, kernel, stride, pads, ceil):
    """A window that ceil_mode adds past the input takes the taps inside; padded taps never win,
    bipolar ones included."""
    for act, lo, hi in (("bipolar", -1, 1), ("int3", -4, 3)):
        g = Graph([3, 8, 7], BATCH).quant(2 ** -4, 6)
        g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(4, 3, 1, 1)), 1.0), kernel_shape=[1, 1])
        g.bipolar() if act == "bipolar" else g.quant(0.5, 3)
        g.op("MaxPool", kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads, ceil_mode=ceil)
        shape = load_qonnx(g.save(tmp_path / "probe.onnx")).shapes()[-1]
        g.op("Flatten", axis=1).gemm(g.quantized_weight(bipolar_weights(rng, 3, int(np.prod(shape))), 1.0), transB=1)
        model = check(tmp_path, g, tie_inputs(rng, [3, 8, 7], 2 ** -4, -32, 31))
        assert any(type(stage).__name__ == "WindowMaxStage" for stage in streamline(model).layers)
