"""Re-grouping a stream of values into words of another width, order kept."""

from __future__ import annotations

from math import gcd

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import positive_int, validating

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """Words of ``in_count`` values of ``bits`` bits into words of ``out_count`` values.

    Value order is kept: value ``k`` of beat ``n`` is value ``n * in_count + k`` of the stream.
    When one count divides the other the converter splits or gathers words directly; otherwise
    it splits to their greatest common divisor and gathers from there. Up to one beat per cycle
    on either side; gathered words wait in a two-entry FIFO, so the input side's ``ready`` does
    not depend combinationally on the output side's.
    """

    def __init__(self, *, bits: int, in_count: int, out_count: int):
        with validating(self):
            for name, value in (("bits", bits), ("in_count", in_count), ("out_count", out_count)):
                positive_int(name, value)
        self._bits, self._in, self._out = bits, in_count, out_count
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(bits, in_count))),
            "o": Out(stream.Signature(data.ArrayLayout(bits, out_count))),
        })

    def elaborate(self, platform):
        m = Module()
        if self._in == self._out:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        elif self._in % self._out == 0:
            self._split(m, self.i, self.o, self._in // self._out)
        elif self._out % self._in == 0:
            self._gather(m, self.i, self.o, self._out // self._in)
        else:
            middle = gcd(self._in, self._out)
            m.submodules.split = split = WidthConverter(bits=self._bits, in_count=self._in, out_count=middle)
            m.submodules.gather = gather = WidthConverter(bits=self._bits, in_count=middle, out_count=self._out)
            wiring.connect(m, wiring.flipped(self.i), split.i)
            wiring.connect(m, split.o, gather.i)
            wiring.connect(m, gather.o, wiring.flipped(self.o))
        return m

    def _split(self, m, i, o, ratio):
        index = Signal(range(ratio))
        m.d.comb += [
            o.valid.eq(i.valid),
            o.payload.as_value().eq(i.payload.as_value().word_select(index, self._out * self._bits)),
            i.ready.eq(o.ready & (index == ratio - 1)),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += index.eq(Mux(index == ratio - 1, 0, index + 1))

    def _gather(self, m, i, o, ratio):
        # The beat that completes a word goes straight into a two-entry FIFO, whose write-ready
        # is a register: so ``i.ready`` never waits on ``o.ready`` combinationally (long ready
        # chains through several stages were the slowest paths of whole networks), and a word a
        # cycle still streams.
        part = self._in * self._bits
        index = Signal(range(ratio))
        parts = Signal(part * (ratio - 1), reset_less=True)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=part * ratio, depth=2)
        completes = index == ratio - 1
        m.d.comb += [
            i.ready.eq(~completes | queue.w_rdy),
            queue.w_data.eq(Cat(parts, i.payload.as_value())),
            queue.w_en.eq(i.valid & completes),
            o.valid.eq(queue.r_rdy),
            o.payload.as_value().eq(queue.r_data),
            queue.r_en.eq(o.ready),
        ]
        with m.If(i.valid & i.ready):
            m.d.sync += index.eq(Mux(completes, 0, index + 1))
            with m.If(~completes):
                m.d.sync += parts.word_select(index, part).eq(i.payload.as_value())
