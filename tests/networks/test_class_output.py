"""Class output in hardware (build --output class): the RTL's class index equals numpy's argmax of
the model's own float outputs on every test image: the digits BNN (outputs with per-class scales and
biases: ranks), its shift-BN twin (fixed-point scores) and the INT8 CNN (uint8 codes after one
scale, against onnxruntime)."""

import numpy as np
import pytest

from hdlgen.frontend import load_model
from hdlgen.golden import predict, run_reference
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline
from hdlgen.transforms.classes import with_class_output
from hdlgen.transforms.quantize import quantize_model
from qonnx_graphs import run_onnxruntime

DIGITS, FLOAT = EXAMPLES / "digits", EXAMPLES / "float_digits"


def rtl_classes(tmp_path, model_path, target):
    from hdlgen.flow import BuildDir, build, simulate

    report = build(model_path, tmp_path / "out", target=target, output="class")
    result = simulate(BuildDir.open(tmp_path / "out"), np.load(model_path.parent / "test_x.npy"))
    assert np.array_equal(result.hw_words, result.golden_words)
    assert result.interval == result.interval_model
    assert report["output"]["beats_per_frame"] == 1
    return result.outputs[:, 0], report


def test_digits_bnn_class_index_is_the_float_models_argmax_on_every_test_image(tmp_path):
    x = np.load(DIGITS / "test_x.npy")
    want = run_reference(load_model(DIGITS / "model.json"), x).argmax(axis=1)
    got, report = rtl_classes(tmp_path, DIGITS / "model.json", "ice40-up5k")
    assert report["output"]["classes"]["key"] == "rank"
    assert np.array_equal(got, want)


def test_shift_bn_scores_compare_directly():
    x, scores = np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "shift_bn_scores.npy")
    lowered = with_class_output(streamline(load_model(DIGITS / "shift_bn.json")))
    assert lowered.classes.key == "direct" and lowered.classes.signed
    assert np.array_equal(predict(lowered, x)[:, 0], scores.argmax(axis=1))


@pytest.fixture(scope="module")
def int8_cnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "cnn.onnx"
    quantize_model(FLOAT / "cnn.onnx", np.load(FLOAT / "calibration.npy"), path)
    return path


def test_int8_cnn_codes_compare_directly(int8_cnn):
    x = np.load(FLOAT / "test_x.npy")
    lowered = with_class_output(streamline(load_model(int8_cnn)))
    assert lowered.classes.key == "direct" and not lowered.classes.invert
    assert np.array_equal(predict(lowered, x)[:, 0], run_onnxruntime(int8_cnn, x).argmax(axis=1))


@pytest.mark.slow
def test_int8_cnn_rtl_class_index_is_onnxruntimes_argmax(tmp_path, int8_cnn):
    from hdlgen.flow import BuildDir, build, simulate

    x = np.load(FLOAT / "test_x.npy")
    build(int8_cnn, tmp_path / "out", output="class")
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs[:, 0], run_onnxruntime(int8_cnn, x).argmax(axis=1))
