"""Re-grouping a stream of values into words of another width, order kept."""

from __future__ import annotations

from math import gcd

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import positive_int, validating

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """Words of ``in_count`` values of ``bits`` bits into words of ``out_count`` values.

    Value order is kept: value ``k`` of beat ``n`` is value ``n * in_count + k`` of the stream.
    When one count divides the other the converter splits or gathers words directly; otherwise
    it splits to their greatest common divisor and gathers from there. One beat per cycle on the
    wider side at most; a gathered word is held until taken.
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
        index = Signal(range(ratio))
        word = Signal(len(o.payload.as_value()))
        full = Signal()
        m.d.comb += [
            o.valid.eq(full),
            o.payload.as_value().eq(word),
            i.ready.eq(~full | o.ready),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += full.eq(0)
        with m.If(i.valid & i.ready):
            part = self._in * self._bits
            m.d.sync += word.word_select(index, part).eq(i.payload.as_value())
            m.d.sync += index.eq(Mux(index == ratio - 1, 0, index + 1))
            with m.If(index == ratio - 1):
                m.d.sync += full.eq(1)
