"""Threshold units (all comparisons at once, and by binary search) and width converter on
Verilator, under random stalls."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, UINT, CocotbDesign
from hdlgen.backends.packing import pack_beats
from hdlgen.backends.verilog import emit
from hdlgen.cores import Thresholding, ThresholdSearch, WidthConverter
from hdlgen.golden import thresholds
from hdlgen.ir import Folding, MatrixVectorLayer

STALLS = {"no-stalls": (0.0, 0.0), "idle-input": (0.4, 0.0), "backpressure": (0.0, 0.5), "both": (0.3, 0.5)}


def seeded(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# out_type, mh, pe, acc_max, unit
THRESHOLD_CASES = {"bipolar_pe4-nf3": (BIPOLAR, 12, 4, 40, Thresholding),
                   "uint2_pe2-nf4": (UINT(2), 8, 2, 100, Thresholding),
                   "int4_pe1-nf5": (INT(4), 5, 1, 300, Thresholding),
                   "search-uint8_pe2-nf3": (UINT(8), 6, 2, 70000, ThresholdSearch),
                   "search-narrow-int3_pe3-nf2": (INT(3, narrow=True), 6, 3, 50, ThresholdSearch),
                   "search-bipolar_pe1-nf4": (BIPOLAR, 4, 1, 9, ThresholdSearch)}


@pytest.fixture(scope="module", params=THRESHOLD_CASES, ids=THRESHOLD_CASES)
def threshold_design(request, sim_root):
    out_type, mh, pe, acc_max, unit = THRESHOLD_CASES[request.param]
    rng = seeded(request.param)
    steps = out_type.levels - 1
    table = np.sort(rng.integers(0, acc_max + 2, size=(mh, steps)), axis=1)
    table[0] = acc_max + 1                            # a row that never fires
    table[-1, 0] = 0                                  # a step that always fires
    layer = MatrixVectorLayer("thr", BIPOLAR, BIPOLAR, np.ones((mh, 1), int), table, out_type)
    folding = Folding(pe=pe, simd=1)
    dut = unit(thresholds=table, out_type=out_type, pe=pe, acc_max=acc_max)
    return CocotbDesign(emit(dut, "thr"), "thr", sim_root / f"thr-{request.param}"), layer, folding, acc_max


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_thresholds(threshold_design, rng, stalls):
    built, layer, folding, acc_max = threshold_design
    # every threshold, one below and one above it, and random values
    near = np.concatenate([layer.thresholds.ravel() + d for d in (-1, 0, 1)])
    values = rng.choice(np.clip(np.concatenate([near, rng.integers(0, acc_max + 1, 64)]), 0, acc_max),
                        size=(10, layer.mh))
    expected = thresholds(layer, values)
    built.run(inputs=pack_beats(values, folding.pe, acc_max.bit_length()),
              expected=pack_beats(expected, folding.pe, layer.out_type.bits),
              beats_per_frame=layer.mh // folding.pe, seed=int(rng.integers(2**31)),
              idle=stalls[0], backpressure=stalls[1], name=f"run-{stalls[0]}-{stalls[1]}")


# bits, in_count, out_count
CONVERTER_CASES = {"gather-2to8": (3, 2, 8), "split-12to4": (1, 12, 4), "both-6to4": (2, 6, 4)}


@pytest.fixture(scope="module", params=CONVERTER_CASES, ids=CONVERTER_CASES)
def converter_design(request, sim_root):
    bits, n_in, n_out = CONVERTER_CASES[request.param]
    dut = WidthConverter(bits=bits, in_count=n_in, out_count=n_out)
    return CocotbDesign(emit(dut, "conv"), "conv", sim_root / f"conv-{request.param}"), bits, n_in, n_out


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_width_converter_keeps_order(converter_design, rng, stalls):
    built, bits, n_in, n_out = converter_design
    per_frame = int(np.lcm(n_in, n_out)) * 2
    values = rng.integers(0, 1 << bits, size=(6, per_frame))
    built.run(inputs=pack_beats(values, n_in, bits), expected=pack_beats(values, n_out, bits),
              beats_per_frame=per_frame // n_out, seed=int(rng.integers(2**31)),
              idle=stalls[0], backpressure=stalls[1], name=f"run-{stalls[0]}-{stalls[1]}")


def test_width_converter_of_equal_widths_is_a_wire():
    from amaranth.sim import Simulator

    dut = WidthConverter(bits=4, in_count=5, out_count=5)

    async def bench(ctx):
        ctx.set(dut.i.payload.as_value(), 0xABCDE)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 1)
        assert ctx.get(dut.o.payload.as_value()) == 0xABCDE and ctx.get(dut.o.valid) and ctx.get(dut.i.ready)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
