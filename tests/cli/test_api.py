"""The Python API: the same build, golden model, simulation and synthesis as the command line."""

import json

import numpy as np
import pytest

import hdlgen
from hdlgen.cli import DEMO_MODEL
from hdlgen.errors import HdlgenError


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return hdlgen.build(DEMO_MODEL, tmp_path_factory.mktemp("api") / "digits", target="ecp5-85k")


def test_build_gives_a_design_with_its_report(design):
    report = design.report
    assert report["target"] == "ecp5-85k" and [layer["name"] for layer in report["layers"]] == ["fc0", "fc1", "fc_out"]
    assert report == json.loads((design.path / "report.json").read_text())
    report["target"] = "changed"                                   # a copy: the design keeps its own
    assert design.report["target"] == "ecp5-85k"
    text = design.report_text()
    assert "pipeline: 64 cycles per frame" in text and "fc_out" in text
    assert "64 cycles per frame" in repr(design)


def test_predict_and_simulate_agree_with_the_command_line_golden_model(design):
    from hdlgen.golden import predict, run_reference
    from hdlgen.frontend import load_model

    x = np.load(DEMO_MODEL.parent / "test_x.npy")[:50]
    golden = design.predict(x)
    assert np.array_equal(golden, predict(design._build.model, x))
    assert np.array_equal(golden.argmax(1), run_reference(load_model(DEMO_MODEL), x).argmax(1))
    sim = design.simulate(x)
    assert np.array_equal(sim.outputs, golden) and sim.interval == sim.interval_model


def test_a_folding_given_as_a_dict(tmp_path):
    design = hdlgen.build(DEMO_MODEL, tmp_path / "out", fold={"fc0": {"pe": 2, "simd": 8}, "fc1": {"pe": 4, "simd": 4},
                                                               "fc_out": {"pe": 1, "simd": 2}})
    assert [(layer["pe"], layer["simd"]) for layer in design.report["layers"]] == [(2, 8), (4, 4), (1, 2)]


def test_open_design_and_its_errors(design, tmp_path):
    assert hdlgen.open_design(design.path).report == design.report
    with pytest.raises(HdlgenError, match="no such build directory"):
        hdlgen.open_design(tmp_path / "missing")
    with pytest.raises(HdlgenError, match="inputs have shape"):
        design.predict(np.zeros((3, 5)))


@pytest.mark.slow
def test_synthesize_for_the_builds_target(design):
    result = design.synthesize()
    assert result.target == "ecp5-85k" and result.lut > 0 and result.fmax_mhz > 0
