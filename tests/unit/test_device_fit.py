"""Folding that fits a device: the fastest folding whose estimate fits, and one clear error otherwise."""

import json

import pytest

from hdlgen import HdlgenError
from hdlgen.assemble.dataflow import frame_cycles
from hdlgen.api import report_text
from hdlgen.flow import build
from hdlgen.frontend import load_model
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import auto_folding, streamline
from hdlgen.targets import get_target
from hdlgen.transforms.device_fit import device_limits, fastest_fitting, foldings_by_rate, over_limits, packed_use
from hdlgen.transforms.resources import estimate

CNN_W2A2 = EXAMPLES / "brevitas_digits" / "cnn_w2a2.onnx"
CNN_W4A4 = EXAMPLES / "brevitas_digits" / "cnn_w4a4.onnx"
CNV = EXAMPLES / "bnn_pynq" / "cnv_1w1a_ts.onnx"
MLP_W2A2 = EXAMPLES / "brevitas_digits" / "w2a2.onnx"
TFC_2W2A = EXAMPLES / "bnn_pynq" / "tfc_2w2a_ts.onnx"


def lowered(path):
    return streamline(load_model(path))


def interval(model, foldings):
    return max(frame_cycles(model, foldings).values())


@pytest.mark.parametrize("path, target", [(CNN_W4A4, "ecp5-25k"),
                                          pytest.param(MLP_W2A2, "ice40-up5k", marks=pytest.mark.slow)])
def test_fastest_fitting_fits_and_nothing_faster_does(path, target):
    """By the estimate; on iCE40 also as nextpnr packs it (a faster folding the estimate lets
    through must not pack into the limit)."""
    model = lowered(path)
    limits = device_limits(target)
    chosen = fastest_fitting(model, target, 100.0)
    assert over_limits(estimate(model, chosen, target), target) == []
    faster = [f for cycles, f in foldings_by_rate(model, target, 100.0) if cycles < interval(model, chosen)]
    assert faster, "the sweep must reach foldings faster than the one chosen"
    if target == "ice40-up5k":
        assert all(v <= limits[k] for k, v in packed_use(model, chosen, get_target(target)).items())
        assert all(over_limits(estimate(model, f, target), target) or
                   any(v > limits[k] for k, v in packed_use(model, f, get_target(target)).items()) for f in faster)
    else:
        assert all(over_limits(estimate(model, f, target), target) for f in faster)


def test_foldings_by_rate_get_faster_and_fold_every_stage_with_the_layers():
    model = lowered(CNN_W2A2)
    points = foldings_by_rate(model, "ecp5-85k", 100.0)
    cycles = [c for c, _ in points]
    assert cycles == sorted(cycles, reverse=True) and len(set(cycles)) == len(cycles)
    # the fastest is bounded by the first window: one input channel a beat, 576 window positions
    assert cycles[-1] == frame_cycles(model, points[-1][1])["Conv_0_window"] == 576


def test_auto_folds_further_where_the_default_does_not_fit(tmp_path):
    model = lowered(CNN_W4A4)
    default = auto_folding(model, target="ecp5-25k")
    assert over_limits(estimate(model, default, "ecp5-25k"), "ecp5-25k") == ["30 DSPs of 28"]
    report = build(CNN_W4A4, tmp_path / "out", target="ecp5-25k")
    assert report["estimate"]["dsp"] <= 28 and report["estimate"]["device"] == {"lut": 24288, "bram": 56, "dsp": 28}
    assert report["pipeline"]["initiation_interval_cycles"] == interval(model, fastest_fitting(model, "ecp5-25k", 100.0))


def test_fold_fit_writes_the_fastest_fitting_folding_and_its_estimate(tmp_path):
    report = build(MLP_W2A2, tmp_path / "out", target="ice40-up5k", fold="fit")
    est = report["estimate"]
    # on iCE40 a logic cell holds a LUT and a flip-flop: the logic cells (more than the LUTs, for the
    # flip-flops and carry feed-ins that take a cell of their own) count against the device's 5,280
    assert est["lut"] < est["logic_cells"]
    assert est["logic_cells"] <= 0.8 * 5280 and est["bram"] <= 30 and est["dsp"] <= 8
    for key in ("lut", "ff"):
        assert sum(s[key] for s in est["stages"].values()) == pytest.approx(est[key], abs=len(est["stages"]))
    assert json.loads((tmp_path / "out" / "report.json").read_text())["estimate"] == est


def test_a_model_too_large_for_the_device_at_any_folding_is_one_error(tmp_path):
    with pytest.raises(HdlgenError, match=r"no folding of the model fits ecp5-25k .*: the one that overshoots least "
                                          r"needs \d+ block RAMs of 56; choose a larger target"):
        build(CNV, tmp_path / "out", target="ecp5-25k", fold="fit")
    assert not (tmp_path / "out").exists()


def test_no_folding_within_the_lane_guard_is_one_error(tmp_path):
    with pytest.raises(HdlgenError, match=r"even the slowest folding .* more parallel lanes than --max-lanes 1; "
                                          r"raise --max-lanes"):
        fastest_fitting(lowered(CNN_W2A2), "ecp5-85k", 100.0, max_lanes=1)


def test_a_frame_rate_the_device_cannot_hold_names_the_best_that_fits(tmp_path):
    with pytest.raises(HdlgenError, match=r"--target-fps 3,000,000 does not fit ecp5-25k .* needs 20,476 LUTs of "
                                          r"24,288 \(80% usable\); the fastest folding that fits makes 1,785,714 "
                                          r"frames/s at 100 MHz \(--target-fps 1785714, or --fold fit\)"):
        build(TFC_2W2A, tmp_path / "out", target="ecp5-25k", target_fps=3e6)
    assert not (tmp_path / "out").exists()


def test_a_folding_file_over_the_device_is_built_with_a_warning(tmp_path):
    """A folding file is the user's choice, and the estimate is an estimate: it is built, and the
    report and the printed summary say what does not fit."""
    model = lowered(CNN_W4A4)
    fast = foldings_by_rate(model, "ecp5-25k", 100.0)[-1][1]
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({k: {"pe": f.pe, "simd": f.simd} for k, f in fast.items()}))
    report = build(CNN_W4A4, tmp_path / "out", target="ecp5-25k", fold=str(fold))
    assert report["estimate"]["over_device"].startswith(f"the folding file {fold} does not fit ecp5-25k")
    assert "warning: the folding file" in report_text(report, tmp_path / "out")


def test_a_family_target_has_no_device_to_fit():
    with pytest.raises(HdlgenError, match="target xc7 names a family .* not a device"):
        device_limits("xc7")


def test_fold_fit_and_a_frame_rate_do_not_go_together(tmp_path):
    with pytest.raises(HdlgenError, match="--fold fit .* cannot be combined with --target-fps"):
        build(MLP_W2A2, tmp_path / "out", target="ice40-up5k", fold="fit", target_fps=1000)


@pytest.mark.slow
@pytest.mark.parametrize("path, target", [(CNN_W4A4, "ecp5-25k"), (MLP_W2A2, "ice40-up5k")])
def test_the_fastest_fitting_folding_places_on_the_device(tmp_path, path, target):
    """nextpnr places what --fold fit chose on the device itself (on iCE40 its logic cells, which
    hold a LUT and a flip-flop each, within the estimate's 80 %)."""
    import hdlgen
    design = hdlgen.build(path, tmp_path / "out", target=target, fold="fit")
    result = design.synthesize()
    assert result.placed and result.lut <= dict(design.report["estimate"]["device"])["lut"]
