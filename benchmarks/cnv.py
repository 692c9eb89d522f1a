"""CNV (BNN-PYNQ's CIFAR-10 topology, random bipolar weights) at BNN-PYNQ's CNV-W1A1 folding.

Prints, each beside its baseline:

* the time to generate CNV's Verilog (streamlining, folding, Amaranth to Verilog), beside the
  aim of 60 s and FINN's published HLS build times (hours; not measured here);
* Yosys's xc7 estimate of CNV-W1A1 (``synth_xilinx -family xc7``, adder trees shaped for 6-input
  LUTs), beside FINN's cnv-w1a1 without the shell (FINN PR 209: 21,135 LUT, 98 BRAM36 + 9 BRAM18)
  and BNN-PYNQ's published whole-board 26,072 LUT / 41,312 FF / 124 BRAM on XC7Z020 (Vivado);
* with ``--targets ecp5-85k``: CNV built for ECP5 (XNOR-popcount on CCU2C carry trees) and placed
  and routed out of context by nextpnr on LFE5U-85F speed 6: LUT, FF, DP16KD, Fmax against
  ``--clock-mhz``;
* the native Verilator harness's frames/s on CNV, beside the numpy golden model's frames/s and the
  frame rate the hardware itself would reach at 100 MHz (cycle model), all from this run.

    python benchmarks/cnv.py [--frames 8] [--no-synth] [--no-sim] [--targets xc7 ecp5-85k] [--clock-mhz 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hdlgen.backends.harness import NativeHarness
from hdlgen.backends.packing import pack_beats, unpack_beats
from hdlgen.backends.synth import synthesize
from hdlgen.flow import BuildDir, build
from hdlgen.frontend import save_model
from hdlgen.golden import quantize_input_codes, run_lowered
from hdlgen.topologies import BNN_PYNQ_CNV_FOLDING, cnv
from hdlgen.transforms import streamline

BNN_PYNQ = {"lut": 26072, "ff": 41312, "bram": 124, "fps": 9150}
FINN_PR_209 = {"lut": 21135, "bram36": 98, "bram18": 9}     # cnv-w1a1 without the shell


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames for the simulation rate (at least 5)")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis (it takes a while)")
    parser.add_argument("--no-sim", action="store_true", help="skip the Verilator run")
    parser.add_argument("--targets", nargs="+", default=["xc7"], help="targets to synthesize for (default xc7)")
    parser.add_argument("--clock-mhz", type=float, default=200.0, help="nextpnr's timing target (default 200)")
    parser.add_argument("--workdir", help="keep the build here instead of a temporary directory")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    model = cnv(rng)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        save_model(model, work / "cnv.json")
        fold = {layer.name: {"pe": pe, "simd": simd} for layer, (pe, simd) in zip(streamline(model).mvus, BNN_PYNQ_CNV_FOLDING)}
        (work / "fold.json").write_text(json.dumps(fold))

        start = time.monotonic()
        report = build(work / "cnv.json", work / "out", fold=str(work / "fold.json"), target="xc7")
        gen_seconds = time.monotonic() - start
        ii = report["pipeline"]["initiation_interval_cycles"]
        print(f"CNV Verilog generation: {gen_seconds:.1f} s (aim: under 60 s; FINN's HLS flow: hours, published)")
        print(f"cycle model: {ii} cycles per frame -> {100e6 / ii:,.0f} frames/s at 100 MHz")

        build_dir = BuildDir.open(work / "out")
        if not args.no_sim:
            simulate(args, build_dir, report, rng, work)
        if args.no_synth:
            return
        for target in args.targets:
            out = work / "out" if target == "xc7" else work / f"out-{target}"
            if target != "xc7":
                report = build(work / "cnv.json", out, fold=str(work / "fold.json"), target=target)
            start = time.monotonic()
            result = synthesize(BuildDir.open(out).verilog, report["top"], target, work / f"synth-{target}",
                                clock_mhz=args.clock_mhz)
            seconds = time.monotonic() - start
            if target == "xc7":
                print(f"Yosys xc7 estimate of CNV-W1A1 ({seconds:.0f} s): {result.lut:,} LUT, "
                      f"{result.ff:,} FF, {result.bram} BRAM, {result.lutram} LUTRAM, {result.dsp} DSP "
                      f"(mapper {result.lut_mapper}); FINN cnv-w1a1 without the shell (PR 209): "
                      f"{FINN_PR_209['lut']:,} LUT, {FINN_PR_209['bram36']} BRAM36 + {FINN_PR_209['bram18']} BRAM18; "
                      f"BNN-PYNQ published (Vivado, XC7Z020, whole board): {BNN_PYNQ['lut']:,} LUT, "
                      f"{BNN_PYNQ['ff']:,} FF, {BNN_PYNQ['bram']} BRAM")
            else:
                fmax = f"{result.fmax_mhz:.1f} MHz" if result.fmax_mhz else "n/a"
                print(f"{target}, placed and routed out of context ({seconds:.0f} s): {result.lut:,} LUT4 "
                      f"({result.lut_synth:,} in Yosys's netlist), {result.ff:,} FF, {result.bram:g} block RAM, "
                      f"{result.dsp} DSP, Fmax {fmax} against {args.clock_mhz:g} MHz; FINN cnv-w1a1 without the "
                      f"shell (PR 209, Vivado, xc7): {FINN_PR_209['lut']:,} LUT6")


def simulate(args, build_dir, report, rng, work):
    ii = report["pipeline"]["initiation_interval_cycles"]
    x = rng.uniform(-1, 1, size=(args.frames, 3, 32, 32))
    codes = quantize_input_codes(build_dir.model, x)
    start = time.monotonic()
    golden = run_lowered(build_dir.model, codes)
    golden_fps = args.frames / (time.monotonic() - start)

    in_bits, out_bits = build_dir.stream_bits
    start = time.monotonic()
    harness = NativeHarness.build(build_dir.verilog, report["top"], work / "harness", in_bits=in_bits, out_bits=out_bits)
    compile_seconds = time.monotonic() - start
    i, o = report["input"], report["output"]
    beats = pack_beats(codes, i["values_per_beat"], i["bits_per_value"])
    start = time.monotonic()
    run = harness.run(beats, len(codes) * o["beats_per_frame"],
                      max_cycles=report["pipeline"]["latency_bound_cycles"] + ii * (len(codes) + 4))
    sim_seconds = time.monotonic() - start
    hw = unpack_beats(run.words, o["values_per_beat"], o["bits_per_value"], o["features"])
    assert np.array_equal(hw, golden), "RTL differs from the golden model"
    print(f"Verilator harness: {args.frames / sim_seconds:.2f} frames/s ({run.cycles / sim_seconds:,.0f} cycles/s; "
          f"compile {compile_seconds:.0f} s), measured {run.interval_mean:.1f} cycles per frame; "
          f"numpy golden model: {golden_fps:.1f} frames/s; the hardware at 100 MHz: {100e6 / ii:,.0f} frames/s")


if __name__ == "__main__":
    main()
