"""Whole networks placed and routed: TFC and the Brevitas digits CNN on ECP5, beside their largest layer alone.

For each network the script builds it for ``--target`` (default ``ecp5-85k``: XNOR-popcount on CCU2C
carry trees) at the default folding, synthesizes it with Yosys and places and routes it with
nextpnr out of context (LFE5U-85F speed 6), and prints LUT4, FF, DP16KD, Fmax and where the
critical path starts and ends. The baseline, measured in the same run: the network's largest
matrix-vector layer (most weights) built, placed and routed alone, at the same folding, so that
the cost of the rest of the pipeline (windows, pooling, width converters, control) shows. CNV is in
``benchmarks/cnv.py``.

    python benchmarks/networks_placed.py [--networks tfc digits-cnn] [--target ecp5-85k] [--clock-mhz 200] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import hdlgen
from hdlgen.backends.synth import synthesize
from hdlgen.backends.verilog import emit
from hdlgen.assemble import DataflowTop
from hdlgen.assemble.dataflow import stream_plan
from hdlgen.builddir import BuildDir
from hdlgen.paths import EXAMPLES
from hdlgen.targets import get_target

NETWORKS = {
    "tfc": EXAMPLES / "bnn_pynq" / "tfc_1w1a_ts.onnx",          # 784-64-64-64-10, w1a1 (BNN-PYNQ's TFC)
    "digits-cnn": EXAMPLES / "brevitas_digits" / "cnn_w1a1.onnx",
}


def critical_path(log: Path) -> str:
    """The first source and the last sink cell of nextpnr's critical path report, as instances."""
    text = log.read_text(errors="replace")
    report = text[text.rfind("Critical path report"):]
    cells = re.findall(r"(?:Source|Sink) (\S+)", report)
    if not cells:
        return "n/a"

    def instance(cell: str) -> str:
        return cell.split(".")[0] if "." in cell else cell
    return f"{instance(cells[0])} -> {instance(cells[-1])}"


def place(verilog: Path, top: str, target: str, workdir: Path, clock_mhz: float, stream_bits) -> tuple:
    start = time.monotonic()
    result = synthesize(verilog, top, target, workdir, clock_mhz=clock_mhz, stream_bits=stream_bits)
    return result, time.monotonic() - start, critical_path(workdir / "nextpnr.log")


def row(name: str, result, seconds: float, path: str) -> str:
    fmax = f"{result.fmax_mhz:.1f}" if result.fmax_mhz else "n/a"
    return (f"{name:34} {result.lut:>7,} {result.ff:>7,} {result.bram:>6g} {fmax:>9} {seconds:>5.0f} s  {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=sorted(NETWORKS))
    ap.add_argument("--target", default="ecp5-85k")
    ap.add_argument("--clock-mhz", type=float, default=200.0, help="nextpnr's timing target (default 200)")
    ap.add_argument("--workdir", help="keep the builds and nextpnr's logs here instead of a temporary directory")
    args = ap.parse_args()
    print(f"placed and routed on {args.target} out of context, timing target {args.clock_mhz:g} MHz")
    print(f"{'design':34} {'LUT4':>7} {'FF':>7} {'DP16KD':>6} {'Fmax MHz':>9} {'time':>7}  critical path (instances)")
    with tempfile.TemporaryDirectory() as tmp:
        for network in args.networks:
            work = Path(args.workdir or tmp) / network
            design = hdlgen.build(NETWORKS[network], work / "out", target=args.target)
            report = design.report
            ii = report["pipeline"]["initiation_interval_cycles"]
            build_dir = BuildDir.open(work / "out")
            result, seconds, path = place(design.verilog, report["top"], args.target, work / "synth", args.clock_mhz,
                                          build_dir.stream_bits)
            print(row(f"{network} ({ii:,} cycles/frame)", result, seconds, path), flush=True)
            # the baseline: its largest layer alone, at the same folding
            layer = max(build_dir.model.mvus, key=lambda m: m.weights.size)
            folding = build_dir.foldings[layer.name]
            # the core exactly as the pipeline makes it (products, packing, zero-skip, carry cells)
            planned = next(p for p in stream_plan(build_dir.model, build_dir.foldings) if p.stage is layer)
            unit = DataflowTop.core(planned, get_target(args.target))
            verilog = work / "layer.v"
            verilog.write_text(emit(unit, "layer"))
            bits = (len(unit.i.payload.as_value()), len(unit.o.payload.as_value()))
            result, seconds, path = place(verilog, "layer", args.target, work / "synth-layer", args.clock_mhz, bits)
            print(row(f"  {layer.name} alone (PE {folding.pe}, SIMD {folding.simd})", result, seconds, path),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
