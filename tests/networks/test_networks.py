"""Whole networks: RTL == golden model == source model, under stalls, at the analytical frame rate."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, CocotbDesign, random_inputs, random_model
from hdlgen.backends.packing import frame_words_with_last, pack_beats
from hdlgen.backends.verilog import emit_model
from hdlgen.cli import DEMO_MODEL
from hdlgen.flow import BuildDir, build, simulate
from hdlgen.frontend import load_model, save_model
from hdlgen.golden import quantize_input_codes, run_lowered, run_reference, to_model_units
from hdlgen.ir import Folding
from hdlgen.transforms import streamline

# sizes, input, activations, weights, output activation, foldings (pe, simd) per layer, target
NETWORKS = {
    "uint4-in_bipolar_regroup": ([16, 12, 8, 4], UINT(4), BIPOLAR, BIPOLAR, False, [(3, 4), (2, 6), (2, 8)], "ecp5-85k"),
    "bipolar-in_uint2-act_ternary": ([12, 10, 6], BIPOLAR, UINT(2), TERNARY, True, [(5, 12), (3, 5)], "ecp5-85k"),
    "int3-in_int2-act_unfolded": ([6, 4, 4, 3], INT(3), INT(2, narrow=True), TERNARY, False, [(4, 6), (1, 1), (3, 4)], "ecp5-25k"),
    "bipolar-in_lut6-trees": ([40, 20, 5], BIPOLAR, BIPOLAR, BIPOLAR, False, [(4, 20), (5, 10)], "xc7"),
    "uint8-in_int4-weights_packed-on-xcup": ([24, 12, 6], UINT(8), UINT(3), INT(4), False, [(4, 8), (3, 12)], "xcup"),
    "uint8-in_int4-weights_packed-and-lut-on-ecp5": ([24, 12, 6], UINT(8), UINT(3), INT(4), False, [(4, 8), (3, 12)],
                                                     "ecp5-85k"),
}
FRAMES = 10


@pytest.fixture(scope="module", params=NETWORKS, ids=NETWORKS)
def network(request, sim_root):
    sizes, in_q, act_q, w_q, out_act, folds, target = NETWORKS[request.param]
    rng = np.random.default_rng(zlib.crc32(request.param.encode()))
    model = random_model(rng, sizes=sizes, input_quant=in_q, act_quant=act_q, weight_quant=w_q, output_act=out_act,
                         name=request.param.replace("-", "_"))
    lowered = streamline(model)
    foldings = {layer.name: Folding(*fold) for layer, fold in zip(lowered.layers, folds)}
    verilog, top = emit_model(lowered, foldings, target=target)
    name = f"{lowered.name}_top"
    return CocotbDesign(verilog, name, sim_root / f"net-{request.param}"), model, lowered, foldings, top


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.5)], ids=["no-stalls", "stalls"])
def test_network_bit_exact(network, rng, stalls):
    built, model, lowered, foldings, top = network
    x = random_inputs(rng, model, FRAMES)
    codes = quantize_input_codes(lowered, x)
    hw = run_lowered(lowered, codes)
    assert np.array_equal(to_model_units(lowered, hw), run_reference(model, x))
    first, last = lowered.layers[0], lowered.layers[-1]
    out_word = top.output_word(lowered, foldings)
    bits = out_word.size // foldings[last.name].pe
    cycles = top.cycle_model()
    ii = cycles.initiation_interval if stalls == (0.0, 0.0) else None
    result = built.run(inputs=pack_beats(codes, foldings[first.name].simd, first.in_type.bits),
                       expected=frame_words_with_last(hw, foldings[last.name].pe, bits),
                       beats_per_frame=cycles.output_beats, seed=int(rng.integers(2**31)),
                       idle=stalls[0], backpressure=stalls[1], initiation_interval=ii, name=f"run-{stalls[0]}")
    if ii is not None:
        assert set(result.frame_intervals) == {ii}


def test_demo_model_through_native_harness(tmp_path):
    """The bundled example on its whole test split: RTL == golden == source model, accuracy identical."""
    build(DEMO_MODEL, tmp_path / "demo")
    build_dir = BuildDir.open(tmp_path / "demo")
    x = np.load(DEMO_MODEL.parent / "test_x.npy")
    labels = np.load(DEMO_MODEL.parent / "test_y.npy")
    result = simulate(build_dir, x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_reference(load_model(DEMO_MODEL), x))
    assert result.interval == result.interval_model == build_dir.report["pipeline"]["initiation_interval_cycles"]
    assert result.first_frame_cycles <= build_dir.report["pipeline"]["latency_bound_cycles"]
    assert np.mean(result.outputs.argmax(1) == labels) > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("in_q, act_q, w_q", [(UINT(8), BIPOLAR, BIPOLAR), (BIPOLAR, UINT(2), TERNARY)],
                         ids=["tfc-w1a1", "tfc-w2a2"])
def test_tfc_sized_network_thousands_of_frames(tmp_path, rng, in_q, act_q, w_q):
    """784 -> 64 -> 64 -> 64 -> 10 (TFC), random weights, 2000 frames on the native harness."""
    model = random_model(rng, sizes=[784, 64, 64, 64, 10], input_quant=in_q, act_quant=act_q, weight_quant=w_q)
    save_model(model, tmp_path / "tfc.json")
    build(tmp_path / "tfc.json", tmp_path / "out", target_fps=2e6)
    x = random_inputs(rng, model, 2000)
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs, run_reference(model, x))
    assert result.interval == result.interval_model
