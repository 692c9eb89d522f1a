"""ONNX QDQ import: the imported model and its lowered form compute what onnxruntime computes on
the same file, at rounding ties and at the saturation limits, and bad QDQ graphs get one clear error."""

import numpy as np
import pytest

from hdlgen.errors import HdlgenError
from hdlgen.frontend import load_model
from hdlgen.golden import predict
from hdlgen.golden.reference import run_reference
from hdlgen.ir.model import Dense, Requantize
from hdlgen.transforms import streamline
from qonnx_graphs import IN, OUT, Graph, inputs, qdq_dense, run_onnxruntime

def agree(path, x) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(path)
    want = run_onnxruntime(path, x)
    assert np.array_equal(run_reference(model, x), want)
    assert np.array_equal(predict(streamline(model), x), want)
    return model, want


def test_power_of_two_rescales_round_ties_to_even_as_onnxruntime(tmp_path, rng):
    """A rescale by 1/2, 1/4 ... puts many sums exactly on .5: each one rounds to the even integer."""
    path = qdq_dense(rng, x_scale=1.0, w_scale=[0.5, 0.5, 0.25, 0.25, 0.125, 0.125], y_scale=1.0,
                     x_zp=128, y_zp=128, w_max=1).save(tmp_path / "ties.onnx")
    x = inputs(rng, 4000, 1.0, 128)
    model, want = agree(path, x)
    layer = streamline(model).mvus[0]
    unit = layer.requant                                 # the rescale is a shift: no table, no multiplier
    varying = np.any((layer.thresholds > 0) & (layer.thresholds <= layer.row_p_max[:, None]), axis=1)
    assert unit.kind == "shift" and unit.half_even and varying.sum() >= 3
    assert np.array_equal(unit.shift[varying], np.array([1, 1, 2, 2, 3, 3])[varying])
    requant = model.layers[-1]
    acc = x.astype(np.int64) @ model.layers[0].weight.T + requant.bias
    exact = acc * (requant.multiplier.astype(np.float64))
    ties = (exact - np.floor(exact) == 0.5) & (np.abs(exact) < 127)
    assert np.count_nonzero(ties) > 300          # ties inside the range, each one checked above
    stored = want.astype(int) + 128
    assert stored.min() == 0 and stored.max() == 255                         # and both saturation limits


@pytest.mark.parametrize("y_dtype, y_zp", [(np.uint8, 131), (np.int8, -5)], ids=["uint8", "int8"])
def test_scales_that_are_not_powers_of_two_match_onnxruntime_frame_by_frame(tmp_path, rng, y_dtype, y_zp):
    w_scale = rng.uniform(0.001, 0.01, OUT).astype(np.float32)
    path = qdq_dense(rng, x_scale=0.0137, w_scale=w_scale, y_scale=0.01, x_zp=7, y_zp=y_zp,
                     y_dtype=y_dtype).save(tmp_path / "m.onnx")
    _, want = agree(path, inputs(rng, 4000, 0.0137, 7))
    info = np.iinfo(y_dtype)
    stored = np.round(want / np.float32(0.01)).astype(int) + y_zp
    assert stored.min() == info.min and stored.max() == info.max


def test_the_zero_point_becomes_part_of_the_activation_type(tmp_path, rng):
    path = qdq_dense(rng, x_scale=0.02, w_scale=0.01, y_scale=0.3, x_zp=7, y_zp=131).save(tmp_path / "m.onnx")
    model = load_model(path)
    assert str(model.input.quant) == "uint8_zp7" and model.input.rounding == "HALF_EVEN"
    dense, requant = model.layers
    assert isinstance(dense, Dense) and isinstance(requant, Requantize)
    assert str(requant.quant) == "uint8_zp131" and (requant.quant.lo, requant.quant.hi) == (-131, 124)
    assert requant.multiplier.dtype == np.float64 and np.all(requant.multiplier == np.float32(requant.multiplier))
    assert str(streamline(model).mvus[0].in_type) == "uint8_zp7"


def test_a_relu_that_the_output_quantizer_already_clips_is_accepted(tmp_path, rng):
    path = qdq_dense(rng, x_scale=0.02, w_scale=0.01, y_scale=0.3, y_zp=0, relu=True).save(tmp_path / "m.onnx")
    agree(path, inputs(rng, 500, 0.02, 7))


def error_of(tmp_path, graph: Graph) -> str:
    path = graph.save(tmp_path / "bad.onnx")
    with pytest.raises(HdlgenError) as e:
        load_model(path)
    return str(e.value)


def test_a_relu_before_a_zero_point_that_passes_negative_values_is_refused(tmp_path, rng):
    graph = qdq_dense(rng, x_scale=0.02, w_scale=0.01, y_scale=0.3, y_zp=10, relu=True)
    assert "Relu before a quantizer whose zero point (10)" in error_of(tmp_path, graph)


def test_weights_with_a_zero_point_are_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02, 7)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01, zero_point=3, axis=0), transB=1)
    assert "non-zero zero point; hdlgen needs symmetric weights" in error_of(tmp_path, g.qdq(0.3))


def test_a_bias_in_other_units_is_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02, 7)
    bias = g.dequantized(np.arange(OUT), np.float32(0.5), dtype=np.int32)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01), bias, transB=1)
    assert "bias scale is not its input scale times its weight scale" in error_of(tmp_path, g.qdq(0.3))


