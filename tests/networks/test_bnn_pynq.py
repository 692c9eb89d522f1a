"""BNN-PYNQ's TFC and CNV from Brevitas' model zoo, exported by both of torch's exporters: the golden
model and the RTL equal qonnx's executor (after qonnx's cleanup) bit for bit, outputs in model units."""

import numpy as np
import pytest

from hdlgen.frontend import load_qonnx
from hdlgen.golden import predict, run_reference
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline
from qonnx_graphs import execute, rtl_equals_executor

FIXTURES = EXAMPLES / "bnn_pynq"
EXPORTS = [f"tfc_{p}_{e}" for p in ("1w1a", "1w2a", "2w2a") for e in ("ts", "dynamo")]
CNV_EXPORTS = [f"cnv_{p}_{e}" for p in ("1w1a", "1w2a", "2w2a") for e in ("ts", "dynamo")]


def cifar_like(count: int) -> np.ndarray:
    """Seeded images in [0, 1] (CIFAR-10 is not here to download; CNV is seeded, not trained)."""
    return np.random.default_rng(32).random((count, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def test_split():
    """Pixels as the model takes them: [0, 1] floats, (batch, 1, 28, 28)."""
    return (np.load(FIXTURES / "test_x.npy").astype(np.float32) / 255), np.load(FIXTURES / "test_y.npy")


@pytest.mark.parametrize("name", EXPORTS)
def test_golden_model_equals_the_executor(test_split, name):
    x = test_split[0][:100]
    path = FIXTURES / f"{name}.onnx"
    model = load_qonnx(path)
    assert [type(layer).__name__ for layer in model.input.preprocess] == ["Elementwise", "Elementwise"]   # 2 * x - 1
    want = execute(path, x)
    assert np.array_equal(run_reference(model, x), want)
    assert np.array_equal(predict(streamline(model), x), want)


def _through_rtl(tmp_path, name, x, labels):
    want = rtl_equals_executor(tmp_path / name, FIXTURES / f"{name}.onnx", x)
    assert np.mean(want.argmax(1) == labels) > 0.75


@pytest.mark.parametrize("name", ["tfc_1w1a_ts", "tfc_2w2a_dynamo"])
def test_rtl_equals_the_executor(tmp_path, test_split, name):
    x, labels = test_split
    _through_rtl(tmp_path, name, x[:120], labels[:120])


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTS)
def test_rtl_equals_the_executor_on_every_test_image(tmp_path, test_split, name):
    _through_rtl(tmp_path, name, *test_split)


@pytest.mark.parametrize("name", CNV_EXPORTS)
def test_cnv_golden_model_equals_the_executor(name):
    x = cifar_like(3)
    path = FIXTURES / f"{name}.onnx"
    model = load_qonnx(path)
    want = execute(path, x)
    assert want.std() > 1                       # seeded batch norms: outputs vary
    assert np.array_equal(run_reference(model, x), want)
    assert np.array_equal(predict(streamline(model), x), want)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnv_1w1a_ts", "cnv_1w2a_dynamo", "cnv_2w2a_dynamo"])
def test_cnv_rtl_equals_the_executor(tmp_path, name):
    """CNV's Verilator build takes minutes: slow tier. One exporter's file per precision; the other's
    lowers to the same hardware (test_both_exporters_lower_to_the_same_hardware)."""
    rtl_equals_executor(tmp_path / name, FIXTURES / f"{name}.onnx", cifar_like(6))


@pytest.mark.parametrize("name", [f"{m}_{p}" for m in ("tfc", "cnv") for p in ("1w1a", "1w2a", "2w2a")])
def test_both_exporters_lower_to_the_same_hardware(name):
    """The TorchScript and the default exporter's files of one model give the same integer weights and
    thresholds, so the RTL of one stands for both."""
    ts, dynamo = (streamline(load_qonnx(FIXTURES / f"{name}_{e}.onnx")) for e in ("ts", "dynamo"))
    assert [type(s).__name__ for s in ts.layers] == [type(s).__name__ for s in dynamo.layers]
    for a, b in zip(ts.mvus, dynamo.mvus):
        assert np.array_equal(a.weights, b.weights)
        assert (a.thresholds is None and b.thresholds is None) or np.array_equal(a.thresholds, b.thresholds)
