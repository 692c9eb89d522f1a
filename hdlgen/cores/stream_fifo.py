"""A FIFO on a stream: the buffer an edge of the pipeline needs so that a stage's pauses never stall
its producer (the depth comes from the cycle model, ``assemble.fifos``)."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import positive_int, validating

__all__ = ["StreamFifo"]


class StreamFifo(wiring.Component):
    """``depth`` beats of ``layout`` between ``i`` and ``o``, order kept, one beat a cycle each way
    (from ``MIN_DEPTH`` beats: shallower, Amaranth's FIFO takes a beat every other cycle).

    Amaranth's ``SyncFIFOBuffered``: its output is a register and ``i.ready`` is its ``w_rdy``, so
    neither side's handshake reaches the other combinationally. Small FIFOs are LUT RAM (flip-flops
    on iCE40, which has none); from 128 words and 8 Kbit, Yosys picks block RAM.
    """

    MIN_DEPTH = 3

    def __init__(self, *, layout, depth: int):
        with validating(self):
            positive_int("depth", depth)
            if depth < self.MIN_DEPTH:
                raise ValueError(f"depth {depth} is below {self.MIN_DEPTH}: the FIFO would take a beat every other cycle")
        self.depth = depth
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        width = len(self.i.payload.as_value())
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=width, depth=self.depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload.as_value()),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.as_value().eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
        ]
        return m