def test_a_rescale_without_a_layer_is_refused(tmp_path):
    g = Graph((IN,), batch=None).qdq(0.02, 7).qdq(0.04, 7)
    assert "requantizes from scale 0.02 (uint8_zp7) to 0.04 (uint8_zp7) with no layer" in error_of(tmp_path, g)


def test_a_layer_whose_output_is_not_requantized_is_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01), transB=1).op("Flatten")
    assert "not to a QuantizeLinear; hdlgen needs every Conv, Gemm and MatMul requantized" in error_of(tmp_path, g)


def test_an_output_left_quantized_is_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01), transB=1).quantize_linear(0.3)
    assert "is quantized integers; a QDQ model ends with a DequantizeLinear" in error_of(tmp_path, g)


def test_a_float_op_between_quantizers_is_refused(tmp_path):
    g = Graph((IN,), batch=None).qdq(0.02).op("Sigmoid").qdq(0.02)
    assert "op Sigmoid is not supported in a QDQ model; supported ops are QuantizeLinear" in error_of(tmp_path, g)


def test_the_native_description_keeps_a_requantized_model(tmp_path, rng):
    from hdlgen.frontend import save_model

    path = qdq_dense(rng, x_scale=0.0137, w_scale=rng.uniform(0.001, 0.01, OUT), y_scale=0.01).save(tmp_path / "m.onnx")
    save_model(load_model(path), tmp_path / "m.json")
    x = inputs(rng, 500, 0.0137, 7)
    assert np.array_equal(run_reference(load_model(tmp_path / "m.json"), x), run_onnxruntime(path, x))


def test_matmul_with_weights_per_output_column(tmp_path, rng):
    """x @ W with W (in, out) quantized per output column (axis 1), as onnxruntime writes MatMul."""
    g = Graph((IN,), batch=None).qdq(0.0137, 7)
    w_scale = rng.uniform(0.001, 0.01, OUT).astype(np.float32)
    g.matmul(g.dequantized(rng.integers(-127, 128, size=(IN, OUT)), w_scale, axis=1))
    path = g.qdq(0.01, 131).save(tmp_path / "matmul.onnx")
    agree(path, inputs(rng, 2000, 0.0137, 7))


def test_a_last_layer_left_in_float_is_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01), transB=1)
    assert "its output is not requantized (no QuantizeLinear after it)" in error_of(tmp_path, g)


def test_16_bit_activations_are_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02, 0, np.uint16)
    g.gemm(g.dequantized(rng.integers(-5, 5, size=(OUT, IN)), 0.01), transB=1)
    assert "uint16 activations are not supported; use uint8 or int8" in error_of(tmp_path, g.qdq(0.3))


def test_a_zero_point_that_does_not_fit_the_scales_is_refused(tmp_path, rng):
    g = Graph((IN,), batch=None).qdq(0.02)
    out = g.fresh("dq")
    from onnx import helper
    g.nodes.append(helper.make_node("DequantizeLinear", [g.stored(rng.integers(-5, 5, size=(OUT, IN)), np.int8),
                                                         g.const(np.float32(0.01)), g.stored(np.zeros(OUT), np.int8)],
                                    [out], name="bad_dq"))
    g.gemm(out, transB=1)
    assert "its zero point has 6 values for 1 scales" in error_of(tmp_path, g.qdq(0.3))


def window_sums(q, zero_point, kernel, stride):
    values = q.astype(np.int64) - zero_point
    out = (values.shape[2] - kernel) // stride + 1
    return sum(values[:, :, ky:ky + stride * (out - 1) + 1:stride, kx:kx + stride * (out - 1) + 1:stride]
               for ky in range(kernel) for kx in range(kernel))


@pytest.mark.parametrize("x_scale, y_scale, kernel, stride", [(2 ** -4, 2 ** -5, 3, 1), (0.05, 0.05, 2, 2),
                                                              (0.0371, 0.0213, 3, 2)])
def test_average_pool_equals_onnxruntime_but_on_ties_its_float_arithmetic_breaks(tmp_path, rng, x_scale, y_scale,
                                                                                 kernel, stride):
    """The exact window sum, one rounding, then half to even. onnxruntime's fused kernel computes in
    float32 and breaks some exact ties of the mean either way: each difference is counted, is one
    output step, and sits on a tie of the exact mean (``sum * x_scale / count / y_scale`` an odd
    multiple of 1/2); with power-of-two scales there is none."""
    g = Graph((4, 7, 7), batch=None).qdq(x_scale, 3)
    g.op("AveragePool", kernel_shape=[kernel, kernel], strides=[stride, stride]).qdq(y_scale, 5)
    path = g.save(tmp_path / "pool.onnx")
    q = rng.integers(0, 256, size=(64, 4, 7, 7))
    x = ((q - 3) * np.float32(x_scale)).astype(np.float32)
    model = load_model(path)
    assert [type(layer).__name__ for layer in model.layers] == ["AvgPool2d", "Quantizer"]
    want, got = run_onnxruntime(path, x), run_reference(model, x)
    differing = got != want
    exact = window_sums(q, 3, kernel, stride) * np.float64(np.float32(x_scale)) / kernel ** 2 / np.float64(np.float32(y_scale))
    assert np.all(np.abs(exact[differing] - np.floor(exact[differing]) - 0.5) < 1e-9)
    assert np.all(np.abs(got - want)[differing] <= np.float32(y_scale) * 1.0001)
    if x_scale == 2 ** -4:
        assert not differing.any()
    print(f"{int(differing.sum())} of {got.size} means differ, every one on a tie "
          f"({int(np.sum(np.abs(exact - np.floor(exact) - 0.5) < 1e-9))} ties)")
