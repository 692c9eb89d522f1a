"""MLPerf Tiny's keyword-spotting DS-CNN at its real size (49 x 10 input, 64 channels, four
depthwise-separable blocks; random int4 weights, uint4 activations, an 8-bit input), built for
ECP5-85k, checked on the RTL and placed and routed.

Prints, beside the published figures of the peers (not measured here):

* the folding (``--fold fit``: the fastest that fits the device, or ``--target-fps``), the cycle
  model's cycles per frame and bottleneck, and the edge FIFOs the cycle model put in;
* ``--frames`` frames (default 16) through the native Verilator harness: the RTL equals the golden
  model and hdlgen's reference evaluator bit for bit, and the measured cycles per frame equal the
  model's;
* Yosys and nextpnr on LFE5U-85F (speed 6): LUT4, FF, DP16KD, MULT18X18D, Fmax, and frames/s at
  that Fmax;
* the peers: fpgaConvNet's MLPerf Tiny v1.1 closed-division DS-CNN on a ZedBoard (XC7Z020,
  Vivado): 37K LUT, 188 DSP, 97 BRAM, 143 MHz, 3,088 frames/s.

    python benchmarks/mlperf_tiny.py [--fold fit | --target-fps N] [--frames 16] [--no-synth] [--clock-mhz 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hdlgen.backends.synth import synthesize
from hdlgen.flow import BuildDir, build, simulate
from hdlgen.frontend import save_model
from hdlgen.golden import run_reference
from hdlgen.topologies import ds_cnn

TARGET = "ecp5-85k"
FPGACONVNET_DS_CNN = {"lut": 37_000, "dsp": 188, "bram": 97, "mhz": 143, "fps": 3088}     # ZedBoard, MLPerf Tiny v1.1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", default="fit", help="fit (default), auto, or a folding file")
    parser.add_argument("--target-fps", type=float, help="fold for this rate with the least hardware (with --fold auto)")
    parser.add_argument("--frames", type=int, default=16, help="frames through the RTL (at least 5)")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis and place and route")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="the clock folding and nextpnr aim at")
    parser.add_argument("--workdir", help="keep the build here instead of a temporary directory")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    model = ds_cnn(rng)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        save_model(model, work / "ds_cnn.json")
        start = time.monotonic()
        fold = Path(args.fold) if args.fold not in ("fit", "auto") else args.fold
        report = build(work / "ds_cnn.json", work / "out", fold=fold, target_fps=args.target_fps,
                       clock_mhz=args.clock_mhz, target=TARGET)
        pipeline = report["pipeline"]
        ii = pipeline["initiation_interval_cycles"]
        print(f"DS-CNN built for {TARGET} in {time.monotonic() - start:.0f} s: {ii:,} cycles per frame "
              f"(bottleneck {pipeline['bottleneck']}), {args.clock_mhz * 1e6 / ii:,.0f} frames/s at {args.clock_mhz:g} MHz")
        print("folding (pe x simd, zero skip): " + ", ".join(
            f"{layer['name']} {layer['pe']}x{layer['simd']}{' zs' if layer['zero_skip'] else ''}" for layer in report["layers"]))
        fifos = pipeline["fifos"]
        print(f"edge FIFOs from the cycle model: {len(fifos)}" + "".join(
            f"; {f['from']} -> {f['into']}: {f['depth']} x {f['width']} bits" for f in fifos))
        est = report["estimate"]
        print(f"estimate: {est['lut']:,} LUT, {est['ff']:,} FF, {est['bram']:g} DP16KD, {est['dsp']} MULT18X18D")

        x = rng.uniform(-1, 1, size=(args.frames, 1, 49, 10)) * rng.uniform(0.2, 1, size=(args.frames, 1, 1, 1))
        start = time.monotonic()
        result = simulate(BuildDir.open(work / "out"), x)
        exact = np.array_equal(result.hw_words, result.golden_words) and \
            np.array_equal(result.outputs, run_reference(model, x))
        print(f"RTL on Verilator, {args.frames} frames ({time.monotonic() - start:.0f} s): "
              f"{'bit-exact' if exact else 'DIFFERS'} against the golden model and the reference evaluator; "
              f"measured {result.interval:,.0f} cycles per frame, cycle model {result.interval_model:,}")
        if not exact:
            raise SystemExit("the RTL differs from the golden model")
        if args.no_synth:
            return
        build_dir = BuildDir.open(work / "out")
        start = time.monotonic()
        synth = synthesize(build_dir.verilog, report["top"], TARGET, work / "synth", clock_mhz=args.clock_mhz,
                           stream_bits=build_dir.stream_bits)
        fmax = synth.fmax_mhz
        rate = f"{fmax * 1e6 / ii:,.0f} frames/s at that Fmax" if fmax else "no Fmax"
        peer = FPGACONVNET_DS_CNN
        print(f"placed and routed on LFE5U-85F ({time.monotonic() - start:.0f} s): {synth.lut:,} LUT4, {synth.ff:,} FF, "
              f"{synth.bram:g} DP16KD, {synth.dsp} MULT18X18D, Fmax {fmax or 0:.1f} MHz -> {rate}; "
              f"fpgaConvNet DS-CNN (MLPerf Tiny v1.1, ZedBoard, published): {peer['lut']:,} LUT, {peer['dsp']} DSP, "
              f"{peer['bram']} BRAM, {peer['mhz']} MHz, {peer['fps']:,} frames/s")


if __name__ == "__main__":
    main()
