"""The adder tree's sums and latency, on Amaranth's simulator (it has no stream to drive)."""

import pytest
from amaranth.sim import Simulator

from hdlgen.cores import AdderTree


def run_tree(tree, vectors):
    out = []

    async def bench(ctx):
        for v in vectors + [[0] * len(vectors[0])] * tree.latency:
            for k, term in enumerate(v):
                ctx.set(tree.i[k], term)
            await ctx.tick()
            out.append(ctx.get(tree.o))

    sim = Simulator(tree)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out[tree.latency - 1:tree.latency - 1 + len(vectors)]


@pytest.mark.parametrize("count, term_max, group, levels_per_stage, max_chain", [
    (64, 1, 2, 1, 32), (1, 1, 2, 1, 32), (2, 1, 2, 1, 32), (7, 1, 2, 1, 32), (33, 1, 3, 2, 16),
    (13, 15, 2, 2, 8), (100, 3, 3, 1, 16), (5, 255, 2, 1, 32), (256, 1, 2, 1, 24),
])
def test_sums(rng, count, term_max, group, levels_per_stage, max_chain):
    tree = AdderTree(count=count, term_max=term_max, group=group, levels_per_stage=levels_per_stage, max_chain=max_chain)
    vectors = [[term_max] * count, [0] * count] + rng.integers(0, term_max + 1, size=(30, count)).tolist()
    assert run_tree(tree, vectors) == [sum(v) for v in vectors]
    assert len(tree.o) == (count * term_max).bit_length()


@pytest.mark.parametrize("levels_per_stage, latency", [(1, 6), (2, 4)])
def test_latency_is_one_register_per_stage(levels_per_stage, latency):
    # 64 bits: 22 groups of two plus 20 spares -> a group stage and 5 adder levels
    tree = AdderTree(count=64, term_max=1, levels_per_stage=levels_per_stage)
    assert tree.latency == latency
    assert run_tree(tree, [[1] * 64]) == [64]


def test_bad_parameters():
    with pytest.raises(ValueError, match="count must be a positive integer, not 0"):
        AdderTree(count=0, term_max=1)
