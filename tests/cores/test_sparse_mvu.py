"""Zero-skipping matrix-vector unit: its schedule, and on Verilator bit-exact accumulators under stalls
with cycles equal to the model."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, CocotbDesign
from hdlgen.backends.verilog import emit
from hdlgen.cores import SparseMatrixVectorUnit
from hdlgen.cores.products import ProductKind
from hdlgen.cores.sparse_mvu import SparseEntry, nonzero_blocks, sparse_entries, sparse_schedule
from hdlgen.errors import HdlgenError
from hdlgen.ir import Folding, MatrixVectorLayer
from test_mvu import STALLS, check_accumulators, random_layer

# in_type, weight_type, mw, mh, pe, simd, share of blocks kept non-zero, row groups made all zero[, product]
CASES = {
    "uint3-x-ternary_85pct-zero-blocks_nf6-sf4": (UINT(3), TERNARY, 16, 12, 2, 4, 0.15, ()),
    "int4-x-int4-multiply_zero-row-group_nf3-sf3": (INT(4), INT(4), 12, 6, 2, 4, 0.6, (1,), ProductKind.MULTIPLY),
    "bipolar-x-ternary_entries-below-sf_nf2-sf8": (BIPOLAR, TERNARY, 16, 8, 4, 2, 0.15, ()),
    # about 660 entries of 32 bits: two block RAMs deep (512, then the rest), each registered, then picked
    "uint2-x-ternary_pe1-banked-block-ram": (UINT(2), TERNARY, 64, 320, 1, 16, 0.5, ()),
}


def block_sparse_layer(rng, in_type, weight_type, mw, mh, pe, simd, kept, zero_groups):
    """``random_layer``'s weights with all but a share ``kept`` of the (pe x simd) blocks zeroed, and
    the row groups ``zero_groups`` zeroed whole."""
    dense = random_layer(rng, in_type, weight_type, mw, mh)
    nf, sf = mh // pe, mw // simd
    mask = np.zeros(nf * sf, dtype=np.int64)
    mask[rng.choice(nf * sf, size=max(1, round(kept * nf * sf)), replace=False)] = 1
    mask = mask.reshape(nf, sf)
    mask[list(zero_groups)] = 0
    weights = dense.weights * np.kron(mask, np.ones((pe, simd), dtype=np.int64))
    return MatrixVectorLayer("sparse", in_type, weight_type, weights, None, None)


@pytest.fixture(scope="module", params=CASES.values(), ids=CASES.keys())
def design(request, sim_root):
    in_type, weight_type, mw, mh, pe, simd, kept, zero_groups, *product = request.param
    case = next(k for k, v in CASES.items() if v == request.param)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    layer = block_sparse_layer(rng, in_type, weight_type, mw, mh, pe, simd, kept, zero_groups)
    folding = Folding(pe=pe, simd=simd)
    dut = SparseMatrixVectorUnit(layer=layer, folding=folding, product=product[0] if product else None)
    blocks = nonzero_blocks(layer, folding)
    assert not blocks[list(zero_groups)].any()
    assert dut.entries == sparse_entries(layer, folding) < blocks.size
    assert (dut.entries < mw // simd) == ("entries-below-sf" in case)
    assert dut.block_ram == case.endswith("block-ram")
    assert dut.weight_banks == (2 if "banked" in case else 1)
    built = CocotbDesign(emit(dut, "sparse_mvu"), "sparse_mvu", sim_root / f"sparse_mvu-{case}")
    return built, layer, folding, dut.acc_max


@STALLS
def test_accumulators(design, rng, stalls):
    check_accumulators(design, rng, stalls, SparseMatrixVectorUnit)


# -- the schedule, without a simulator ------------------------------------------------------------------

def layer_of(weights, in_type=UINT(2), weight_type=TERNARY, spatial=()):
    return MatrixVectorLayer("fc", in_type, weight_type, np.asarray(weights), None, None, spatial=spatial)


def test_schedule_skips_zero_blocks_and_keeps_one_per_row_group():
    # pe=2, simd=2: NF = 3 row groups, SF = 3 column groups
    weights = np.zeros((6, 6), dtype=np.int64)
    weights[1, 4] = -1          # (nf 0, sf 2)
    weights[0, 0] = 1           # (nf 0, sf 0)
    weights[5, 3] = 1           # (nf 2, sf 1); row group 1 is all zero
    layer, folding = layer_of(weights), Folding(pe=2, simd=2)
    assert nonzero_blocks(layer, folding).tolist() == [[True, False, True], [False] * 3, [False, True, False]]
    assert sparse_schedule(layer, folding) == [
        SparseEntry(0, 0, True, False), SparseEntry(0, 2, False, True),
        SparseEntry(1, 0, True, True),
        SparseEntry(2, 1, True, True)]
    assert sparse_entries(layer, folding) == 4
    assert SparseMatrixVectorUnit.cycles_per_frame(layer, folding) == 4
    # a convolution's frame is one vector per output pixel
    assert SparseMatrixVectorUnit.cycles_per_frame(layer_of(weights, spatial=(2, 3)), folding) == 6 * 4


def test_an_all_zero_layer_issues_one_block_per_row_group():
    layer, folding = layer_of(np.zeros((8, 12), dtype=np.int64)), Folding(pe=2, simd=3)
    dut = SparseMatrixVectorUnit(layer=layer, folding=folding)
    assert dut.entries == 4 and [e.sf for e in sparse_schedule(layer, folding)] == [0] * 4
    # the input rate bounds the interval: SF = 4 beats per vector
    assert SparseMatrixVectorUnit.cycles_per_frame(layer, folding) == 4
    assert "module sparse" in emit(dut, "sparse")


def test_bipolar_weights_are_refused():
    layer = layer_of(np.ones((4, 4), dtype=np.int64), in_type=BIPOLAR, weight_type=BIPOLAR)
    with pytest.raises(HdlgenError, match="layer 'fc': bipolar weights have no zeros to skip"):
        SparseMatrixVectorUnit(layer=layer, folding=Folding(pe=2, simd=2))


@pytest.mark.parametrize("product", [None, ProductKind.PACKED], ids=["target-default", "asked-for"])
def test_packed_products_are_refused(product):
    # uint4 codes times int4 weights: two products to a multiplier on the default target
    layer = layer_of(np.eye(4, dtype=np.int64) * 8, in_type=UINT(4), weight_type=INT(4))
    with pytest.raises(HdlgenError, match="PACKED products add a bias for every term.*product=ProductKind.MULTIPLY"):
        SparseMatrixVectorUnit(layer=layer, folding=Folding(pe=2, simd=2), product=product)


def test_folding_must_divide():
    with pytest.raises(HdlgenError, match="pe=4 does not divide its 6 output rows"):
        SparseMatrixVectorUnit(layer=layer_of(np.ones((6, 4), dtype=np.int64)), folding=Folding(pe=4, simd=2))
