"""Requantization units on Verilator, under random stalls: the shift unit (power-of-two rescales,
round half to even or floor) and gemmlowp's fixed-point unit equal their golden functions at the
rounding ties and at both saturation limits."""

import zlib

import numpy as np
import pytest

from factories import CocotbDesign
from hdlgen.backends.packing import pack_beats
from hdlgen.backends.verilog import emit
from hdlgen.cores.requant import FixedPointRequant, ScoresUnit, ShiftRequant
from hdlgen.golden.requant import fixed_point_codes, fixed_point_multiplier, rounding_divide_by_pot, \
    rounding_doubling_high_mul, shift_codes

STALLS = {"no-stalls": (0.0, 0.0), "both": (0.3, 0.5)}
FRAMES = 40


def seeded(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def test_gemmlowp_rounding_primitives():
    """SaturatingRoundingDoublingHighMul rounds ties up, RoundingDivideByPOT away from zero, as in gemmlowp."""
    half = 1 << 30                        # a * b / 2^31 = +-0.5, +-1.5 for b = 2^30 and a = +-1, +-3
    assert rounding_doubling_high_mul(np.array([1, -1, 3, -3]), half).tolist() == [1, 0, 2, -1]
    assert rounding_divide_by_pot(np.array([2, -2, 6, -6, 5, -5]), 2).tolist() == [1, -1, 2, -2, 1, -1]
    m0, shift = fixed_point_multiplier(np.float32([0.3, 0.001234, 0.75]))
    assert np.all((m0 >= 1 << 30) & (m0 < 1 << 31))
    assert np.array_equal(m0 * 2.0 ** (-31 - shift), np.float32([0.3, 0.001234, 0.75]))


def shift_case(rng, rows, acc_max, levels):
    shift = rng.integers(0, 9, rows)
    shift[0] = 0
    offset = rng.integers(-acc_max // 2, acc_max // 4, rows) + np.where(shift > 0, 1 << np.maximum(shift - 1, 0), 0)
    return offset, shift


def shift_values(rng, offset, shift, acc_max, levels):
    """Accumulators on every tie of each row (low bits zero after the offset), next to them, at both
    clamps, and random."""
    rows = len(offset)
    per_row = []
    for r in range(rows):
        k = np.arange(-2, levels + 2)
        ties = (k << shift[r]) - offset[r]
        near = np.concatenate([ties - 1, ties, ties + 1, [0, acc_max], rng.integers(0, acc_max + 1, 16)])
        per_row.append(rng.choice(np.clip(near, 0, acc_max), size=FRAMES))
    return np.stack(per_row, axis=1)


SHIFT_CASES = {"half-even_pe2-nf3": (6, 2, 5000, 256, True), "floor_pe3-nf1": (3, 3, 900, 16, False)}


@pytest.fixture(scope="module", params=SHIFT_CASES, ids=SHIFT_CASES)
def shift_design(request, sim_root):
    rows, pe, acc_max, levels, half_even = SHIFT_CASES[request.param]
    rng = seeded(request.param)
    offset, shift = shift_case(rng, rows, acc_max, levels)
    dut = ShiftRequant(offset=offset, shift=shift, half_even=half_even, levels=levels, pe=pe, acc_max=acc_max)
    built = CocotbDesign(emit(dut, "shift_requant"), "shift_requant", sim_root / f"shift-{request.param}")
    return built, (offset, shift, half_even, levels), pe, acc_max


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_shift_unit(shift_design, rng, stalls):
    built, (offset, shift, half_even, levels), pe, acc_max = shift_design
    values = shift_values(rng, offset, shift, acc_max, levels)
    expected = shift_codes(values, offset, shift, half_even, levels)
    assert {0, levels - 1} <= set(expected.ravel().tolist())         # both clamps are exercised
    built.run(inputs=pack_beats(values, pe, acc_max.bit_length()),
              expected=pack_beats(expected, pe, (levels - 1).bit_length()),
              beats_per_frame=len(offset) // pe, seed=int(rng.integers(2**31)),
              idle=stalls[0], backpressure=stalls[1], name=f"run-{stalls[0]}-{stalls[1]}")


# rows, pe, acc_max, lo, hi, gain, offsets (low, high)
FIXED_CASES = {"uint8-zp131_pe2-nf2": (4, 2, (1 << 20) - 1, -131, 124, 1, (-(1 << 19), 0)),
               "int8_pe1-nf3": (3, 1, 300000, -128, 127, 2, (-300000, 0)),
               "positive-offsets_pe2-nf1": (2, 2, 32640, -128, 127, 1, (300, 500))}     # sums past acc_max


@pytest.fixture(scope="module", params=FIXED_CASES, ids=FIXED_CASES)
def fixed_design(request, sim_root):
    rows, pe, acc_max, lo, hi, gain, offsets = FIXED_CASES[request.param]
    rng = seeded(request.param)
    multiplier = (rng.uniform(4e-4, 2e-3, rows) * ((1 << 20) / acc_max)).astype(np.float32)   # both limits reached
    multiplier[0] = 2.0 ** -12                         # x / 2: SRDHM ties on every odd sum, RDBPOT ties too
    m0, shift = fixed_point_multiplier(multiplier)
    offset = rng.integers(*offsets, rows)
    dut = FixedPointRequant(gain=gain, offset=offset, m0=m0, shift=shift, lo=lo, hi=hi, pe=pe, acc_max=acc_max)
    built = CocotbDesign(emit(dut, "fixed_requant"), "fixed_requant", sim_root / f"fixed-{request.param}")
    return built, (gain, offset, m0, shift, lo, hi), pe, acc_max


def fixed_values(rng, gain, offset, m0, shift, acc_max):
    rows = len(offset)
    per_row = []
    for r in range(rows):
        # sums whose rescaled value sits on a half: x * m0 / 2^(31 + shift) = k + 1/2
        step = 2.0 ** (31 + shift[r]) / m0[r]
        reach = np.array([offset[r], gain * acc_max + offset[r]]) / step      # the rescaled values the row reaches
        k = rng.integers(int(np.floor(reach.min())) - 1, int(np.ceil(reach.max())) + 1, 64)
        x = np.round((k + 0.5) * step).astype(np.int64)
        near = np.concatenate([(x - offset[r]) // gain + d for d in (-1, 0, 1)] + [[0, acc_max],
                              rng.integers(0, acc_max + 1, 32)])
        per_row.append(rng.choice(np.clip(near, 0, acc_max), size=FRAMES))
    return np.stack(per_row, axis=1)


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_fixed_point_unit(fixed_design, rng, stalls):
    built, (gain, offset, m0, shift, lo, hi), pe, acc_max = fixed_design
    values = fixed_values(rng, gain, offset, m0, shift, acc_max)
    expected = fixed_point_codes(values, gain, offset, m0, shift, lo, hi)
    reached = set(expected.ravel().tolist())
    assert hi - lo in reached and (0 in reached or offset.min() >= 0)       # the limits the sums can reach
    x = gain * values + offset
    exact = x * (m0 * 2.0 ** (-31 - shift))
    assert np.any(exact - np.floor(exact) == 0.5)                     # real ties reach the unit
    built.run(inputs=pack_beats(values, pe, acc_max.bit_length()),
              expected=pack_beats(expected, pe, (hi - lo).bit_length()),
              beats_per_frame=len(offset) // pe, seed=int(rng.integers(2**31)),
              idle=stalls[0], backpressure=stalls[1], name=f"run-{stalls[0]}-{stalls[1]}")


@pytest.fixture(scope="module")
def scores_design(sim_root):
    rng = seeded("scores")
    rows, pe, acc_max = 6, 3, 200
    shift, sign = rng.integers(0, 6, rows), np.array([1, -1, 0, 1, -1, 1])
    offset = rng.integers(-3000, 3000, rows)
    width = int(max(np.abs(offset).max() + (acc_max << shift.max()), 1)).bit_length() + 1
    dut = ScoresUnit(offset=offset, shift=shift, sign=sign, width=width, pe=pe, acc_max=acc_max)
    return CocotbDesign(emit(dut, "scores"), "scores", sim_root / "scores"), (offset, shift, sign, width), pe, acc_max


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_scores_unit(scores_design, rng, stalls):
    built, (offset, shift, sign, width), pe, acc_max = scores_design
    values = rng.choice(np.array([0, 1, acc_max - 1, acc_max] + list(rng.integers(0, acc_max + 1, 20))),
                        size=(FRAMES, len(offset)))
    fixed = sign * (values << shift) + offset
    assert fixed.min() < 0 < fixed.max()                              # negative and positive scores
    built.run(inputs=pack_beats(values, pe, acc_max.bit_length()),
              expected=pack_beats(fixed & ((1 << width) - 1), pe, width),
              beats_per_frame=len(offset) // pe, seed=int(rng.integers(2**31)),
              idle=stalls[0], backpressure=stalls[1], name=f"run-{stalls[0]}-{stalls[1]}")
