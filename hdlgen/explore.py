"""``hdlgen explore``: the foldings of a model, from the slowest to the fastest, with their estimated
resources, written as a table (CSV) and a plot (PNG) of LUTs and block RAMs against frames/s.

The foldings are ``transforms.device_fit.foldings_by_rate``'s; the estimate is
``transforms.resources``'. A point is *Pareto* when no other point is at least as fast with at most
as many LUTs and block RAMs (and DSPs), one of them strictly better. ``synth`` points are synthesized
(Yosys, no place and route) and their counts written beside the estimate, to check it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HdlgenError
from .ir.lowered import Folding, LoweredModel
from .targets import get_target
from .transforms.device_fit import UTILISATION, foldings_by_rate, over_limits
from .transforms.resources import LUTRAM_LUTS, estimate, logic_cells

__all__ = ["Point", "explore_points", "pareto", "write_table", "write_plot", "synthesize_point", "CSV_NAME", "PNG_NAME"]

CSV_NAME, PNG_NAME = "explore.csv", "explore.png"
COLUMNS = ["point", "frames_per_second", "cycles_per_frame", "lut", "ff", "logic_cells", "bram", "dsp", "fits", "pareto",
           "yosys_lut", "yosys_ff", "nextpnr_logic_cells", "yosys_bram", "yosys_dsp", "folding"]


@dataclass
class Point:
    index: int
    cycles: int
    fps: float
    lut: int
    ff: int
    cells: int | None                 # iCE40's logic cells (a LUT and a flip-flop each); None elsewhere
    bram: float
    dsp: int
    fits: bool | None                 # None: the target names no device
    foldings: dict[str, Folding]
    pareto: bool = False
    measured: dict | None = field(default=None)

    @property
    def sites(self) -> int:
        """The LUT sites the point takes: logic cells on iCE40, else LUTs."""
        return self.lut if self.cells is None else self.cells


def explore_points(model: LoweredModel, target: str, clock_mhz: float, max_lanes: int) -> list[Point]:
    """Every distinct balanced folding from the slowest to the fastest (within ``max_lanes``)."""
    has_device = get_target(target).resources is not None
    shares_cells = get_target(target).family == "ice40"
    points = []
    for k, (cycles, foldings) in enumerate(foldings_by_rate(model, target, clock_mhz, max_lanes)):
        est = estimate(model, foldings, target)
        fits = not over_limits(est, target) if has_device else None
        cells = logic_cells(est, target) if shares_cells else None
        points.append(Point(k, cycles, clock_mhz * 1e6 / cycles, est.lut, est.ff, cells, est.bram, est.dsp, fits,
                            foldings))
    for p in points:
        p.pareto = not any(_dominates(q, p) for q in points)
    return points


def _dominates(q: Point, p: Point) -> bool:
    no_worse = q.fps >= p.fps and q.sites <= p.sites and q.bram <= p.bram and q.dsp <= p.dsp
    better = q.fps > p.fps or q.sites < p.sites or q.bram < p.bram or q.dsp < p.dsp
    return no_worse and better


def pareto(points: list[Point]) -> list[Point]:
    return [p for p in points if p.pareto]


def synthesize_point(model: LoweredModel, point: Point, target: str, workdir: Path) -> dict:
    """Yosys's LUT (distributed RAM included, as the estimate counts it), flip-flop, block RAM and DSP
    counts, and the LUT sites: on iCE40 the logic cells nextpnr packs the design into (in the IO
    shell ``hdlgen synth`` places it in; packing only, no placement), else the LUTs."""
    from .assemble import DataflowTop
    from .backends.synth import synthesize
    from .backends.verilog import emit

    top = DataflowTop(model=model, foldings=point.foldings, target=target)
    workdir.mkdir(parents=True, exist_ok=True)
    verilog = workdir / "top.v"
    verilog.write_text(emit(top, "top"))
    family = get_target(target).family
    packed = family == "ice40"
    bits = (len(top.i.payload.as_value()), len(top.o.payload.as_value()))
    result = synthesize(verilog, "top", target, workdir, place=packed, pack_only=packed, stream_bits=bits)
    out = {"lut": result.lut_synth + LUTRAM_LUTS[family] * result.lutram, "ff": result.ff, "bram": result.bram,
           "dsp": result.dsp}
    return {**out, "sites": result.lut if packed else out["lut"]}


def table_text(points: list[Point]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in points:
        m = p.measured or {}
        writer.writerow([p.index, f"{p.fps:.1f}", p.cycles, p.lut, p.ff, "" if p.cells is None else p.cells,
                         f"{p.bram:g}", p.dsp, "" if p.fits is None else int(p.fits), int(p.pareto), m.get("lut", ""),
                         m.get("ff", ""), m["sites"] if m and p.cells is not None else "",
                         "" if "bram" not in m else f"{m['bram']:g}", m.get("dsp", ""),
                         json.dumps({k: {"pe": f.pe, "simd": f.simd, "zero_skip": f.zero_skip}
                                     for k, f in p.foldings.items()})])
    return out.getvalue()


def write_table(points: list[Point], path: Path) -> None:
    from .builddir import write_file
    write_file(path, table_text(points).encode())


def write_plot(points: list[Point], path: Path, *, title: str, device: dict | None, sites: str = "LUTs") -> None:
    """Two panels, LUT sites (``sites``: LUTs, or iCE40's logic cells) and block RAMs against
    frames/s (log-log), Pareto points marked, the device's limits drawn, synthesized points as crosses."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from .builddir import write_file

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, key, label in ((axes[0], "sites", sites), (axes[1], "bram", "block RAMs")):
        xs = [p.fps for p in points]
        ax.plot(xs, [max(getattr(p, key), 0.5) for p in points], color="0.75", zorder=1)
        others = [p for p in points if not p.pareto]
        front = pareto(points)
        ax.scatter([p.fps for p in others], [max(getattr(p, key), 0.5) for p in others], s=14, color="0.55",
                   label="estimate", zorder=2)
        ax.scatter([p.fps for p in front], [max(getattr(p, key), 0.5) for p in front], s=34, color="tab:red",
                   label="estimate, Pareto", zorder=3)
        measured = [p for p in points if p.measured]
        if measured:
            ax.scatter([p.fps for p in measured], [max(p.measured[key], 0.5) for p in measured], marker="x", s=50,
                       color="tab:blue", label="Yosys", zorder=4)
        if device:
            limit = "lut" if key == "sites" else key
            usable = device[limit] * UTILISATION[limit]
            ax.axhline(usable, color="tab:green", linestyle="--", linewidth=1,
                       label="device" if UTILISATION[limit] == 1 else f"device, {UTILISATION[limit]:.0%} usable")
        ax.set_xscale("log")
        if key == "sites":
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("frames/s")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_file(path, buffer.getvalue())


def parse_synth(text: str | None, points: list[Point]) -> list[Point]:
    """``--synth``: ``pareto``, or point numbers separated by commas."""
    if text is None:
        return []
    if text == "pareto":
        return pareto(points)
    chosen = []
    for part in text.split(","):
        try:
            k = int(part)
        except ValueError:
            raise HdlgenError(f"--synth {text}: give 'pareto' or point numbers separated by commas (0 .. "
                              f"{len(points) - 1})") from None
        if not 0 <= k < len(points):
            raise HdlgenError(f"--synth {text}: there is no point {k}; the points are 0 .. {len(points) - 1}")
        chosen.append(points[k])
    return chosen
