"""Matrix-vector unit on Verilator: bit-exact accumulators under stalls, cycles equal to the model."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, CocotbDesign
from hdlgen.backends.packing import pack_beats
from hdlgen.backends.verilog import emit
from hdlgen.cores import MatrixVectorUnit
from hdlgen.cores.products import ProductKind, packing
from hdlgen.golden import matrix_vector
from hdlgen.ir import Folding, MatrixVectorLayer, QuantType

# in_type, weight_type, mw, mh, pe, simd[, the target whose packing the unit uses, or the carry cells
# of its popcount tree (default: ecp5-85k's products, generic adder trees)]
CASES = {
    "bipolar-x-bipolar_nf2-sf4": (BIPOLAR, BIPOLAR, 32, 8, 4, 8),
    "uint3-x-ternary_nf3-sf3": (UINT(3), TERNARY, 15, 6, 2, 5),
    "bipolar-x-ternary_unfolded": (BIPOLAR, TERNARY, 12, 3, 3, 12),
    "int4-x-bipolar_pe1-simd1": (INT(4), BIPOLAR, 6, 4, 1, 1),
    "uint8-x-ternary_nf1-sf4": (UINT(8), TERNARY, 64, 8, 8, 16),
    "bipolar-x-bipolar_block-ram": (BIPOLAR, BIPOLAR, 256, 32, 1, 32),
    # 1,280 words of 32 bits: three block RAMs deep (512, 512, 256), each registered, then picked
    "bipolar-x-bipolar-banked_block-ram": (BIPOLAR, BIPOLAR, 512, 80, 1, 32),
    "int8-x-int8-multiply_nf2-sf3": (INT(8), INT(8), 24, 4, 2, 8),
    "uint3-x-int3-lut_nf2-sf2": (UINT(3), INT(3), 12, 6, 3, 6),
    "int4-x-pow2_3-shift_nf1-sf4": (INT(4), QuantType.pow2(3), 16, 4, 4, 4),
    "int8-x-int8-packed-xcup_nf3-sf2": (INT(8), INT(8), 16, 12, 4, 8, "xcup"),
    "uint4-x-narrow-int4-packed-4-lanes_nf2-sf3": (UINT(4), INT(4, narrow=True), 12, 10, 5, 4, "xcup"),
    "int16-input-x-int6-multiply_nf2-sf2": (INT(16), INT(6, narrow=True), 8, 4, 2, 4),
    # XNOR-popcount on the carry chain: CCU2C (ECP5) and LUT6_2 + CARRY4 (xc7), Yosys's models
    "bipolar-x-bipolar-carry-ccu2c_nf2-sf2": (BIPOLAR, BIPOLAR, 128, 8, 4, 64, "ccu2c"),
    "bipolar-x-bipolar-carry-ccu2c-block-ram": (BIPOLAR, BIPOLAR, 256, 32, 1, 32, "ccu2c"),
    "bipolar-x-bipolar-carry-carry4_nf3-sf3": (BIPOLAR, BIPOLAR, 39, 6, 2, 13, "carry4"),
}


def drawn_cases(seed: int, count: int) -> dict:
    """Parameter sets drawn at random (from a fixed seed, so a failure reproduces)."""
    rng = np.random.default_rng(seed)
    types = [BIPOLAR, UINT(1), UINT(2), UINT(4), INT(3), INT(2, narrow=True)]
    cases = {}
    for k in range(count):
        in_type = types[rng.integers(len(types))]
        weight_type = [BIPOLAR, TERNARY, INT(int(rng.integers(2, 9)))][rng.integers(3)]
        pe, simd = int(rng.integers(1, 9)), int(rng.integers(1, 17))
        nf, sf = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        cases[f"drawn{seed}-{k}_{in_type}-x-{weight_type}_pe{pe}-simd{simd}-nf{nf}-sf{sf}"] = \
            (in_type, weight_type, simd * sf, pe * nf, pe, simd)
    return cases


CASES.update(drawn_cases(seed=2026, count=2))
FRAMES = 12


def random_layer(rng, in_type, weight_type, mw, mh):
    """Row 0 reaches the largest accumulator the layer allows (with an int8 input: -128 x -128 in
    every term, over all MW inputs), the last row alternates signs; the rest is random, with
    negated rows holding the type's magnitude too."""
    weights = rng.choice(weight_type.values(), size=(mh, mw))
    if not weight_type.is_bipolar:
        weights = weights * rng.choice([-1, 1], size=weights.shape)
    weights[0] = -weight_type.magnitude
    weights[-1] = weight_type.magnitude * (-1) ** np.arange(mw)
    return MatrixVectorLayer("mvu", in_type, weight_type, weights, None, None)


