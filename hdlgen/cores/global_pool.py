"""Global pooling: per-channel sums of a streamed image."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory

from ..ir.lowered import GlobalPoolStage
from .params import ImageStageCore, counter

__all__ = ["GlobalSum"]


class GlobalSum(ImageStageCore):
    """Sums each channel's codes over an (H, W, C) image streamed ``count`` channels a beat.

    Emits ``C / count`` beats of ``count`` sums per frame, after the frame's last pixel; a threshold
    unit after it turns sums into codes (``GlobalPoolStage``). Partial sums sit in a small memory
    read asynchronously (LUT RAM). One beat a cycle; one register stage on the output.
    """

    def __init__(self, *, stage: GlobalPoolStage, count: int):
        self.acc_max = stage.acc_max
        super().__init__(stage=stage, count=count, out_shape=range(stage.acc_max + 1))

    @staticmethod
    def cycles_per_frame(stage: GlobalPoolStage, count: int) -> int:
        return stage.pixels * stage.in_shape[2] // count

    def elaborate(self, platform):
        m = Module()
        stage, count = self._stage, self._count
        cb_count = stage.in_shape[2] // count
        layout = data.ArrayLayout(range(self.acc_max + 1), count)
        m.submodules.partial = partial = memory.Memory(shape=layout, depth=max(cb_count, 2), init=[])
        read, write = partial.read_port(domain="comb"), partial.write_port()
        cb, pixel = Signal(counter(cb_count)), Signal(counter(stage.pixels))
        first, last = pixel == 0, pixel == stage.pixels - 1
        m.d.comb += [read.addr.eq(cb), write.addr.eq(cb)]

        total = Signal(layout)
        for k in range(count):
            m.d.comb += total[k].eq(Mux(first, 0, read.data[k]) + self.i.payload[k])

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~last | advance)
        take = self.i.valid & self.i.ready
        m.d.comb += [write.data.eq(total), write.en.eq(take & ~last)]
        with m.If(take & last):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(total)]
        with m.Elif(advance):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += cb.eq(Mux(cb == cb_count - 1, 0, cb + 1))
            with m.If(cb == cb_count - 1):
                m.d.sync += pixel.eq(Mux(last, 0, pixel + 1))
        return m
