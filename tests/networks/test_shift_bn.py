"""Shift-based batch norm (BNN paper, Alg. 3): the digits BNN trained with it
(examples/digits/train_shift_bn.py) is reproduced bit for bit: its scores come out of the hardware
in fixed point, equal to the training script's own forward pass on every test image."""

import json

import numpy as np

from hdlgen.frontend import load_model
from hdlgen.golden import predict, run_reference
from hdlgen.ir import ShiftBatchNorm
from hdlgen.paths import EXAMPLES
from hdlgen.transforms import streamline

DIGITS = EXAMPLES / "digits"


def test_the_exported_model_and_its_lowered_form_give_the_trained_scores():
    model = load_model(DIGITS / "shift_bn.json")
    x, scores = np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "shift_bn_scores.npy")
    assert sum(isinstance(layer, ShiftBatchNorm) for layer in model.layers) == 3
    assert np.array_equal(run_reference(model, x), scores)
    lowered = streamline(model)
    assert lowered.mvus[-1].requant.kind == "scores"
    assert np.array_equal(predict(lowered, x), scores)


def test_rtl_emits_the_trained_scores_in_fixed_point(tmp_path):
    from hdlgen.flow import BuildDir, build, simulate

    x, scores = np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "shift_bn_scores.npy")
    report = build(DIGITS / "shift_bn.json", tmp_path / "out")
    assert report["layers"][-1]["threshold_unit"] == "scores"
    assert report["output"]["words"].startswith("fixed point, signed")
    result = simulate(BuildDir.open(tmp_path / "out"), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    assert np.array_equal(result.outputs.astype(np.float64), scores)
    assert result.interval == result.interval_model


def test_build_with_shift_batchnorm_reports_the_accuracy_change(tmp_path):
    from hdlgen.flow import build

    x, labels = np.load(DIGITS / "test_x.npy"), np.load(DIGITS / "test_y.npy")
    report = build(DIGITS / "model.json", tmp_path / "out", bn="shift", bn_check=(x, labels))
    bn = report["batchnorm"]
    assert bn["converted"] == 2 and bn["frames"] == 450
    assert abs(bn["accuracy_after"] - bn["accuracy_before"]) < 0.05
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["batchnorm"] == bn
