"""The board shell's top on a real board: the board's clock (through a PLL from ecppll or icepll
when the shell runs at another frequency), a reset held until the PLL locks, the UART pins from
amaranth-boards, and :class:`BoardCore`."""

from __future__ import annotations

import re

from amaranth import ClockDomain, Const, Elaboratable, Instance, Module, Signal
from amaranth.build import Attrs
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..errors import HdlgenError
from .core import BoardCore, LinkFormat

__all__ = ["BoardTop", "PLL_NAME", "pll_ports", "achieved_mhz"]

PLL_NAME = "hdlgen_pll"
# the ports of the module each tool writes: input clock, output clock, lock
_PLL_PORTS = {"ecp5": ("clkin", "clkout0", "locked"), "ice40": ("clock_in", "clock_out", "locked")}
_ACHIEVED = {"ecp5": r"output clkout0, // ([0-9.]+) MHz", "ice40": r"Achieved output frequency:\s+([0-9.]+) MHz"}


def pll_ports(family: str) -> tuple[str, str, str]:
    if family not in _PLL_PORTS:
        raise HdlgenError(f"no PLL generator for the {family} family; use the board's own clock")
    return _PLL_PORTS[family]


def achieved_mhz(family: str, pll_verilog: str) -> float:
    found = re.search(_ACHIEVED[family], pll_verilog)
    if found is None:
        raise HdlgenError("the PLL tool's output names no achieved frequency")
    return float(found.group(1))


class BoardTop(Elaboratable):
    """``family`` picks the PLL's ports when ``pll_hz`` is given (the shell's clock then comes from the
    ``hdlgen_pll`` module added to the platform, and reset lasts until it locks); otherwise the
    board's oscillator runs the shell, with the platform's reset (iCE40: held until block RAM
    works) or, on ECP5, a power-on reset of its own."""

    def __init__(self, *, uart: dict, family: str, toplevel: str, link: LinkFormat, divisor: int, timeout: int,
                 pll_hz: float | None = None):
        self._uart, self._family, self._pll_hz = uart, family, pll_hz
        self._core = dict(toplevel=toplevel, link=link, divisor=divisor, timeout=timeout)

    def _uart_pins(self, platform):
        if "connector" in self._uart:
            from amaranth_boards.resources import UARTResource

            conn = tuple(self._uart["connector"])
            attrs = Attrs(IO_TYPE="LVCMOS33") if self._family == "ecp5" else Attrs()
            platform.add_resources([UARTResource("hdlgen_uart", 0, rx=self._uart["rx"], tx=self._uart["tx"], conn=conn,
                                                 attrs=attrs)])
            return platform.request("hdlgen_uart", 0, dir="-")
        return platform.request(self._uart["resource"], 0, dir="-")

    def elaborate(self, platform):
        m = Module()
        if self._pll_hz is not None:
            clk_port = platform.request(platform.default_clk, 0, dir="-")
            if self._family == "ice40":
                # the iCE40 clock pin is the PLL's own pad (UP5K pin 35): an SB_IO there takes the I/O
                # site the PLL needs, so the pin goes straight to SB_PLL40_PAD's PACKAGEPIN (icepll -p)
                clk_in = clk_port.io
            else:
                m.submodules.clk_in = clk_buf = io.Buffer("i", clk_port)
                clk_in = clk_buf.i
            m.domains.sync = sync = ClockDomain("sync")
            locked = Signal()
            i, o, lock = pll_ports(self._family)
            m.submodules.pll = Instance(PLL_NAME, **{f"i_{i}": clk_in, f"o_{o}": sync.clk, f"o_{lock}": locked})
            m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
            platform.add_clock_constraint(sync.clk, self._pll_hz)
        elif self._family == "ecp5":
            # Amaranth's own ECP5 clock domain is reset-less (GSR resets the fabric); the network's
            # reset input needs a real one: a power-on reset released two cycles after configuration
            m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, 0, dir="-"))
            m.domains.sync = sync = ClockDomain("sync")
            m.d.comb += sync.clk.eq(clk_in.i)
            m.submodules.reset = ResetSynchronizer(Const(0), domain="sync")
        uart = self._uart_pins(platform)
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.core = core = BoardCore(**self._core)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        return m
