"""Each product strategy of ``cores.products`` in a dot-product array, on Amaranth's simulator:
every sum equals the golden model's, at the operand extremes (largest magnitudes against the
largest and smallest codes, so -128 x -128 for int8), with alternating signs, all zeros, and random
operands of random widths."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from factories import BIPOLAR, INT, TERNARY, UINT
from hdlgen.cores import DotProductArray
from hdlgen.cores.products import ProductKind, choose_product, packing
from hdlgen.cores.weights import encode_weights, packed_weights
from hdlgen.golden import matrix_vector, packed_sums, row_correction
from hdlgen.ir import MatrixVectorLayer, QuantType

POW2 = QuantType.pow2
K = ProductKind
# in_type, weight_type, product (None: the default choice on ecp5-85k)
CASES = {
    "xnor": (BIPOLAR, BIPOLAR, None),
    "select-ternary-uint4": (UINT(4), TERNARY, None),
    "select-bipolar-int3": (INT(3), BIPOLAR, None),
    "select-int8-weights-bipolar-in": (BIPOLAR, INT(8), None),
    "select-pow2-uint1-in": (UINT(1), POW2(4), None),
    "shift-five-levels": (UINT(3), POW2(3), None),
    "shift-pow2-8-int8": (INT(8), POW2(8), None),
    "lut-3x3": (UINT(3), INT(3), None),
    "lut-4x4-narrow-forced": (INT(4), INT(4, narrow=True), K.LUT),
    "lut-2x2": (UINT(2), INT(2), None),
    "multiply-int8-int8": (INT(8), INT(8), None),
    "multiply-uint8-narrow-int8": (UINT(8), INT(8, narrow=True), None),
    "multiply-forced-3x3": (UINT(3), INT(3), K.MULTIPLY),
    "lut-forced-int8-pow2": (INT(5), POW2(5), K.LUT),
    "multiply-forced-pow2": (UINT(4), POW2(5), K.MULTIPLY),
}


def drawn_cases(seed: int, count: int) -> dict:
    rng = np.random.default_rng(seed)
    cases = {}
    for k in range(count):
        in_type = [BIPOLAR, UINT(int(rng.integers(1, 9))), INT(int(rng.integers(2, 9)))][rng.integers(3)]
        bits = int(rng.integers(2, 9))
        weight_type = [INT(bits, narrow=bool(rng.integers(2))), POW2(max(3, bits)), TERNARY][rng.integers(3)]
        cases[f"drawn{seed}-{k}_{in_type}-x-{weight_type}"] = (in_type, weight_type, None)
    return cases


CASES.update(drawn_cases(seed=1010, count=6))


def extreme_layer(rng, in_type, weight_type, pe, simd):
    """Row 0 holds the most negative magnitude throughout (with code 0 of an int8 input: -128 x -128
    in every term), row 1 the largest magnitude with alternating signs, row 2 zeros, the rest random."""
    magnitude = weight_type.magnitude
    w = rng.choice(weight_type.values(), size=(pe, simd))
    if not weight_type.is_bipolar:
        w = w * rng.choice([-1, 1], size=w.shape)        # negated rows hold the type's magnitude too
        w[2] = 0
    w[0] = -magnitude
    w[1] = magnitude * (-1) ** np.arange(simd)
    return MatrixVectorLayer("dots", in_type, weight_type, w, None, None)


def run_array(dut, layer, codes, weights):
    """Present each code vector for one cycle; collect the sums ``latency`` cycles later."""
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for p in range(len(weights)):
            for s in range(layer.mw):
                ctx.set(dut.w[p][s], int(weights[p, s]))
        for cycle in range(len(codes) + dut.latency):
            if cycle < len(codes):
                for s in range(layer.mw):
                    ctx.set(dut.x[s], int(codes[cycle, s]))
            await ctx.tick()
            if cycle >= dut.latency - 1 and len(got) < len(codes):
                got.append([ctx.get(dut.o[p]) for p in range(layer.mh)])

    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


@pytest.mark.parametrize("in_type, weight_type, product", CASES.values(), ids=CASES.keys())
def test_sums_equal_the_golden_model(rng, in_type, weight_type, product):
    pe, simd = 4, int(rng.integers(3, 9))
    layer = extreme_layer(rng, in_type, weight_type, pe, simd)
    dut = DotProductArray(in_type=in_type, weight_type=weight_type, pe=pe, simd=simd, product=product)
    assert dut.product is (product or choose_product(in_type, weight_type).kind)
    codes = rng.integers(0, in_type.code_max + 1, size=(24, simd))
    codes[0], codes[1], codes[2] = 0, in_type.code_max, np.arange(simd) % 2 * in_type.code_max
    want = matrix_vector(layer, codes)
    if dut.product is K.PACKED:          # drawn types that the default target packs (tested below)
        pack = packing(in_type, weight_type)
        got = run_array(dut, layer, codes, packed_weights(layer.weights, pe, pack))
        check(got + row_correction(layer, pack.code_bits, pack.bias), want, codes, layer)
        return
    assert want[0, 0] == simd * dut.term_max or in_type.is_bipolar and weight_type.is_bipolar
    check(run_array(dut, layer, codes, encode_weights(layer)), want, codes, layer)


def check(got, want, codes, layer):
    bad = np.argwhere(got != want)
    assert not len(bad), (f"vector {bad[0][0]}, row {bad[0][1]}: codes {codes[bad[0][0]].tolist()}, weights "
                          f"{layer.weights[bad[0][1]].tolist()}: expected {want[tuple(bad[0])]}, got {got[tuple(bad[0])]}")


PACKED = {
    "int8-x-int8-xcup-2-lanes": (INT(8), INT(8), "xcup", 4),
    "uint8-x-narrow-int8-xc7": (UINT(8), INT(8, narrow=True), "xc7", 2),
    "int8-x-narrow-int3-xcup-3-lanes-odd-pe": (INT(8), INT(3, narrow=True), "xcup", 5),
    "uint4-x-narrow-int4-xcup-4-lanes": (UINT(4), INT(4, narrow=True), "xcup", 8),
    "uint3-x-int3-xc7-4-lanes-pe-2": (UINT(3), INT(3), "xc7", 2),
    "uint5-x-int5-ecp5-2-lanes": (UINT(5), INT(5), "ecp5-85k", 4),
    "int8-x-narrow-int3-ice40": (INT(8), INT(3, narrow=True), "ice40-up5k", 3),
    "bipolar-x-int8-forced": (BIPOLAR, INT(8), "xcup", 3),
}


@pytest.mark.parametrize("in_type, weight_type, target, pe", PACKED.values(), ids=PACKED.keys())
def test_packed_lanes_equal_the_golden_model(rng, in_type, weight_type, target, pe):
    """Several rows' products from one multiplier: every lane at its extremes (the most negative
    weight against the smallest and largest codes, in every lane at once), and with the lane below
    negative, where it borrows. Adding the row correction gives the accumulators P."""
    pack = packing(in_type, weight_type, target)
    simd = int(rng.integers(3, 7))
    layer = extreme_layer(rng, in_type, weight_type, max(pe, 3), simd)
    layer = MatrixVectorLayer("dots", in_type, weight_type, layer.weights[:pe], None, None)
    dut = DotProductArray(in_type=in_type, weight_type=weight_type, pe=pe, simd=simd, product=K.PACKED, packing=pack)
    codes = rng.integers(0, in_type.code_max + 1, size=(24, simd))
    codes[0], codes[1], codes[2] = 0, in_type.code_max, np.arange(simd) % 2 * in_type.code_max
    want = packed_sums(layer.weights, codes, pack.code_bits, pack.bias)
    assert want.min() >= 0 and want.max() <= simd * dut.term_max
    got = run_array(dut, layer, codes, packed_weights(layer.weights, pe, pack))
    check(got, want, codes, layer)
    assert np.array_equal(got + row_correction(layer, pack.code_bits, pack.bias), matrix_vector(layer, codes))


@pytest.mark.parametrize("in_type, weight_type, target, kind, reason", [
    (BIPOLAR, BIPOLAR, "xcup", K.XNOR, "XNOR-popcount"),
    (BIPOLAR, TERNARY, "ecp5-85k", K.SELECT, "ternary weights: each term is the input code or its inverse, or 0"),
    (UINT(4), TERNARY, "xcup", K.SELECT, "input code or its inverse"),
    (BIPOLAR, INT(8), "xcup", K.SELECT, "bipolar inputs: each term is the weight's magnitude or 0"),
    (UINT(4), POW2(3), "xcup", K.SHIFT, "pow2_3 weights are 0 or powers of two"),
    (UINT(3), INT(3), "ecp5-85k", K.LUT, "at most 3 bits each on ecp5-85k): a product table in LUTs"),
    (UINT(4), INT(4), "ecp5-85k", K.PACKED, "2 products sharing an input code per MULT18X18D"),
    (UINT(2), INT(2), "xcup", K.LUT, "at most 2 bits each on xcup"),
    (UINT(3), INT(3), "xcup", K.PACKED, "4 products sharing an input code per DSP48E2"),
    (UINT(8), INT(8), "xcup", K.PACKED, "2 products sharing an input code per DSP48E2"),
    (UINT(8), INT(8), "xc7", K.PACKED, "2 products sharing an input code per DSP48E1"),
    (UINT(4), INT(4, narrow=True), "xcup", K.PACKED, "4 products"),
    (UINT(5), INT(5), "ecp5-85k", K.PACKED, "2 products sharing an input code per MULT18X18D"),
    (UINT(8), INT(8), "ecp5-85k", K.MULTIPLY, "one product per MULT18X18D, inferred by Yosys"),
    (UINT(8), INT(8), "ice40-up5k", K.MULTIPLY, "one product per SB_MAC16"),
])
def test_the_choice_for_each_target(in_type, weight_type, target, kind, reason):
    plan = choose_product(in_type, weight_type, target)
    assert plan.kind is kind and reason in plan.reason


def test_one_row_at_a_time_shares_no_multiplier():
    assert choose_product(UINT(8), INT(8), "xcup", pe=1).kind is K.MULTIPLY


@pytest.mark.parametrize("in_type, weight_type, product, message", [
    (UINT(2), BIPOLAR, K.XNOR, "product xnor needs bipolar weights and one-bit inputs, not bipolar x uint2"),
    (UINT(2), INT(3), K.SELECT, "product select needs weights of magnitude 1 or one-bit inputs, not int3 x uint2"),
    (UINT(2), INT(3), K.SHIFT, "product shift needs pow2 weights, not int3"),
    (UINT(2), BIPOLAR, K.LUT, "product lut needs weights with a magnitude field, not bipolar"),
    (POW2(3), INT(3), None, "in_type pow2_3 is a weight type"),
    (UINT(8), INT(8), K.PACKED, "a packing goes with PACKED products, and only with them"),
])
def test_products_that_do_not_apply(in_type, weight_type, product, message):
    with pytest.raises(ValueError, match=message):
        DotProductArray(in_type=in_type, weight_type=weight_type, pe=1, simd=1, product=product)


def test_a_packing_needs_packed_products():
    with pytest.raises(ValueError, match="a packing goes with product=ProductKind.PACKED"):
        DotProductArray(in_type=UINT(8), weight_type=INT(8), pe=2, simd=1, packing=packing(UINT(8), INT(8), "xcup"))
