"""Threshold units at 4, 6 and 8 output bits: all comparisons at once against binary search.

Both units take PE accumulators a beat and give PE codes; the thresholds of MH rows are random and
ascending. Figures: Verilog generation time and size, LUTs, FFs and Fmax on ECP5-85k (Yosys +
nextpnr, out of context), measured here and now for both.

    python benchmarks/thresholds.py [--bits 4 6 8] [--pe 8] [--rows 64] [--target ecp5-85k] [--units parallel search]
                                    [--no-synth]

The parallel unit at 8 bits (255 comparators a row) takes Yosys longer than ten minutes here;
``--no-synth`` gives generation time and size alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hdlgen.backends.synth import synthesize
from hdlgen.backends.verilog import emit
from hdlgen.cores import ThresholdSearch, Thresholding
from hdlgen.ir import QuantType

ACC_MAX = (1 << 16) - 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--pe", type=int, default=8)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--target", default="ecp5-85k")
    parser.add_argument("--clock-mhz", type=float, default=200.0, help="nextpnr timing target")
    parser.add_argument("--units", nargs="+", choices=["parallel", "search"], default=["parallel", "search"])
    parser.add_argument("--no-synth", action="store_true", help="generation time and Verilog size only")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"threshold units, {args.rows} rows, PE {args.pe}, {ACC_MAX.bit_length()}-bit accumulators, on {args.target}")
    print(f"{'bits':>4}  {'unit':<10}{'gen s':>7}{'Verilog KB':>12}{'LUT':>8}{'FF':>8}{'LUTRAM':>8}{'Fmax MHz':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for bits in args.bits:
            out_type = QuantType.uint(bits)
            table = np.sort(rng.integers(0, ACC_MAX + 1, size=(args.rows, out_type.levels - 1)), axis=1)
            for cls, label in ((Thresholding, "parallel"), (ThresholdSearch, "search")):
                if label not in args.units:
                    continue
                start = time.monotonic()
                verilog = emit(cls(thresholds=table, out_type=out_type, pe=args.pe, acc_max=ACC_MAX), "thr")
                seconds = time.monotonic() - start
                path = Path(tmp) / f"{label}{bits}.v"
                path.write_text(verilog)
                line = f"{bits:>4}  {label:<10}{seconds:>7.1f}{len(verilog) / 1024:>12.0f}"
                if args.no_synth:
                    print(line, flush=True)
                    continue
                r = synthesize(path, "thr", args.target, Path(tmp) / f"{label}{bits}", clock_mhz=args.clock_mhz)
                fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a"
                print(f"{line}{r.lut:>8}{r.ff:>8}{r.lutram:>8}{fmax:>10}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
