"""Threshold unit: accumulators to activation codes."""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.quant import QuantType
from .params import counter, validating
from .threshold_search import ThresholdSearch, threshold_table

__all__ = ["Thresholding", "threshold_unit", "threshold_comparators", "threshold_entries", "threshold_latency", "SEARCH_FROM_BITS"]

# From this many output bits a threshold unit searches (one comparator per bit) instead of comparing
# with every threshold at once (2^bits - 1 comparators); see benchmarks/thresholds.py.
SEARCH_FROM_BITS = 4


def threshold_unit(*, thresholds: np.ndarray, out_type: QuantType, pe: int, acc_max: int):
    """The threshold unit the generator uses for ``out_type``: :class:`Thresholding` (all
    comparisons at once, one register stage) below ``SEARCH_FROM_BITS`` output bits, else
    :class:`ThresholdSearch` (one comparison per output bit, pipelined)."""
    cls = ThresholdSearch if out_type.bits >= SEARCH_FROM_BITS else Thresholding
    return cls(thresholds=thresholds, out_type=out_type, pe=pe, acc_max=acc_max)


def threshold_comparators(out_type: QuantType) -> int:
    """Comparators per row in the unit ``threshold_unit`` gives ``out_type``."""
    return ThresholdSearch.depth_for(out_type) if out_type.bits >= SEARCH_FROM_BITS else out_type.levels - 1


def threshold_entries(out_type: QuantType) -> int:
    """Thresholds stored per row (a search pads them to ``2^depth - 1``)."""
    if out_type.bits >= SEARCH_FROM_BITS:
        return (1 << ThresholdSearch.depth_for(out_type)) - 1
    return out_type.levels - 1


def threshold_latency(out_type: QuantType) -> int:
    """Register stages of the unit ``threshold_unit`` gives ``out_type``."""
    return ThresholdSearch.depth_for(out_type) + 1 if out_type.bits >= SEARCH_FROM_BITS else Thresholding.latency


class Thresholding(wiring.Component):
    """``code = sum_j [P >= T[row, j]]`` for ``pe`` rows a beat, rows ``nf * pe + p`` in turn.

    Takes accumulators as a :class:`MatrixVectorUnit` emits them (or channel sums of a global
    pooling stage) and gives one code of ``out_type.bits`` bits per row. ``thresholds`` is
    (rows, levels - 1). The ``NF`` threshold sets sit in a small memory read asynchronously (LUT RAM
    or logic). One register stage; accepts a beat every cycle while the output is free or being
    taken (``i.ready = o.ready | ~o.valid``).
    """

    latency = 1

    def __init__(self, *, thresholds: np.ndarray, out_type: QuantType, pe: int, acc_max: int):
        with validating(self):
            thresholds = threshold_table(thresholds, out_type, pe)
        self._thresholds, self._out_type, self._pe, self._acc_max = thresholds, out_type, pe, acc_max
        self._nf = thresholds.shape[0] // pe
        self._steps = thresholds.shape[1]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(range(acc_max + 1), pe))),
            "o": Out(stream.Signature(data.ArrayLayout(out_type.bits, pe))),
        })

    def elaborate(self, platform):
        m = Module()
        pe, steps = self._pe, self._steps
        t_shape = range(self._acc_max + 2)
        row_layout = data.ArrayLayout(data.ArrayLayout(t_shape, steps), pe)
        clipped = self._thresholds.clip(0, self._acc_max + 1).reshape(self._nf, pe, steps)
        init = [[[int(t) for t in row] for row in group] for group in clipped]
        m.submodules.table = table = memory.Memory(shape=row_layout, depth=max(self._nf, 2), init=init)
        read = table.read_port(domain="comb")

        group = Signal(counter(self._nf))
        m.d.comb += read.addr.eq(group)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(take):
            m.d.sync += group.eq(Mux(group == self._nf - 1, 0, group + 1))
            for p in range(pe):
                reached = [self.i.payload[p] >= read.data[p][j] for j in range(steps)]
                m.d.sync += self.o.payload[p].eq(sum(reached[1:], reached[0]) if steps > 1 else reached[0])
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m
