"""Threshold unit: accumulators to activation codes."""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.lowered import Folding, MatrixVectorLayer
from ..ir.quant import QuantType
from .params import counter, positive_int, validating

__all__ = ["Thresholding"]


class Thresholding(wiring.Component):
    """``code = sum_j [P >= T[row, j]]`` for ``pe`` rows a beat, rows ``nf * pe + p`` in turn.

    Takes accumulators as a :class:`MatrixVectorUnit` emits them (or channel sums of a global
    pooling stage) and gives one code of ``out_type.bits`` bits per row. ``thresholds`` is
    (rows, levels - 1). The ``NF`` threshold sets sit in a small memory read asynchronously (LUT RAM
    or logic). One register stage; accepts a beat every cycle while the output is free or being
    taken (``i.ready = o.ready | ~o.valid``).
    """

    def __init__(self, *, thresholds: np.ndarray, out_type: QuantType, pe: int, acc_max: int):
        with validating(self):
            thresholds = np.asarray(thresholds, dtype=np.int64)
            positive_int("pe", pe)
            if thresholds.ndim != 2 or thresholds.shape[1] != out_type.levels - 1 or thresholds.shape[0] % pe:
                raise ValueError(f"thresholds of shape {thresholds.shape} do not fit {out_type} with pe={pe}")
        self._thresholds, self._out_type, self._pe, self._acc_max = thresholds, out_type, pe, acc_max
        self._nf = thresholds.shape[0] // pe
        self._steps = thresholds.shape[1]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(range(acc_max + 1), pe))),
            "o": Out(stream.Signature(data.ArrayLayout(out_type.bits, pe))),
        })

    @classmethod
    def of_layer(cls, layer: MatrixVectorLayer, folding: Folding, acc_max: int) -> Thresholding:
        if layer.thresholds is None:
            raise ValueError(f"layer {layer.name!r} has no thresholds")
        layer.check_folding(folding)
        return cls(thresholds=layer.thresholds, out_type=layer.out_type, pe=folding.pe, acc_max=acc_max)

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
