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


def test_cybersecurity_style_mlp_through_rtl(tmp_path):
    """600 bipolar inputs annotated BIPOLAR with (x + 1) / 2 in front, ternary weights, a bipolar output."""
    from qonnx_graphs import cybersecurity_mlp

    rng = np.random.default_rng(600)
    path = cybersecurity_mlp(rng, 1).save(tmp_path / "cyber.onnx")
    x = rng.choice([-1.0, 1.0], size=(300, 600)).astype(np.float32)
    build(path, tmp_path / "out")
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    want = execute(path, x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, want)
    assert 0.1 < np.mean(want > 0) < 0.9          # both classes occur


def test_qkeras_style_mlp_through_the_command_line(tmp_path):
    """--input-type FIXED<8,3>, a final Softmax on the host: sim --out equals the executor's output."""
    import subprocess
    import sys

    from qonnx_graphs import qkeras_mlp

    rng = np.random.default_rng(16)
    path = qkeras_mlp(rng, 1).save(tmp_path / "qkeras.onnx")
    x = (rng.integers(-128, 128, size=(200, 16)) / 32).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cli = [sys.executable, "-m", "hdlgen.cli", "-q"]
    done = subprocess.run([*cli, "build", path, "-o", tmp_path / "out", "--input-type", "FIXED<8,3>"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "final Softmax runs on the host" in done.stdout
    done = subprocess.run([*cli, "sim", tmp_path / "out", "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "RTL == golden model on 200/200 frames" in done.stdout
    assert np.array_equal(np.load(tmp_path / "y.npy"), execute(path, x))


@pytest.mark.parametrize("act", ["bipolar", "uint2"])
def test_batchnorm_after_maxpool_through_rtl(tmp_path, act):
    """Pools moved after their activations, the falling channels' pools taking the minimum."""
    from qonnx_graphs import pool_then_batchnorm_cnn

    rng = np.random.default_rng(28)
    path = pool_then_batchnorm_cnn(rng, 1, act=act).save(tmp_path / "binarynet.onnx")
    x = (rng.integers(-8, 8, size=(60, 1, 8, 8)) / 16).astype(np.float32)
    build(path, tmp_path / "out")
    build_dir = BuildDir.open(tmp_path / "out")
    assert any(any(stage.minimum) for stage in build_dir.model.layers if type(stage).__name__ == "PoolStage")
    result = simulate(build_dir, x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, execute(path, x))
    assert result.interval == result.interval_model
