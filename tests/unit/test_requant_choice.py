"""Which unit replaces a threshold table: a shift unit exactly where one gives the same codes on
every accumulator value of every row; a scores unit where the output map is an exact power-of-two
affine map."""

import numpy as np
import pytest

from hdlgen.golden import thresholds as threshold_codes
from hdlgen.golden.requant import shift_codes
from hdlgen.ir import BIPOLAR, MatrixVectorLayer, QuantType
from hdlgen.transforms.requant import fit_scores, fit_shift


def layer_with(table, out_type, weights=None):
    weights = np.ones((len(table), 40), int) if weights is None else weights
    return MatrixVectorLayer("l", BIPOLAR, BIPOLAR, weights, table, out_type)


def every_p(layer):
    return np.arange(int(layer.row_p_max.max()) + 1)[:, None].repeat(layer.mh, axis=1)


@pytest.mark.parametrize("half_even", [True, False])
def test_thresholds_of_a_shift_are_recognised_and_give_the_same_codes(half_even):
    out = QuantType.uint(4)
    offset, shift = np.array([3, -7, 12, 1]), np.array([1, 2, 0, 3])
    p = every_p(layer_with(np.zeros((4, 15), int), out))
    codes = shift_codes(p, offset, shift, half_even, out.levels)
    table = np.stack([[np.argmax(codes[:, r] >= k) if np.any(codes[:, r] >= k) else 41 for k in range(1, 16)]
                      for r in range(4)])
    layer = layer_with(table, out)
    unit = fit_shift(layer)
    assert unit is not None and unit.kind == "shift"
    fitted = shift_codes(p, unit.offset, unit.shift, unit.half_even, out.levels)
    assert np.array_equal(fitted, threshold_codes(layer, p))


def test_constant_rows_get_a_shift_that_keeps_their_code():
    out = QuantType.uint(2)
    table = np.array([[0, 0, 41], [41, 41, 41], [0, 0, 0], [0, 41, 41]])        # codes 2, 0, 3, 1 everywhere
    layer = layer_with(table, out)
    unit = fit_shift(layer)
    p = every_p(layer)
    assert np.array_equal(shift_codes(p, unit.offset, unit.shift, unit.half_even, out.levels), threshold_codes(layer, p))


def test_thresholds_that_no_shift_gives_keep_the_table(rng):
    table = np.sort(rng.integers(1, 40, size=(4, 15)), axis=1)
    table[:, 1] = table[:, 0] + 1
    table[:, 2] = table[:, 1] + 5
    assert fit_shift(layer_with(table, QuantType.uint(4))) is None


def test_an_exact_power_of_two_output_map_becomes_fixed_point_scores():
    layer = MatrixVectorLayer("out", BIPOLAR, BIPOLAR, np.ones((3, 8), int), None, None)
    slope, intercept = np.array([0.25, -2.0, 0.0]), np.array([1.0625, -3.5, 0.75])
    unit = fit_scores(layer, lambda p: slope * (2 * p - 8) + intercept)
    assert unit.kind == "scores" and unit.fraction == 4
    p = every_p(layer)
    fixed = unit.sign * (p << unit.shift) + unit.offset
    assert np.array_equal(np.ldexp(fixed.astype(float), -unit.fraction), slope * (2 * p - 8) + intercept)


@pytest.mark.parametrize("slope, intercept", [(0.3, 0.0), (0.25, 0.1), (0.25, 2.0 ** -60)])
def test_an_output_map_that_fixed_point_cannot_hold_keeps_the_host_rescale(slope, intercept):
    layer = MatrixVectorLayer("out", BIPOLAR, BIPOLAR, np.ones((2, 8), int), None, None)
    assert fit_scores(layer, lambda p: slope * p + intercept) is None
