"""Dot-product datapaths (SIMD 64 x PE 16 by default) against a naive ``sum()``, synthesized here and now.

``--operands``: ``xnor`` (bipolar x bipolar, the XNOR-popcount; the default), ``ternary`` (bipolar
inputs x ternary weights) and ``uint2`` (2-bit activations x bipolar weights). All designs register the input word and the weights (a second input, as a folded layer reads them
from memory) and register the counts. Figures: LUT per input bit and Fmax on ECP5-85k speed 6
(Yosys + nextpnr, out of context), and LUT per input bit on Xilinx 7-series (Yosys estimate).

    python benchmarks/popcount.py [--simd 64] [--pe 16] [--targets ecp5-85k xc7] [--operands xnor ternary uint2]

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
from dataclasses import dataclass
from pathlib import Path

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hdlgen.backends.synth import synthesize
from hdlgen.backends.verilog import emit
from hdlgen.cores import DotProductArray
from hdlgen.targets import get_target
from hdlgen.ir import BIPOLAR, TERNARY, QuantType


# the carry cells measured per family (a target's own choice is its 'carry_cells', boards/targets.json)
CARRY_CELLS = {"ecp5": "ccu2c", "xilinx": "carry4"}


@dataclass(frozen=True)
class Operands:
    """One kind of dot product: input and weight types, their bits in the datapath's encoding
    (``cores.weights``), and the term as the baseline's Verilog writes it from ``xi`` and ``wi``."""
    in_type: QuantType
    weight_type: QuantType
    in_bits: int
    w_bits: int
    term_max: int
    verilog_term: str


OPERANDS = {
    # bipolar x bipolar: XNOR-popcount
    "xnor": Operands(BIPOLAR, BIPOLAR, 1, 1, 1, "(xi ~^ wi)"),
    # bipolar inputs x ternary weights (bit 0 non-zero, bit 1 positive): x, its inverse, or 0
    "ternary": Operands(BIPOLAR, TERNARY, 1, 2, 1, "(wi[0] & (xi ~^ wi[1]))"),
    # 2-bit activations x bipolar weights: the code, or its inverse for a weight of -1
    "uint2": Operands(QuantType.uint(2), BIPOLAR, 2, 1, 3, "(xi ^ {2{~wi}})"),
}


def naive_verilog(name: str, simd: int, pe: int, ops: Operands) -> str:
    """The baseline as a designer would write it: registered inputs, a loop of additions, registered counts."""
    width = (simd * ops.term_max).bit_length()
    xb, wb = ops.in_bits, ops.w_bits
    return f"""module {name}(input clk, input rst, input [{simd * xb - 1}:0] x, input [{simd * pe * wb - 1}:0] w,
                output reg [{width * pe - 1}:0] o);
  reg [{simd * xb - 1}:0] x_r;
  reg [{simd * pe * wb - 1}:0] w_r;
  reg [{width - 1}:0] count;
  reg [{xb - 1}:0] xi;
  reg [{wb - 1}:0] wi;
  integer p, k;
  always @(posedge clk) begin
    x_r <= x;
    w_r <= w;
    for (p = 0; p < {pe}; p = p + 1) begin
      count = 0;
      for (k = 0; k < {simd}; k = k + 1) begin
        xi = x_r[k * {xb} +: {xb}];
        wi = w_r[(p * {simd} + k) * {wb} +: {wb}];
        count = count + {ops.verilog_term};
      end
      o[p * {width} +: {width}] <= count;
    end
  end
endmodule
"""


