"""Multiply-accumulate arrays (SIMD 16 x PE 16 by default), synthesized here and now.

hdlgen's dot-product array, with the products ``hdlgen build`` picks for the target or with the
ones named by ``--products``, against the baseline a designer writes: ``o[p] = sum(w[p][s] * x[s])``
in Verilog, where Yosys infers one multiplier primitive per product (on ECP5 even for a 2 x 2-bit
product). All register their operands. Weights are signed, codes unsigned, both ``--bits`` wide.
Figures: multiplier primitives (DSP48E2 / DSP48E1 / MULT18X18D / SB_MAC16) per MAC, LUTs and FFs
from Yosys (ECP5: LUT4 sites as placed by nextpnr, carry cells counting two), and Fmax from nextpnr.

    python benchmarks/mac_array.py                                  # int8 on xcup and ecp5-85k
    python benchmarks/mac_array.py --bits 3 --targets ecp5-85k      # the 3 x 3-bit LUT array
    python benchmarks/mac_array.py --bits 2 3 4 5 --targets ecp5-85k --products lut multiply
                                                                    # where tables stop paying
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdlgen.backends.synth import synthesize
from hdlgen.backends.verilog import emit
from hdlgen.cores import DotProductArray
from hdlgen.cores.products import ProductKind, choose_product, packing
from hdlgen.ir import QuantType
from hdlgen.targets import get_target


def naive_verilog(name: str, simd: int, pe: int, bits: int) -> str:
    """Registered operands (signed weights, unsigned codes), a loop of products, registered sums."""
    width = 2 * bits + simd.bit_length() + 1
    return f"""module {name}(input clk, input rst, input [{bits * simd - 1}:0] x, input [{bits * simd * pe - 1}:0] w,
                output reg [{width * pe - 1}:0] o);
  reg [{bits * simd - 1}:0] x_r;
  reg [{bits * simd * pe - 1}:0] w_r;
  reg signed [{width - 1}:0] acc;
  integer p, k;
  always @(posedge clk) begin
    x_r <= x;
    w_r <= w;
    for (p = 0; p < {pe}; p = p + 1) begin
      acc = 0;
      for (k = 0; k < {simd}; k = k + 1)
        acc = acc + $signed({{1'b0, x_r[{bits} * k +: {bits}]}}) * $signed(w_r[{bits} * (p * {simd} + k) +: {bits}]);
      o[p * {width} +: {width}] <= acc;
    end
  end
endmodule
"""


class Registered(wiring.Component):
    """Registers around hdlgen's dot-product array."""

    def __init__(self, *, simd: int, pe: int, bits: int, target: str, product: ProductKind | None):
        target = get_target(target)
        in_type, weight_type = QuantType.uint(bits), QuantType.int(bits)
        self.product = product or choose_product(in_type, weight_type, target, pe=pe).kind
        pack = packing(in_type, weight_type, target) if self.product is ProductKind.PACKED else None
        self._dots = DotProductArray(in_type=in_type, weight_type=weight_type, pe=pe, simd=simd,
                                     tree_group=target.tree_group, product=self.product, packing=pack)
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


def measure(design: str, simd: int, pe: int, bits: int, target: str, workdir: Path, clock_mhz: float):
    """Synthesize one design: 'naive', 'chosen' (hdlgen's choice) or a product kind's name."""
    name = f"mac_{design}_{bits}"
    verilog = workdir / f"{name}-{target}.v"
    if design == "naive":
        label = "naive *"
        verilog.write_text(naive_verilog(name, simd, pe, bits))
    else:
        dut = Registered(simd=simd, pe=pe, bits=bits, target=target,
                         product=None if design == "chosen" else ProductKind(design))
        label = f"hdlgen {dut.product.value}"
        verilog.write_text(emit(dut, name))
    start = time.monotonic()
    result = synthesize(verilog, name, target, workdir / f"{name}-{target}", clock_mhz=clock_mhz)
    return label, result, time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simd", type=int, default=16)
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--bits", type=int, nargs="+", default=[8], help="operand widths to measure")
    parser.add_argument("--targets", nargs="+", default=["xcup", "ecp5-85k"])
    parser.add_argument("--products", nargs="+", default=["chosen"],
                        help="hdlgen designs: 'chosen' (as hdlgen build picks) or product kinds (lut, packed, multiply)")
    parser.add_argument("--clock-mhz", type=float, default=200.0, help="nextpnr timing target")
    args = parser.parse_args(argv)
    macs = args.simd * args.pe
    print(f"MAC arrays, SIMD {args.simd} x PE {args.pe} = {macs} MACs per cycle (signed weights x unsigned codes)")
    print(f"{'target':<10}{'bits':>5}  {'design':<18}{'mult':>6}{'mult/MAC':>10}{'LUT':>8}{'LUT/MAC':>9}{'FF':>8}"
          f"{'Fmax MHz':>10}{'time s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            for bits in args.bits:
                for design in ["naive", *args.products]:
                    label, r, seconds = measure(design, args.simd, args.pe, bits, target, Path(tmp), args.clock_mhz)
                    fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a"
                    print(f"{target:<10}{bits:>5}  {label:<18}{r.dsp:>6}{r.dsp / macs:>10.2f}{r.lut:>8}"
                          f"{r.lut / macs:>9.1f}{r.ff:>8}{fmax:>10}{seconds:>8.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
