"""XNOR-popcount datapath (SIMD 64 x PE 16 by default) against a naive ``sum()``, synthesized here and now.

Both designs register the input word and the weights (a second input, as a folded layer reads them
from memory) and register the counts. Figures: LUT per input bit and Fmax on ECP5-85k speed 6
(Yosys + nextpnr, out of context), and LUT per input bit on Xilinx 7-series (Yosys estimate).

    python benchmarks/popcount.py [--simd 64] [--pe 16] [--targets ecp5-85k xc7]

ECP5 LUT counts are LUT4 sites as placed (TRELLIS_COMB: a CCU2C carry cell takes two; nextpnr
also counts LUTs it uses to route); 'synth/bit' is the same from Yosys's netlist (LUT4 + 2 x CCU2C).
The trees are shaped for the target's LUT size (2 terms per first-level group on LUT4, 3 on LUT6).
'carry' is the compressor tree on the family's carry cells with the XNOR folded into its first level
(``cores.carry_tree``: CCU2C on ECP5, LUT6_2 + CARRY4 on Xilinx). A '*' marks the design that
'hdlgen build --target' makes for that target.
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
from hdlgen.targets import get_target
from hdlgen.ir import BIPOLAR


# the carry cells measured per family (a target's own choice is its 'carry_cells', boards/targets.json)
CARRY_CELLS = {"ecp5": "ccu2c", "xilinx": "carry4"}


def naive_verilog(name: str, simd: int, pe: int) -> str:
    """The baseline as a designer would write it: registered inputs, a loop of additions, registered counts."""
    width = simd.bit_length()
    return f"""module {name}(input clk, input rst, input [{simd - 1}:0] x, input [{simd * pe - 1}:0] w,
                output reg [{width * pe - 1}:0] o);
  reg [{simd - 1}:0] x_r;
  reg [{simd * pe - 1}:0] w_r;
  reg [{width - 1}:0] count;
  integer p, k;
  always @(posedge clk) begin
    x_r <= x;
    w_r <= w;
    for (p = 0; p < {pe}; p = p + 1) begin
      count = 0;
      for (k = 0; k < {simd}; k = k + 1)
        count = count + (x_r[k] ~^ w_r[p * {simd} + k]);
      o[p * {width} +: {width}] <= count;
    end
  end
endmodule
"""


class Registered(wiring.Component):
    """Registers around hdlgen's bipolar dot-product datapath (XNOR terms into pipelined adder trees)."""

    def __init__(self, *, simd: int, pe: int, tree_group: int, carry_cells: str | None = None):
        self._simd, self._pe, self._tree_group, self._carry_cells = simd, pe, tree_group, carry_cells
        super().__init__({
            "x": In(simd), "w": In(data.ArrayLayout(simd, pe)),
            "o": Out(data.ArrayLayout(range(simd + 1), pe)),
        })

    def elaborate(self, platform):
        m = Module()
        x, w = Signal(self._simd), Signal(data.ArrayLayout(self._simd, self._pe))
        m.d.sync += [x.eq(self.x), w.eq(self.w)]
        m.submodules.dots = dots = DotProductArray(in_type=BIPOLAR, weight_type=BIPOLAR, pe=self._pe, simd=self._simd,
                                                   tree_group=self._tree_group, carry_cells=self._carry_cells)
        m.d.comb += [dots.x.as_value().eq(x), dots.w.as_value().eq(w)]
        m.d.comb += self.o.eq(dots.o)
        return m


def measure(kind: str, simd: int, pe: int, target: str, workdir: Path, clock_mhz: float):
    verilog = workdir / f"{kind}.v"
    name = f"popcount_{kind}"
    # trees are shaped for the target's LUT size, as 'hdlgen build --target' does
    group, cells = get_target(target).tree_group, CARRY_CELLS.get(get_target(target).family)
    verilog.write_text(naive_verilog(name, simd, pe) if kind == "naive"
                       else emit(Registered(simd=simd, pe=pe, tree_group=group,
                                            carry_cells=cells if kind == "carry" else None), name))
    start = time.monotonic()
    result = synthesize(verilog, f"popcount_{kind}", target, workdir / f"{kind}-{target}", clock_mhz=clock_mhz)
    return result, time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simd", type=int, default=64)
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--targets", nargs="+", default=["ecp5-85k", "xc7"])
    parser.add_argument("--clock-mhz", type=float, default=250.0, help="nextpnr timing target")
    args = parser.parse_args(argv)
    bits = args.simd * args.pe
    print(f"XNOR-popcount, SIMD {args.simd} x PE {args.pe} = {bits} input bits")
    print(f"{'target':<10}{'design':<8}{'LUT':>7}{'LUT/bit':>9}{'synth/bit':>10}{'FF':>7}{'carry':>7}{'Fmax MHz':>10}"
          f"{'time s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            kinds = ("naive", "tree", "carry") if get_target(target).family in CARRY_CELLS else ("naive", "tree")
            for kind in kinds:
                r, seconds = measure(kind, args.simd, args.pe, target, Path(tmp), args.clock_mhz)
                fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a"
                mapper = "" if r.lut_mapper == "abc9" else f"  LUT mapping: {r.lut_mapper}"
                built = "carry" if get_target(target).carry_cells else "tree"
                print(f"{target:<10}{kind + ('*' if kind == built else ''):<8}{r.lut:>7}{r.lut / bits:>9.2f}{r.lut_synth / bits:>10.2f}{r.ff:>7}{r.carry:>7}{fmax:>10}"
                      f"{seconds:>8.0f}{mapper}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
