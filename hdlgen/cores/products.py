"""How one term of a dot product is made in hardware, and which way each layer gets.

Every strategy makes the same unsigned term (see ``ir.lowered``): the weight's magnitude times the
input code, or times the inverted code ``~u`` where the weight is negative. They differ in the
logic that makes it:

========  ==================================================  ================================
kind      term                                                for
========  ==================================================  ================================
XNOR      ``~(x ^ w)``                                        bipolar inputs and weights
SELECT    the multi-bit operand, gated by the one-bit one     weights of magnitude 1 (ternary)
                                                              or one-bit input codes
SHIFT     ``(u or ~u) << j``, or 0                            POW2 weights ({-2..2} and wider)
LUT       a table of all products, indexed by magnitude and   both operands of at most the
          code (DoReFa's multiplication as a lookup)          target's ``lut_product_bits``
PACKED    the weights of several rows packed into one         wider operands whose products
          operand, ``W = sum(w[r] << r * L)``, times the      fit several to a multiplier
          shared code ``u``: one multiplier makes a product
          per lane (Xilinx WP486); see :class:`Packing`
MULTIPLY  ``|w| * (u or ~u)`` written as ``*``: Yosys puts    the rest
          it on a multiplier primitive (a DSP slice on
          Xilinx, MULT18X18D on ECP5, SB_MAC16 on iCE40)
========  ==================================================  ================================

Terms are unsigned, so every strategy feeds the same pipelined adder trees. PACKED makes signed
products ``w * v`` of centred codes and adds a bias to make them unsigned; the matrix-vector unit adds a per-row
constant to its accumulator to make up for the bias and the inverted codes (``row_correction``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth import Cat, Const, Mux, Value

from ..ir.quant import QuantType
from ..targets import DEFAULT_TARGET, Target, get_target
from .weights import exponent_bits, field_bits

__all__ = ["ProductKind", "ProductPlan", "Packing", "choose_product", "packing", "term"]


class ProductKind(enum.Enum):
    XNOR = "xnor"
    SELECT = "select"
    SHIFT = "shift"
    LUT = "lut"
    PACKED = "packed"
    MULTIPLY = "multiply"


@dataclass(frozen=True)
class ProductPlan:
    kind: ProductKind
    reason: str


def code_bits(in_type: QuantType) -> int:
    return 1 if in_type.is_bipolar else in_type.bits


@dataclass(frozen=True)
class Packing:
    """``lanes`` signed products ``w[r] * v`` from one multiplier: ``W = sum(w[r] << r * lane_bits)``
    (``weight_bits`` signed bits each) times the centred code ``v = u - 2^(code_bits - 1)``, a signed
    ``code_bits``-bit number (the code with its top bit inverted). Centring halves the largest
    product, so 4-bit weights of narrow range and 4-bit codes fit four to a DSP48E2.

    Each product fits a lane: ``|w * v| < 2^(lane_bits - 1)``. Lane ``r`` of the product ``P`` is
    ``signed(P[r L : (r + 1) L]) + P[r L - 1]``: the bit below it is the borrow the lanes beneath
    took from it, as they are negative. The lanes are recovered every cycle, so any accumulation
    depth works (WP486 accumulates in the DSP, where the low lane borrows after a few products).
    """

    lanes: int
    lane_bits: int
    weight_bits: int
    code_bits: int

    @property
    def word_bits(self) -> int:
        """Bits of one packed weight word (the multiplier's wide operand)."""
        return (self.lanes - 1) * self.lane_bits + self.weight_bits

    def fits(self, in_type: QuantType, weight_type: QuantType) -> bool:
        """Whether the lanes, weights and codes are as wide as these types need."""
        need = packing(in_type, weight_type)
        return (self.lanes >= 1 and self.code_bits == need.code_bits and self.weight_bits == need.weight_bits
                and self.lane_bits == need.lane_bits)

    @property
    def bias(self) -> int:
        """Added to each signed product to make it an unsigned term below ``2^lane_bits``."""
        return 1 << (self.lane_bits - 1)


def packing(in_type: QuantType, weight_type: QuantType, target: Target | str = DEFAULT_TARGET) -> Packing:
    """The most products of these types one multiplier of ``target`` makes (possibly one)."""
    wide, narrow = get_target(target).multiplier_ports
    bits = code_bits(in_type)
    weight_bits = weight_type.magnitude.bit_length() + 1
    lane_bits = (weight_type.magnitude << (bits - 1)).bit_length() + 1
    lanes = 1 + (wide - weight_bits) // lane_bits if weight_bits <= wide and bits <= narrow else 1
    return Packing(max(lanes, 1), lane_bits, weight_bits, bits)


def choose_product(in_type: QuantType, weight_type: QuantType, target: Target | str = DEFAULT_TARGET,
                   pe: int | None = None) -> ProductPlan:
    """The cheapest strategy for a layer's operand types on ``target``, and why; ``pe`` (the rows
    made at once) bounds how many products can share a multiplier."""
    target = get_target(target)
    lut_bits = target.lut_product_bits
    bits, magnitude_bits = code_bits(in_type), weight_type.magnitude.bit_length()
    if weight_type.is_bipolar and bits == 1:
        return ProductPlan(ProductKind.XNOR, "bipolar inputs and weights: XNOR-popcount")
    if weight_type.magnitude == 1:
        return ProductPlan(ProductKind.SELECT, f"{weight_type} weights: each term is the input code or its "
                                               f"inverse, or 0")
    if bits == 1:
        return ProductPlan(ProductKind.SELECT, f"{in_type} inputs: each term is the weight's magnitude or 0")
    if weight_type.is_pow2:
        return ProductPlan(ProductKind.SHIFT, f"{weight_type} weights are 0 or powers of two: each term is a "
                                              f"shifted input code")
    if bits <= lut_bits and magnitude_bits <= lut_bits:
        return ProductPlan(ProductKind.LUT, f"{bits}-bit codes times {magnitude_bits}-bit magnitudes (at most "
                                            f"{lut_bits} bits each on {target.name}): a product table in LUTs")
    lanes = min(packing(in_type, weight_type, target).lanes, pe or 1 << 30)
    if lanes > 1:
        return ProductPlan(ProductKind.PACKED, f"{bits}-bit codes times {weight_type} weights: {lanes} products "
                                               f"sharing an input code per {target.multiplier}")
    return ProductPlan(ProductKind.MULTIPLY, f"{bits}-bit codes times {magnitude_bits}-bit magnitudes: one "
                                             f"product per {target.multiplier}, inferred by Yosys")


def term(kind: ProductKind, in_type: QuantType, weight_type: QuantType, x: Value, w: Value) -> Value:
    """The unsigned term of code ``x`` and stored weight ``w`` (see ``cores.weights``)."""
    bits = code_bits(in_type)
    if weight_type.is_bipolar:
        matched = x ^ Mux(w[0], 0, (1 << bits) - 1)
        return ~(x ^ w[0]) if kind is ProductKind.XNOR else matched
    field, positive = w[:field_bits(weight_type)], w[-1]
    code = x ^ Mux(positive, 0, (1 << bits) - 1)            # u, or ~u for a negative weight
    if kind is ProductKind.SELECT:
        if bits == 1:
            return Mux(code, _magnitude(weight_type, field), 0)
        return Mux(field[0], code, 0)
    if kind is ProductKind.SHIFT:
        return Mux(field[0], code << field[1:1 + exponent_bits(weight_type)], 0)
    if kind is ProductKind.LUT:
        width = ((1 << bits) - 1).bit_length() + weight_type.magnitude.bit_length()
        return _table(weight_type, bits, width).bit_select(Cat(code, field) * width, width)
    if kind is ProductKind.MULTIPLY:
        return code * _magnitude(weight_type, field)
    raise ValueError(f"product kind {kind!r} does not apply to {weight_type} weights")


def _magnitude(weight_type: QuantType, field: Value) -> Value:
    if weight_type.is_pow2:
        return Mux(field[0], Const(1, weight_type.magnitude.bit_length()) << field[1:], 0)
    return field


def field_magnitude(weight_type: QuantType, field: int) -> int:
    """The magnitude a stored field stands for (see ``cores.weights``)."""
    if weight_type.is_pow2:
        return (field & 1) << (field >> 1)
    return field


def _table(weight_type: QuantType, code_bits: int, width: int) -> Const:
    """Every product of a code and a field's magnitude, entry ``code + (field << code_bits)``, as one
    constant of ``width``-bit entries."""
    value = 0
    for f in range(1 << field_bits(weight_type)):
        m = min(field_magnitude(weight_type, f), weight_type.magnitude)     # unused fields: any value that fits
        for u in range(1 << code_bits):
            value |= (u * m) << ((u + (f << code_bits)) * width)
    return Const(value, width << (code_bits + field_bits(weight_type)))
