"""The shell clock from a PLL. On the iCEBreaker (iCE40UP5K) the 12 MHz oscillator's pin 35 is the
PLL's dedicated pad: nextpnr places the PLL only as SB_PLL40_PAD with PACKAGEPIN on that pin and no
SB_IO of its own there. icepll and ecppll run here (fast); nextpnr only in the slow tier."""

import re

import pytest

import hdlgen
from hdlgen.backends.bitstream import _pll
from hdlgen.boards import get_board
from hdlgen.paths import EXAMPLES
from hdlgen.shell.board import PLL_NAME, BoardTop, achieved_mhz, pll_ports
from hdlgen.shell.core import LinkFormat

LINK = LinkFormat(in_bits=12, in_beats=3, out_bits=4, out_beats=1)


def _cells(rtlil: str) -> list[tuple[str, dict[str, str]]]:
    """Each RTLIL cell as (type, {port: connected net})."""
    cells = []
    for kind, body in re.findall(r"^\s*cell \\(\S+) \S+\n(.*?)^\s*end$", rtlil, re.S | re.M):
        cells.append((kind, dict(re.findall(r"connect \\(\S+) (.+)", body))))
    return cells


@pytest.mark.parametrize("mhz, achieved", [(24, 24.0), (36, 36.0), (50, 50.25)])
def test_icebreaker_pll_is_the_pad_primitive_on_its_packagepin(tmp_path, mhz, achieved):
    freq, verilog = _pll(get_board("icebreaker"), "ice40", 12, mhz, tmp_path)
    assert freq == achieved == achieved_mhz("ice40", verilog)
    clock_in, clock_out, locked = pll_ports("ice40")
    assert re.search(rf"module {PLL_NAME}\(\s*input\s+{clock_in},\s*output\s+{clock_out},\s*output\s+{locked}", verilog)
    assert "SB_PLL40_PAD" in verilog and "SB_PLL40_CORE" not in verilog
    assert f".PACKAGEPIN({clock_in})" in verilog and "REFERENCECLK" not in verilog


def test_ecp5_pll_still_comes_from_ecppll(tmp_path):
    freq, verilog = _pll(get_board("ulx3s-25f"), "ecp5", 25, 50, tmp_path)
    assert freq == 50.0 == achieved_mhz("ecp5", verilog)
    assert "EHXPLLL" in verilog


def _prepared(board_name: str, family: str, pll_hz: float | None):
    board = get_board(board_name)
    platform = board.platform_class()()
    top = BoardTop(uart=board.uart, family=family, toplevel="network", link=LINK, divisor=208, timeout=5000,
                   pll_hz=pll_hz)
    plan = platform.prepare(top, name="hdlgen_board")
    return platform, plan


def test_icebreaker_clock_pin_goes_straight_to_the_pll_with_no_sb_io():
    platform, plan = _prepared("icebreaker", "ice40", 24e6)
    pin = platform.lookup(platform.default_clk, 0).ios[0].names[0]
    assert pin == "35"
    (port,) = re.findall(rf"^set_io (\S+) {pin}$", plan.files["hdlgen_board.pcf"], re.M)
    cells = _cells(plan.files["hdlgen_board.il"])
    (pll,) = [conn for kind, conn in cells if kind == PLL_NAME]
    assert pll[pll_ports("ice40")[0]] == f"\\{port} [0]"
    pads = [conn["PACKAGE_PIN"] for kind, conn in cells if kind.startswith("SB_") and "PACKAGE_PIN" in conn]
    assert len(pads) == 2 and not any(port in pad for pad in pads)       # only the UART's rx and tx


def test_ecp5_clock_pin_keeps_its_input_buffer_before_the_pll():
    platform, plan = _prepared("ulx3s-25f", "ecp5", 50e6)
    rtlil = next(text for name, text in plan.files.items() if name.endswith(".il"))
    port = f"\\{platform.default_clk}_0__io [0]"
    cells = _cells(rtlil)
    (pll,) = [conn for kind, conn in cells if kind == PLL_NAME]
    (buffer,) = [conn for kind, conn in cells if kind == "IB" and conn["I"] == port]
    assert pll[pll_ports("ecp5")[0]] != port


@pytest.mark.slow
def test_icebreaker_bitstream_from_a_24_mhz_pll_meets_timing(tmp_path):
    design = hdlgen.build(EXAMPLES / "digits" / "model.json", tmp_path / "out", target="ice40-up5k", output="class",
                          clock_mhz=12, target_fps=20000)
    result = design.bitstream("icebreaker", clock_mhz=24)
    assert result.pll and result.clock_mhz == 24.0 and result.divisor == 208
    assert result.timing_met and result.fmax_mhz >= 24
    folder = tmp_path / "out" / "board" / "icebreaker"
    assert "SB_PLL40_PAD" in (folder / "pll.v").read_text()
    assert (folder / "hdlgen_board.bin").stat().st_size > 100_000
