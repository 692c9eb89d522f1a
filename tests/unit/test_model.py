"""The source IR validates itself: every user mistake is one HdlgenError naming the layer."""

import numpy as np
import pytest

from hdlgen import HdlgenError
from hdlgen.ir import BIPOLAR, TERNARY, BatchNorm, Dense, InputQuantizer, Model, QuantType, Quantizer

UINT4 = QuantType.uint(4)


def mlp(*layers, features=4):
    return Model("m", InputQuantizer(features, UINT4), layers)


def test_shapes_follow_the_chain():
    model = mlp(Dense("fc0", np.ones((3, 4)), BIPOLAR), BatchNorm("bn0", np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)),
                Quantizer("a0", BIPOLAR), Dense("fc1", np.ones((2, 3)), TERNARY))
    assert model.shapes() == [(4,), (3,), (3,), (3,), (2,)]
    assert model.out_features == 2


@pytest.mark.parametrize("build, message", [
    (lambda: Dense("fc0", np.array([[1.0, np.nan]]), BIPOLAR), r"layer 'fc0': weight holds nan at index \(0, 1\)"),
    (lambda: Dense("fc0", np.array([[1, 0]]), BIPOLAR), r"layer 'fc0': weight holds values outside bipolar \(-1 or \+1\)"),
    (lambda: Dense("fc0", np.array([[2, 0]]), TERNARY), r"outside ternary \(integers from -1 to 1\)"),
    (lambda: Dense("fc0", np.ones(3), BIPOLAR), r"weight has shape \(3,\), expected \(out_features, in_features\)"),
    (lambda: Dense("fc0", np.ones((2, 3)), BIPOLAR, weight_scale=-1.0), "weight_scale must be positive"),
    (lambda: Dense("fc0", np.ones((2, 3)), BIPOLAR, bias=np.zeros(3)), r"bias has shape \(3,\), expected \(2,\)"),
    (lambda: BatchNorm("bn", np.ones(2), np.zeros(2), np.zeros(2), np.array([0.0, -1.0]), eps=1e-5),
     "var \\+ eps must be positive"),
    (lambda: BatchNorm("bn", np.ones(2), np.zeros(3), np.zeros(2), np.ones(2)), r"beta has shape \(3,\)"),
    (lambda: BatchNorm("bn", np.ones(2), np.zeros(2), np.array([np.inf, 0]), np.ones(2)), "mean holds inf"),
    (lambda: Quantizer("act", BIPOLAR, scale=0.0), "scale must be one positive number"),
    (lambda: InputQuantizer(0, UINT4), "features must be a positive integer"),
])
def test_bad_layers(build, message):
    with pytest.raises(HdlgenError, match=message):
        build()


def test_dense_input_width_must_match():
    with pytest.raises(HdlgenError, match=r"layer 'fc1': weight has 2 input features but the previous layer gives 3; "
                                          r"the weight must be \(5, 3\)"):
        mlp(Dense("fc0", np.ones((3, 4)), BIPOLAR), Quantizer("a", BIPOLAR), Dense("fc1", np.ones((5, 2)), BIPOLAR))


def test_dense_needs_quantized_input():
    with pytest.raises(HdlgenError, match="layer 'fc1': a dense layer's input must be quantized"):
        mlp(Dense("fc0", np.ones((3, 4)), BIPOLAR), Dense("fc1", np.ones((2, 3)), BIPOLAR))


def test_batchnorm_width_must_match():
    with pytest.raises(HdlgenError, match="layer 'bn': batch norm has 2 channels but its input has 3"):
        mlp(Dense("fc0", np.ones((3, 4)), BIPOLAR), BatchNorm("bn", np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)))


def test_names_unique_and_valid():
    with pytest.raises(HdlgenError, match="layer name 'fc' is used twice"):
        mlp(Dense("fc", np.ones((4, 4)), BIPOLAR), Quantizer("fc", BIPOLAR))
    with pytest.raises(HdlgenError, match="must be a valid identifier"):
        mlp(Dense("fc-0", np.ones((4, 4)), BIPOLAR))


def test_empty_model():
    with pytest.raises(HdlgenError, match="has no layers"):
        mlp()
