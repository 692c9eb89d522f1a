"""Brevitas exports on digits (MLPs and CNNs): RTL == golden model == qonnx's executor on every test input."""

import numpy as np
import pytest

from hdlgen.flow import BuildDir, build, simulate
from hdlgen.paths import EXAMPLES
from qonnx_graphs import execute

FIXTURES = EXAMPLES / "brevitas_digits"


@pytest.fixture(scope="module")
def test_split():
    return np.load(FIXTURES / "test_x.npy"), np.load(FIXTURES / "test_y.npy")


@pytest.mark.parametrize("name", ["w1a2", "w2a2", "cnn_w1a1", "cnn_w2a2"])
def test_brevitas_mlp_rtl_equals_qonnx_executor(tmp_path, test_split, name):
    """(w1a1 goes through the command line in tests/cli.) Outputs are in model units, compared bit for bit."""
    x, labels = test_split
    path = FIXTURES / f"{name}.onnx"
    build(path, tmp_path / name)
    result = simulate(BuildDir.open(tmp_path / name), x)
    want = execute(path, x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert result.outputs.dtype == np.float32
    assert np.array_equal(result.outputs, want)
    assert result.interval == result.interval_model
    assert np.mean(want.argmax(1) == labels) > 0.8
