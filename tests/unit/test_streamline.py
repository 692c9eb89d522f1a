"""Streamlining keeps the model's outputs exactly, on every input, float ties included."""

import numpy as np
import pytest

from factories import BIPOLAR, INT, TERNARY, UINT, random_inputs, random_model
from hdlgen import HdlgenError
from hdlgen.golden import matrix_vector, predict, run_reference
from hdlgen.golden.layers import thresholds
from hdlgen.ir import BatchNorm, Dense, InputQuantizer, Model, QuantType, Quantizer
from hdlgen.ir.semantics import batchnorm, dense_affine, quantize
from hdlgen.transforms import streamline

CONFIGS = {
    "uint4-in_bipolar-act_bipolar-w": (UINT(4), BIPOLAR, BIPOLAR),
    "bipolar-in_bipolar-act_ternary-w": (BIPOLAR, BIPOLAR, TERNARY),
    "uint8-in_uint2-act_ternary-w": (UINT(8), UINT(2), TERNARY),
    "int4-in_int3-act_bipolar-w": (INT(4), INT(3), BIPOLAR),
    "bipolar-in_narrow-int2-act_ternary-w": (BIPOLAR, INT(2, narrow=True), TERNARY),
    "uint1-in_uint4-act_bipolar-w": (UINT(1), UINT(4), BIPOLAR),
    "int8-in_uint1-act_ternary-w": (INT(8), UINT(1), TERNARY),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("output_act", [False, True], ids=["accumulator-out", "quantized-out"])
def test_lowered_model_equals_reference(rng, config, output_act):
    in_q, act_q, w_q = config
    model = random_model(rng, sizes=[24, 16, 12, 6], input_quant=in_q, act_quant=act_q, weight_quant=w_q,
                         output_act=output_act)
    x = random_inputs(rng, model, 400)
    assert np.array_equal(predict(streamline(model), x), run_reference(model, x))


def source_codes(dense, bn, quant, in_scale, acc):
    """The source model's activation codes for dot products ``acc`` (rows x k), straight from the float math."""
    col = (slice(None), None)
    real = dense_affine(acc, (in_scale * dense.weight_scale)[col], None if dense.bias is None else dense.bias[col])
    if bn is not None:
        real = batchnorm(real, bn.gamma[col], bn.beta[col], bn.mean[col], bn.var[col], bn.eps)
    return quant.quant.encode(quantize(real, quant.quant, quant.scale))


def check_every_accumulator(model):
    """For every row and every accumulator value the hardware can hold, thresholds give the source's code."""
    lowered = streamline(model)
    in_scale = model.input.scale
    groups = [model.layers[k:k + 3] for k in range(0, len(model.layers), 3)]
    for layer, group in zip(lowered.layers, groups):
        if layer.thresholds is None:
            continue
        dense, bn, quant = group
        p = np.arange(layer.p_max + 1)[None, :].repeat(layer.mh, 0)
        flip = np.where(bn.gamma < 0, -1, 1)[:, None]
        assert np.array_equal(layer.weights, flip * dense.weight)
        acc = flip * (layer.acc_gain * p + layer.acc_offset[:, None])
        want = source_codes(dense, bn, quant, in_scale, acc)
        got = thresholds(layer, p.T).T
        reachable = p <= layer.row_p_max[:, None]
        assert np.array_equal(np.where(reachable, got, 0), np.where(reachable, want, 0)), layer.name
        in_scale = quant.scale


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_thresholds_match_on_both_sides_of_every_threshold(rng, config):
    in_q, act_q, w_q = config
    check_every_accumulator(random_model(rng, sizes=[20, 10, 8, 4], input_quant=in_q, act_quant=act_q, weight_quant=w_q))


def exact_model(act, gamma, *, beta=0.0, mean=0.0, bias=0.0):
    """One layer with scales of 1 and integer-valued batch norm, so breakpoints fall on integers exactly."""
    n = len(gamma)
    w = np.ones((n, 8), dtype=int)
    return Model("ties", InputQuantizer(8, BIPOLAR), [
        Dense("fc0", w, BIPOLAR, 1.0, np.full(n, bias)),
        BatchNorm("bn0", np.asarray(gamma, float), np.full(n, beta), np.full(n, mean), np.full(n, 1.0), 0.0),
        Quantizer("act0", act, 2.0 if not act.is_bipolar else 1.0),
    ])


def test_sign_at_zero_is_plus_one():
    # bn output is exactly 0 when the dot product equals the mean (here 2): the reference says +1
    model = exact_model(BIPOLAR, [1.0, -1.0], mean=2.0)
    lowered = streamline(model)
    x = np.array([[1, 1, 1, 1, 1, -1, -1, -1]], dtype=float)     # dot = 2 on both rows
    assert run_reference(model, x).tolist() == [[1, 1]]
    assert np.array_equal(predict(lowered, x), run_reference(model, x))
    check_every_accumulator(model)


def test_round_half_to_even_ties():
    # y / 2 = (dot + 1) / 2 hits every .5 tie for even dots; half-to-even picks alternately down and up
    model = exact_model(INT(3), [1.0], bias=1.0)
    check_every_accumulator(model)
    x = np.array([[1] * k + [-1] * (8 - k) for k in range(9)], dtype=float)
    assert np.array_equal(predict(streamline(model), x), run_reference(model, x))


def test_negative_gamma_flips_rows_and_zero_gamma_is_constant():
    model = exact_model(UINT(2), [-1.0, 0.0, 1.0], beta=1.0, mean=0.5)
    lowered = streamline(model)
    layer = lowered.layers[0]
    assert np.array_equal(layer.weights[0], -model.layers[0].weight[0])
    assert np.array_equal(layer.weights[2], model.layers[0].weight[2])
    x = np.array([[1] * k + [-1] * (8 - k) for k in range(9)], dtype=float)
    out = predict(lowered, x)
    assert np.array_equal(out, run_reference(model, x))
    assert len(set(out[:, 1])) == 1                       # gamma = 0: beta only
    assert np.all(np.diff(out[:, 0]) <= 0) and np.all(np.diff(out[:, 2]) >= 0)
    check_every_accumulator(model)


def test_accumulator_definition(rng):
    """acc_gain * P + acc_offset is the dot product of values, for every input type."""
    for in_q in (BIPOLAR, UINT(3), INT(4), INT(2, narrow=True)):
        for w_q in (BIPOLAR, TERNARY):
            model = random_model(rng, sizes=[16, 6, 3], input_quant=in_q, act_quant=BIPOLAR, weight_quant=w_q)
            layer = streamline(model).layers[0]
            values = rng.choice(in_q.values(), size=(30, 16))
            p = matrix_vector(layer, in_q.encode(values))
            assert np.array_equal(layer.acc_gain * p + layer.acc_offset, values @ layer.weights.T)
            assert p.max() <= layer.p_max


@pytest.mark.parametrize("layers, message", [
    (lambda: [Quantizer("q", BIPOLAR), Dense("fc", np.ones((2, 4)), BIPOLAR)],
     "layer 'q': a quantizer after 'input' is not a supported pattern"),
    (lambda: [Dense("fc", np.ones((2, 4)), BIPOLAR), Quantizer("q", BIPOLAR), BatchNorm("bn", np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))],
     "layer 'bn': a batchnorm after 'q' is not a supported pattern"),
])
def test_unsupported_patterns(layers, message):
    model = Model("m", InputQuantizer(4, UINT(2)), layers())
    with pytest.raises(HdlgenError, match=message):
        streamline(model)


