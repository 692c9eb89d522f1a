"""The Python API, in the style of hls4ml's: build a design, predict with its golden model, simulate
its RTL, synthesize it. The command line is a layer over the same functions.

    import hdlgen
    design = hdlgen.build("examples/digits/model.json", target="ecp5-85k")
    print(design.report_text())
    y = design.predict(x)             # the golden model, in the model's units
    sim = design.simulate(x)          # the RTL on Verilator: sim.outputs equals y, frame by frame
    res = design.synthesize()         # Yosys (+ nextpnr): LUT, FF, BRAM, DSP, Fmax
    bit = design.bitstream("icebreaker")          # the board shell with its UART link, as a bitstream
    run = design.run_on_board(x, port="sim")      # the UART link to the shell on Verilator (or "/dev/ttyUSB0")
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import options as O
from .errors import HdlgenError
from .targets import DEFAULT_TARGET

__all__ = ["Design", "build", "open_design", "report_text"]


class Design:
    """A build directory: its Verilog, report and lowered model (``hdlgen build`` wrote it)."""

    def __init__(self, path: str | Path):
        from .flow import BuildDir

        self.path = Path(path)
        self._build = BuildDir.open(self.path)

    @property
    def report(self) -> dict:
        """``report.json`` as a dict: per layer folding, cycles, memory, products, requantization."""
        return copy.deepcopy(self._build.report)

    @property
    def verilog(self) -> Path:
        return self._build.verilog

    def report_text(self) -> str:
        """The per-layer table ``hdlgen build`` prints."""
        return report_text(self._build.report, self.path)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The golden model's outputs for inputs ``x`` (model units, batch first), as the RTL gives them."""
        from .golden import predict
        from .golden.reference import check_inputs

        return predict(self._build.model, check_inputs(self._build.model.input, x))

    def simulate(self, x: np.ndarray, *, progress: bool = False, idle: float = 0.0, backpressure: float = 0.0,
                 seed: int = 0):
        """Run ``x`` through the RTL on Verilator. Returns a ``SimResult``: ``outputs`` (model units),
        ``hw_words`` beside ``golden_words``, measured and modelled cycles per frame. ``idle`` and
        ``backpressure`` stall the input and the output in that share of cycles (from ``seed``)."""
        from .flow import Progress, simulate
        from .golden.reference import check_inputs

        O.check("progress", O.Flag(), progress)
        return simulate(self._build, check_inputs(self._build.model.input, x),
                        progress=Progress(2, enabled=progress), idle=idle, backpressure=backpressure, seed=seed)

    def synthesize(self, target: str | None = None, *, clock_mhz: float = 100.0, workdir: str | Path | None = None):
        """Synthesize for ``target`` (default: the build's own) with Yosys, placed and routed by nextpnr
        where the target has it. Returns a ``SynthResult`` (``lut``, ``ff``, ``bram``, ``dsp``, ``fmax_mhz``)."""
        from .backends.synth import synthesize

        from .targets import target_names

        target = O.check("target", O.Choice(target_names()), self._build.report["target"] if target is None else target)
        clock_mhz = O.check("clock_mhz", O.CLOCK_MHZ, clock_mhz)
        workdir = Path(workdir) if workdir is not None else self._build.record("synth") / target
        try:
            return synthesize(self._build.verilog, self._build.report["top"], target, workdir, clock_mhz=clock_mhz,
                              stream_bits=self._build.stream_bits)
        finally:
            if workdir.is_dir() and self.path.resolve() in workdir.resolve().parents:
                self._build.seal(workdir)

    def bitstream(self, board: str, *, clock_mhz: float | None = None, baud: int | None = None,
                  allow_timing_fail: bool = False, progress: bool = False):
        """The design in ``board``'s shell (UART link) as a bitstream, in ``OUT/board/BOARD``. Returns a
        ``BitstreamResult``: the file, placed LUT/FF/BRAM/DSP against the device's, Fmax, clock and baud."""
        from .backends.bitstream import make_bitstream
        from .flow import Progress

        O.check("progress", O.Flag(), progress)
        return make_bitstream(self._build, board, clock_mhz=clock_mhz, baud=baud, allow_timing_fail=allow_timing_fail,
                              progress=Progress(1, enabled=progress), bars=progress)

    def run_on_board(self, x: np.ndarray, *, port: str = "sim", board: str | None = None, baud: int | None = None,
                     timeout: float | None = None, retries: int = 8, faults: dict | None = None,
                     progress: bool = False):
        """Send ``x`` frame by frame over the UART link to a board on serial ``port``, or to the board
        shell on Verilator (``port="sim"``). Returns a ``BoardRun``: ``outputs`` (model units), the
        words beside the golden model's, and link statistics (frames/s, retries)."""
        from .flow import Progress
        from .golden.reference import check_inputs
        from .host.run import run_on_board

        O.check("progress", O.Flag(), progress)
        return run_on_board(self._build, check_inputs(self._build.model.input, x), port=port, board=board, baud=baud,
                            timeout=timeout, retries=retries, faults=faults, progress=Progress(1, enabled=progress),
                            bars=progress)

    def __repr__(self) -> str:
        report = self._build.report
        return (f"Design({str(self.path)!r}, target={report['target']!r}, "
                f"{report['pipeline']['initiation_interval_cycles']} cycles per frame)")


