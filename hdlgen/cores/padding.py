"""Padding stage: a border of constant pixels around a streamed image."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal

from ..ir.lowered import PadStage
from .params import ImageStageCore, counter

__all__ = ["Padding"]


class Padding(ImageStageCore):
    """Streams an (H, W, C) image, ``count`` channels a beat, out as the padded image.

    Border beats carry ``pad_code`` in every value; interior beats are the input's, widened from
    bipolar to ternary codes (``code * 2``) when the stage says so. A frame's border starts once its
    first input beat is offered. One beat a cycle on the output, one register stage;
    ``i.ready = interior & (o.ready | ~o.valid)``.
    """

    def __init__(self, *, stage: PadStage, count: int):
        super().__init__(stage=stage, count=count, out_shape=stage.out_type.bits)

    @staticmethod
    def cycles_per_frame(stage: PadStage, count: int) -> int:
        h, w, c = stage.out_shape
        return h * w * (c // count)

    @staticmethod
    def pause_beats(stage: PadStage, count: int) -> int:
        """The most output beats the stage makes in a row without taking an input beat: the border
        between one frame's last interior beat and the next frame's first (right, bottom rows, top
        rows, left), or between two rows (right and left)."""
        h, w, c = stage.in_shape
        top, left, bottom, right = stage.padding
        _, out_w, _ = stage.out_shape
        per_pixel = c // count
        return max(right + (bottom + top) * out_w + left, right + left) * per_pixel

    def elaborate(self, platform):
        m = Module()
        stage, count = self._stage, self._count
        h, w, c = stage.in_shape
        out_h, out_w, _ = stage.out_shape
        top, left, _, _ = stage.padding
        cb_count = c // count
        y, x, cb = Signal(counter(out_h)), Signal(counter(out_w)), Signal(counter(cb_count))
        # interior flags kept in registers, updated with the counters (no comparators on the path)
        row_in, col_in = Signal(init=top == 0), Signal(init=left == 0)
        interior = row_in & col_in

        # Border beats before the frame's first input beat wait until that beat is offered (it is not
        # taken yet), so no frame is started that has no input; later border beats run freely.
        waiting = Signal(init=1)
        advance = ~self.o.valid | self.o.ready
        produce = advance & (self.i.valid | (~interior & ~waiting))
        m.d.comb += self.i.ready.eq(advance & interior)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += waiting.eq(0)

        bits = stage.out_type.bits
        if stage.widens:
            widened = Cat(*(Cat(Const(0, 1), self.i.payload[k]) for k in range(count)))
        else:
            widened = self.i.payload.as_value()
        pad_word = Cat(*(Const(stage.pad_code, bits) for _ in range(count)))
        with m.If(produce):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.as_value().eq(Mux(interior, widened, pad_word))]
            last_cb = cb == cb_count - 1
            m.d.sync += cb.eq(Mux(last_cb, 0, cb + 1))
            with m.If(last_cb):
                last_x = x == out_w - 1
                m.d.sync += x.eq(Mux(last_x, 0, x + 1))
                with m.If(last_x):
                    m.d.sync += col_in.eq(left == 0)
                    last_y = y == out_h - 1
                    m.d.sync += y.eq(Mux(last_y, 0, y + 1))
                    with m.If(last_y):
                        m.d.sync += [row_in.eq(top == 0), waiting.eq(1)]
                    with m.Else():
                        self._edges(m, row_in, y, top, h)
                with m.Else():
                    self._edges(m, col_in, x, left, w)
        with m.Elif(advance):
            m.d.sync += self.o.valid.eq(0)
        return m

    @staticmethod
    def _edges(m, inside, pos, before: int, size: int):
        """Update ``inside`` for the position after ``pos``: entering after ``before`` border
        positions, leaving after ``size`` more."""
        leave = pos == before + size - 1
        if before > 0:
            with m.If(pos == before - 1):
                m.d.sync += inside.eq(1)
            with m.Elif(leave):
                m.d.sync += inside.eq(0)
        else:
            with m.If(leave):
                m.d.sync += inside.eq(0)
