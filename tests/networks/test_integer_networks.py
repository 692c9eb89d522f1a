"""Brevitas networks with 3- to 8-bit weights (examples/brevitas_digits, examples/tensorlayer_mnist):
the golden model equals qonnx's executor, and the RTL equals both, built with packed DSP products
for xcup and with product tables in LUTs for ecp5-85k."""

import json

import numpy as np
import pytest

from hdlgen.frontend import load_qonnx
from hdlgen.golden import predict
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline
from qonnx_graphs import execute, rtl_equals_executor

DIGITS = EXAMPLES / "brevitas_digits"
MNIST = EXAMPLES / "tensorlayer_mnist"
# name: (model file, test split, weight types of its layers)
NETWORKS = {
    "mlp_w3a3": (DIGITS / "mlp_w3a3.onnx", "digits", ["narrow_int3"] * 3),
    "cnn_w4a4": (DIGITS / "cnn_w4a4.onnx", "digits", ["narrow_int4"] * 4),
    "cnn_w8a8": (DIGITS / "cnn_w8a8.onnx", "digits", ["narrow_int8"] * 4),
    "dorefanet": (MNIST / "dorefanet.onnx", "mnist", ["bipolar"] * 3 + ["narrow_int8"]),
}
# the products each target gives layers of 3-bit codes and weights, and of 4-bit ones
SMALL_PRODUCTS = {"xcup": {3: "packed", 4: "packed"}, "ecp5-85k": {3: "lut", 4: "packed"}}


def split_of(kind: str):
    if kind == "digits":
        return np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "test_y.npy")
    return np.load(EXAMPLES / "bnn_pynq" / "test_x.npy").astype(np.float32) / 255, np.load(EXAMPLES / "bnn_pynq" / "test_y.npy")


@pytest.mark.parametrize("name", NETWORKS)
def test_golden_model_equals_the_executor(name):
    path, split, weight_types = NETWORKS[name]
    x = split_of(split)[0][:100]
    lowered = streamline(load_qonnx(path))
    assert [str(layer.weight_type) for layer in lowered.mvus] == weight_types
    assert np.array_equal(predict(lowered, x), execute(path, x))


def check_rtl(tmp_path, name, target):
    path, split, _ = NETWORKS[name]
    x, labels = split_of(split)
    want = rtl_equals_executor(tmp_path / "out", path, x, target=target)
    assert np.mean(want.argmax(1) == labels) > 0.8
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for layer in report["layers"]:
        bits = int(layer["in_type"].removeprefix("uint")) if layer["in_type"].startswith("uint") else 8
        weight_bits = {"narrow_int3": 3, "narrow_int4": 4}.get(layer["weight_type"])
        if bits == weight_bits and layer["pe"] > 1:
            assert layer["product"] == SMALL_PRODUCTS[target][bits], layer
        if target == "xcup" and layer["weight_type"] == "narrow_int8" and layer["pe"] > 1:
            assert layer["product"] == "packed", layer


@pytest.mark.parametrize("target", SMALL_PRODUCTS)
def test_mlp_w3a3_rtl_equals_the_executor(tmp_path, target):
    check_rtl(tmp_path, "mlp_w3a3", target)


@pytest.mark.slow
@pytest.mark.parametrize("target", SMALL_PRODUCTS)
@pytest.mark.parametrize("name", [n for n in NETWORKS if n != "mlp_w3a3"])
def test_rtl_equals_the_executor(tmp_path, name, target):
    check_rtl(tmp_path, name, target)


@pytest.mark.slow
def test_int8_network_on_xcup_makes_two_macs_per_dsp48e2(tmp_path):
    """Yosys's cell counts for the whole INT8 CNN: one DSP48E2 per pair of rows and input, and no
    other multiplier."""
    from hdlgen.backends.synth import synthesize
    from hdlgen.flow import BuildDir, build

    report = build(NETWORKS["cnn_w8a8"][0], tmp_path / "out", target="xcup")
    build_dir = BuildDir.open(tmp_path / "out")
    result = synthesize(build_dir.verilog, report["top"], "xcup", tmp_path / "synth")
    macs = sum(layer["pe"] * layer["simd"] for layer in report["layers"])
    pairs = sum(-(-layer["pe"] // 2) * layer["simd"] for layer in report["layers"])
    assert all(layer["product"] == "packed" for layer in report["layers"] if layer["pe"] > 1)
    assert result.dsp == pairs and result.cells.get("DSP48E2") == pairs
    assert macs / result.dsp >= 1.9, (macs, result.dsp)
