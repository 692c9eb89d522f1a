"""An INT8 multiply-accumulate array (SIMD 16 x PE 16 by default), synthesized here and now.

hdlgen's dot-product array with the products ``hdlgen build`` picks for the target (on xcup and
xc7: two int8 products sharing an input per DSP slice, Xilinx WP486) against the baseline a
designer writes: ``o[p] = sum(w[p][s] * x[s])`` in Verilog, where Yosys infers one multiplier per
product. Both register their operands. Figures: multipliers (DSP48E2 / DSP48E1 / MULT18X18D) per
MAC, LUTs and FFs from Yosys, and Fmax from nextpnr on ECP5.

    python benchmarks/mac_array.py [--simd 16] [--pe 16] [--targets xcup ecp5-85k]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hdlgen.backends.synth import synthesize
from hdlgen.backends.verilog import emit
from hdlgen.cores import DotProductArray
from hdlgen.cores.products import ProductKind, choose_product, packing
from hdlgen.ir import QuantType
from hdlgen.targets import get_target

IN_TYPE, WEIGHT_TYPE = QuantType.int(8), QuantType.int(8)


def naive_verilog(name: str, simd: int, pe: int) -> str:
    """Registered signed operands, a loop of products, registered sums."""
    width = 16 + simd.bit_length()
    return f"""module {name}(input clk, input rst, input [{8 * simd - 1}:0] x, input [{8 * simd * pe - 1}:0] w,
                output reg [{width * pe - 1}:0] o);
  reg [{8 * simd - 1}:0] x_r;
  reg [{8 * simd * pe - 1}:0] w_r;
  reg signed [{width - 1}:0] acc;
  integer p, k;
  always @(posedge clk) begin
    x_r <= x;
    w_r <= w;
    for (p = 0; p < {pe}; p = p + 1) begin
      acc = 0;
      for (k = 0; k < {simd}; k = k + 1)
        acc = acc + $signed(x_r[8 * k +: 8]) * $signed(w_r[8 * (p * {simd} + k) +: 8]);
      o[p * {width} +: {width}] <= acc;
    end
  end
endmodule
"""


class Registered(wiring.Component):
    """Registers around hdlgen's dot-product array for int8 inputs and weights."""

    def __init__(self, *, simd: int, pe: int, target: str):
        target = get_target(target)
        product = choose_product(IN_TYPE, WEIGHT_TYPE, target, pe=pe).kind
        self.product = product
        self._dots = DotProductArray(in_type=IN_TYPE, weight_type=WEIGHT_TYPE, pe=pe, simd=simd,
                                     tree_group=target.tree_group, product=product,
                                     packing=packing(IN_TYPE, WEIGHT_TYPE, target) if product is ProductKind.PACKED
                                     else None)
        super().__init__({
            "x": In(self._dots.x.shape()), "w": In(self._dots.w.shape()), "o": Out(self._dots.o.shape()),
        })

    def elaborate(self, platform):
        m = Module()
        x, w = Signal(self.x.shape()), Signal(self.w.shape())
        m.d.sync += [x.eq(self.x), w.eq(self.w)]
        m.submodules.dots = dots = self._dots
        m.d.comb += [dots.x.eq(x), dots.w.eq(w), self.o.eq(dots.o)]
        return m


def measure(kind: str, simd: int, pe: int, target: str, workdir: Path, clock_mhz: float):
    verilog, name = workdir / f"{kind}-{target}.v", f"mac_{kind}"
    design = None if kind == "naive" else Registered(simd=simd, pe=pe, target=target)
    verilog.write_text(naive_verilog(name, simd, pe) if design is None else emit(design, name))
    start = time.monotonic()
    result = synthesize(verilog, name, target, workdir / f"{kind}-{target}", clock_mhz=clock_mhz)
    label = "naive *" if design is None else f"hdlgen {design.product.value}"
    return label, result, time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simd", type=int, default=16)
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--targets", nargs="+", default=["xcup", "ecp5-85k"])
    parser.add_argument("--clock-mhz", type=float, default=200.0, help="nextpnr timing target")
    args = parser.parse_args(argv)
    macs = args.simd * args.pe
    print(f"int8 x int8 MAC array, SIMD {args.simd} x PE {args.pe} = {macs} MACs per cycle")
    print(f"{'target':<10}{'design':<18}{'mult':>6}{'mult/MAC':>10}{'LUT':>8}{'FF':>8}{'Fmax MHz':>10}{'time s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            for kind in ("naive", "hdlgen"):
                label, r, seconds = measure(kind, args.simd, args.pe, target, Path(tmp), args.clock_mhz)
                fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a"
                print(f"{target:<10}{label:<18}{r.dsp:>6}{r.dsp / macs:>10.2f}{r.lut:>8}{r.ff:>8}{fmax:>10}"
                      f"{seconds:>8.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
