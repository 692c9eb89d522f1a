"""Threshold unit by binary search: one comparator per output bit per row, thresholds in memories."""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.quant import QuantType
from .params import counter, positive_int, validating

__all__ = ["ThresholdSearch", "threshold_table"]


def threshold_table(thresholds, out_type: QuantType, pe: int) -> np.ndarray:
    """A threshold unit's table, checked: (rows, levels - 1) integers, rows a multiple of ``pe``."""
    thresholds = np.asarray(thresholds, dtype=np.int64)
    positive_int("pe", pe)
    if thresholds.ndim != 2 or thresholds.shape[1] != out_type.levels - 1 or thresholds.shape[0] % pe:
        raise ValueError(f"thresholds of shape {thresholds.shape} do not fit {out_type} with pe={pe}")
    return thresholds


class ThresholdSearch(wiring.Component):
    """``code = sum_j [P >= T[row, j]]`` for ``pe`` rows a beat, as :class:`Thresholding` computes it,
    found bit by bit: with ascending thresholds the code is the largest ``c`` with ``P >= T[c]``.

    Stage ``s`` decides code bit ``b = depth - 1 - s``: it compares ``P`` with the threshold at
    ``c + 2^b`` (``c`` holding the bits decided so far) and keeps the bit where ``P`` reaches it.
    Each stage has its own memory per row of the ``2^s`` thresholds it can be asked for (read
    asynchronously: LUT RAM or logic), so a k-bit output costs k comparators a row instead of
    ``2^k - 1``. Thresholds are padded to ``2^depth - 1`` with a value never reached.

    ``depth + 1`` register stages (``latency``); accepts a beat every cycle while the output is
    free or being taken (``i.ready = o.ready | ~o.valid``), and every stage holds while it is not.
    """

    def __init__(self, *, thresholds: np.ndarray, out_type: QuantType, pe: int, acc_max: int):
        with validating(self):
            thresholds = threshold_table(thresholds, out_type, pe)
            if np.any(np.diff(thresholds, axis=1) < 0):
                raise ValueError("each row's thresholds must be ascending")
        self.depth = self.depth_for(out_type)
        never = acc_max + 1
        padded = np.full((thresholds.shape[0], (1 << self.depth) - 1), never, dtype=np.int64)
        padded[:, :thresholds.shape[1]] = thresholds.clip(0, never)
        self._thresholds, self._pe, self._acc_max = padded, pe, acc_max
        self._nf = thresholds.shape[0] // pe
        self.latency = self.depth + 1
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(range(acc_max + 1), pe))),
            "o": Out(stream.Signature(data.ArrayLayout(out_type.bits, pe))),
        })

    @staticmethod
    def depth_for(out_type: QuantType) -> int:
        """Search stages: the bits of the largest code."""
        return max(1, (out_type.levels - 1).bit_length())

    def stage_table(self, stage: int) -> np.ndarray:
        """(rows, 2^stage) thresholds stage ``stage`` may compare with: entry ``h`` is the one at
        code ``(h << (b + 1)) | (1 << b)``, ``h`` being the bits decided before it."""
        b = self.depth - 1 - stage
        codes = (np.arange(1 << stage) << (b + 1)) | (1 << b)
        return self._thresholds[:, codes - 1]

    def elaborate(self, platform):
        m = Module()
        pe, nf, depth = self._pe, self._nf, self.depth
        advance = Signal()
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid), self.i.ready.eq(advance)]

        group_in = Signal(counter(nf))
        with m.If(self.i.valid & advance):
            m.d.sync += group_in.eq(Mux(group_in == nf - 1, 0, group_in + 1))

        # stage registers: valid, row group, accumulators and the code bits decided so far
        acc_layout = data.ArrayLayout(range(self._acc_max + 1), pe)
        code_layout = data.ArrayLayout(depth, pe)
        valid = [Signal(name=f"valid{s}") for s in range(depth + 1)]
        group = [Signal(counter(nf), name=f"group{s}", reset_less=True) for s in range(depth)]
        acc = [Signal(acc_layout, name=f"acc{s}", reset_less=True) for s in range(depth)]
        code = [Signal(code_layout, name=f"code{s}", reset_less=True) for s in range(depth)]
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), group[0].eq(group_in), acc[0].eq(self.i.payload),
                         code[0].eq(0)]
            for s in range(depth):
                m.d.sync += valid[s + 1].eq(valid[s])
        for s in range(depth):
            b = depth - 1 - s
            table = self.stage_table(s).reshape(nf, pe, 1 << s)
            decided = []
            for p in range(pe):
                mem = memory.Memory(shape=range(self._acc_max + 2), depth=max(nf << s, 2),
                                    init=[int(t) for t in table[:, p].ravel()])
                m.submodules[f"stage{s}_row{p}"] = mem
                read = mem.read_port(domain="comb")
                high = code[s][p] >> (b + 1)
                m.d.comb += read.addr.eq(group[s] * (1 << s) + high if s else group[s])
                decided.append(code[s][p] | Mux(acc[s][p] >= read.data, 1 << b, 0))
            with m.If(advance):
                if s + 1 < depth:
                    m.d.sync += [group[s + 1].eq(group[s]), acc[s + 1].eq(acc[s])]
                    m.d.sync += [code[s + 1][p].eq(decided[p]) for p in range(pe)]
                else:
                    m.d.sync += [self.o.payload[p].eq(decided[p]) for p in range(pe)]
        m.d.comb += self.o.valid.eq(valid[depth])
        return m
