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
    assert ranges["percentile"] != ranges["minmax"]
    assert all(p <= m for p, m in zip(ranges["percentile"], ranges["minmax"]))   # a percentile clips


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
