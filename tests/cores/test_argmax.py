"""The argmax stage on Verilator, under random stalls: one class index a frame, the first feature
with the largest key on ties, as numpy's argmax; keys from the words themselves (unsigned, signed
fixed point, falling) or from a table of ranks."""

import zlib

import numpy as np
import pytest

from factories import CocotbDesign
from hdlgen.backends.packing import pack_beats
from hdlgen.backends.verilog import emit
from hdlgen.cores import ArgmaxUnit
from hdlgen.golden.classes import class_indices
from hdlgen.ir.lowered import ClassOutput

STALLS = {"no-stalls": (0.0, 0.0), "both": (0.3, 0.5)}
FRAMES = 60


def seeded(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def rank_table(rng, features, word_bits):
    """Each feature's outputs rise with its word, with offsets of their own, and often equal another's."""
    values = np.sort(rng.integers(0, 40, size=(features, 1 << word_bits)), axis=1)
    ranks = np.searchsorted(np.unique(values), values)
    return ranks, max(1, int(ranks.max()).bit_length())


# features, count, word_bits, key, signed, invert
CASES = {"unsigned_pe2-nf5": (10, 2, 3, "direct", False, False),
         "signed-scores_pe10-nf1": (10, 10, 6, "direct", True, False),
         "falling_pe1-nf4": (4, 1, 5, "direct", False, True),
         "ranks_pe3-nf2": (6, 3, 4, "rank", False, False),
         "ranks_pe1-nf3": (3, 1, 2, "rank", False, False)}


@pytest.fixture(scope="module", params=CASES, ids=CASES)
def argmax_design(request, sim_root):
    features, count, word_bits, key, signed, invert = CASES[request.param]
    rng = seeded(request.param)
    if key == "rank":
        table, key_bits = rank_table(rng, features, word_bits)
        classes = ClassOutput(features, word_bits, key, key_bits, table=table)
    else:
        classes = ClassOutput(features, word_bits, key, word_bits, signed=signed, invert=invert)
    dut = ArgmaxUnit(classes=classes, count=count)
    return CocotbDesign(emit(dut, "argmax"), "argmax", sim_root / f"argmax-{request.param}"), classes, count


def frames(rng, classes):
    """Random words, words from a small set (ties everywhere), and frames of one word repeated."""
    top = 1 << classes.word_bits
    rows = [rng.integers(0, top, size=(FRAMES, classes.features)),
            rng.choice(rng.integers(0, top, 3), size=(FRAMES, classes.features)),
            np.repeat(rng.integers(0, top, size=(8, 1)), classes.features, axis=1)]
    return np.concatenate(rows)


def test_golden_breaks_ties_to_the_first_feature():
    classes = ClassOutput(4, 3, "direct", 3)
    assert class_indices(classes, np.array([[1, 5, 5, 2], [7, 7, 7, 7]])).tolist() == [[1], [0]]
    signed = ClassOutput(3, 4, "direct", 4, signed=True)               # 15 is -1, 7 is +7
    assert class_indices(signed, np.array([[15, 7, 8]])).tolist() == [[1]]


@pytest.mark.parametrize("stalls", STALLS.values(), ids=STALLS.keys())
def test_argmax_unit(argmax_design, rng, stalls):
    built, classes, count = argmax_design
    words = frames(rng, classes)
    expected = class_indices(classes, words)
    keys_tied = sum(np.sum(k == k.max()) > 1 for k in np.asarray(words))
    assert keys_tied > 0
    built.run(inputs=pack_beats(words, count, classes.word_bits), expected=expected.ravel(),
              beats_per_frame=1, seed=int(rng.integers(2**31)), idle=stalls[0], backpressure=stalls[1],
              initiation_interval=None if stalls[0] or stalls[1] else classes.features // count,
              name=f"run-{stalls[0]}-{stalls[1]}")
