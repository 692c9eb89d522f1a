"""Sliding-window generator (line buffer) for convolutions."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, memory

from ..ir.lowered import WindowStage
from .mvu import in_block_ram
from .params import ImageStageCore, counter

__all__ = ["SlidingWindow"]


class SlidingWindow(ImageStageCore):
    """Windows of an (H, W, C) image streamed ``count`` channels a beat (channels innermost).

    For each output pixel in raster order it emits the window's ``kh * kw * C / count`` beats in
    (ky, kx, channel) order: the column order of the convolution's weights. Stride and dilation are
    addressing only.

    Buffer: ``rows`` image rows in one memory (block RAM from 128 words and 8 Kbit, else LUT RAM, or
    flip-flops on iCE40, which has none),
    written as they
    arrive and read window by window. The writer may run up to ``rows`` rows ahead of the first row
    the current output row needs; the reader starts an output row once its ``span`` rows are
    complete. With ``rows = max(span + stride, 2 * span + extra)`` (``extra`` = rows past the last
    window) the writer can fill the next image's first window rows while the reader finishes the
    current image, so the stage takes ``max(input beats, output beats)`` cycles a frame. Memory
    cost: ``rows * W * C * bits`` bits (``memory_bits``).

    Backpressure as in the matrix-vector unit: read results go into a small FIFO and a read is only
    issued while the FIFO has room for everything in flight.
    """

    def __init__(self, *, stage: WindowStage, count: int, lut_ram: bool = True):
        super().__init__(stage=stage, count=count)
        self._lut_ram = lut_ram        # the family has LUT RAM (iCE40 has none: small buffers go to flip-flops)

    @staticmethod
    def rows(stage: WindowStage) -> int:
        span, sh = stage.span[0], stage.stride[0]
        extra = stage.in_shape[0] - span - (stage.out_spatial[0] - 1) * sh
        return max(span + sh, 2 * span + extra)

    @classmethod
    def memory_bits(cls, stage: WindowStage) -> int:
        h, w, c = stage.in_shape
        return cls.rows(stage) * w * c * stage.in_type.bits

    @staticmethod
    def cycles_per_frame(stage: WindowStage, count: int) -> int:
        h, w, c = stage.in_shape
        oh, ow = stage.out_spatial
        cb = c // count
        return max(h * w * cb, oh * ow * stage.kernel[0] * stage.kernel[1] * cb)

    def elaborate(self, platform):
        m = Module()
        stage, count = self._stage, self._count
        h, w, c = stage.in_shape
        (kh, kw), (sh, sw), (dh, dw) = stage.kernel, stage.stride, stage.dilation
        oh, ow = stage.out_spatial
        span = stage.span[0]
        rows, cb_count = self.rows(stage), c // count
        row_words = w * cb_count
        depth = rows * row_words
        layout = data.ArrayLayout(stage.in_type.bits, count)

        # big buffers go to block RAM (synchronous read, then a register); small ones to LUT RAM
        # (asynchronous read into a register): two or three cycles from address to registered data
        block_ram = in_block_ram(depth, layout.size)
        m.submodules.lines = lines = memory.Memory(shape=layout, depth=depth, init=[],
                                                   attrs=None if block_ram else
                                                   {"ram_style": "distributed" if self._lut_ram else "logic"})
        wport = lines.write_port()
        rport = lines.read_port() if block_ram else lines.read_port(domain="comb")
        latency = 3 if block_ram else 2

        # -- rows written and not yet released (negative: released before being written) -----------
        # The flags the writer and the reader wait on are registered. Their next values compare the
        # current count with constants, one comparison per case of (row written, rows released),
        # so no adder sits between a handshake and a flag.
        ready_rows = Signal(range(-rows - h, rows + 1))
        can_write, can_read = Signal(init=1), Signal()
        row_done, release_mid, release_end = Signal(), Signal(), Signal()
        last_rows = h - (oh - 1) * sh              # released after an image's last output row, used or not

        # -- writer -----------------------------------------------------------------------------------
        waddr, wcol = Signal(counter(depth)), Signal(counter(row_words))
        m.d.comb += [
            self.i.ready.eq(can_write),
            wport.addr.eq(waddr), wport.data.eq(self.i.payload), wport.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [waddr.eq(Mux(waddr == depth - 1, 0, waddr + 1)),
                         wcol.eq(Mux(wcol == row_words - 1, 0, wcol + 1))]
            m.d.comb += row_done.eq(wcol == row_words - 1)
        released = Mux(release_end, last_rows, Mux(release_mid, sh, 0))
        m.d.sync += ready_rows.eq(ready_rows + row_done - released)

        def next_flag(test):
            """``test(next count)`` with the next count as the current one plus a constant."""
            by_release = [(release_end, -last_rows), (release_mid, -sh)]
            flag = Mux(row_done, test(ready_rows, 1), test(ready_rows, 0))
            for cond, delta in reversed(by_release):
                flag = Mux(cond, Mux(row_done, test(ready_rows, 1 + delta), test(ready_rows, delta)), flag)
            return flag

        m.d.sync += [can_write.eq(next_flag(lambda count, delta: count < rows - delta)),
                     can_read.eq(next_flag(lambda count, delta: count >= span - delta))]

        # -- reader: output FIFO with credits ---------------------------------------------------------
        # issue -> address register -> [block RAM read ->] data register (latency) -> FIFO write (1) ->
        # FIFO output (1); a read a cycle needs a credit for each of them plus one for the word taken
        fifo_depth = latency + 2 + 2
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(width=layout.size, depth=fifo_depth)
        outstanding = Signal(range(fifo_depth + 1))
        issue = Signal()
        m.d.comb += [
            issue.eq(can_read & (outstanding < fifo_depth)),
            self.o.valid.eq(out_fifo.r_rdy), self.o.payload.eq(out_fifo.r_data), out_fifo.r_en.eq(self.o.ready),
        ]
        m.d.sync += outstanding.eq(outstanding + issue - (self.o.valid & self.o.ready))

        def wrap_add(value, step):
            step %= depth
            return Mux(value >= depth - step, value - (depth - step), value + step)

        cb, kx, ky = Signal(counter(cb_count)), Signal(counter(kw)), Signal(counter(kh))
        ox, oy = Signal(counter(ow)), Signal(counter(oh))
        # Whether each counter is at its last value is a register of its own, set as the counter steps
        # onto it: the chain of enables below (and the row release the writer waits on) is an AND
        # of registers, with no comparator in it.
        cb_last, kx_last, ky_last, ox_last, oy_last = (
            Signal(init=n == 1, name=f"{name}_last")
            for name, n in (("cb", cb_count), ("kx", kw), ("ky", kh), ("ox", ow), ("oy", oh)))

        def step(value, count, last):
            """``value`` and its flag, one step on (wrapping after ``count - 1``)."""
            return [value.eq(Mux(last, 0, value + 1)), last.eq(1 if count == 1 else ~last & (value == count - 2))]

        first_row = Signal(counter(depth))                 # address of the output row's first buffer row
        tap_row = Signal(counter(depth))                   # ... of the current ky's row
        pixel_col = Signal(counter(row_words))             # ox * sw * cb_count
        tap_col = Signal(counter(row_words))               # kx * dw * cb_count
        with m.If(issue):
            m.d.sync += step(cb, cb_count, cb_last)
            with m.If(cb_last):
                m.d.sync += [*step(kx, kw, kx_last), tap_col.eq(tap_col + dw * cb_count)]
                with m.If(kx_last):
                    m.d.sync += [*step(ky, kh, ky_last), tap_col.eq(0), tap_row.eq(wrap_add(tap_row, dh * row_words))]
                    with m.If(ky_last):
                        m.d.sync += [*step(ox, ow, ox_last), tap_row.eq(first_row),
                                     pixel_col.eq(pixel_col + sw * cb_count)]
                        with m.If(ox_last):
                            m.d.sync += [*step(oy, oh, oy_last), pixel_col.eq(0)]
                            with m.If(oy_last):
                                m.d.comb += release_end.eq(1)
                            with m.Else():
                                m.d.comb += release_mid.eq(1)
                            new_first = Mux(oy_last, wrap_add(first_row, last_rows * row_words),
                                            wrap_add(first_row, sh * row_words))
                            m.d.sync += [first_row.eq(new_first), tap_row.eq(new_first)]
        raddr = Signal(counter(depth), reset_less=True)
        m.d.sync += raddr.eq(tap_row + pixel_col + tap_col + cb)
        m.d.comb += rport.addr.eq(raddr)
        # A block RAM's clock-to-output takes most of a period on ECP5, so its data is registered once
        # before any logic (the FIFO's write side).
        valid = issue
        for k in range(latency):
            delayed = Signal(name=f"valid_d{k}")
            m.d.sync += delayed.eq(valid)
            valid = delayed
        word = Signal(layout, reset_less=True)
        m.d.sync += word.eq(rport.data)
        m.d.comb += [out_fifo.w_data.eq(word), out_fifo.w_en.eq(valid)]
        return m