def test_output_stage_tail_survives_the_build_directory(tmp_path, rng):
    """The last layer's elementwise chain (batch norm, scale, clip) is saved with the lowered model."""
    from hdlgen.ir import Clip, Elementwise
    from hdlgen.ir.lowered_io import load_lowered, save_lowered
    from hdlgen.transforms import auto_folding

    model = random_model(rng, sizes=[16, 8, 4], input_quant=UINT(3), act_quant=BIPOLAR)
    model = Model(model.name, model.input, model.layers + (Elementwise("s", "mul", rng.normal(0, 1, 4)),
                                                           Clip("c", -0.5, 2.0)), arithmetic="float32")
    lowered = streamline(model)
    save_lowered(lowered, auto_folding(lowered), tmp_path)
    again, _ = load_lowered(tmp_path)
    assert [type(layer) for layer in again.output.tail] == [BatchNorm, Elementwise, Clip]
    x = random_inputs(rng, model, 200)
    assert np.array_equal(predict(again, x), run_reference(model, x))


def test_int8_weights_negated_to_128_survive_the_build_directory(tmp_path, rng):
    """A falling batch norm negates a row holding int8's -128 to +128: saved and read back exactly."""
    from hdlgen.ir.lowered_io import load_lowered, save_lowered
    from hdlgen.transforms import auto_folding

    model = random_model(rng, sizes=[16, 8, 4], input_quant=UINT(3), act_quant=UINT(2), weight_quant=INT(8))
    dense, bn = model.layers[0], model.layers[1]
    weight = dense.weight.copy()
    weight[0] = -128
    gamma = bn.gamma.copy()
    gamma[0] = -1.0
    layers = (Dense(dense.name, weight, INT(8), dense.weight_scale, dense.bias),
              BatchNorm(bn.name, gamma, bn.beta, bn.mean, bn.var, bn.eps)) + model.layers[2:]
    lowered = streamline(Model(model.name, model.input, layers))
    assert lowered.mvus[0].weights.max() == 128
    save_lowered(lowered, auto_folding(lowered), tmp_path)
    again, _ = load_lowered(tmp_path)
    assert np.array_equal(again.mvus[0].weights, lowered.mvus[0].weights)


def test_int8_powers_of_two_up_to_128_stay_int8():
    """{-128, .., 1, 2}: powers of two, but a pow2 type would need 9 bits."""
    from hdlgen.transforms.streamline import hardware_weight_type

    assert hardware_weight_type(Dense("fc", np.array([[-128, 1, 2, 0]]), INT(8))) == INT(8)
    assert hardware_weight_type(Dense("fc", np.array([[-64, 1, 2, 0]]), INT(8))) == QuantType.pow2(8)
