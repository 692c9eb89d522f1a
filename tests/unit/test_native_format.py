"""The native description round-trips the IR, and malformed files get one clear error each."""

import json

import numpy as np
import pytest

from factories import BIPOLAR, TERNARY, UINT, random_model
from hdlgen import HdlgenError
from hdlgen.frontend import load_model, save_model
from hdlgen.golden import run_reference


def same_model(a, b):
    assert a.name == b.name and a.input.quant == b.input.quant and a.input.scale == b.input.scale
    assert [type(x) for x in a.layers] == [type(x) for x in b.layers]
    for x, y in zip(a.layers, b.layers):
        for key, value in vars(x).items():
            other = getattr(y, key)
            if isinstance(value, np.ndarray):
                assert np.array_equal(np.broadcast_to(value, np.shape(value)), other), (x.name, key)
            else:
                assert value == other, (x.name, key)


@pytest.mark.parametrize("weights", [BIPOLAR, TERNARY])
def test_round_trip(tmp_path, rng, weights):
    model = random_model(rng, sizes=[12, 8, 5], input_quant=UINT(3), act_quant=UINT(2), weight_quant=weights)
    save_model(model, tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    same_model(model, loaded)
    x = rng.normal(size=(20, 12))
    assert np.array_equal(run_reference(model, x), run_reference(loaded, x))


def test_bundled_example_loads():
    from hdlgen.cli import DEMO_MODEL
    model = load_model(DEMO_MODEL)
    assert model.input.features == 64 and model.out_features == 10


@pytest.fixture
def saved(tmp_path, rng):
    model = random_model(rng, sizes=[6, 4, 3], input_quant=UINT(2), act_quant=BIPOLAR)
    save_model(model, tmp_path / "m.json")
    return tmp_path / "m.json"


def edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["layers"][0].pop("weight"), r"layer 'fc0' \(layers\[0\]\): missing field\(s\) weight"),
    (lambda d: d["layers"][0].update(op="conv9"), r"layers\[0\]: unknown op 'conv9'; supported ops are dense, conv2d, batchnorm"),
    (lambda d: d["layers"][0].update(weight="nope"), "names tensor 'nope', which the NPZ file does not hold"),
    (lambda d: d["layers"][0].update(colour="red"), r"unknown field\(s\) colour for op 'dense'"),
    (lambda d: d["layers"][2].update(quant="float8"), "unknown quant type 'float8'"),
    (lambda d: d.update(version=7), "format version 7 is not supported"),
    (lambda d: d.update(format="onnx"), "not an hdlgen model description"),
    (lambda d: d.update(layers=[]), r"layers: \[\] must be a non-empty list"),
    (lambda d: d["input"].update(features=5), "weight has 6 input features but the previous layer gives 5"),
    (lambda d: d.update(tensors="other.npz"), "other.npz: tensor file not found"),
])
def test_malformed(saved, change, message):
    edit(saved, change)
    with pytest.raises(HdlgenError, match=message) as error:
        load_model(saved)
    assert str(error.value).startswith(str(saved.parent))


def test_not_json(tmp_path):
    (tmp_path / "m.json").write_text("{\"format\": ")
    with pytest.raises(HdlgenError, match=r"not valid JSON \(Expecting value at line 1, column 12\)"):
        load_model(tmp_path / "m.json")


def test_missing_file(tmp_path):
    with pytest.raises(HdlgenError, match="model file not found"):
        load_model(tmp_path / "absent.json")


def test_nan_weight_in_npz(saved):
    npz = saved.with_suffix(".npz")
    tensors = dict(np.load(npz))
    weight = tensors["fc0.weight"].astype(np.float64)
    weight[1, 2] = np.nan
    tensors["fc0.weight"] = weight
    np.savez(npz, **tensors)
    with pytest.raises(HdlgenError, match=r"layer 'fc0': weight holds nan at index \(1, 2\)"):
        load_model(saved)


def test_every_layer_kind_round_trips(tmp_path, rng):
    """A float32 model with every layer kind, saved and read back, computes the same outputs."""
    from hdlgen.ir import (AvgPool2d, Clip, Conv2d, Dense, Elementwise, Flatten, InputQuantizer, MaxPool2d, Model,
                           MultiThreshold, QuantType, Quantizer, Trunc)

    layers = [
        Conv2d("conv", rng.choice([-1, 1], size=(4, 2, 3, 3)), BIPOLAR, 2.0 ** rng.integers(-2, 2, 4), rng.normal(0, 1, 4),
               stride=(1, 2), padding=(1, 0, 1, 1), dilation=(1, 1), groups=1),
        Elementwise("scale", "mul", rng.choice([-0.5, 0.5], size=4)), Clip("relu", 0.0, np.inf),
        Quantizer("q0", UINT(3), 0.25, "HALF_UP"), MaxPool2d("pool", (2, 2), (1, 1)),
        AvgPool2d("avg", (2, 1), (1, 1), (1, 0, 0, 0), True), Quantizer("q1", UINT(3), 0.125), Flatten("flat"),
        Dense("fc", rng.choice([-1, 0, 1], size=(6, 4 * 5 * 1)), QuantType.int(2, narrow=True), 1.0, None),
        Elementwise("shift", "sub", 0.5), MultiThreshold("mt", np.sort(rng.normal(0, 2, (6, 3)), axis=1), QuantType.int(2), 0.5),
        Dense("fc2", rng.choice([-1, 1], size=(5, 6)), BIPOLAR, 1.0, None),
        Trunc("tr", 0.5, QuantType.int(3), 2.0, "FLOOR"), Dense("out", rng.choice([-1, 1], size=(3, 5)), BIPOLAR),
        Elementwise("div", "div", -3.0), Clip("hard", -1.0, 1.0)]
    model = Model("every", InputQuantizer(2 * 6 * 5, QuantType.int(4), 0.5, shape=(2, 6, 5), rounding="FLOOR"), layers,
                  arithmetic="float32")
    save_model(model, tmp_path / "every.json")
    again = load_model(tmp_path / "every.json")
    assert again.arithmetic == "float32" and again.input.shape == (2, 6, 5) and again.input.rounding == "FLOOR"
    assert [type(layer) for layer in again.layers] == [type(layer) for layer in layers]
    x = rng.normal(0, 3, size=(20, 2, 6, 5))
    assert np.array_equal(run_reference(again, x), run_reference(model, x))
