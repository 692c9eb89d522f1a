import numpy as np
import pytest

from hdlgen.ir import BIPOLAR, TERNARY, QuantKind, QuantType


@pytest.mark.parametrize("quant, lo, hi", [
    (BIPOLAR, -1, 1), (TERNARY, -1, 1), (QuantType.uint(4), 0, 15), (QuantType.int(4), -8, 7),
    (QuantType.int(2, narrow=True), -1, 1), (QuantType.int(8), -128, 127), (QuantType.uint(1), 0, 1),
])
def test_ranges(quant, lo, hi):
    assert (quant.lo, quant.hi) == (lo, hi)
    values = quant.values()
    assert quant.contains(values)
    assert np.array_equal(quant.decode(quant.encode(values)), values)
    codes = quant.encode(values)
    assert codes.min() == 0 and codes.max() < 1 << quant.bits


def test_bipolar_codes_one_for_plus_one():
    assert BIPOLAR.encode(np.array([-1, 1])).tolist() == [0, 1]
    assert not BIPOLAR.contains(np.array([0]))


@pytest.mark.parametrize("text", ["bipolar", "ternary", "uint3", "int8", "narrow_int2"])
def test_text_round_trip(text):
    assert QuantType.from_json(text).to_json() == text


@pytest.mark.parametrize("text, message", [
    ("float", "unknown quant type 'float'"), ("uint17", "bits must be an integer from 1 to 16"),
    ("int1", "a 1-bit signed int is bipolar"), ("narrow_uint3", "narrow ranges apply only to signed int"), (3, "is a string"),
])
def test_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        QuantType.from_json(text)


def test_kind_checks():
    with pytest.raises(ValueError, match="ternary values take 2 bits"):
        QuantType(QuantKind.TERNARY, 3)


@pytest.mark.parametrize("text, lo, hi, code_of_zero", [("uint8_zp131", -131, 124, 131), ("int8_zp-5", -123, 132, 123),
                                                         ("uint4_zp15", -15, 0, 15)])
def test_a_zero_point_shifts_the_values_and_keeps_the_stored_integer_as_code(text, lo, hi, code_of_zero):
    q = QuantType.from_json(text)
    assert (q.lo, q.hi, q.levels, q.bits) == (lo, hi, hi - lo + 1, int(text.split("_")[0][-1]))
    assert int(q.encode(0)) == code_of_zero and q.to_json() == text
    assert np.array_equal(q.decode(q.encode(q.values())), q.values())


@pytest.mark.parametrize("text", ["uint8_zp256", "int8_zp128", "uint8_zp-1", "narrow_int8_zp3", "ternary_zp1"])
def test_zero_points_outside_the_stored_range_or_on_other_kinds_are_refused(text):
    with pytest.raises(ValueError):
        QuantType.from_json(text)
