"""Padding, sliding window, max pooling and global sums on Verilator: every frame equals the golden model under
random idle cycles and backpressure, and without stalls a frame takes the analytical cycles."""

import zlib

import numpy as np
import pytest

from factories import BIPOLAR, INT, UINT, CocotbDesign
from hdlgen.backends.packing import pack_beats
from hdlgen.backends.verilog import emit
from hdlgen.cores import GlobalSum, MaxPool, Padding, SlidingWindow
from hdlgen.golden.layers import pad, pool, window
from hdlgen.ir import TERNARY
from hdlgen.ir.lowered import GlobalPoolStage, PadStage, PoolStage, WindowStage

STALLS = {"no-stalls": (0.0, 0.0), "idle-input": (0.4, 0.0), "backpressure": (0.0, 0.5), "both": (0.3, 0.5)}
FRAMES = 4


def seeded(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# name: (stage, values per beat)
CASES = {
    "pad_bipolar-to-ternary_all-sides": (PadStage("p", (4, 5, 4), (1, 1, 1, 1), BIPOLAR, TERNARY, 1), 2),
    "pad_uint3_uneven": (PadStage("p", (3, 4, 3), (2, 0, 1, 3), UINT(3), UINT(3), 0), 3),
    "window_3x3_stride1": (WindowStage("w", (6, 7, 4), (3, 3), (1, 1), (1, 1), BIPOLAR), 2),
    "window_2x3_stride2x1_dilated": (WindowStage("w", (9, 8, 3), (2, 3), (2, 1), (1, 2), INT(4)), 3),
    "window_1x1_stride2": (WindowStage("w", (5, 6, 2), (1, 1), (2, 2), (1, 1), UINT(2)), 1),
    "window_7x5_writer-bound": (WindowStage("w", (9, 8, 2), (7, 5), (2, 3), (1, 1), BIPOLAR), 2),
    "pool_2x2_drops-trailing": (PoolStage("m", (5, 7, 4), (2, 2), UINT(2)), 2),
    "pool_3x2_bipolar": (PoolStage("m", (6, 4, 6), (3, 2), BIPOLAR), 6),
    "pool_2x2_minimum-in-some-channels": (PoolStage("m", (4, 6, 4), (2, 2), UINT(2), (True, False, False, True)), 2),
    "pool_2x3_bipolar_minimum": (PoolStage("m", (4, 6, 3), (2, 3), BIPOLAR, (False, True, True)), 1),
    "global-sum_uint3": (GlobalPoolStage("g", (3, 5, 6), UINT(3), np.zeros((6, 1), int), BIPOLAR), 2),
}


CORES = {PadStage: Padding, WindowStage: SlidingWindow, PoolStage: MaxPool, GlobalPoolStage: GlobalSum}


def channel_sums(stage, codes):
    return codes.sum(axis=(1, 2), keepdims=True)


def golden(stage, codes):
    return {PadStage: pad, WindowStage: window, PoolStage: pool, GlobalPoolStage: channel_sums}[type(stage)](stage, codes)


@pytest.fixture(scope="module", params=CASES, ids=CASES)
def design(request, sim_root):
    stage, count = CASES[request.param]
    dut = CORES[type(stage)](stage=stage, count=count)
    return CocotbDesign(emit(dut, "dut"), "dut", sim_root / f"win-{request.param}"), stage, count


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_stage_matches_golden_model(design, rng, stalls):
    built, stage, count = design
    h, w, c = stage.in_shape
    codes = rng.integers(0, 1 << stage.in_type.bits, size=(FRAMES, h, w, c))
    if stage.in_type.is_bipolar or stage.in_type == TERNARY:
        codes %= stage.in_type.levels
    out = golden(stage, codes)
    beats_out = out[0].size // count
    ii = CORES[type(stage)].cycles_per_frame(stage, count) if stalls == (0.0, 0.0) else None
    out_bits = stage.acc_max.bit_length() if isinstance(stage, GlobalPoolStage) else stage.out_type.bits
    built.run(inputs=pack_beats(codes.reshape(FRAMES, -1), count, stage.in_type.bits),
              expected=pack_beats(out.reshape(FRAMES, -1), count, out_bits),
              beats_per_frame=beats_out, seed=int(rng.integers(2**31)), idle=stalls[0], backpressure=stalls[1],
              initiation_interval=ii, frame_cycles=h * w * c * 4, name=f"run-{stalls[0]}-{stalls[1]}")
