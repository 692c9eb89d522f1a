"""The board shell's logic around a build's network: UART in, frame receiver, the network, frame
sender, UART out (``docs/board.md``). The same module runs on a board (``shell.board`` adds the
clock, PLL, reset and pins) and on Verilator (``host.simboard`` drives its pins)."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.back import verilog
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .link import FrameReceiver, FrameSender
from .uart import UartRx, UartTx

__all__ = ["LinkFormat", "BoardCore", "CORE_NAME", "core_verilog"]

CORE_NAME = "hdlgen_board_core"
IN_FLIGHT = 4            # requests accepted ahead of their replies (sequence numbers queued)


@dataclass(frozen=True)
class LinkFormat:
    """What a frame is on the link: from a build's report (``report.json``: ``input`` and ``output``)."""

    in_bits: int          # bits of one input beat
    in_beats: int         # input beats a frame
    out_bits: int         # bits of one output beat (its data, without the last flag)
    out_beats: int

    @classmethod
    def from_report(cls, report: dict) -> "LinkFormat":
        i, o = report["input"], report["output"]
        return cls(i["values_per_beat"] * i["bits_per_value"], i["beats_per_frame"], o["last_bit"], o["beats_per_frame"])


class BoardCore(wiring.Component):
    """``rx`` and ``tx`` pins around the network module ``toplevel`` (a build's Verilog top).
    ``divisor`` is clock cycles per UART bit; ``timeout`` the cycles of silence that end a request.
    ``busy`` is high from a request's first byte until its reply's last: the simulated board keeps
    its clock running while it is (a board leaves it unconnected)."""

    def __init__(self, *, toplevel: str, link: LinkFormat, divisor: int, timeout: int):
        self._top, self._link, self._divisor, self._timeout = toplevel, link, divisor, timeout
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        link = self._link
        m.submodules.uart_rx = rx = UartRx(divisor=self._divisor)
        m.submodules.uart_tx = tx = UartTx(divisor=self._divisor)
        m.submodules.receiver = receiver = FrameReceiver(beat_bits=link.in_bits, beats=link.in_beats,
                                                         timeout=self._timeout)
        m.submodules.sender = sender = FrameSender(beat_bits=link.out_bits)
        m.submodules.sequence = sequence = fifo.SyncFIFOBuffered(width=8, depth=IN_FLIGHT)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.o, receiver.i)
        wiring.connect(m, sender.o, tx.i)
        m.d.comb += [sequence.w_data.eq(receiver.seq.payload), sequence.w_en.eq(receiver.seq.valid),
                     receiver.seq.ready.eq(sequence.w_rdy),
                     sender.seq.payload.eq(sequence.r_data), sender.seq.valid.eq(sequence.r_rdy),
                     sequence.r_en.eq(sender.seq.ready)]
        payload = Signal(link.out_bits + 1)
        m.submodules.network = Instance(
            self._top, i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_i__payload=receiver.o.payload, i_i__valid=receiver.o.valid, o_i__ready=receiver.o.ready,
            o_o__payload=payload, o_o__valid=sender.i.valid, i_o__ready=sender.i.ready)
        m.d.comb += [sender.i.payload.data.eq(payload[:link.out_bits]), sender.i.payload.last.eq(payload[link.out_bits]),
                     self.busy.eq(receiver.busy | sequence.r_rdy | sender.busy | tx.busy)]
        return m


def core_verilog(toplevel: str, link: LinkFormat, *, divisor: int, timeout: int) -> str:
    return verilog.convert(BoardCore(toplevel=toplevel, link=link, divisor=divisor, timeout=timeout), name=CORE_NAME,
                           emit_src=False)
