"""The native Verilator harness under random stalls: 10,000 frames of a network with the input
withholding beats and the output refusing them, every output equal to the golden model's and none
lost; and the harness's check that no handshake output follows the top's inputs combinationally."""

import numpy as np
import pytest
from amaranth import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

import hdlgen
from hdlgen import HdlgenError
from hdlgen.backends.harness import NativeHarness
from hdlgen.backends.verilog import emit
from hdlgen.paths import EXAMPLES

FRAMES = 10_000


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return hdlgen.build(EXAMPLES / "digits" / "model.json", tmp_path_factory.mktemp("stalls") / "out")


@pytest.mark.parametrize("idle, backpressure, seed", [(0.3, 0.0, 1), (0.0, 0.5, 2), (0.4, 0.6, 3)])
def test_ten_thousand_frames_under_stalls(digits, idle, backpressure, seed):
    test_x = np.load(EXAMPLES / "digits" / "test_x.npy")
    x = test_x[np.random.default_rng(seed).integers(0, len(test_x), size=FRAMES)]
    stalled = digits.simulate(x, idle=idle, backpressure=backpressure, seed=seed)
    assert stalled.hw_words.shape == stalled.golden_words.shape == (FRAMES, 10)
    assert np.array_equal(stalled.hw_words, stalled.golden_words)
    # the stalls happened, in about the shares asked for
    assert stalled.refused_cycles == pytest.approx(backpressure * stalled.cycles, rel=0.05, abs=0)
    beats = FRAMES * digits.report["input"]["beats_per_frame"]
    assert stalled.withheld_cycles == pytest.approx(idle / (1 - idle) * beats, rel=0.1, abs=0)
    if backpressure:        # ten output beats a frame: refusing half the cycles slows the frames down
        assert stalled.interval > stalled.interval_model


class Passthrough(wiring.Component):
    """A top whose handshakes are wires from its inputs: what the harness must refuse."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(data.StructLayout({"data": 8, "last": 1})))})

    def elaborate(self, platform):
        m = Module()
        last = Signal(init=1)          # a register, so that the top has a clock like every stream top
        m.d.sync += last.eq(1)
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready),
                     self.o.payload.as_value().eq(Cat(self.i.payload, last))]
        return m


def test_harness_refuses_combinational_handshakes(tmp_path):
    verilog = tmp_path / "passthrough.v"
    verilog.write_text(emit(Passthrough(), "passthrough"))
    harness = NativeHarness.build(verilog, "passthrough", tmp_path / "sim", in_bits=8, out_bits=9)
    with pytest.raises(HdlgenError, match="handshake outputs follow its inputs combinationally"):
        harness.run(list(range(20)), 20, max_cycles=1000, backpressure=0.5, seed=1)
    with pytest.raises(HdlgenError, match="backpressure must be a probability from 0 up to"):
        harness.run([1], 1, max_cycles=100, backpressure=1.0)