def frames(rng, layer, count):
    codes = rng.integers(0, layer.in_type.code_max + 1, size=(count, layer.mw))
    codes[0] = layer.in_type.code_max    # extremes first
    codes[1] = 0
    return codes


@pytest.fixture(scope="module", params=CASES.values(), ids=CASES.keys())
def design(request, sim_root):
    in_type, weight_type, mw, mh, pe, simd, *target = request.param
    case = next(k for k, v in CASES.items() if v == request.param)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    layer = random_layer(rng, in_type, weight_type, mw, mh)
    folding = Folding(pe=pe, simd=simd)
    if "packed" in case:
        pack = packing(in_type, weight_type, target[0])
        dut = MatrixVectorUnit(layer=layer, folding=folding, product=ProductKind.PACKED, packing=pack)
    elif target:
        dut = MatrixVectorUnit(layer=layer, folding=folding, carry_cells=target[0])
    else:
        dut = MatrixVectorUnit(layer=layer, folding=folding)
    assert (dut.product is ProductKind.PACKED) == ("packed" in case)
    assert dut.carry_tree == ("-carry-" in case)
    assert dut.block_ram == case.endswith("block-ram")
    assert dut.weight_banks == (3 if "banked" in case else 1)
    built = CocotbDesign(emit(dut, "mvu"), "mvu", sim_root / f"mvu-{case}")
    return built, layer, folding, dut.acc_max


STALLS = pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.4, 0.6)],
                                 ids=["no-stalls", "idle-input", "backpressure", "both"])


def check_accumulators(design, rng, stalls, unit):
    """Random frames through a built ``unit`` (a matrix-vector unit class) under ``stalls`` (idle
    input, backpressure) give ``golden.matrix_vector``'s accumulators; without stalls, frames
    follow each other every ``unit.cycles_per_frame`` cycles exactly."""
    built, layer, folding, acc_max = design
    codes = frames(rng, layer, FRAMES)
    expected = matrix_vector(layer, codes)
    idle, backpressure = stalls
    cycles = unit.cycles_per_frame(layer, folding)
    ii = cycles if stalls == (0.0, 0.0) else None
    seed = int(rng.integers(2**31))
    result = built.run(inputs=pack_beats(codes, folding.simd, layer.in_type.bits),
                       expected=pack_beats(expected, folding.pe, acc_max.bit_length()),
                       beats_per_frame=layer.mh // folding.pe, seed=seed, idle=idle, backpressure=backpressure,
                       initiation_interval=ii, frame_cycles=cycles, name=f"run-{idle}-{backpressure}")
    if ii is not None:
        assert result.frame_intervals and set(result.frame_intervals) == {ii}


@STALLS
def test_accumulators(design, rng, stalls):
    check_accumulators(design, rng, stalls, MatrixVectorUnit)


def test_folding_must_divide():
    layer = random_layer(np.random.default_rng(0), BIPOLAR, BIPOLAR, 12, 6)
    with pytest.raises(Exception, match="pe=4 does not divide its 6 output rows"):
        MatrixVectorUnit(layer=layer, folding=Folding(pe=4, simd=3))


def test_the_bench_reports_a_wrong_word(design, rng):
    """The comparison can fail: one corrupted expected word is found and reported with its position."""
    built, layer, folding, acc_max = design
    codes = frames(rng, layer, 3)
    expected = pack_beats(matrix_vector(layer, codes), folding.pe, acc_max.bit_length())
    expected[2] ^= 1
    with pytest.raises(AssertionError, match=r"output word 2 .*expected"):
        built.run(inputs=pack_beats(codes, folding.simd, layer.in_type.bits), expected=expected,
                  beats_per_frame=layer.mh // folding.pe, seed=5, name="corrupted")
