"""A measurement shell for devices whose place and route has no out-of-context mode (iCE40).

A generated top has hundreds of stream pins; a small package has a few dozen. The shell feeds the
input payload from a shift register on one pin and folds the output payload into one registered
parity bit, so every bit of the design stays observable and nothing is optimised away. It adds
``in_bits + 2`` flip-flops and an XOR tree to the figures.
"""

from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

SHELL_NAME = "hdlgen_io_shell"


class IoShell(wiring.Component):
    def __init__(self, *, toplevel: str, in_bits: int, out_bits: int):
        self._toplevel, self._in_bits, self._out_bits = toplevel, in_bits, out_bits
        super().__init__({"serial_in": In(1), "in_valid": In(1), "out_ready": In(1), "parity": Out(1), "in_ready": Out(1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(self._in_bits)
        payload = Signal(self._out_bits)
        o_valid = Signal()
        m.d.sync += shift.eq((shift << 1) | self.serial_in)
        m.submodules.design = Instance(
            self._toplevel, i_clk=ClockSignal(), i_rst=ResetSignal(), i_i__payload=shift, i_i__valid=self.in_valid,
            o_i__ready=self.in_ready, o_o__payload=payload, o_o__valid=o_valid, i_o__ready=self.out_ready)
        m.d.sync += self.parity.eq(payload.xor() ^ o_valid)
        return m


def shell_verilog(toplevel: str, in_bits: int, out_bits: int) -> str:
    return verilog.convert(IoShell(toplevel=toplevel, in_bits=in_bits, out_bits=out_bits), name=SHELL_NAME,
                           emit_src=False)
