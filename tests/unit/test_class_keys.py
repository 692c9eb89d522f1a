"""Class output (build --output class): the keys the argmax stage compares order exactly as the
model's outputs do, so the class index equals numpy's argmax of the model's outputs on every frame,
ties included, whatever each output's scale and bias."""

from dataclasses import replace

import numpy as np
import pytest

from factories import BIPOLAR, UINT, random_model
from hdlgen.errors import HdlgenError
from hdlgen.golden.classes import class_indices
from hdlgen.golden.layers import model_outputs
from hdlgen.ir.model import HostOp
from hdlgen.transforms import streamline
from hdlgen.transforms.classes import with_class_output


def every_word_frames(rng, lowered, count=3000):
    """Frames of the last layer's words: random over each row's range, and from a few values (ties)."""
    last = lowered.layers[-1]
    top = last.row_p_max if last.out_type is None else np.full(lowered.out_features, last.out_type.levels - 1)
    frames = rng.integers(0, top + 1, size=(count, len(top)))
    few = rng.integers(0, top.min() + 1, size=3)
    return np.concatenate([frames, rng.choice(few, size=(count, len(top)))])


def assert_argmax_of_outputs(lowered, rng):
    classed = with_class_output(lowered)
    words = every_word_frames(rng, lowered)
    want = model_outputs(lowered, words).reshape(len(words), -1).argmax(axis=1)
    assert np.array_equal(class_indices(classed.classes, words)[:, 0], want)
    return classed.classes


def test_per_channel_scales_and_biases_compare_by_rank(rng):
    lowered = streamline(random_model(rng, sizes=[12, 16, 6], input_quant=UINT(3), act_quant=BIPOLAR))
    classes = assert_argmax_of_outputs(lowered, rng)
    assert classes.key == "rank"


def test_outputs_that_coincide_across_channels_tie_as_in_numpy(rng):
    """Equal multipliers and biases on some rows, a zero multiplier (a constant output) and a negative
    one: equal model outputs from different rows must tie and give the first row."""
    lowered = streamline(random_model(rng, sizes=[12, 16, 6], input_quant=UINT(3), act_quant=BIPOLAR))
    out = lowered.output
    multiplier = np.array([0.5, 0.5, 0.0, -0.25, 0.5, 1.0])
    bias = np.array([1.0, 1.0, 2.0, 3.0, 1.5, 0.0])
    lowered = replace(lowered, output=replace(out, multiplier=multiplier, bias=bias, tail=()))
    classes = assert_argmax_of_outputs(lowered, rng)
    assert classes.key == "rank"
    words = np.zeros((1, 6), dtype=np.int64)
    words[0, [0, 1]] = lowered.layers[-1].row_p_max[0]        # rows 0 and 1: the same largest output
    y = model_outputs(lowered, words)[0]
    assert y[0] == y[1] == y.max()
    assert class_indices(classes, words).tolist() == [[0]]


def test_codes_after_one_scale_compare_directly(rng):
    model = random_model(rng, sizes=[12, 16, 6], input_quant=UINT(3), act_quant=UINT(4), output_act=True)
    classes = assert_argmax_of_outputs(streamline(model), rng)
    assert classes.key == "direct" and not classes.invert and classes.table is None


def test_one_scale_without_bias_compares_accumulators_directly_and_a_negative_one_inverts_them(rng):
    lowered = streamline(random_model(rng, sizes=[12, 16, 6], input_quant=UINT(3), act_quant=BIPOLAR))
    for scale, invert in ((0.375, False), (-0.375, True)):
        one = replace(lowered, output=replace(lowered.output, multiplier=np.full(6, scale), bias=None, tail=()))
        classes = assert_argmax_of_outputs(one, rng)
        assert classes.key == "direct" and classes.invert == invert


def test_refusals_name_the_reason_and_the_way_out(rng):
    lowered = streamline(random_model(rng, sizes=[12, 16, 6], input_quant=UINT(3), act_quant=BIPOLAR))
    last_index = replace(lowered, host=HostOp("ArgMax", (("axis", 1), ("select_last_index", 1)), 13))
    with pytest.raises(HdlgenError, match="select_last_index=1.*--output scores"):
        with_class_output(last_index)
    single = streamline(random_model(rng, sizes=[12, 16, 1], input_quant=UINT(3), act_quant=BIPOLAR))
    with pytest.raises(HdlgenError, match="single output"):
        with_class_output(single)
    wide = streamline(random_model(rng, sizes=[12, 8000, 10], input_quant=UINT(3), act_quant=BIPOLAR))
    with pytest.raises(HdlgenError, match="table of the outputs' ranks, 10 x 2\\^13"):
        with_class_output(wide)
