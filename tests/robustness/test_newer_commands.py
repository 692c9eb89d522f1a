"""explore, bitstream, run and the Python API keep the contract build, sim and synth keep.

Each test names the broken promise it guards: a second ``explore`` into the same folder, a failed
``bitstream`` that deleted the good one, values changed without a word, labels out of range, the
API skipping the command line's checks, and messages that left a user stuck.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import hdlgen
from hdlgen.builddir import MARKER
from hdlgen.errors import HdlgenError
from robustness.harness import DIGITS, assert_refused, copy_native_model, run_cli, snapshot, working_copy

BOARD = dict(target="ice40-up5k", output="class", clock_mhz=12, target_fps=20000)   # the icebreaker demo's build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The digits model, built for the icebreaker with class output, beside the model's files."""
    root = tmp_path_factory.mktemp("newer")
    model = copy_native_model(root / "m")
    hdlgen.build(model, root / "out", **BOARD)
    return root


@pytest.fixture
def work(tmp_path, built):
    return working_copy(built, tmp_path)


# -- explore writes a folder of its own kind, and replaces only that ----------------------------------

def test_explore_runs_twice_into_its_default_folder(work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    for _ in range(2):
        status, out, err = run_cli(["-q", "explore", "m/model.json"], capsys)
        assert status == 0, err
        assert "wrote explore-model/explore.csv" in out
    assert sorted(os.listdir(work / "explore-model")) == ["explore.csv", "explore.png", MARKER]


def test_explore_results_are_not_a_build(work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    assert run_cli(["-q", "explore", "m/model.json", "-o", "ex"], capsys)[0] == 0
    assert_refused(["build", "m/model.json", "-o", "ex"], work, capsys,
                   "-o ex holds the results of 'hdlgen explore', and 'hdlgen build' replaces only its own results")
    assert_refused(["sim", "ex", "--inputs", "x.npy"], work, capsys,
                   "ex holds the results of 'hdlgen explore' (explore.csv, explore.png), not a build")
    with pytest.raises(HdlgenError, match="not a build"):
        hdlgen.open_design(work / "ex")


def test_explore_does_not_replace_a_build(work, capsys):
    assert_refused(["explore", work / "m" / "model.json", "-o", work / "out"], work, capsys,
                   "holds an hdlgen build (with its simulations and syntheses), and 'hdlgen explore' replaces only")


# -- an edited build: the advice given is advice build then takes -------------------------------------------

def test_a_deleted_file_is_no_edit_to_keep(work, capsys):
    (work / "out" / "lowered.npz").unlink()
    line = assert_refused(["bitstream", work / "out", "--board", "icebreaker"], work, capsys, "went missing")
    command = line.split("rebuild it: ", 1)[1].split()
    assert command[:2] == ["hdlgen", "build"]
    status, _, err = run_cli(["-q", *command[1:]], capsys)
    assert status == 0, err
    assert (work / "out" / "lowered.npz").is_file()


def test_an_edited_file_is_kept_and_the_advice_says_how(work, capsys):
    (work / "out" / "report.json").write_text("{}")
    line = assert_refused(["bitstream", work / "out", "--board", "icebreaker"], work, capsys, "changed after hdlgen")
    assert "after moving your edited files out of" in line


# -- values that cannot be honoured are errors that name what can ------------------------------------------

@pytest.mark.parametrize("clock, nearest", [("0.01", "16"), ("2000", "275")])
def test_a_clock_the_pll_cannot_make_names_the_nearest(work, capsys, clock, nearest):
    assert_refused(["bitstream", work / "out", "--board", "icebreaker", "--clock-mhz", clock], work, capsys,
                   f"--clock-mhz {clock}: the PLL of board icebreaker makes 16 to 275 MHz; the nearest clock it makes "
                   f"is {nearest} MHz: choose --clock-mhz {nearest}")


def test_boards_lists_the_clocks_each_pll_makes(capsys):
    status, out, _ = run_cli(["boards"], capsys)
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert status == 0 and "12 MHz oscillator; PLL 16-275 MHz" in rows["icebreaker"]
    assert "50 MHz from the PLL (3.125-400 MHz)" in rows["ulx3s-85f"] and "PLL" not in rows["arty-a7-35"]


def test_the_board_demo_checks_its_clock_before_building(tmp_path, capsys):
    assert_refused(["demo", "--board", "icebreaker", "--clock-mhz", "300", "-o", tmp_path / "demo"], tmp_path, capsys,
                   "the nearest clock it makes is 275 MHz")


@pytest.mark.parametrize("clock, nearest", [("0.01", "3.125"), ("2000", "400"), ("37", "37.5")])
def test_a_clock_the_ecp5_pll_cannot_make_names_the_nearest(tmp_path, capsys, clock, nearest):
    hdlgen.build(DIGITS / "model.json", tmp_path / "out", target="ecp5-85k", output="class")
    assert_refused(["bitstream", tmp_path / "out", "--board", "ulx3s-85f", "--clock-mhz", clock], tmp_path, capsys,
                   f"the nearest clock it makes is {nearest} MHz: choose --clock-mhz {nearest}")


@pytest.mark.parametrize("baud, message", [("1", "must be a whole number from 300 to 12,000,000, not 1"),
                                           ("2600000", "is 7.7% off at 12 MHz (divisor 5); choose a baud rate nearer clock / N, such as 2400000"),
                                           ("99999999999", "must be a whole number from 300 to 12,000,000")])
def test_a_baud_rate_the_uart_cannot_reach_is_refused(work, capsys, baud, message):
    assert_refused(["bitstream", work / "out", "--board", "icebreaker", "--baud", baud], work, capsys, message)


def test_a_baud_rate_beyond_serial_ports_is_refused_before_opening_one(work, capsys):
    master, slave = os.openpty()
    try:
        assert_refused(["run", work / "out", "--port", os.ttyname(slave), "--inputs", work / "x.npy",
                        "--baud", "99999999999"], work, capsys, "--baud: must be a whole number from 300")
    finally:
        os.close(master)
        os.close(slave)


def test_requant_fixed_on_a_model_without_onnxruntime_rescales(work, capsys):
    assert_refused(["build", work / "m" / "model.json", "-o", work / "new", "--requant", "fixed"], work, capsys,
                   "--requant fixed makes gemmlowp's fixed-point unit from onnxruntime's int32 rescale, and model")


@pytest.mark.parametrize("options", [["--board", "icebreaker"], ["--baud", "9600"]])
def test_the_simulated_board_takes_no_board_or_baud(work, capsys, options):
    assert_refused(["run", work / "out", "--port", "sim", "--inputs", work / "x.npy", *options], work, capsys,
                   "the simulated board (--port sim) runs the shell at 8 clock cycles a bit")


@pytest.mark.parametrize("seed", ["-1", str(2 ** 64), "1e23", "0.5"])
def test_seeds_the_stall_generator_cannot_take(work, capsys, seed):
    assert_refused(["sim", work / "out", "--inputs", work / "x.npy", "--idle", "0.5", "--seed", seed], work, capsys,
                   "argument --seed: ")


# -- labels name classes of the model ----------------------------------------------------------------------

@pytest.mark.parametrize("label", [10, -1])
@pytest.mark.parametrize("command", ["sim", "run", "build"])
def test_labels_out_of_the_models_classes(work, capsys, command, label):
    labels = np.load(work / "y.npy")
    labels[2] = label
    np.save(work / "y.npy", labels)
    argv = {"sim": ["sim", work / "out", "--inputs", work / "x.npy", "--labels", work / "y.npy"],
            "run": ["run", work / "out", "--port", "sim", "--inputs", work / "x.npy", "--labels", work / "y.npy"],
            "build": ["build", work / "m" / "model.json", "-o", work / "new", "--bn", "shift", "--check-inputs",
                      work / "x.npy", "--check-labels", work / "y.npy"]}[command]
    assert_refused(argv, work, capsys, f"label {label} at row 2 is not a class of the model, which has 10 classes")


# -- messages that name the way on ------------------------------------------------------------------------

def test_a_model_file_given_as_a_build_directory(work, capsys):
    assert_refused(["bitstream", work / "m" / "model.json", "--board", "icebreaker"], work, capsys,
                   "model.json is a file, not a build directory; build it first ('hdlgen build")


def test_a_serial_port_that_does_not_open_says_what_to_check(work, capsys):
    assert_refused(["run", work / "out", "--port", work / "ttyUSB9", "--inputs", work / "x.npy", "--board",
                    "icebreaker", "--baud", "115200"], work, capsys, "python -m serial.tools.list_ports")


@pytest.mark.parametrize("input_type, message", [
    ("FLOAT32", "--input-type FLOAT32 declares a float input, and the hardware takes integers"),
    ("FIXED<8,8>", "FIXED<8,8> has 8 integer bits of 8; a QONNX FIXED<W,I> type needs I < W"),
    ("FIXED<4,9>", "FIXED<4,9> has 9 integer bits of 4; a QONNX FIXED<W,I> type needs I < W"),
])
def test_input_types_that_declare_no_integer_grid(tmp_path, capsys, input_type, message):
    from qonnx_graphs import Graph

    g = Graph([8], 1)
    g.gemm(g.quantized_weight(np.ones((4, 8)), 1.0), transB=1)
    path = g.save(tmp_path / "m.onnx")
    assert_refused(["build", path, "-o", tmp_path / "out", "--input-type", input_type], tmp_path, capsys, message)


# -- the Python API checks what the command line checks -------------------------------------------------------

@pytest.fixture(scope="module")
def design(built):
    return hdlgen.open_design(built / "out")


X = np.load(DIGITS / "test_x.npy")[:2]

API_CASES = {
    "bn='bad'": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", bn="bad"), "bn: must be one of exact, shift"),
    "bn_check without bn='shift'": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", bn_check=(X, [1, 2])),
                                    "bn_check (--check-inputs, --check-labels) measures what bn='shift'"),
    "bn_check='x'": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", bn="shift", bn_check="x"),
                     "bn_check: expected (inputs, labels)"),
    "clock_mhz=0": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz=0), "clock_mhz: must be a number"),
    "clock_mhz=-5": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz=-5), "clock_mhz: must be"),
    "clock_mhz=1e9": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz=1e9), "clock_mhz: must be"),
    "clock_mhz=True": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz=True),
                       "clock_mhz: expected a number, not True"),
    "clock_mhz='100'": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz="100"),
                        "clock_mhz: expected a number, not '100'"),
    "clock_mhz=nan": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", clock_mhz=float("nan")),
                      "clock_mhz: must be a number above 0.001 and at most 2000, not nan"),
    "target_fps='1000'": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", target_fps="1000"),
                          "target_fps: expected a number"),
    "target_fps=nan": (lambda d, w: hdlgen.build(w / "m" / "model.json", w / "n", target_fps=float("nan")),
                       "target_fps: must be a number"),
    "bitstream(clock_mhz=-5)": (lambda d, w: d.bitstream("icebreaker", clock_mhz=-5), "clock_mhz: must be"),
    "bitstream(baud=0)": (lambda d, w: d.bitstream("icebreaker", baud=0), "baud: must be a whole number from 300"),
    "bitstream(baud='115200')": (lambda d, w: d.bitstream("icebreaker", baud="115200"), "baud: expected a whole number"),
    "synthesize(clock_mhz=0)": (lambda d, w: d.synthesize(clock_mhz=0), "clock_mhz: must be"),
    "simulate(seed=1.5)": (lambda d, w: d.simulate(X, seed=1.5), "seed: expected a whole number, not 1.5"),
    "simulate(seed=None)": (lambda d, w: d.simulate(X, seed=None), "seed: expected a whole number, not None"),
    "simulate(idle='0.5')": (lambda d, w: d.simulate(X, idle="0.5"), "idle: expected a number, not '0.5'"),
    "simulate(backpressure=nan)": (lambda d, w: d.simulate(X, backpressure=float("nan")), "backpressure: must be"),
    "predict on zero frames": (lambda d, w: d.predict(np.zeros((0, 64))), "inputs hold no frames"),
    "run_on_board(timeout=0)": (lambda d, w: d.run_on_board(X, timeout=0), "timeout: must be a number above 0.001"),
    "run_on_board(timeout=-1)": (lambda d, w: d.run_on_board(X, timeout=-1), "timeout: must be"),
    "run_on_board(port=None)": (lambda d, w: d.run_on_board(X, port=None), "port: expected a serial port"),
    "run_on_board(retries=2.5)": (lambda d, w: d.run_on_board(X, retries=2.5), "retries: expected a whole number"),
    "progress='yes'": (lambda d, w: d.simulate(X, progress="yes"), "progress: expected True or False"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_the_api_raises_hdlgen_errors(work, design, case):
    call, message = API_CASES[case]
    before = snapshot(work)
    with pytest.raises(HdlgenError) as raised:
        call(design, work)
    assert message in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)
    assert snapshot(work) == before, "a refused call changed files"


