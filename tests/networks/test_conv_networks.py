"""Convolutional networks: RTL == golden model == source model, under stalls, at the analytical frame rate."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, CocotbDesign
from hdlgen.backends.packing import frame_words_with_last, pack_beats
from hdlgen.backends.verilog import emit_model
from hdlgen.golden import quantize_input_codes, run_lowered, run_reference, to_model_units
from hdlgen.ir import (BatchNorm, Conv2d, Dense, Flatten, Folding, GlobalAvgPool, InputQuantizer, MaxPool2d, Model,
                       Quantizer)
from hdlgen.transforms import streamline

FRAMES = 4


def batchnorm(rng, name, n, fan_in):
    gamma = rng.uniform(0.5, 1.5, n) * rng.choice([-1, 1], n)
    gamma[0] = 0.0
    return BatchNorm(name, gamma, rng.normal(0, 0.3, n), rng.normal(0, np.sqrt(fan_in) * 0.3, n),
                     rng.uniform(0.5, 1.5, n) * fan_in, 1e-4)


def small_cnn(rng, name, in_q, act_q, global_pool=False):
    """Zero-padded conv (bipolar activations get widened to ternary), max pool, a strided dilated conv,
    flatten (or global average pooling) into dense layers: every stage kind and a width converter
    between most of them."""
    act_scale = 1.0 if act_q.is_bipolar else 0.5
    layers = [
        Conv2d("c0", rng.choice([-1, 1], size=(6, 2, 3, 3)), BIPOLAR, padding=(1, 1, 1, 1)),
        batchnorm(rng, "bn0", 6, 18 * 16), Quantizer("a0", act_q, act_scale), MaxPool2d("p0", (2, 2)),
        Conv2d("c1", rng.choice([-1, 0, 1], size=(4, 6, 2, 3)), TERNARY, padding=(1, 0, 0, 1), stride=(1, 2),
               dilation=(2, 1)),
        batchnorm(rng, "bn1", 4, 36), Quantizer("a1", act_q, act_scale)]
    if global_pool:
        layers += [GlobalAvgPool("gap"), Quantizer("a_gap", UINT(3), 0.125), Flatten("flat"),
                   Dense("fc0", rng.choice([-1, 1], size=(6, 4)), BIPOLAR), batchnorm(rng, "bn2", 6, 4)]
    else:
        layers += [Flatten("flat"), Dense("fc0", rng.choice([-1, 1], size=(6, 4 * 3 * 2)), BIPOLAR),
                   batchnorm(rng, "bn2", 6, 24)]
    return Model(name, InputQuantizer(2 * 9 * 8, in_q, 1.0, shape=(2, 9, 8)), layers)


NETWORKS = {
    "uint4-in_bipolar-act": (UINT(4), BIPOLAR, [(3, 2), (2, 6), (3, 4)], False),
    "int3-in_uint2-act_global-pool": (INT(3), UINT(2), [(6, 1), (4, 3), (1, 2)], True),
}


@pytest.fixture(scope="module", params=NETWORKS, ids=NETWORKS)
def network(request, sim_root):
    in_q, act_q, folds, global_pool = NETWORKS[request.param]
    rng = np.random.default_rng(zlib.crc32(request.param.encode()))
    model = small_cnn(rng, request.param.replace("-", "_"), in_q, act_q, global_pool)
    lowered = streamline(model)
    foldings = {layer.name: Folding(*fold) for layer, fold in zip(lowered.mvus, folds)}
    verilog, top = emit_model(lowered, foldings)
    return CocotbDesign(verilog, f"{lowered.name}_top", sim_root / f"cnn-{request.param}"), model, lowered, top


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.5)], ids=["no-stalls", "stalls"])
def test_cnn_bit_exact(network, rng, stalls):
    built, model, lowered, top = network
    q = model.input.quant
    x = rng.integers(q.lo - 1, q.hi + 2, size=(FRAMES, 2, 9, 8)).astype(float)
    codes = quantize_input_codes(lowered, x)
    hw = run_lowered(lowered, codes)
    assert np.array_equal(to_model_units(lowered, hw), run_reference(model, x))
    cycles = top.cycle_model()
    plan_in, plan_out = top.plan[0], top.plan[-1]
    ii = cycles.initiation_interval if stalls == (0.0, 0.0) else None
    result = built.run(inputs=pack_beats(codes, plan_in.in_count, plan_in.stage.in_type.bits),
                       expected=frame_words_with_last(hw, plan_out.out_count, plan_out.out_bits),
                       beats_per_frame=cycles.output_beats, seed=int(rng.integers(2**31)),
                       idle=stalls[0], backpressure=stalls[1], initiation_interval=ii,
                       frame_cycles=cycles.latency_bound, name=f"run-{stalls[0]}")
    if ii is not None:
        assert set(result.frame_intervals) == {ii}


@pytest.fixture(scope="module")
def cnv_model():
    from hdlgen.topologies import cnv

    return cnv(np.random.default_rng(7))


def bnn_pynq_folding(lowered):
    from hdlgen.topologies import BNN_PYNQ_CNV_FOLDING

    return {layer.name: {"pe": pe, "simd": simd} for layer, (pe, simd) in zip(lowered.mvus, BNN_PYNQ_CNV_FOLDING)}


def test_cnv_builds_at_bnn_pynq_and_automatic_foldings(tmp_path, cnv_model):
    """CNV's Verilog at BNN-PYNQ's folding and at a folding chosen for 3000 frames/s at 100 MHz."""
    import json

    from hdlgen.flow import build
    from hdlgen.frontend import save_model
    from hdlgen.golden import predict

    save_model(cnv_model, tmp_path / "cnv.json")
    lowered = streamline(cnv_model)
    x = np.random.default_rng(1).uniform(-1, 1, size=(2, 3, 32, 32))
    assert np.array_equal(predict(lowered, x), run_reference(cnv_model, x))
    (tmp_path / "fold.json").write_text(json.dumps(bnn_pynq_folding(lowered)))
    report = build(tmp_path / "cnv.json", tmp_path / "bnn_pynq", fold=str(tmp_path / "fold.json"))
    convs = [layer for layer in report["layers"] if layer["kind"] == "convolution"]
    assert [(c["pe"], c["simd"]) for c in convs][:2] == [(16, 3), (32, 32)] and len(convs) == 6
    assert report["pipeline"]["initiation_interval_cycles"] == 32768          # fc0 and fc1: 512 rows x 256/4 or 512/8
    assert [s["kind"] for s in report["stages"]].count("window") == 6
    auto = build(tmp_path / "cnv.json", tmp_path / "auto", target_fps=3000, clock_mhz=100)
    assert auto["pipeline"]["initiation_interval_cycles"] <= 100e6 / 3000
    assert sum(l["pe"] * l["simd"] for l in auto["layers"]) < sum(l["pe"] * l["simd"] for l in report["layers"]) * 2


@pytest.mark.slow
def test_cnv_frames_on_the_native_harness(tmp_path, cnv_model):
    """Six CNV frames through the RTL: bit-exact, and the measured frame interval equals the cycle model."""
    import json

    from hdlgen.flow import BuildDir, build, simulate
    from hdlgen.frontend import save_model

    save_model(cnv_model, tmp_path / "cnv.json")
    (tmp_path / "fold.json").write_text(json.dumps(bnn_pynq_folding(streamline(cnv_model))))
    build(tmp_path / "cnv.json", tmp_path / "out", fold=str(tmp_path / "fold.json"))
    x = np.random.default_rng(2).uniform(-1, 1, size=(6, 3, 32, 32))
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_reference(cnv_model, x))
    assert result.interval == result.interval_model


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.5)], ids=["no-stalls", "stalls"])
def test_overlapping_padded_and_ceil_mode_max_pools(tmp_path, rng, stalls):
    """ResNet's stem pool (3x3, stride 2, padding 1) on bipolar codes, then a 2x2 stride-2 pool in
    ceil_mode over an odd-sized image (a last, partial window): padding, sliding window and the
    window's maximum, bit-exact against qonnx's executor."""
    from hdlgen.flow import BuildDir, build, simulate
    from qonnx_graphs import Graph, execute

    g = Graph([2, 11, 9], 8).quant(2 ** -4, 6)
    g.op("Conv", g.quantized_weight(rng.choice([-1, 1], size=(8, 2, 3, 3)), 1.0), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g.bipolar().op("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])            # 11x9 -> 6x5
    g.op("Conv", g.quantized_weight(rng.integers(-3, 4, size=(6, 8, 1, 1)), 0.25, bits=3), kernel_shape=[1, 1])
    g.quant(0.5, 3).op("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)                 # 6x5 -> 3x3
    g.op("Flatten", axis=1).gemm(g.quantized_weight(rng.choice([-1, 1], size=(4, 6 * 3 * 3)), 1.0), transB=1)
    path = g.save(tmp_path / "pools.onnx")
    x = (rng.integers(-70, 70, size=(8, 2, 11, 9)) * 0.5 * 2 ** -4).astype(np.float32)
    build(path, tmp_path / "out")
    result = simulate(BuildDir.open(tmp_path / "out"), x, idle=stalls[0], backpressure=stalls[1], seed=3)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, execute(path, x))
    if stalls == (0.0, 0.0):
        assert result.interval == result.interval_model
