"""The arithmetic heart of a matrix-vector unit: ``pe`` dot products of ``simd`` terms each."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..ir.quant import QuantType
from .adder_tree import AdderTree
from .carry_tree import CarryTree
from .params import positive_int, validating
from .products import Packing, ProductKind, choose_product, code_bits, term
from .products import packing as packing_for
from .weights import groups, weight_bits

__all__ = ["DotProductArray"]


class DotProductArray(wiring.Component):
    """``o[p] = sum_s term(x[s], w[p][s])`` for every row ``p``, through one pipelined tree per row.

    The term is the unsigned product that ``ir.lowered`` defines: the weight's magnitude times the
    input code, or times its inverse for a negative weight; ``product`` says how it is made (see
    ``cores.products``; by default the cheapest for the operand types). Weights come in the memory
    encoding of ``cores.weights``. Free-running, ``latency`` cycles, no handshake.

    With PACKED products (``packing`` given) the term is instead the signed product of the weight
    and the centred code plus ``packing.bias``, and ``w[g][s]`` holds the packed word of rows ``g * lanes ..``: the sums are
    ``golden.packed_sums``, and the caller adds ``golden.row_correction`` to make them ``P``.

    ``carry_cells`` (the target's, see ``cores.carry_cells``) makes XNOR terms in a ``CarryTree``
    on those cells, the XNOR folded into its first level, instead of gates and an ``AdderTree``.

    With ``row_inputs`` each row has inputs of its own, ``x[p][s]`` (a vector-vector unit's
    channels): ``o[p] = sum_s term(x[p][s], w[p][s])``; not with PACKED products or carry cells,
    which share one input among rows.
    """

    def __init__(self, *, in_type: QuantType, weight_type: QuantType, pe: int, simd: int, tree_group: int = 2,
                 levels_per_stage: int = 1, product: ProductKind | None = None, packing: Packing | None = None,
                 carry_cells: str | None = None, behavioural_cells: bool = False, row_inputs: bool = False):
        with validating(self):
            positive_int("pe", pe)
            positive_int("simd", simd)
            if row_inputs and (packing is not None or product is ProductKind.PACKED):
                raise ValueError("PACKED products share one input among rows; row_inputs cannot have them")
            if in_type.is_pow2:
                raise ValueError(f"in_type {in_type} is a weight type")
            if product is not None and not isinstance(product, ProductKind):
                raise TypeError(f"product must be a ProductKind, not {product!r}")
            if product is None and packing is not None:
                raise ValueError("a packing goes with product=ProductKind.PACKED")
            if product is None:            # the default target's choice
                product = choose_product(in_type, weight_type, pe=pe).kind
                packing = packing_for(in_type, weight_type) if product is ProductKind.PACKED else None
            if product is ProductKind.XNOR and not (weight_type.is_bipolar and code_bits(in_type) == 1):
                raise ValueError(f"product {product.value} needs bipolar weights and one-bit inputs, not "
                                 f"{weight_type} x {in_type}")
            if product is ProductKind.SELECT and weight_type.magnitude > 1 and code_bits(in_type) > 1:
                raise ValueError(f"product {product.value} needs weights of magnitude 1 or one-bit inputs, not "
                                 f"{weight_type} x {in_type}")
            if product is ProductKind.SHIFT and not weight_type.is_pow2:
                raise ValueError(f"product {product.value} needs pow2 weights, not {weight_type}")
            if product in (ProductKind.LUT, ProductKind.MULTIPLY) and weight_type.is_bipolar:
                raise ValueError(f"product {product.value} needs weights with a magnitude field, not {weight_type}")
            if (product is ProductKind.PACKED) != (packing is not None):
                raise ValueError("a packing goes with PACKED products, and only with them")
            if packing is not None and not packing.fits(in_type, weight_type):
                raise ValueError(f"packing {packing} does not fit {in_type} codes and {weight_type} weights")
        self._in_type, self._weight_type, self._packing = in_type, weight_type, packing
        self.product, self.packing = product, packing
        self.term_max = (1 if in_type.is_bipolar else (1 << in_type.bits) - 1) * weight_type.magnitude
        if packing is not None:
            self.term_max = (1 << packing.lane_bits) - 1
        # XNOR terms go straight into a compressor tree on the target's carry cells, if it has one
        self._row_inputs = row_inputs
        self.carry_tree = self._carry = (product is ProductKind.XNOR and carry_cells is not None and simd >= 4
                                         and not row_inputs)
        if self._carry:
            # one carry tree for all rows, so that the rows' lanes share chains
            self._trees = [CarryTree(count=simd, rows=pe, cells=carry_cells, levels_per_stage=levels_per_stage,
                                     behavioural=behavioural_cells)]
        else:
            self._trees = [AdderTree(count=simd, term_max=self.term_max, group=tree_group,
                                     levels_per_stage=levels_per_stage) for _ in range(pe)]
        # a packed multiplier registers its product and its output (a DSP slice's MREG and PREG)
        self.latency = self._trees[0].latency + (2 if packing else 0)
        rows, bits = (pe, weight_bits(weight_type)) if packing is None else (groups(pe, packing), packing.word_bits)
        x_layout = data.ArrayLayout(in_type.bits, simd)
        super().__init__({
            "x": In(data.ArrayLayout(x_layout, pe) if row_inputs else x_layout),
            "w": In(data.ArrayLayout(data.ArrayLayout(bits, simd), rows)),
            "o": Out(data.ArrayLayout(range(simd * self.term_max + 1), pe)),
        })

    def elaborate(self, platform):
        m = Module()
        if self._carry:
            m.submodules.tree = tree = self._trees[0]
            m.d.comb += tree.x.eq(Cat(self.x[s] for s in range(len(self.x))))
            for p in range(len(self.w)):
                m.d.comb += [tree.w[p].eq(Cat(self.w[p][s] for s in range(len(self.x)))), self.o[p].eq(tree.o[p])]
            return m
        for p, tree in enumerate(self._trees):
            m.submodules[f"tree{p}"] = tree
            m.d.comb += self.o[p].eq(tree.o)
        if self._packing is not None:
            self._packed_terms(m)
            return m
        for p, tree in enumerate(self._trees):
            x = self.x[p] if self._row_inputs else self.x
            for s in range(len(x)):
                m.d.comb += tree.i[s].eq(term(self.product, self._in_type, self._weight_type, x[s],
                                              Value.cast(self.w[p][s])))
        return m

    def _packed_terms(self, m: Module):
        packing, lane = self._packing, self._packing.lane_bits
        for g in range(len(self.w)):
            rows = range(g * packing.lanes, min((g + 1) * packing.lanes, len(self._trees)))
            for s in range(len(self.x)):
                width = packing.word_bits + packing.code_bits
                product = Signal(signed(width), name=f"m{g}_{s}", reset_less=True)
                registered = Signal(signed(width), name=f"p{g}_{s}", reset_less=True)
                code = Value.cast(self.x[s])
                centred = Cat(code[:-1], ~code[-1]).as_signed()          # u - 2^(k - 1)
                m.d.sync += [product.eq(Value.cast(self.w[g][s]).as_signed() * centred),
                             registered.eq(product)]
                for r, row in enumerate(rows):
                    bits = registered[r * lane:(r + 1) * lane]
                    borrow = registered[r * lane - 1] if r else 0
                    # the signed lane plus the bias: its top bit inverted, then the borrow given back
                    m.d.comb += self._trees[row].i[s].eq(Cat(bits[:-1], ~bits[-1]) + borrow)
