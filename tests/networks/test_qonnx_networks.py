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


def test_scales_that_are_not_powers_of_two_differ_from_the_executor_only_at_rounding_ties(tmp_path):
    """finn-examples' keyword-spotting scales (input 0.83, per-channel weight scales, activations 0.37):
    the RTL equals the golden model, whose dot products are exact integers; qonnx's float32 executor
    rounds inside its MatMul. Every frame where the two differ has a quantizer input that exact
    arithmetic puts within 1e-5 of a rounding tie, where a float32 rounding decides the side; a
    hardware error (an accumulator off by one) would move it by a weight step, 0.05 or more."""
    import json

    from qonnx_graphs import kws_quantizer_inputs, kws_style_mlp

    rng = np.random.default_rng(83)
    graph, layers = kws_style_mlp(rng, 1)
    path = graph.save(tmp_path / "kws.onnx")
    x = ((rng.integers(-10, 11, size=(400, 120)) + rng.uniform(-0.3, 0.3, size=(400, 120))) * 0.83).astype(np.float32)
    build(path, tmp_path / "out")
    notes = json.loads((tmp_path / "out" / "report.json").read_text())["exactness_notes"]
    assert len(notes) == len(layers) and all("is not a power of two" in note for note in notes)
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)

    differ = (result.outputs != execute(path, x)).any(axis=1)
    at_a_tie = np.zeros(len(x), bool)
    for u, layer in zip(kws_quantizer_inputs(x, layers), layers):
        hi = 2 ** (layer["bits"] - 1) - 1 if layer["signed"] else 2 ** layer["bits"] - 1
        lo = -hi - 1 if layer["signed"] else 0
        at_a_tie |= ((np.abs(u - np.floor(u) - 0.5) < 1e-5) & (lo - 0.5 < u) & (u < hi + 0.5)).any(axis=1)
    assert 10 <= differ.sum() < at_a_tie.sum() < len(x) / 2       # measured: 33 differ, 117 at a tie, of 400
    assert not np.any(differ & ~at_a_tie), f"frames {np.flatnonzero(differ & ~at_a_tie)} differ away from any tie"
