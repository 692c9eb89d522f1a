"""A block-pruned network skips its zero blocks: fewer cycles per frame than dense, bit-exact on Verilator."""

import json

import numpy as np
import pytest

import hdlgen
from hdlgen import HdlgenError
from hdlgen.paths import EXAMPLES

PRUNED = EXAMPLES / "pruned_digits" / "mlp_pruned.onnx"


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    return hdlgen.build(PRUNED, tmp_path_factory.mktemp("pruned") / "out", target_fps=20000)


def test_auto_folding_skips_zero_blocks_where_it_pays(pruned):
    layers = pruned.report["layers"]
    skipping = [layer for layer in layers if layer["zero_skip"]]
    assert skipping, "the pruned hidden layers must skip their zero blocks"
    for layer in skipping:
        assert layer["zero_blocks"] >= layer["blocks"] // 2
        dense_cycles = layer["vectors"] * layer["blocks"]
        assert layer["cycles_per_frame"] <= 0.75 * dense_cycles
        # only the scheduled blocks are stored
        assert layer["weight_memory_shape"][0] < layer["blocks"]


def test_pruned_network_is_bit_exact_and_runs_at_the_modelled_interval(pruned):
    x = np.load(EXAMPLES / "brevitas_digits" / "test_x.npy")
    result = pruned.simulate(x)
    np.testing.assert_array_equal(result.hw_words, result.golden_words)
    assert result.interval == pytest.approx(result.interval_model, abs=1)


def test_pruned_network_under_stalls_loses_nothing(pruned):
    x = np.load(EXAMPLES / "brevitas_digits" / "test_x.npy")[:200]
    result = pruned.simulate(x, idle=0.3, backpressure=0.5, seed=7)
    np.testing.assert_array_equal(result.hw_words, result.golden_words)


def test_fewer_cycles_than_the_same_folding_dense(pruned, tmp_path):
    fold = {layer["name"]: {"pe": layer["pe"], "simd": layer["simd"]} for layer in pruned.report["layers"]}
    dense = hdlgen.build(PRUNED, tmp_path / "dense", fold=fold)
    assert not any(layer["zero_skip"] for layer in dense.report["layers"])
    assert (pruned.report["pipeline"]["initiation_interval_cycles"]
            < dense.report["pipeline"]["initiation_interval_cycles"])


def test_zero_skip_on_bipolar_weights_is_refused(tmp_path):
    model = EXAMPLES / "brevitas_digits" / "w1a1.onnx"
    report = hdlgen.build(model, tmp_path / "probe").report
    fold = {layer["name"]: {"pe": layer["pe"], "simd": layer["simd"], "zero_skip": True} for layer in report["layers"]}
    (tmp_path / "fold.json").write_text(json.dumps(fold))
    with pytest.raises(HdlgenError, match="zero_skip needs weights that can be zero"):
        hdlgen.build(model, tmp_path / "out", fold=str(tmp_path / "fold.json"))
