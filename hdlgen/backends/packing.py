"""Packing arrays of codes into stream beats (integers) and back, in the stream contract's order."""

from __future__ import annotations

import numpy as np


def pack_beats(values: np.ndarray, per_beat: int, bits: int) -> list[int]:
    """(batch, features) unsigned values to beats of ``per_beat`` values, value k at bit ``k * bits``."""
    values = np.asarray(values, dtype=np.int64).reshape(-1, per_beat)
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        raise ValueError(f"values must fit in {bits} unsigned bits")
    shifts = [k * bits for k in range(per_beat)]
    return [sum(int(v) << s for v, s in zip(row, shifts)) for row in values]


def unpack_beats(words: list[int], per_beat: int, bits: int, features: int) -> np.ndarray:
    """Beats back to (batch, features); the inverse of ``pack_beats`` (bits above the values ignored)."""
    mask = (1 << bits) - 1
    flat = np.array([(w >> (k * bits)) & mask for w in words for k in range(per_beat)], dtype=np.int64)
    return flat.reshape(-1, features)


def frame_words_with_last(values: np.ndarray, per_beat: int, bits: int) -> list[int]:
    """Beats of a top's output: data, then the ``last`` bit on the frame's final beat."""
    beats = pack_beats(values, per_beat, bits)
    per_frame = np.asarray(values).shape[-1] // per_beat
    last = 1 << (per_beat * bits)
    return [w | (last if k % per_frame == per_frame - 1 else 0) for k, w in enumerate(beats)]