class Registered(wiring.Component):
    """Registers around hdlgen's dot-product datapath (terms into pipelined adder trees, or the
    XNOR folded into a carry-chain compressor tree)."""

    def __init__(self, *, simd: int, pe: int, ops: Operands, tree_group: int, carry_cells: str | None = None):
        self._simd, self._pe, self._ops, self._tree_group, self._carry_cells = simd, pe, ops, tree_group, carry_cells
        self._x_layout = data.ArrayLayout(ops.in_bits, simd)
        self._w_layout = data.ArrayLayout(data.ArrayLayout(ops.w_bits, simd), pe)
        super().__init__({
            "x": In(self._x_layout), "w": In(self._w_layout),
            "o": Out(data.ArrayLayout(range(simd * ops.term_max + 1), pe)),
        })

    def elaborate(self, platform):
        m = Module()
        x, w = Signal(self._x_layout), Signal(self._w_layout)
        m.d.sync += [x.eq(self.x), w.eq(self.w)]
        m.submodules.dots = dots = DotProductArray(in_type=self._ops.in_type, weight_type=self._ops.weight_type,
                                                   pe=self._pe, simd=self._simd, tree_group=self._tree_group,
                                                   carry_cells=self._carry_cells)
        m.d.comb += [dots.x.as_value().eq(x.as_value()), dots.w.as_value().eq(w.as_value())]
        m.d.comb += self.o.eq(dots.o)
        return m


def measure(kind: str, operands: str, simd: int, pe: int, target: str, workdir: Path, clock_mhz: float):
    ops = OPERANDS[operands]
    verilog = workdir / f"{operands}-{kind}.v"
    name = f"popcount_{kind}"
    # trees are shaped for the target's LUT size, as 'hdlgen build --target' does
    group, cells = get_target(target).tree_group, CARRY_CELLS.get(get_target(target).family)
    verilog.write_text(naive_verilog(name, simd, pe, ops) if kind == "naive"
                       else emit(Registered(simd=simd, pe=pe, ops=ops, tree_group=group,
                                            carry_cells=cells if kind == "carry" else None), name))
    start = time.monotonic()
    result = synthesize(verilog, name, target, workdir / f"{operands}-{kind}-{target}", clock_mhz=clock_mhz)
    return result, time.monotonic() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simd", type=int, default=64)
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--targets", nargs="+", default=["ecp5-85k", "xc7"])
    parser.add_argument("--clock-mhz", type=float, default=250.0, help="nextpnr timing target")
    parser.add_argument("--operands", nargs="+", default=["xnor"], choices=sorted(OPERANDS),
                        help="xnor (bipolar x bipolar), ternary (bipolar x ternary), uint2 (2-bit x bipolar)")
    args = parser.parse_args(argv)
    bits = args.simd * args.pe
    print(f"dot products, SIMD {args.simd} x PE {args.pe} = {bits} input terms ('bit' below: a term)")
    print(f"{'operands':<9}{'target':<10}{'design':<8}{'LUT':>7}{'LUT/bit':>9}{'synth/bit':>10}{'FF':>7}{'carry':>7}"
          f"{'Fmax MHz':>10}{'time s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for operands in args.operands:
            for target in args.targets:
                # the carry-cell tree folds an XNOR: it is built for bipolar x bipolar only
                carry = operands == "xnor" and get_target(target).family in CARRY_CELLS
                built = "carry" if operands == "xnor" and get_target(target).carry_cells else "tree"
                for kind in ("naive", "tree", "carry") if carry else ("naive", "tree"):
                    r, seconds = measure(kind, operands, args.simd, args.pe, target, Path(tmp), args.clock_mhz)
                    fmax = f"{r.fmax_mhz:.1f}" if r.fmax_mhz else "n/a"
                    mapper = "" if r.lut_mapper == "abc9" else f"  LUT mapping: {r.lut_mapper}"
                    print(f"{operands:<9}{target:<10}{kind + ('*' if kind == built else ''):<8}{r.lut:>7}"
                          f"{r.lut / bits:>9.2f}{r.lut_synth / bits:>10.2f}{r.ff:>7}{r.carry:>7}{fmax:>10}"
                          f"{seconds:>8.0f}{mapper}", flush=True)

if __name__ == "__main__":
    sys.exit(main())
