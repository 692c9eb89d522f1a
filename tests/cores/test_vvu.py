"""Vector-vector unit (a depthwise layer's channels in parallel, one tap a cycle): on Verilator,
bit-exact accumulators under stalls with cycles equal to the model; its weight words and when it
applies, without a simulator."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, CocotbDesign
from hdlgen.backends.verilog import emit
from hdlgen.cores import SparseMatrixVectorUnit, VectorVectorUnit
from hdlgen.cores.products import ProductKind
from hdlgen.cores.vvu import vector_product, vector_unit_applies
from hdlgen.errors import HdlgenError
from hdlgen.ir import Folding, MatrixVectorLayer
from test_mvu import STALLS, check_accumulators

# in_type, weight_type, channels, taps, pe, product
CASES = {
    "uint4-x-int4-multiply_nf2_taps9": (UINT(4), INT(4), 8, 9, 4, ProductKind.MULTIPLY),
    "uint2-x-ternary_nf1_taps9": (UINT(2), TERNARY, 8, 9, 8, ProductKind.SELECT),      # a sum read back every cycle
    "bipolar-x-ternary_nf3_taps4": (BIPOLAR, TERNARY, 6, 4, 2, ProductKind.SELECT),
    "int3-x-int3-lut_nf4_taps1": (INT(3), INT(3), 8, 1, 2, ProductKind.LUT),
}


def depthwise_layer(rng, in_type, weight_type, channels, taps):
    """Row ``r`` weighs channel ``r`` of each tap: columns in (tap, channel) order. Row 0 holds the
    type's largest negative weights (the largest accumulator), the last row alternates signs."""
    diagonal = rng.choice(weight_type.values(), size=(channels, taps)) * rng.choice([-1, 1], size=(channels, taps))
    diagonal[0] = -weight_type.magnitude
    diagonal[-1] = weight_type.magnitude * (-1) ** np.arange(taps)
    weights = np.zeros((channels, taps, channels), dtype=np.int64)
    weights[np.arange(channels), :, np.arange(channels)] = diagonal
    return MatrixVectorLayer("dw", in_type, weight_type, weights.reshape(channels, -1), None, None, spatial=(1, 1))


def with_thresholds(layer):
    """The layer with a (trivial) uint2 threshold table, as a network's depthwise layers have."""
    return MatrixVectorLayer(layer.name, layer.in_type, layer.weight_type, layer.weights,
                             np.tile([1, 2, 3], (layer.mh, 1)), UINT(2), layer.spatial)


@pytest.fixture(scope="module", params=CASES.values(), ids=CASES.keys())
def design(request, sim_root):
    in_type, weight_type, channels, taps, pe, product = request.param
    case = next(k for k, v in CASES.items() if v == request.param)
    layer = with_thresholds(depthwise_layer(np.random.default_rng(zlib.crc32(case.encode())), in_type, weight_type,
                                            channels, taps))
    folding = Folding(pe=pe, simd=pe, zero_skip=True)
    dut = VectorVectorUnit(layer=layer, folding=folding, product=product)
    assert dut.acc_max == taps * layer.term_max < layer.acc_max
    built = CocotbDesign(emit(dut, "vvu"), "vvu", sim_root / f"vvu-{case}")
    return built, layer, folding, dut.acc_max


@STALLS
def test_accumulators(design, rng, stalls):
    check_accumulators(design, rng, stalls, VectorVectorUnit)


def test_it_takes_the_zero_skipping_units_cycles_with_pe_products():
    layer = depthwise_layer(np.random.default_rng(0), UINT(4), INT(4), 16, 9)
    for pe in (1, 4, 16):
        folding = Folding(pe=pe, simd=pe, zero_skip=True)
        assert VectorVectorUnit.cycles_per_frame(layer, folding) == SparseMatrixVectorUnit.cycles_per_frame(
            layer, folding) == 9 * 16 // pe


def test_weight_words_hold_each_taps_channels_in_order():
    """Ternary weights take 2 bits (docs: cores/weights.py): bit 0 non-zero, bit 1 positive."""
    layer = depthwise_layer(np.random.default_rng(1), UINT(2), TERNARY, 4, 2)
    words = VectorVectorUnit.weight_words(layer, Folding(pe=2, simd=2, zero_skip=True))
    diagonal = layer.weights.reshape(4, 2, 4)[np.arange(4), :, np.arange(4)]       # (channel, tap)
    codes = [(int(w > 0) << 1) | int(w != 0) for w in diagonal.T.reshape(-1)]     # tap-major
    assert words == [codes[2 * k] | (codes[2 * k + 1] << 2) for k in range(4)]


def test_it_applies_to_depthwise_layers_with_output_codes_at_pe_equal_to_simd_only():
    layer = depthwise_layer(np.random.default_rng(2), UINT(4), INT(4), 8, 9)
    assert layer.depthwise
    assert not vector_unit_applies(layer, Folding(pe=4, simd=4, zero_skip=True))        # accumulators out
    layer = with_thresholds(layer)
    assert vector_unit_applies(layer, Folding(pe=4, simd=4, zero_skip=True))
    assert not vector_unit_applies(layer, Folding(pe=4, simd=2, zero_skip=True))
    assert not vector_unit_applies(layer, Folding(pe=4, simd=4))
    mixed = layer.weights.copy()
    mixed[0, 1] = 1                                   # row 0 reaches channel 1
    assert not MatrixVectorLayer("c", UINT(4), INT(4), mixed, None, None, spatial=(1, 1)).depthwise
    with pytest.raises(HdlgenError, match="a vector-vector unit needs a depthwise layer with output codes, and pe = simd"):
        VectorVectorUnit(layer=layer, folding=Folding(pe=4, simd=2, zero_skip=True), product=ProductKind.MULTIPLY)
    with pytest.raises(HdlgenError, match="PACKED products share one input among rows"):
        VectorVectorUnit(layer=layer, folding=Folding(pe=4, simd=4, zero_skip=True), product=ProductKind.PACKED)
    assert vector_product(layer) is not ProductKind.PACKED
