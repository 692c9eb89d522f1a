"""Simulation speed on the demo network: the native Verilator harness against cocotb, in one run.

Both simulate the same Verilog with no stalls. Each is run at two frame counts and timed; the
difference cancels start-up (process launch, Python import, model load), so the figure is the
steady rate in clock cycles per second of wall time.

    python benchmarks/simulation_speed.py [--cocotb-frames 400] [--harness-frames 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hdlgen.backends.cocotb_run import CocotbDesign
from hdlgen.backends.harness import NativeHarness
from hdlgen.backends.packing import frame_words_with_last, pack_beats
from hdlgen.cli import DEMO_MODEL
from hdlgen.flow import BuildDir, build
from hdlgen.golden import run_lowered


def timed(fn):
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cocotb-frames", type=int, default=400)
    parser.add_argument("--harness-frames", type=int, default=200000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build(DEMO_MODEL, tmp / "demo")
        demo = BuildDir.open(tmp / "demo")
        i, o = demo.report["input"], demo.report["output"]
        ii = demo.report["pipeline"]["initiation_interval_cycles"]
        in_bits, out_bits = demo.stream_bits

        def vectors(frames):
            codes = rng.integers(0, 16, size=(frames, i["features"]))
            hw = run_lowered(demo.model, codes)
            return pack_beats(codes, i["values_per_beat"], i["bits_per_value"]), \
                frame_words_with_last(hw, o["values_per_beat"], o["bits_per_value"])

        cocotb = CocotbDesign(demo.verilog.read_text(), demo.report["top"], tmp / "cocotb")
        rates = {}
        runs = []
        for frames in (args.cocotb_frames // 4, args.cocotb_frames):
            inputs, expected = vectors(frames)
            result, seconds = timed(lambda: cocotb.run(inputs=inputs, expected=expected,
                                                        beats_per_frame=o["beats_per_frame"], seed=1, name=f"f{frames}",
                                                        initiation_interval=ii))
            runs.append((result.cycles, seconds))
        rates["cocotb"] = (runs[1][0] - runs[0][0]) / (runs[1][1] - runs[0][1])

        harness = NativeHarness.build(demo.verilog, demo.report["top"], tmp / "native", in_bits=in_bits, out_bits=out_bits)
        runs = []
        for frames in (args.harness_frames // 4, args.harness_frames):
            inputs, expected = vectors(frames)
            result, seconds = timed(lambda: harness.run(inputs, len(expected), max_cycles=10**10))
            assert result.words == expected, "harness output differs from the golden model"
            runs.append((result.cycles, seconds))
        rates["harness"] = (runs[1][0] - runs[0][0]) / (runs[1][1] - runs[0][1])

    print(f"demo network ({demo.report['top']}), {ii} cycles per frame")
    print(f"{'simulator':<22}{'cycles/s':>14}{'frames/s':>12}")
    for name, label in (("cocotb", "cocotb 2 + Verilator"), ("harness", "native harness")):
        print(f"{label:<22}{rates[name]:>14,.0f}{rates[name] / ii:>12,.0f}")
    print(f"native harness / cocotb: {rates['harness'] / rates['cocotb']:.0f}x")


if __name__ == "__main__":
    main()
