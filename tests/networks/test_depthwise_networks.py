"""Depthwise and grouped convolutions and average pooling (MobileNet's and DS-CNN's blocks), from
QONNX and from a float model through ``hdlgen quantize``: the golden model equals the source
framework's executor, and the RTL equals the golden model at the modelled frame interval, under
stalls too. A grouped layer runs on the zero-skipping unit, its weights zero outside each group."""

import json

import numpy as np
import onnx
import pytest

from hdlgen.flow import BuildDir, build, simulate
from hdlgen.frontend import load_model
from hdlgen.golden import predict
from hdlgen.ir import Conv2d
from hdlgen.transforms import streamline
from qonnx_graphs import depthwise_separable_cnn, ds_cnn, execute, float_depthwise_cnn, run_onnxruntime

FRAMES = 16


def image_inputs(rng, frames=FRAMES):
    """8-bit images on whole and half steps (rounding ties), past both ends of the range."""
    return (rng.integers(-260, 260, size=(frames, 3, 10, 10)) * 0.5 * 2 ** -7).astype(np.float32)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mobilenet")
    rng = np.random.default_rng(11)
    path = depthwise_separable_cnn(rng, FRAMES).save(folder / "model.onnx")
    build(path, folder / "out")
    return path, folder / "out"


def test_lowered_model_equals_the_executor(mobilenet):
    path, _ = mobilenet
    x = image_inputs(np.random.default_rng(1))
    assert np.array_equal(predict(streamline(load_model(path)), x), execute(path, x))


def test_grouped_layers_skip_the_weights_outside_their_groups(mobilenet):
    path, out = mobilenet
    model = load_model(path)
    lowered = streamline(model)
    source = [layer for layer in model.layers if isinstance(layer, Conv2d)][1].weight     # depthwise: (8, 1, 3, 3)
    depthwise = lowered.mvus[1].weights.reshape(8, 9, 8)             # rows, taps (ky, kx), channels
    rows = np.arange(8)
    assert np.array_equal(np.abs(depthwise[rows, :, rows]), np.abs(source.reshape(8, 9)))   # (rows of gamma < 0 negated)
    depthwise[rows, :, rows] = 0
    assert not depthwise.any()
    assert str(lowered.mvus[4].weight_type) == "ternary"             # bipolar weights, zeros between groups
    report = json.loads((out / "report.json").read_text())
    last = next(layer for layer in report["layers"] if layer["name"] == lowered.mvus[4].name)
    assert last["zero_skip"] and last["zero_blocks"] >= last["blocks"] * 3 // 4


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.5)], ids=["no-stalls", "stalls"])
def test_rtl_equals_the_executor(mobilenet, stalls):
    path, out = mobilenet
    x = image_inputs(np.random.default_rng(2))
    result = simulate(BuildDir.open(out), x, idle=stalls[0], backpressure=stalls[1], seed=5)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, execute(path, x))
    if stalls == (0.0, 0.0):
        assert result.interval == result.interval_model


def test_quantized_float_model_rtl_equals_onnxruntime(tmp_path, rng):
    """A float depthwise CNN (depth multiplier 2, an average pool) through onnxruntime's calibrator,
    then built."""
    from hdlgen.transforms.quantize import quantize_model

    onnx.save(float_depthwise_cnn(rng), tmp_path / "float.onnx")
    quantize_model(tmp_path / "float.onnx", rng.uniform(0, 1, (64, 1, 8, 8)).astype(np.float32), tmp_path / "q.onnx")
    x = rng.uniform(0, 1, (FRAMES, 1, 8, 8)).astype(np.float32)
    build(tmp_path / "q.onnx", tmp_path / "out")
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_onnxruntime(tmp_path / "q.onnx", x))
    assert result.interval == result.interval_model


# Conv_3 and Conv_4 both take 1,296 cycles a frame: the padding stage between them pauses for
# 12 pixels of border a frame (16 beats each) while Conv_3 cannot afford to wait
TIED = {"Conv_0": (8, 3), "Conv_1": (2, 8), "Conv_2": (2, 2), "Conv_3": (2, 16), "Conv_4": (2, 2, True),
        "Gemm_0": (1, 2)}


def tied_folding():
    return {name: {"pe": f[0], "simd": f[1], "zero_skip": len(f) > 2} for name, f in TIED.items()}


def test_a_fifo_from_the_cycle_model_keeps_a_tied_pipeline_at_its_interval(mobilenet, tmp_path, monkeypatch):
    path, _ = mobilenet
    x = image_inputs(np.random.default_rng(3), 8)
    build(path, tmp_path / "fifo", fold=tied_folding())
    report = json.loads((tmp_path / "fifo" / "report.json").read_text())
    assert report["pipeline"]["initiation_interval_cycles"] == 1296
    # 192 border beats at Conv_3's 9 cycles a beat: 22 beats, plus 2 for the FIFO's registers
    assert report["pipeline"]["fifos"] == [{"from": "Conv_3", "into": "Conv_4_pad", "depth": 24,
                                            "cycle_model_depth": 24, "width": 8, "memory_bits": 192}]
    assert report["estimate"]["stages"]["Conv_4_pad_fifo"]["lut"] > 0
    result = simulate(BuildDir.open(tmp_path / "fifo"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert result.interval == result.interval_model == 1296

    import hdlgen.assemble.dataflow as dataflow

    monkeypatch.setattr(dataflow, "edge_fifos", lambda model, foldings: {})
    build(path, tmp_path / "none", fold=tied_folding())
    result = simulate(BuildDir.open(tmp_path / "none"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert result.interval > 1296                 # without it, Conv_3 waits on every frame's border


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds_cnn")
    path = ds_cnn(np.random.default_rng(0), FRAMES).save(folder / "model.onnx")
    build(path, folder / "out")
    return path, folder / "out"


def spectrograms(rng, frames=FRAMES):
    """8-bit 12x8 inputs: a level per frame (so the pooled features differ) plus noise, on half steps."""
    level = rng.integers(-200, 200, size=(frames, 1, 1, 1))
    return ((level + rng.integers(-60, 60, size=(frames, 1, 12, 8))) * 0.5 * 2 ** -7).astype(np.float32)


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.5)], ids=["no-stalls", "stalls"])
def test_ds_cnn_rtl_equals_the_executor(kws, stalls):
    path, out = kws
    x = spectrograms(np.random.default_rng(4))
    want = execute(path, x)
    assert len({row.tobytes() for row in want}) > FRAMES // 2          # the frames are told apart
    result = simulate(BuildDir.open(out), x, idle=stalls[0], backpressure=stalls[1], seed=6)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, want)
    if stalls == (0.0, 0.0):
        assert result.interval == result.interval_model


