"""The resource estimate (``transforms.resources``) against Yosys, layer by layer.

Stated tolerance (``TOLERANCE``, per family, from ``benchmarks/resource_model.py``'s fit): each
matrix-vector layer's LUTs (its threshold unit included), a whole design's LUTs and a whole design's
flip-flops within a share of Yosys's count; DSPs exact; block RAMs exact on ECP5. On iCE40, which has no LUT RAM, Yosys puts
some small memories in block RAM by its own cost model, which the estimate does not predict (in the
fit, designs' block RAMs differ by up to 10): there block RAMs are not checked.
On Xilinx, Yosys moves some shallow, wide weight memories to LUT RAM: there the estimate's block
RAMs are an upper bound. Yosys synthesizes the design once with its hierarchy kept, and each
stage's cells are summed.
"""

import pytest

from hdlgen.assemble import DataflowTop
from hdlgen.backends.synth import synthesize_by_module
from hdlgen.backends.verilog import emit
from hdlgen.frontend import load_model
from hdlgen.paths import EXAMPLES
from hdlgen.targets import get_target
from hdlgen.transforms import auto_folding, streamline
from hdlgen.transforms.device_fit import foldings_by_rate
from hdlgen.transforms.resources import counts_by_stage, estimate

# LUTs of a layer, LUTs of the design, flip-flops of the design
TOLERANCE = {"ecp5": (0.30, 0.15, 0.30), "xilinx": (0.35, 0.20, 0.35), "ice40": (0.60, 0.30, 0.30)}


def measured_by_stage(model, foldings, target, tmp_path):
    (tmp_path / "top.v").write_text(emit(DataflowTop(model=model, foldings=foldings, target=target), "top"))
    counts = synthesize_by_module(tmp_path / "top.v", "top", target, tmp_path / "yosys")
    est = estimate(model, foldings, target)
    measured = counts_by_stage(counts, [s.name for s in est.stages], get_target(target).family)
    return est, measured


def check(est, measured, family):
    layer, design, design_ff = TOLERANCE[family]
    for stage in est.stages:
        got = measured[stage.name]
        assert stage.dsp == got["dsp"], stage.name
        if family == "ecp5":
            assert stage.bram == got["bram"], stage.name
        elif family == "xilinx":
            assert stage.bram >= got["bram"], stage.name
        if stage.kind == "mvu":
            assert stage.lut == pytest.approx(got["lut"], rel=layer), stage.name
    assert est.lut == pytest.approx(sum(m["lut"] for m in measured.values()), rel=design)
    assert est.ff == pytest.approx(sum(m["ff"] for m in measured.values()), rel=design_ff)


def test_estimate_within_tolerance_on_every_layer_of_a_cnn_on_ecp5(tmp_path):
    model = streamline(load_model(EXAMPLES / "brevitas_digits" / "cnn_w2a2.onnx"))
    check(*measured_by_stage(model, auto_folding(model, target="ecp5-85k"), "ecp5-85k", tmp_path), "ecp5")


@pytest.mark.slow
@pytest.mark.parametrize("path, target, point", [
    ("brevitas_digits/cnn_w8a8.onnx", "xc7", -1),            # DSP48E1 products, the fastest folding
    ("brevitas_digits/cnn_w1a1.onnx", "ice40-up5k", 1),      # SB_LUT4, small memories in block RAM
    ("brevitas_digits/mlp_w3a3.onnx", "ecp5-85k", -2),
])
def test_estimate_within_tolerance_on_other_targets_and_foldings(tmp_path, path, target, point):
    model = streamline(load_model(EXAMPLES / path))
    foldings = foldings_by_rate(model, target, 100.0)[point][1]
    check(*measured_by_stage(model, foldings, target, tmp_path), get_target(target).family)