def test_a_folding_dict_of_numpy_integers_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fold = {"fc0": {"pe": np.int64(2), "simd": np.int32(8)}, "fc1": {"pe": np.int64(4), "simd": np.int64(4)},
            "fc_out": {"pe": 1, "simd": np.uint8(2)}}
    design = hdlgen.build(DIGITS / "model.json", tmp_path / "out", fold=fold)
    assert [(layer["pe"], layer["simd"]) for layer in design.report["layers"]] == [(2, 8), (4, 4), (1, 2)]
    assert os.listdir(tmp_path / "tmp") == []
    command = json.loads((tmp_path / "out" / MARKER).read_text())["command"]
    assert json.loads(command[command.index("--fold") + 1]) == {k: {"pe": int(v["pe"]), "simd": int(v["simd"])}
                                                                 for k, v in fold.items()}
    with pytest.raises(HdlgenError, match=r"^fold: layer 'fc0': pe=3 does not divide"):
        hdlgen.build(DIGITS / "model.json", tmp_path / "other", fold={**fold, "fc0": {"pe": 3, "simd": 8}})
    assert os.listdir(tmp_path / "tmp") == []


# -- a failed bitstream keeps the good one (the default tier's one bitstream: Yosys, nextpnr, icepack) -------

def test_a_failed_bitstream_keeps_the_previous_one(work, capsys):
    folder = work / "out" / "board" / "icebreaker"
    status, out, err = run_cli(["-q", "bitstream", work / "out", "--board", "icebreaker", "--clock-mhz", "24"], capsys)
    assert status == 0, err
    assert "at a 24 MHz clock from a PLL (timing met)" in out
    good = snapshot(folder)
    assert {"hdlgen_board.bin", "hdlgen_board.pcf", "pll.v", "bitstream.json"} <= set(good)
    # the PLL makes 50.25 MHz; the placed design reaches about 39, so nextpnr's timing stops it
    line = assert_refused(["bitstream", work / "out", "--board", "icebreaker", "--clock-mhz", "50"], work / "m",
                          capsys, "timing not met on icebreaker")
    assert "the previous bitstream, if any, is kept" in line
    kept = {k: v for k, v in snapshot(folder).items() if not k.startswith("failed")}
    assert kept.pop(".hdlgen-contents") != good.pop(".hdlgen-contents")      # it lists the failed run's logs too
    assert kept == good
    assert (folder / "failed" / "hdlgen_board.tim").is_file()
    assert hdlgen.open_design(work / "out").report["target"] == "ice40-up5k"       # the build still opens
    status, out, err = run_cli(["-q", "run", work / "out", "--port", work / "ttyUSB9", "--inputs", work / "x.npy"],
                               capsys)
    assert status == 2 and "holds bitstreams for" not in err and "cannot open it" in err, err


def test_a_folding_given_inline_on_the_command_line(work, capsys):
    fold = '{"fc0": {"pe": 2, "simd": 8}, "fc1": {"pe": 4, "simd": 4}, "fc_out": {"pe": 1, "simd": 2}}'
    status, _, err = run_cli(["-q", "build", work / "m" / "model.json", "-o", work / "inline", "--fold", fold], capsys)
    assert status == 0, err
    assert [(layer["pe"], layer["simd"]) for layer in hdlgen.open_design(work / "inline").report["layers"]] == \
        [(2, 8), (4, 4), (1, 2)]
    assert_refused(["build", work / "m" / "model.json", "-o", work / "bad", "--fold", fold.replace('"pe": 2', '"pe": 3')],
                   work, capsys, "--fold: layer 'fc0': pe=3 does not divide")
    assert_refused(["build", work / "m" / "model.json", "-o", work / "bad", "--fold", '{"fc0": '], work, capsys,
                   "--fold: folding is not valid JSON")