def build(model: str | Path, outdir: str | Path | None = None, *, target: str = DEFAULT_TARGET, fold="auto",
          target_fps: float | None = None, clock_mhz: float = 100.0, requant: str = "auto", bn: str = "exact",
          bn_check: tuple[np.ndarray, np.ndarray] | None = None, input_type: str | None = None,
          output: str = "scores", progress: bool = False) -> Design:
    """Build the model file ``model`` (QONNX, ONNX QDQ or a native ``.json``) into ``outdir`` and open it.

    ``outdir`` defaults to a new temporary directory, which is kept for the design's simulations.
    ``fold`` is ``"auto"``, ``"fit"`` (the fastest folding that fits the target's device), a folding file, or a dict ``{layer: {"pe": N, "simd": N}}``. The other
    options are those of ``hdlgen build``."""
    from .flow import Progress
    from .flow import build as flow_build

    model = _path("model", model)
    outdir = None if outdir is None else _path("outdir", outdir)
    O.check("progress", O.Flag(), progress)
    made = outdir is None
    outdir = Path(tempfile.mkdtemp(prefix="hdlgen-design-")) / "build" if made else outdir
    try:          # flow.build checks the other options, as it does the command line's
        flow_build(model, outdir, fold=Path(fold) if isinstance(fold, os.PathLike) else fold, target_fps=target_fps,
                   clock_mhz=clock_mhz, target=target, progress=Progress(4, enabled=progress), requant=requant, bn=bn,
                   bn_check=bn_check, input_type=input_type, output=output)
    except BaseException:
        if made:
            shutil.rmtree(outdir.parent, ignore_errors=True)
        raise
    return Design(outdir)


def open_design(path: str | Path) -> Design:
    """An existing build directory as a design."""
    return Design(_path("path", path))


def _path(name: str, value) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise HdlgenError(f"{name}: expected a path (str or pathlib.Path), not {value!r}")
    return Path(value)


def report_text(report: dict, outdir: Path) -> str:
    """A build's report as ``hdlgen build`` prints it."""
    lines = [f"wrote {outdir}/{report['top']}.v, report.json, lowered.json/.npz"]
    if report["exactness_notes"]:
        layers = ", ".join(note.split(":")[0] for note in report["exactness_notes"])
        lines.append(f"note: scales that are not powers of two in {layers}: a float32 executor rounds these layers' "
                     f"dot products and hdlgen computes them exactly, so outputs can differ from execute_onnx "
                     f"(report.json, docs/qonnx.md)")
    bn = report.get("batchnorm")
    if bn:
        line = f"batch norm: {bn['converted']} layer(s) made shift-based (multipliers rounded to powers of two)"
        if "frames" in bn:
            line += (f"; accuracy {bn['accuracy_before']:.4f} -> {bn['accuracy_after']:.4f} on {bn['frames']} frames "
                     f"(golden models)")
        lines.append(line)
    classes = report["output"].get("classes")
    if classes:
        how = "the words themselves" if classes["key"] == "direct" else \
            f"a table of the outputs' ranks ({classes['table_bits']:,} bits)"
        lines.append(f"output: the class index, an argmax over {classes['features']} outputs in hardware, compared by "
                     f"{how}; first index on ties, as numpy")
    elif report["output"]["host_op"]:
        lines.append(f"note: the model's final {report['output']['host_op']} runs on the host: the hardware emits the "
                     f"logits and sim applies it, as onnxruntime does")
    width = max([len("layer")] + [len(layer["name"]) for layer in report["layers"]]) + 2
    lines.append(f"{'layer':<{width}}{'MW x MH':>13}{'PE':>5}{'SIMD':>6}{'cycles':>9}{'weight bits':>13}  "
                 f"{'products':<10}requantization")
    for layer in report["layers"]:
        size = f"{layer['mw']} x {layer['mh']}"
        unit = layer["threshold_unit"] or "-"
        if layer.get("requant_differing"):
            unit += f" ({layer['requant_differing']} steps differ from the exact thresholds)"
        lines.append(f"{layer['name']:<{width}}{size:>13}{layer['pe']:>5}{layer['simd']:>6}"
                     f"{layer['cycles_per_frame']:>9}{layer['weight_memory_bits']:>13}  {layer['product']:<10}{unit}")
    skipping = [layer for layer in report["layers"] if layer.get("zero_skip")]
    if skipping:
        lines.append("zero-skip: " + ", ".join(f"{layer['name']} issues {layer['weight_memory_shape'][0]} blocks a "
                                                f"vector of {layer['blocks']} ({layer['zero_blocks']} all zero)"
                                                for layer in skipping))
    est = report.get("estimate")
    if est:
        device = est["device"]
        of = (lambda k: f" of {device[k]:,}") if device else (lambda k: "")
        logic = (f"{est['lut']:,} LUT and {est['ff']:,} FF in {est['logic_cells']:,} logic cells{of('lut')}"
                 if "logic_cells" in est else f"{est['lut']:,} LUT{of('lut')}, {est.get('ff', 0):,} FF")
        lines.append(f"estimate: {logic}, {est['bram']:g} block RAM{of('bram')}, "
                     f"{est['dsp']} DSP{of('dsp')} on {report['target']} (transforms/resources.py)")
        if est.get("over_device"):
            lines.append(f"warning: {est['over_device']}")
    pipe = report["pipeline"]
    lines.append(f"pipeline: {pipe['initiation_interval_cycles']} cycles per frame "
                 f"({report['frames_per_second_at_clock']:,.0f} frames/s at {report['clock_mhz_for_fps']:g} MHz), "
                 f"bottleneck {pipe['bottleneck']}")
    return "\n".join(lines)
