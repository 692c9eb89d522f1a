"""INT8 from a float model: the bundled float CNN (examples/float_digits) quantized by onnxruntime's
calibrators through ``quantize_model``, then built. The golden model and the RTL equal onnxruntime
running the quantized file, on every test image, for each calibration method."""

import numpy as np
import pytest

from hdlgen.frontend import load_model
from hdlgen.golden import predict
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline
from hdlgen.transforms.quantize import METHODS, quantize_model
from qonnx_graphs import run_onnxruntime

FLOAT = EXAMPLES / "float_digits"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """method -> the quantized CNN (written once per module)."""
    folder, files = tmp_path_factory.mktemp("int8"), {}
    calibration = np.load(FLOAT / "calibration.npy")
    for method in METHODS:
        files[method] = folder / f"cnn_{method}.onnx"
        quantize_model(FLOAT / "cnn.onnx", calibration, files[method], method=method)
    return files


def test_test_split():
    x, y = np.load(FLOAT / "test_x.npy"), np.load(FLOAT / "test_y.npy")
    assert x.shape == (450, 1, 8, 8) and y.shape == (450,)


@pytest.mark.parametrize("method", METHODS)
def test_golden_model_equals_onnxruntime_on_every_test_image(quantized, method):
    x, labels = np.load(FLOAT / "test_x.npy"), np.load(FLOAT / "test_y.npy")
    path = quantized[method]
    want = run_onnxruntime(path, x)
    lowered = streamline(load_model(path))
    assert np.array_equal(predict(lowered, x), want)
    assert np.mean(want.argmax(1) == labels) > 0.95
    assert [str(layer.in_type) for layer in lowered.mvus] == ["uint8"] * 4      # ReLU outputs: zero point 0
    assert lowered.output.quant.zero_point > 0                                # scores: signed, with a zero point


def test_calibration_methods_choose_different_ranges(quantized):
    from hdlgen.transforms.quantize import quantized_ranges
    import onnx

    ranges = {m: [r.hi for r in quantized_ranges(onnx.load(str(quantized[m])))] for m in METHODS}
    assert ranges["entropy"] != ranges["minmax"] != ranges["percentile"]
    assert all(p <= m for p, m in zip(ranges["percentile"], ranges["minmax"]))    # a percentile clips the tails


def test_entropy_calibration_saturates_outliers_that_stretch_minmax(tmp_path):
    """Four calibration images scaled up 50x: minmax takes their range, TensorRT-style entropy
    calibration (2048-bin histograms) clips it."""
    from hdlgen.transforms.quantize import quantize_model

    calibration = np.load(FLOAT / "calibration.npy")
    calibration[:4] *= 50
    hi = {m: {r.tensor: r.hi for r in quantize_model(FLOAT / "cnn.onnx", calibration, tmp_path / f"{m}.onnx", method=m)}
          for m in ("minmax", "entropy")}
    assert hi["minmax"]["x"] == pytest.approx(50) and hi["entropy"]["x"] < 10


def check_rtl(tmp_path, path, target):
    from hdlgen.flow import BuildDir, build, simulate

    x = np.load(FLOAT / "test_x.npy")
    build(path, tmp_path / "out", target=target)
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_onnxruntime(path, x))
    assert result.interval == result.interval_model


def test_minmax_int8_cnn_rtl_equals_onnxruntime(tmp_path, quantized):
    check_rtl(tmp_path, quantized["minmax"], "ecp5-85k")


@pytest.mark.slow
@pytest.mark.parametrize("method, target", [("percentile", "ecp5-85k"), ("entropy", "ecp5-85k"), ("entropy", "xcup")])
def test_int8_cnn_rtl_equals_onnxruntime(tmp_path, quantized, method, target):
    check_rtl(tmp_path, quantized[method], target)


def test_fixed_point_requantization_differs_from_onnxruntime_only_where_counted(tmp_path, quantized):
    """gemmlowp's unit (build --requant fixed) rounds twice: the RTL equals its golden model, and the
    frames where it differs from onnxruntime are counted, each by at most one output step."""
    from hdlgen.flow import BuildDir, build, simulate

    x, path = np.load(FLOAT / "test_x.npy"), quantized["minmax"]
    report = build(path, tmp_path / "out", requant="fixed")
    assert [layer["threshold_unit"] for layer in report["layers"]] == ["fixed"] * 4
    assert all(layer["requant_differing"] > 0 for layer in report["layers"])
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    want = run_onnxruntime(path, x)
    differing = np.any(result.outputs != want, axis=1)
    print(f"fixed-point requantization: {differing.sum()} of {len(x)} frames differ from onnxruntime")
    assert 0 < differing.sum() < len(x) // 2
    scale = load_model(path).layers[-1].scale
    assert np.max(np.abs(result.outputs - want)) <= np.float32(scale) * 1.0001
    assert np.array_equal(result.outputs.argmax(1), want.argmax(1))


def test_power_of_two_rescales_build_a_shift_unit_equal_to_onnxruntime(tmp_path, rng):
    from hdlgen.flow import BuildDir, build, simulate
    from qonnx_graphs import inputs, qdq_dense

    path = qdq_dense(rng, x_scale=1.0, w_scale=[0.5, 0.5, 0.25, 0.25, 0.125, 0.125], y_scale=1.0,
                     x_zp=128, y_zp=128, w_max=1).save(tmp_path / "ties.onnx")
    report = build(path, tmp_path / "out")
    layer = report["layers"][0]
    assert layer["threshold_unit"] == "shift" and layer["threshold_memory_bits"] < 6 * 255     # constants, no table
    x = inputs(rng, 300, 1.0, 128)
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_onnxruntime(path, x))


def test_the_qoperator_form_onnxruntime_writes_imports_into_the_same_layers(tmp_path):
    """quantize_static with QuantFormat.QOperator writes QLinearConv, QGemm and integer MaxPool and
    Flatten in place of the QDQ patterns: the same model, bit-exact against onnxruntime."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = np.load(FLOAT / "calibration.npy")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calibration[i:i + 32]} for i in range(0, len(calibration), 32)])

        def get_next(self):
            return next(self.batches, None)

    quant_pre_process(str(FLOAT / "cnn.onnx"), str(tmp_path / "prepared.onnx"))
    quantize_static(str(tmp_path / "prepared.onnx"), str(tmp_path / "qop.onnx"), Reader(),
                    quant_format=QuantFormat.QOperator, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "qop.onnx")).graph.node}
    assert {"QLinearConv", "QGemm"} <= ops and "DequantizeLinear" in ops
    x = np.load(FLOAT / "test_x.npy")
    model = load_model(tmp_path / "qop.onnx")
    assert [type(layer).__name__ for layer in model.layers] == \
        ["Conv2d", "Requantize", "MaxPool2d", "Conv2d", "Requantize", "MaxPool2d", "Flatten", "Dense", "Requantize",
         "Dense", "Requantize"]
    assert np.array_equal(predict(streamline(model), x), run_onnxruntime(tmp_path / "qop.onnx", x))
