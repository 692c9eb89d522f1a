"""Max pooling of a streamed image, stride equal to the kernel."""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal
from amaranth.lib import data, memory

from ..ir.lowered import PoolStage
from .params import ImageStageCore, counter

__all__ = ["MaxPool"]


class MaxPool(ImageStageCore):
    """Max of codes over ``kh x kw`` windows of an (H, W, C) image streamed ``count`` channels a beat.

    Codes order like values for every quant type, so this is the max of the values (for bipolar
    codes, an OR). Channels the stage marks ``minimum`` take the window's minimum: their codes are
    inverted (all bits) on the way in and out, and the max of inverted codes is the inverted min. Running maxima of one output row sit in a small memory read asynchronously
    (LUT RAM): each beat reads its window's partial max, combines it with the input and writes it
    back, or sends it out on the window's last beat. Rows and columns past the last whole window
    are taken and dropped. One beat a cycle; one register stage on the output.
    """

    def __init__(self, *, stage: PoolStage, count: int):
        super().__init__(stage=stage, count=count)

    @staticmethod
    def cycles_per_frame(stage: PoolStage, count: int) -> int:
        h, w, c = stage.in_shape
        return h * w * (c // count)

    def elaborate(self, platform):
        m = Module()
        stage, count = self._stage, self._count
        (kh, kw), (h, w, c) = stage.kernel, stage.in_shape
        out_h, out_w, _ = stage.out_shape
        cb_count = c // count
        layout = data.ArrayLayout(stage.in_type.bits, count)

        cb, kx, ox, ky, oy = (Signal(counter(n), name=name) for n, name in
                              ((cb_count, "cb"), (kw, "kx"), (out_w + 1, "ox"), (kh, "ky"), (out_h + 1, "oy")))
        # ox == out_w / oy == out_h: the dropped columns / rows past the last whole window
        tail_x, tail_y = Signal(counter(w - out_w * kw + 1)), Signal(counter(h - out_h * kh + 1))
        in_window = (ox < out_w) & (oy < out_h)
        first = (ky == 0) & (kx == 0)
        last = (ky == kh - 1) & (kx == kw - 1)

        m.submodules.partial = partial = memory.Memory(shape=layout, depth=max(out_w * cb_count, 2), init=[])
        read, write = partial.read_port(domain="comb"), partial.write_port()
        addr = Signal(counter(out_w * cb_count))          # ox * cb_count + cb, kept incrementally
        row_addr = Signal.like(addr)                      # ox * cb_count
        m.d.comb += [read.addr.eq(addr), write.addr.eq(addr), addr.eq(row_addr + cb)]

        # per beat (cb), which lanes take the minimum: a constant word of all-ones codes for those lanes
        bits, minimum = stage.in_type.bits, stage.minimum or (False,) * c
        masks = [sum(((1 << bits) - 1) << (k * bits) for k in range(count) if minimum[j * count + k])
                 for j in range(cb_count)]
        invert = Signal(count * bits)
        m.d.comb += invert.eq(Array(Const(v, count * bits) for v in masks)[cb] if any(masks) else 0)
        incoming = Signal(layout)
        m.d.comb += incoming.as_value().eq(self.i.payload.as_value() ^ invert)

        merged = Signal(layout)
        for k in range(count):
            m.d.comb += merged[k].eq(Mux(first | (incoming[k] > read.data[k]), incoming[k], read.data[k]))

        advance = ~self.o.valid | self.o.ready
        emits = in_window & last
        m.d.comb += self.i.ready.eq(~emits | advance)
        take = self.i.valid & self.i.ready
        m.d.comb += [write.data.eq(merged), write.en.eq(take & in_window & ~last)]
        with m.If(take & emits):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(merged.as_value() ^ invert)]
        with m.Elif(advance):
            m.d.sync += self.o.valid.eq(0)

        with m.If(take):
            self._step(m, cb, cb_count, kx, kw, ox, out_w, tail_x, w - out_w * kw, row_addr, cb_count,
                       ky, kh, oy, out_h, tail_y, h - out_h * kh)
        return m

    @staticmethod
    def _step(m, cb, cb_count, kx, kw, ox, out_w, tail_x, tail_w, row_addr, stride, ky, kh, oy, out_h, tail_y, tail_h):
        """Advance (cb, kx, ox | tail_x) within a row, then (ky, oy | tail_y) at the row's end."""
        m.d.sync += cb.eq(Mux(cb == cb_count - 1, 0, cb + 1))
        with m.If(cb == cb_count - 1):
            end_of_row = Signal()
            with m.If(ox < out_w):
                m.d.sync += kx.eq(Mux(kx == kw - 1, 0, kx + 1))
                with m.If(kx == kw - 1):
                    m.d.sync += [ox.eq(ox + 1), row_addr.eq(row_addr + stride)]
                    m.d.comb += end_of_row.eq((ox == out_w - 1) & (tail_w == 0))
            with m.Else():
                m.d.sync += tail_x.eq(tail_x + 1)
                m.d.comb += end_of_row.eq(tail_x == tail_w - 1)
            with m.If(end_of_row):
                m.d.sync += [ox.eq(0), tail_x.eq(0), row_addr.eq(0)]
                end_of_image = Signal()
                with m.If(oy < out_h):
                    m.d.sync += ky.eq(Mux(ky == kh - 1, 0, ky + 1))
                    with m.If(ky == kh - 1):
                        m.d.sync += oy.eq(oy + 1)
                        m.d.comb += end_of_image.eq((oy == out_h - 1) & (tail_h == 0))
                with m.Else():
                    m.d.sync += tail_y.eq(tail_y + 1)
                    m.d.comb += end_of_image.eq(tail_y == tail_h - 1)
                with m.If(end_of_image):
                    m.d.sync += [oy.eq(0), tail_y.eq(0)]