def test_ds_cnn_pools_on_window_sums(kws):
    """The 3x3 average pool is a sliding window into a layer of weights 1, one per channel; the pool
    over the whole map is a global sum."""
    path, _ = kws
    lowered = streamline(load_model(path))
    pool = next(layer for layer in lowered.mvus if layer.name.startswith("AveragePool"))
    assert pool.spatial == (6, 4) and set(np.unique(pool.weights)) == {0, 1}
    assert np.all(pool.weights.sum(axis=1) == 9)
    last = [stage for stage in lowered.layers if stage.name.startswith("AveragePool")][-1]
    assert type(last).__name__ == "GlobalPoolStage" and last.in_shape == (6, 4, 16)


def test_mlperf_ds_cnn_at_its_real_size_lowers_exactly():
    """MLPerf Tiny's DS-CNN (benchmarks/mlperf_tiny.py builds and places it): 49x10 input, 64
    channels, four depthwise-separable blocks; the 25x5 average pool is a global sum."""
    from hdlgen.golden import run_reference
    from hdlgen.topologies import ds_cnn

    model = ds_cnn(np.random.default_rng(0), calibration=16)
    lowered = streamline(model)
    assert [layer.mh for layer in lowered.mvus] == [64] * 9 + [12]
    assert type(lowered.layers[-2]).__name__ == "GlobalPoolStage"
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(4, 1, 49, 10)) * rng.uniform(0.2, 1, size=(4, 1, 1, 1))
    assert np.array_equal(predict(lowered, x), run_reference(model, x))


def test_a_folding_may_deepen_a_fifo_but_not_below_the_cycle_models_depth(mobilenet, tmp_path):
    from hdlgen import HdlgenError

    path, _ = mobilenet
    fold = tied_folding()
    fold["Conv_4"]["fifo_depth"] = 40
    report = build(path, tmp_path / "deeper", fold=fold)
    assert [(f["into"], f["depth"], f["cycle_model_depth"]) for f in report["pipeline"]["fifos"]] == [("Conv_4_pad", 40, 24)]
    assert report["estimate"]["stages"]["Conv_4_pad_fifo"]["lut"] > 0
    fold["Conv_4"]["fifo_depth"] = 23
    with pytest.raises(HdlgenError, match=r"fold: layer 'Conv_4': fifo_depth 23 is below the 24 beats the cycle model "
                                          r"needs in front of 'Conv_4_pad' .* give at least 24"):
        build(path, tmp_path / "shallow", fold=fold)
    assert not (tmp_path / "shallow").exists()
    fold["Conv_4"]["fifo_depth"] = 24
    fold["Conv_1"]["fifo_depth"] = 2                  # its padding needs no FIFO, but one this shallow halves the rate
    with pytest.raises(HdlgenError, match="layer 'Conv_1': fifo_depth 2 is below 3: a FIFO that shallow takes a beat "
                                          "only every other cycle"):
        build(path, tmp_path / "halved", fold=fold)
    fold["Conv_1"]["fifo_depth"] = 3
    report = build(path, tmp_path / "added", fold=fold)
    assert [(f["into"], f["depth"], f["cycle_model_depth"]) for f in report["pipeline"]["fifos"]] == [
        ("Conv_1_pad", 3, 0), ("Conv_4_pad", 24, 24)]
    fold["Conv_2"]["fifo_depth"] = 8                  # a 1x1 convolution: no padding, no FIFO to size
    with pytest.raises(HdlgenError, match="layer 'Conv_2': fifo_depth sizes the FIFO in front of a layer's padding "
                                          "stage, and 'Conv_2' has none"):
        build(path, tmp_path / "unpadded", fold=fold)


def test_inspect_shows_the_units_and_the_fifos_of_the_default_folding(mobilenet):
    from hdlgen.inspect import describe

    path, _ = mobilenet
    text = "\n".join(describe(load_model(path)))
    assert "pipeline at the default folding (--fold auto, ecp5-85k): 1,296 cycles a frame, bottleneck Conv_3" in text
    assert "Conv_1 2x2 vector-vector" in text and "Conv_4 2x2 vector-vector" in text
    assert "FIFO Conv_3 -> Conv_4_pad: 24 beats (the cycle model's depth)" in text


def test_the_size_guard_counts_a_vector_vector_units_pe_products(mobilenet):
    from hdlgen.ir import Folding
    from hdlgen.size_guard import SizeGuard

    path, _ = mobilenet
    lowered = streamline(load_model(path))
    foldings = {name: Folding(f["pe"], f["simd"], f["zero_skip"]) for name, f in tied_folding().items()}
    dense = dict(foldings, Conv_4=Folding(2, 2))                      # the same layer on a matrix-vector unit
    assert SizeGuard.lanes(lowered, foldings) == SizeGuard.lanes(lowered, dense) - 2 * (2 - 1)
