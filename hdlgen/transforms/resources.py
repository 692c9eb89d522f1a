"""Resource estimate of a folded pipeline, per stage, before any Verilog is generated.

Every stage is described by a few *features*: sizes its hardware grows with, known from the lowered
model and the folding alone. The LUT and flip-flop estimates are weighted sums of them, with weights
fitted per target family against Yosys's per-module cell counts (``benchmarks/resource_model.py`` fits them
and writes ``boards/resource_model.json``; the same script prints each stage's estimate beside
Yosys's count). Block RAMs and DSPs are counted, not fitted: each memory the generators mark for
block RAM is tiled onto the family's RAM geometry, and each multiplier the products use is one DSP.

Features of a matrix-vector layer with ``pe`` rows and ``simd`` inputs a cycle (its threshold or
requantization unit included):

=============  ==================================================================================
``xnor``       ``pe * simd`` XNOR terms (bipolar x bipolar): the popcount tree
``tree``       ``pe * simd * term bits`` for products made in LUTs: the adder trees
``multiplier_tree``  the same for products in multipliers (DSPs)
``product``    ``pe * simd * input bits * weight bits`` for products made in LUTs (select, shift,
               table)
``acc``        ``pe * accumulator bits``: accumulators, output FIFO
``threshold``  ``pe * comparators * accumulator bits`` (a requantization unit counts 4 comparators)
``rom``        bits of weights, thresholds and zero-skip indices kept in logic (not block RAM)
``buffer``     bits of the two-bank input buffer when it is not in block RAM
``mvu``        1: control
=============  ==================================================================================

and of the other stages: ``<kind>_bits`` (the stream's bits a beat: ``count * bits``), the bits of
their memories kept in LUT RAM (``<kind>_ram``), and a 1 for their control (``<kind>``), for the
kinds ``window``, ``pad``, ``pool`` and ``regroup`` (a width converter between stages).

LUTs are counted as ``synth`` reports them (LUT4 + 2 per CCU2C on ECP5, LUT1-6 on Xilinx, SB_LUT4 on
iCE40) plus the LUTs of distributed RAM (``LUTRAM_LUTS`` per cell).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache

from ..cores.mvu import bank_depth, in_block_ram
from ..cores.products import ProductKind, choose_product, packing
from ..cores.thresholds import threshold_comparators, threshold_entries
from ..cores.sliding_window import SlidingWindow
from ..cores.sparse_mvu import sparse_entries
from ..cores.vvu import VectorVectorUnit, vector_product, vector_unit_applies
from ..cores.weights import weight_bits, word_width
from ..errors import HdlgenError
from ..ir.lowered import (Folding, GlobalPoolStage, LoweredModel, MatrixVectorLayer, PadStage, PoolStage, WindowMaxStage,
                          WindowStage)
from ..paths import BOARDS
from ..targets import Target, get_target

__all__ = ["StageEstimate", "Estimate", "estimate", "logic_cells", "stage_features", "block_rams", "counts_by_stage", "MODEL_FILE",
           "LUTRAM_LUTS"]

MODEL_FILE = BOARDS / "resource_model.json"
# LUT sites one distributed-RAM cell takes: ECP5's TRELLIS_DPR16X4 (16 x 4 bits) takes the LUTs of
# two slices; Xilinx's RAM32M/RAM64M a SLICEM's four LUT6. iCE40 has none.
LUTRAM_LUTS = {"ecp5": 4, "xilinx": 4, "ice40": 0}
LUTRAM_BITS = {"ecp5": 64, "xilinx": 192, "ice40": 1}    # bits per distributed-RAM cell
# block RAM geometry: (width, depth) configurations of one RAM; Xilinx counts 36-Kbit RAMs, which
# hold two 18-Kbit halves
RAM_CONFIGS = {
    "ecp5": [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)],
    "xilinx": [(1, 32768), (2, 16384), (4, 8192), (9, 4096), (18, 2048), (36, 1024), (72, 512)],
    "ice40": [(2, 2048), (4, 1024), (8, 512), (16, 256)],
}
REQUANT_COMPARATORS = 4      # a requantization unit's LUTs, in comparators of accumulator width


@dataclass(frozen=True)
class StageEstimate:
    name: str
    kind: str                  # mvu, window, pad, pool or regroup
    lut: float
    ff: float
    bram: float
    dsp: int
    features: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    target: str
    stages: tuple[StageEstimate, ...]

    @property
    def lut(self) -> int:
        return round(sum(s.lut for s in self.stages))

    @property
    def ff(self) -> int:
        return round(sum(s.ff for s in self.stages))

    @property
    def bram(self) -> float:
        return sum(s.bram for s in self.stages)

    @property
    def dsp(self) -> int:
        return sum(s.dsp for s in self.stages)


def block_rams(family: str, width: int, depth: int) -> float:
    """Block RAMs one memory of ``depth`` words of ``width`` bits takes, tiled the cheapest way."""
    configs = RAM_CONFIGS[family]
    best = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in configs)
    if family == "xilinx":
        halves = min(math.ceil(width / w) * math.ceil(depth / (d // 2)) for w, d in configs if w <= 36)
        return min(best, halves / 2)
    return best


@cache
def _coefficients() -> dict:
    return json.loads(MODEL_FILE.read_text())


def coefficients(target: Target) -> dict:
    """The family's fitted model: ``lut`` and ``ff`` coefficients per feature (and on iCE40
    ``logic_cells``, see ``logic_cells``)."""
    table = _coefficients()
    family = target.family
    if family not in table["families"] or "ff" not in table["families"][family]:
        raise HdlgenError(f"the resource model has no coefficients for {target.family} ({MODEL_FILE}); "
                          f"run benchmarks/resource_model.py --fit --targets {target.name}")
    return table["families"][family]


def _mvu_features(layer: MatrixVectorLayer, fold: Folding, target: Target) -> tuple[dict, float, int]:
    """Features of a matrix-vector unit; a vector-vector unit (``cores.vvu``) counts as one of
    ``pe`` rows and one input a cycle, without an input buffer, plus its memory of running sums."""
    vector = vector_unit_applies(layer, fold)
    pe, simd = fold.pe, 1 if vector else fold.simd
    nf, sf = layer.mh // pe, layer.mw // simd
    kind = vector_product(layer, target) if vector else choose_product(layer.in_type, layer.weight_type, target, pe=pe).kind
    pack = packing(layer.in_type, layer.weight_type, target) if kind is ProductKind.PACKED else None
    in_bits = layer.in_type.bits
    w_bits = 1 if layer.weight_type.is_bipolar else layer.weight_type.bits
    term_max = (1 if layer.in_type.is_bipolar else (1 << in_bits) - 1) * layer.weight_type.magnitude
    if pack is not None:
        term_max = (1 << pack.lane_bits) - 1
    acc_bits = (VectorVectorUnit.row_acc_max(layer) if vector else layer.acc_max).bit_length()
    f = dict.fromkeys(("xnor", "tree", "multiplier_tree", "product", "acc", "threshold", "rom", "buffer"), 0.0)
    f["mvu"] = 1.0
    lanes = pe * simd
    if kind is ProductKind.XNOR:
        f["xnor"] = lanes
    elif kind in (ProductKind.MULTIPLY, ProductKind.PACKED):
        f["multiplier_tree"] = lanes * term_max.bit_length()
    else:
        f["tree"] = lanes * term_max.bit_length()
        if kind in (ProductKind.LUT, ProductKind.SHIFT):
            f["product"] = lanes * in_bits * w_bits
        elif kind is ProductKind.SELECT:
            f["product"] = lanes * in_bits
    f["acc"] = pe * acc_bits
    bram = 0.0
    family = target.family
    # weights (a zero-skipping unit stores its scheduled blocks, and their index in logic)
    words, width = nf * sf, word_width(layer, fold, pack)
    if vector:
        words, width = layer.mw // layer.mh * nf, pe * weight_bits(layer)     # one word a beat: taps x NF
        f["buffer"] = nf * pe * acc_bits                        # the running sums, in LUT RAM
    elif fold.zero_skip:
        words = sparse_entries(layer, fold)
        f["rom"] += words * ((sf - 1).bit_length() + 2)
    if in_block_ram(words, width):
        depth = bank_depth(width)
        banks = -(-words // depth)
        bram += sum(block_rams(family, width, min(depth, words - b * depth)) for b in range(banks))
    else:
        f["rom"] += words * width
    # thresholds (a table read by row group) or a requantization unit
    if layer.requant is not None:
        f["threshold"] = pe * acc_bits * REQUANT_COMPARATORS
    elif layer.thresholds is not None:
        f["threshold"] = pe * threshold_comparators(layer.out_type) * acc_bits
        if nf > 1 or threshold_entries(layer.out_type) > threshold_comparators(layer.out_type):
            # a table read by row group, or a threshold search's table (more entries than comparators)
            f["rom"] += nf * pe * threshold_entries(layer.out_type) * (acc_bits + 1)
    # the input buffer, when the input vector is reused (always, when zeros are skipped)
    if (nf > 1 or fold.zero_skip) and not vector:
        depth, bits = 2 * sf, simd * in_bits
        if in_block_ram(depth, bits):
            bram += block_rams(family, bits, depth)
        else:
            f["buffer"] = depth * bits
    bram += _fifo_brams(family, pe * acc_bits)
    dsp = 0
    if kind is ProductKind.MULTIPLY:
        dsp = lanes
    elif kind is ProductKind.PACKED:
        dsp = -(-pe // pack.lanes) * simd
    return f, bram, dsp


def _fifo_brams(family: str, width: int) -> float:
    """Block RAMs of a core's output FIFO: iCE40 has no LUT RAM, so Yosys puts every memory with a
    synchronous read there, a FIFO of a few words included (16 bits wide each)."""
    return block_rams(family, width, 16) if family == "ice40" else 0.0


def _stream_features(kind: str, bits: int, ram_bits: int = 0) -> dict:
    return {kind: 1.0, f"{kind}_bits": float(bits), f"{kind}_ram": float(ram_bits)}


def _edge_fifo(name: str, depth: int, width: int, target: Target) -> tuple:
    """An edge's FIFO (``cores.stream_fifo``), estimated with the fitted costs of the parts it shares
    with other stages: the control of a width converter (counters, a two-word register stage) and
    the window buffer's cost per bit of LUT RAM, or block RAM where Yosys puts it there."""
    ram = in_block_ram(depth, width)
    features = _stream_features("regroup", width)
    features["window_ram"] = 0.0 if ram else float(depth * width)
    bram = block_rams(target.family, width, depth) if ram else _fifo_brams(target.family, width)
    return name, "fifo", features, bram, 0


