import json

import numpy as np
import pytest

from factories import BIPOLAR, UINT, random_model
from hdlgen import HdlgenError
from hdlgen.ir import Folding
from hdlgen.transforms import auto_folding, check_foldings, load_folding, streamline
from hdlgen.transforms.folding import DEFAULT_LANES, layer_cycles


@pytest.fixture
def lowered(rng):
    return streamline(random_model(rng, sizes=[64, 32, 30, 10], input_quant=UINT(4), act_quant=BIPOLAR))


@pytest.mark.parametrize("fps", [1e5, 1e6, 5e6])
def test_auto_folding_meets_the_frame_rate_with_divisors(lowered, fps):
    foldings = auto_folding(lowered, target_fps=fps, clock_mhz=100)
    check_foldings(lowered, foldings)
    budget = int(100e6 // fps)
    for layer in lowered.layers:
        fold = foldings[layer.name]
        assert layer_cycles(layer, fold) <= budget
        # nothing cheaper would do
        assert not any(layer_cycles(layer, Folding(pe, simd)) <= budget
                       for pe in range(1, layer.mh + 1) if layer.mh % pe == 0
                       for simd in range(1, layer.mw + 1) if layer.mw % simd == 0 and pe * simd < fold.pe * fold.simd)


def test_auto_folding_default_balances_layers(lowered):
    foldings = auto_folding(lowered)
    cycles = [layer_cycles(l, foldings[l.name]) for l in lowered.layers]
    assert max(cycles) == cycles[0] == 64 * 32 // DEFAULT_LANES


def test_impossible_frame_rate(lowered):
    with pytest.raises(HdlgenError, match="leaves less than one cycle per frame; lower --target-fps"):
        auto_folding(lowered, target_fps=1e9, clock_mhz=100)


def write(tmp_path, doc):
    path = tmp_path / "fold.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_folding_file(tmp_path, lowered):
    doc = {"fc0": {"pe": 4, "simd": 16}, "fc1": {"pe": 3, "simd": 8}, "fc2": {"pe": 5, "simd": 30}}
    assert load_folding(write(tmp_path, doc), lowered) == {k: Folding(**v) for k, v in doc.items()}


@pytest.mark.parametrize("doc, message", [
    ({"fc0": {"pe": 3, "simd": 16}, "fc1": {"pe": 1, "simd": 1}, "fc2": {"pe": 1, "simd": 1}},
     "layer 'fc0': pe=3 does not divide its 32 output rows; choose a divisor of 32"),
    ({"fc0": {"pe": 4, "simd": 7}, "fc1": {"pe": 1, "simd": 1}, "fc2": {"pe": 1, "simd": 1}},
     "layer 'fc0': simd=7 does not divide its 64 inputs"),
    ({"fc0": {"pe": 1, "simd": 1}, "fc1": {"pe": 1, "simd": 1}}, "folding gives no pe/simd for layer 'fc2'"),
    ({"fc0": {"pe": 1, "simd": 1}, "fc1": {"pe": 1, "simd": 1}, "fc2": {"pe": 1, "simd": 1}, "fc9": {"pe": 1, "simd": 1}},
     "folding names unknown layer"),
    ({"fc0": {"pe": 0, "simd": 1}}, "fc0.pe: 0 is less than the minimum of 1"),
    ({"fc0": [4, 16]}, r"fc0: \[4, 16\] must map to"),
    ({"fc0": {"pe": 2.0, "simd": 1}}, "fc0.pe: 2.0 is not of type 'integer'"),
    ("{nope", "not valid JSON"),
])
def test_bad_folding_files(tmp_path, lowered, doc, message):
    with pytest.raises(HdlgenError, match=message):
        load_folding(write(tmp_path, doc), lowered)


def test_a_pool_after_the_last_layer_takes_its_producers_values_per_beat():
    from hdlgen.assemble.dataflow import stream_plan
    from hdlgen.ir import BIPOLAR, Conv2d, InputQuantizer, MaxPool2d, Model, QuantType, Quantizer
    from hdlgen.transforms import streamline
    from hdlgen.transforms.folding import auto_folding

    model = Model("pooled", InputQuantizer(2 * 6 * 6, QuantType.uint(2), 0.5, shape=(2, 6, 6)),
                  [Conv2d("c", np.ones((4, 2, 3, 3)), BIPOLAR), Quantizer("q", QuantType.uint(2), 0.5),
                   MaxPool2d("p", (2, 2))])
    lowered = streamline(model)
    foldings = auto_folding(lowered)
    plan = stream_plan(lowered, foldings)
    assert type(plan[-1].stage).__name__ == "PoolStage" and plan[-1].in_count == foldings["c"].pe
