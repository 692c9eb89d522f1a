"""Class output (``build --output class``): an argmax stage after the last layer.

The hardware compares keys, not the model's float outputs; this chooses keys that order exactly as
the outputs do (``ir.lowered.ClassOutput``): the words themselves when one strictly monotone
function maps every feature's words to outputs (codes after a per-tensor scale, fixed-point
scores, accumulators with one scale and no bias), else the rank of each reachable output value in
a table. Per-channel scales and biases are thereby applied exactly before comparing: argmax of the
raw accumulators is not argmax of the model's outputs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import HdlgenError
from ..golden.layers import model_outputs
from ..ir.lowered import ClassOutput, LoweredModel, MatrixVectorLayer

__all__ = ["with_class_output", "MAX_TABLE_ENTRIES"]

MAX_TABLE_ENTRIES = 1 << 16        # rank table entries (features x 2^word_bits); a larger one is refused


def _word_range(model: LoweredModel) -> tuple[np.ndarray, int, bool]:
    """Per feature the largest word the last stage can emit, the word width, and whether words are
    signed (fixed-point scores)."""
    last = model.layers[-1]
    features = model.out_features
    if isinstance(last, MatrixVectorLayer) and last.out_type is None:
        if last.requant is not None and last.requant.kind == "scores":
            return np.full(features, (1 << last.requant.width) - 1), last.requant.width, True
        return last.row_p_max.astype(np.int64), last.acc_max.bit_length(), False
    return np.full(features, last.out_type.levels - 1, dtype=np.int64), last.out_type.bits, False


def _refuse(model: LoweredModel, why: str) -> HdlgenError:
    return HdlgenError(f"--output class: {why}; build with --output scores (the default), and take the argmax on the "
                       f"host")


def with_class_output(model: LoweredModel) -> LoweredModel:
    """``model`` with an argmax after its last stage (see the module's docstring)."""
    host = model.host
    if host is not None and host.op == "ArgMax" and dict(host.attributes).get("select_last_index", 0):
        raise _refuse(model, "the model's final ArgMax breaks ties to the last index (select_last_index=1), and the "
                             "hardware's argmax to the first, as numpy's does")
    if host is not None and host.op == "ArgMax" and dict(host.attributes).get("axis", 1) not in (1, -1):
        raise _refuse(model, "the model's final ArgMax is not over the features")
    if int(np.prod(model.out_shape[:-1])) != 1:
        raise _refuse(model, f"the model's output is an image of shape {model.out_shape} (H, W, C), not one score per "
                             f"class")
    features = model.out_features
    if features < 2:
        raise _refuse(model, "the model has a single output")
    top, word_bits, signed = _word_range(model)
    if signed:                    # fixed-point scores: the words are the outputs, exactly
        return replace(model, classes=ClassOutput(features, word_bits, "direct", word_bits, signed=True))
    if int((top + 1).sum()) > MAX_TABLE_ENTRIES * 64:
        raise _refuse(model, f"the last layer's words reach {int(top.max())}, too many to check one by one")
    words = np.arange(int(top.max()) + 1)[:, None]
    reach = np.minimum(words, top[None, :])                      # (word, feature): every word of every feature
    real = model_outputs(model, reach).reshape(len(words), features).astype(np.float64)
    if not np.all(np.isfinite(real)):
        raise _refuse(model, "the model's outputs are not all finite over the last layer's range")
    valid = words <= top[None, :]
    common = real[:, int(np.argmax(top))]
    if np.all((real == common[:, None]) | ~valid):
        steps = np.diff(common)
        if np.all(steps > 0) or np.all(steps < 0):
            return replace(model, classes=ClassOutput(features, word_bits, "direct", word_bits,
                                                      invert=bool(np.all(steps < 0))))
    entries = features << word_bits
    if entries > MAX_TABLE_ENTRIES:
        raise _refuse(model, f"each output has its own scale or offset, so the argmax needs a table of the outputs' "
                             f"ranks, {features} x 2^{word_bits} = {entries} entries (at most {MAX_TABLE_ENTRIES})")
    values = np.unique(real[valid])
    ranks = np.searchsorted(values, real)                        # equal outputs, equal ranks
    table = np.zeros((features, 1 << word_bits), dtype=np.int64)
    table[:, :len(words)] = np.where(valid, ranks, 0).T
    key_bits = max(1, (len(values) - 1).bit_length())
    return replace(model, classes=ClassOutput(features, word_bits, "rank", key_bits, table=table))
