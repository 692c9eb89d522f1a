"""The arithmetic heart of a matrix-vector unit: ``pe`` dot products of ``simd`` terms each."""

from __future__ import annotations

from amaranth import Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..ir.quant import QuantType
from .adder_tree import AdderTree
from .params import positive_int, validating

__all__ = ["DotProductArray"]


class DotProductArray(wiring.Component):
    """``o[p] = sum_s term(x[s], w[p][s])`` for every row ``p``, through one pipelined tree per row.

    The term is the unsigned form of a product that ``ir.lowered`` defines: for bipolar inputs an
    XNOR of input and weight sign (masked by the non-zero bit of a ternary weight); for k-bit input
    codes ``u`` either ``u`` or ``~u`` by the weight's sign, or 0 for a zero weight. Weights come in
    the memory encoding of ``cores.weights``. Free-running, ``latency`` cycles, no handshake.
    """

    def __init__(self, *, in_type: QuantType, weight_type: QuantType, pe: int, simd: int, tree_group: int = 2,
                 levels_per_stage: int = 1):
        with validating(self):
            positive_int("pe", pe)
            positive_int("simd", simd)
            if weight_type.kind.value not in ("bipolar", "ternary"):
                raise ValueError(f"weights must be bipolar or ternary, not {weight_type}")
        self._in_type, self._weight_type = in_type, weight_type
        self.term_max = 1 if in_type.is_bipolar else (1 << in_type.bits) - 1
        self._trees = [AdderTree(count=simd, term_max=self.term_max, group=tree_group,
                                 levels_per_stage=levels_per_stage) for _ in range(pe)]
        self.latency = self._trees[0].latency
        wbits = 1 if weight_type.is_bipolar else 2
        super().__init__({
            "x": In(data.ArrayLayout(in_type.bits, simd)),
            "w": In(data.ArrayLayout(data.ArrayLayout(wbits, simd), pe)),
            "o": Out(data.ArrayLayout(range(simd * self.term_max + 1), pe)),
        })

    def elaborate(self, platform):
        m = Module()
        for p, tree in enumerate(self._trees):
            m.submodules[f"tree{p}"] = tree
            for s in range(len(self.x)):
                m.d.comb += tree.i[s].eq(self._term(self.x[s], self.w[p][s]))
            m.d.comb += self.o[p].eq(tree.o)
        return m

    def _term(self, x, w):
        if self._in_type.is_bipolar:
            if self._weight_type.is_bipolar:
                return ~(x ^ w[0])
            return w[0] & ~(x ^ w[1])
        flipped = x ^ Mux(w[-1], 0, (1 << self._in_type.bits) - 1)
        return flipped if self._weight_type.is_bipolar else Mux(w[0], flipped, 0)
