"""The class index a frame's output words give: the golden model of the argmax stage
(``ir.lowered.ClassOutput``, hardware ``cores.argmax``)."""

from __future__ import annotations

import numpy as np

from ..ir.lowered import ClassOutput

__all__ = ["class_keys", "class_indices"]


def class_keys(classes: ClassOutput, words: np.ndarray) -> np.ndarray:
    """Unsigned keys of output words (batch, features): larger key, larger model output."""
    words = np.asarray(words, dtype=np.int64).reshape(-1, classes.features)
    if classes.key == "rank":
        return classes.table[np.arange(classes.features)[None, :], words]
    if classes.signed:
        words = words ^ (1 << (classes.word_bits - 1))
    if classes.invert:
        words = words ^ ((1 << classes.word_bits) - 1)
    return words


def class_indices(classes: ClassOutput, words: np.ndarray) -> np.ndarray:
    """The first feature with the largest key, one per frame: (batch, 1)."""
    return class_keys(classes, words).argmax(axis=1).astype(np.int64)[:, None]
