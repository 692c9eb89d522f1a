"""The carry-chain XNOR-popcount tree: its sums, on Amaranth's simulator with the cells' tables as
logic (the primitives themselves run on Verilator with Yosys's models in tests/cores/test_mvu.py),
and the encoding of each family's cells."""

import numpy as np
import pytest
from amaranth import Const
from amaranth.sim import Simulator

from hdlgen.cores.carry_cells import Carry4, Ccu2c, Cell
from hdlgen.cores.carry_tree import CarryTree, carry_tree_levels


def popcounts(tree, x, w):
    """Present each ``x[t]`` (count bits) with ``w[t]`` (rows x count bits) for one cycle; the
    counts (rows of them) ``latency`` cycles later."""
    out = []

    def word(bits):
        return int("".join(str(int(b)) for b in np.ravel(bits)[::-1]), 2)

    async def bench(ctx):
        for k in range(len(x) + tree.latency):
            t = min(k, len(x) - 1)
            ctx.set(tree.x, word(x[t]))
            ctx.set(tree.w.as_value(), word(w[t]))
            await ctx.tick()
            out.append([ctx.get(tree.o[r]) for r in range(len(tree.o))])

    sim = Simulator(tree)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out[tree.latency - 1:tree.latency - 1 + len(x)]


@pytest.mark.parametrize("cells", ["ccu2c", "carry4"])
@pytest.mark.parametrize("count, rows, levels_per_stage, max_chain", [
    (4, 1, 1, 32), (5, 2, 1, 32), (7, 1, 1, 32), (8, 3, 1, 32), (13, 2, 2, 8), (33, 1, 3, 4), (64, 4, 1, 32),
    (100, 1, 1, 16), (256, 2, 1, 24),
])
def test_counts_the_matching_bits(rng, cells, count, rows, levels_per_stage, max_chain):
    tree = CarryTree(count=count, rows=rows, cells=cells, levels_per_stage=levels_per_stage, max_chain=max_chain,
                     behavioural=True)
    x = rng.integers(0, 2, size=(40, count))
    w = rng.integers(0, 2, size=(40, rows, count))
    x[0], w[0] = 1, 1          # all match
    x[1], w[1] = 0, 1          # none match
    x[2], w[2] = 0, 0
    assert popcounts(tree, x, w) == (x[:, None, :] == w).sum(axis=2).tolist()
    assert len(tree.o[0]) == count.bit_length()


@pytest.mark.parametrize("count, levels", [(4, 2), (7, 2), (8, 3), (64, 6), (256, 8)])
def test_levels_and_latency(count, levels):
    # ceil((count + 1) / 4) level-1 lanes, then a binary tree of lanes
    assert carry_tree_levels(count) == levels
    x = np.zeros((1, count), dtype=int)
    for levels_per_stage, latency in ((1, levels), (levels, 1)):
        tree = CarryTree(count=count, cells="ccu2c", levels_per_stage=levels_per_stage, behavioural=True)
        assert tree.latency == latency
        assert popcounts(tree, x, x[:, None, :]) == [[count]]


def test_ccu2c_folds_two_xnors_into_one_inverted_cell():
    # P = xnor(A, B) ^ xnor(C, D); the generate bit, read at C = D = 0, is ~xnor(A, B) = xor(A, B):
    # the complement of the carry, which is why level 1 runs on an inverted chain
    def xnor(a, b):
        return 1 ^ a ^ b

    cell = Cell((Const(0, 1),) * 4, lambda a, b, c, d: xnor(a, b) ^ xnor(c, d), lambda a, b, c, d: 1 ^ xnor(a, b))
    table, inputs = Ccu2c.init(cell)
    assert table == 0x6996 and len(inputs) == 4
    normal = Cell((Const(0, 1),) * 4, cell.propagate, lambda a, b, c, d: xnor(a, b))
    with pytest.raises(ValueError, match="generate bit is not its propagate bit at C = D = 0"):
        Ccu2c.init(normal)


def test_ccu2c_ties_d_high_to_free_the_generate_bit():
    # an injecting cell: never propagates, generates xor(A, B)
    table, inputs = Ccu2c.init(Cell((Const(0, 1),) * 2, lambda a, b: 0, lambda a, b: a ^ b))
    assert table == 0x0006
    assert [i.value for i in inputs[2:]] == [0, 1]
    with pytest.raises(ValueError, match="may depend on A and B only"):
        Ccu2c.init(Cell((Const(0, 1),) * 3, lambda a, b, c: 0, lambda a, b, c: c))


def test_lut6_2_holds_propagate_above_generate():
    table = Carry4.init(Cell((Const(0, 1),) * 2, lambda a, b: a ^ b, lambda a, b: a))
    assert table >> 32 == 0x6           # O6 (I5 = 1): a ^ b over I0, I1; unused inputs tied to 0
    assert table & 0xFFFFFFFF == 0x8    # O5: a where a == b, so only at a = b = 1


def test_bad_parameters():
    with pytest.raises(ValueError, match="at least 4 terms, not 3"):
        CarryTree(count=3, cells="ccu2c")
    with pytest.raises(ValueError, match="unknown carry cells 'sb_carry'; choose one of carry4, ccu2c"):
        CarryTree(count=8, cells="sb_carry")
    with pytest.raises(ValueError, match="max_chain must be at least 4 cells, not 2"):
        CarryTree(count=8, cells="ccu2c", max_chain=2)
