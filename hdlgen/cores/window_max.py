"""Max pooling over a sliding window's output: overlapping and padded max pools."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory

from ..ir.lowered import WindowMaxStage
from .params import ImageStageCore, counter

__all__ = ["WindowMax"]


class WindowMax(ImageStageCore):
    """The maximum over each window's taps, from a sliding window streamed ``count`` channels a beat.

    A window comes as ``taps * C / count`` beats in (tap, channel) order; its ``C / count`` output
    beats are the running maxima of each channel block, kept in a small memory read asynchronously
    (LUT RAM): each beat reads its block's maximum so far, and writes the larger one back, or on the
    window's last tap sends it out. Codes order like values for every quant type (for bipolar codes
    the max is an OR). One beat a cycle in; one register stage on the output.
    """

    def __init__(self, *, stage: WindowMaxStage, count: int):
        super().__init__(stage=stage, count=count)

    @staticmethod
    def cycles_per_frame(stage: WindowMaxStage, count: int) -> int:
        oh, ow, width = stage.in_shape
        return oh * ow * (width // count)

    def elaborate(self, platform):
        m = Module()
        stage, count = self._stage, self._count
        blocks = stage.channels // count
        layout = data.ArrayLayout(stage.in_type.bits, count)
        block, tap = Signal(counter(blocks)), Signal(counter(stage.taps))
        first, last = tap == 0, tap == stage.taps - 1

        m.submodules.partial = partial = memory.Memory(shape=layout, depth=max(blocks, 2), init=[])
        read, write = partial.read_port(domain="comb"), partial.write_port()
        m.d.comb += [read.addr.eq(block), write.addr.eq(block)]
        merged = Signal(layout)
        for k in range(count):
            m.d.comb += merged[k].eq(Mux(first | (self.i.payload[k] > read.data[k]), self.i.payload[k], read.data[k]))

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~last | advance)
        take = self.i.valid & self.i.ready
        m.d.comb += [write.data.eq(merged), write.en.eq(take & ~last)]
        with m.If(take & last):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(merged)]
        with m.Elif(advance):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += block.eq(Mux(block == blocks - 1, 0, block + 1))
            with m.If(block == blocks - 1):
                m.d.sync += tap.eq(Mux(last, 0, tap + 1))
        return m