def stage_features(model: LoweredModel, foldings: dict[str, Folding], target: Target | str) -> list[tuple]:
    """(name, kind, features, block RAMs, DSPs) of every stage, width converters as stages of their own
    (named ``<next stage>_regroup``, as the top names them)."""
    from ..assemble.dataflow import edge_fifos, stream_plan
    target = get_target(target)
    out, previous, fifos = [], None, edge_fifos(model, foldings)
    for planned in stream_plan(model, foldings):
        stage = planned.stage
        bits = stage.in_type.bits
        if previous is not None and previous.out_count != planned.in_count:
            out.append((f"{stage.name}_regroup", "regroup",
                        _stream_features("regroup", (previous.out_count + planned.in_count) * bits), 0.0, 0))
        if stage.name in fifos:
            out.append(_edge_fifo(f"{stage.name}_fifo", fifos[stage.name], planned.in_count * bits, target))
        if isinstance(stage, MatrixVectorLayer):
            f, bram, dsp = _mvu_features(stage, foldings[stage.name], target)
            out.append((stage.name, "mvu", f, bram, dsp))
        elif isinstance(stage, WindowStage):
            h, w, c = stage.in_shape
            depth = SlidingWindow.rows(stage) * w * (c // planned.in_count)
            width = planned.in_count * bits
            ram = in_block_ram(depth, width)
            out.append((stage.name, "window", _stream_features("window", width, 0 if ram else depth * width),
                        (block_rams(target.family, width, depth) if ram else 0.0) + _fifo_brams(target.family, width),
                        0))
        elif isinstance(stage, PadStage):
            out.append((stage.name, "pad", _stream_features("pad", planned.in_count * bits), 0.0, 0))
        elif isinstance(stage, (PoolStage, WindowMaxStage, GlobalPoolStage)):
            width = planned.in_count * bits
            partial = stage.out_shape[1] * (stage.in_shape[2] // planned.in_count) if isinstance(stage, PoolStage) \
                else stage.out_shape[2] // planned.in_count
            out.append((stage.name, "pool", _stream_features("pool", width, partial * width), 0.0, 0))
        previous = planned
    return out


def estimate(model: LoweredModel, foldings: dict[str, Folding], target: Target | str) -> Estimate:
    """LUTs, flip-flops, block RAMs and DSPs of every stage of ``model`` folded by ``foldings`` on ``target``."""
    target = get_target(target)
    fitted = coefficients(target)
    stages = []
    for name, kind, features, bram, dsp in stage_features(model, foldings, target):
        lut, ff = (sum(fitted[r].get(k, 0.0) * v for k, v in features.items()) for r in ("lut", "ff"))
        stages.append(StageEstimate(name, kind, lut, ff, bram, dsp, features))
    return Estimate(target.name, tuple(stages))


def logic_cells(est: Estimate, target: Target | str) -> int:
    """The logic sites ``est`` takes where a LUT and a flip-flop share one (iCE40's logic cell,
    which also holds a carry): cells per estimated LUT and per estimated flip-flop, fitted against
    the cells nextpnr packs whole designs into (``benchmarks/resource_model.py --place``). A
    flip-flop takes a cell of its own where nextpnr cannot pack it with the LUT that drives it, and
    so may a carry chain's feed-in. On ECP5 and Xilinx a slice's flip-flops are counted apart from
    its LUTs, so this is the LUTs."""
    target = get_target(target)
    cells = coefficients(target).get("logic_cells")
    if cells is None:
        return est.lut
    return round(cells["lut"] * est.lut + cells["ff"] * est.ff)


def counts_by_stage(counts: dict[str, dict], names: list[str], family: str) -> dict[str, dict]:
    """Yosys's per-instance counts (``backends.synth.synthesize_by_module``) summed per stage, as the
    estimate counts them: an instance belongs to the stage whose name it is or starts with (the
    longest such), e.g. ``Conv_1_window_swg`` to ``Conv_1_window``, ``Conv_1_mvu`` to ``Conv_1``."""
    longest_first = sorted(names, key=len, reverse=True)
    out = {name: {"lut": 0, "ff": 0, "bram": 0.0, "dsp": 0} for name in names}
    for instance, c in counts.items():
        name = next((n for n in longest_first if instance == n or instance.startswith(n + "_")), None)
        if name is not None:
            out[name]["lut"] += c["lut"] + LUTRAM_LUTS[family] * c["lutram"]
            out[name]["ff"] += c["ff"]
            out[name]["bram"] += c["bram"]
            out[name]["dsp"] += c["dsp"]
    return out
