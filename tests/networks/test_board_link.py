"""The board shell and its UART link, on the simulated board: the digits demo (class output, folded
for the iCEBreaker) runs its 450 test images through the shell on Verilator, its UART pins bridged
bit by bit to a pseudo-terminal that pyserial drives, bit-exact against the golden model; a
corrupted, lost or extra byte in either direction costs a retry and nothing else. Bitstreams for the
demo boards are in the slow tier."""

import json

import numpy as np
import pytest

import hdlgen
from hdlgen.cli import main
from hdlgen.errors import HdlgenError
from hdlgen.paths import EXAMPLES

DIGITS = EXAMPLES / "digits"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The icebreaker demo's build: the digits BNN, class output, folded for 20,000 frames/s at 12 MHz."""
    out = tmp_path_factory.mktemp("board") / "icebreaker"
    return hdlgen.build(DIGITS / "model.json", out, target="ice40-up5k", output="class", clock_mhz=12,
                        target_fps=20000)


def test_the_simulated_board_answers_every_test_image_as_the_golden_model(demo):
    x, labels = np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "test_y.npy")
    run = demo.run_on_board(x, port="sim")
    assert np.array_equal(run.hw_words, run.golden_words)
    assert run.stats.retries == 0 and run.stats.frames == 450
    assert np.mean(run.outputs[:, 0] == labels) == pytest.approx(0.9067, abs=1e-4)


# byte indices of the host-to-board stream (requests are 36 bytes) and the board-to-host one (5 bytes)
FAULTS = {"corrupted request byte": {"corrupt": [36 * 3 + 10]},
          "lost request byte": {"drop": [36 * 5 + 20]},
          "extra request byte": {"extra": [36 * 7 + 2]},
          "lost sync byte": {"drop": [36 * 9]},
          "corrupted reply byte": {"corrupt-reply": [5 * 11 + 2]},
          "lost reply byte": {"drop-reply": [5 * 13 + 4]}}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_a_byte_error_costs_one_retry_and_no_frame(demo, faults):
    x = np.load(DIGITS / "test_x.npy")[:20]
    run = demo.run_on_board(x, port="sim", faults=faults, timeout=0.5)
    assert np.array_equal(run.hw_words, run.golden_words)
    assert run.stats.retries == 1, run.stats


def test_a_board_that_never_answers_is_an_error_not_a_hang(demo):
    x = np.load(DIGITS / "test_x.npy")[:2]
    with pytest.raises(HdlgenError, match="no valid reply from the board to frame 0 after 3 tries"):
        demo.run_on_board(x, port="sim", faults={"drop-reply": list(range(0, 40))}, timeout=0.2, retries=2)


def test_run_on_the_command_line_writes_outputs_and_reports_the_link(demo, tmp_path, capsys):
    x = np.load(DIGITS / "test_x.npy")[:30]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.load(DIGITS / "test_y.npy")[:30])
    status = main(["-q", "run", str(demo.path), "--port", "sim", "--inputs", str(tmp_path / "x.npy"),
                   "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "classes.npy")])
    printed = capsys.readouterr().out
    assert status == 0
    assert "simulated board == golden model on 30/30 frames" in printed and "0 retries" in printed
    assert np.array_equal(np.load(tmp_path / "classes.npy"), demo.predict(x))


def test_a_real_port_that_does_not_exist_is_one_clear_error(demo, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.load(DIGITS / "test_x.npy")[:2])
    status = main(["run", str(demo.path), "--port", str(tmp_path / "ttyUSB9"), "--baud", "115200",
                   "--inputs", str(tmp_path / "x.npy")])
    assert status == 2
    assert "cannot open it" in capsys.readouterr().err


def test_a_build_for_another_target_is_refused_before_any_tool_runs(tmp_path):
    design = hdlgen.build(DIGITS / "model.json", tmp_path / "ecp5", target="ecp5-85k")
    with pytest.raises(HdlgenError, match="built for target ecp5-85k, and board icebreaker needs ice40-up5k; rebuild it "
                                          "with --target ice40-up5k"):
        design.bitstream("icebreaker")


@pytest.mark.slow
def test_icebreaker_bitstream_fits_and_meets_its_clock(demo):
    result = demo.bitstream("icebreaker")
    assert result.timing_met and result.fmax_mhz >= 12
    assert result.lut <= 5280 and result.bram <= 30
    saved = json.loads((demo.path / "board" / "icebreaker" / "bitstream.json").read_text())
    assert saved["bitstream"].endswith("hdlgen_board.bin") and saved["divisor"] == 104
    assert (demo.path / "board" / "icebreaker" / "hdlgen_board.bin").stat().st_size > 100_000


@pytest.mark.slow
def test_a_design_too_large_for_the_board_is_refused_with_its_numbers(tmp_path):
    design = hdlgen.build(DIGITS / "model.json", tmp_path / "wide", target="ice40-up5k", output="class")
    with pytest.raises(HdlgenError, match="does not fit board icebreaker: it needs .* of 5,280 LUTs.*fold the model "
                                          "further.*fc0 \\(PE 1, SIMD 64\\)"):
        design.bitstream("icebreaker")


def test_a_rebuild_replaces_the_board_folder_hdlgen_wrote_and_keeps_a_users_file(demo, tmp_path):
    from hdlgen.flow import build

    out = tmp_path / "copy"
    build(DIGITS / "model.json", out, target="ice40-up5k", output="class", clock_mhz=12, target_fps=20000)
    hdlgen.open_design(out).run_on_board(np.load(DIGITS / "test_x.npy")[:3], port="sim")
    assert (out / "board" / "sim").is_dir()
    build(DIGITS / "model.json", out, target="ice40-up5k", output="class", clock_mhz=12, target_fps=20000)
    assert not (out / "board").exists()
    hdlgen.open_design(out).run_on_board(np.load(DIGITS / "test_x.npy")[:3], port="sim")
    (out / "board" / "sim" / "notes.txt").write_text("mine")
    with pytest.raises(HdlgenError, match="board/sim/notes.txt"):
        build(DIGITS / "model.json", out, target="ice40-up5k", output="class", clock_mhz=12, target_fps=20000)
    assert (out / "board" / "sim" / "notes.txt").read_text() == "mine"


def test_a_xilinx_board_gets_the_shell_verilog_constraints_and_vivado_script(tmp_path):
    design = hdlgen.build(DIGITS / "model.json", tmp_path / "arty", target="xc7", output="class")
    result = design.bitstream("arty-a7-35")
    folder = tmp_path / "arty" / "board" / "arty-a7-35"
    assert result.bitstream is None and result.flow == "export"
    xdc = (folder / "hdlgen_board.xdc").read_text()
    assert "A9" in xdc and "D10" in xdc                    # the Arty's FT2232 UART pins, from amaranth-boards
    assert "hdlgen_board.core.receiver" in (folder / "hdlgen_board.v").read_text()
    assert design.report["top"] in (folder / "network.v").read_text()
    assert (folder / "hdlgen_board.tcl").exists()
