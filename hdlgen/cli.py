"""Command line: ``hdlgen build | sim | synth | quantize | inspect | demo``.

User mistakes (bad model, bad option, missing tool) print one line, ``hdlgen: error: ...``, and
exit with status 2. Steps that take seconds print progress on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from .errors import HdlgenError
from .paths import EXAMPLES

DEMO_MODEL = EXAMPLES / "digits" / "model.json"
DEMO_DIR = "build/demo"


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as the one-line ``hdlgen: error:`` of every other mistake."""

    def error(self, message):
        command = self.prog.partition(" ")[2]
        if "required: command" in message:
            message = "give a command: build, sim, synth, quantize, inspect or demo (hdlgen --help says more)"
        raise HdlgenError(f"{command}: {message}" if command else message)


def _option(kind) -> dict:
    """argparse settings for an option declared in ``hdlgen.options``: its parser, and for words the choices."""
    from .options import Choice, argparse_type

    settings = {"type": argparse_type(kind)}
    if isinstance(kind, Choice):
        settings["metavar"] = "{" + ",".join(kind.choices) + "}"
    return settings


def _given(names: str) -> dict:
    """argparse settings for a path or a word taken as given, tagged with what it ``names`` (an input
    file, a build directory, ...): the robustness suite generates its cases from the tag."""
    def text(value: str) -> str:
        return value
    text.names = names
    return {"type": text}


INPUT_TYPE_HELP = ("the input's format for an ONNX model whose input no quantizer covers, as a QONNX DataType "
                   "name: INT8, UINT8, BIPOLAR, BINARY, FIXED<8,3> (overrides a finn_datatype annotation)")


def _print_build(report: dict, outdir: Path) -> None:
    from .api import report_text

    print(report_text(report, outdir))


def cmd_build(args) -> int:
    from .flow import Progress, build
    from .size_guard import SizeGuard

    from .readers import read_npy

    if (args.check_inputs is None) != (args.check_labels is None):
        raise HdlgenError("--check-inputs and --check-labels go together")
    if args.check_inputs is not None and args.bn != "shift":
        raise HdlgenError("--check-inputs and --check-labels measure what --bn shift changes; add --bn shift")
    check = None
    if args.check_inputs is not None:
        x = read_npy(Path(args.check_inputs), "inputs")
        if x.ndim == 0 or x.size == 0:
            raise HdlgenError(f"{args.check_inputs}: holds no frames (shape {x.shape}); give at least one input row")
        from .flow import check_labels

        labels = check_labels(read_npy(Path(args.check_labels), "labels"), len(x), None, args.check_labels)
        check = (x, labels)
    report = build(Path(args.model), Path(args.outdir), fold=args.fold, target_fps=args.target_fps,
                   clock_mhz=args.clock_mhz, target=args.target, progress=Progress(4, enabled=not args.quiet),
                   guard=SizeGuard(max_weight_bits=args.max_weight_bits, max_lanes=args.max_lanes),
                   input_type=args.input_type, requant=args.requant, bn=args.bn, bn_check=check,
                   output=args.output)
    _print_build(report, Path(args.outdir))
    return 0


def _print_sim(result, labels) -> None:
    from .flow import accuracy

    frames = len(result.hw_words)
    same = np.all(result.hw_words == result.golden_words, axis=1)
    print(f"RTL == golden model on {int(same.sum())}/{frames} frames")
    if labels is not None:
        print(f"accuracy: RTL {accuracy(result.outputs, labels):.4f}, "
              f"golden model {accuracy(result.golden_outputs, labels):.4f}")
    interval = f"{result.interval:.1f}" if result.interval is not None else "n/a (fewer than 5 frames)"
    print(f"cycles per frame: measured {interval}, cycle model {result.interval_model}; "
          f"first frame out after {result.first_frame_cycles} cycles; {result.cycles} cycles in all")
    if result.withheld_cycles or result.refused_cycles:
        print(f"stalls: the input withheld a beat for {result.withheld_cycles} cycles, the output refused one for "
              f"{result.refused_cycles}")


def _simulate(build_dir, x, args):
    from .flow import Progress, simulate

    return simulate(build_dir, x, progress=Progress(2, enabled=not args.quiet), idle=getattr(args, "idle", 0.0),
                    backpressure=getattr(args, "backpressure", 0.0), seed=getattr(args, "seed", 0))


def _labels(path: str, frames: int, model) -> np.ndarray:
    from .flow import check_labels, class_count
    from .readers import read_npy

    return check_labels(read_npy(Path(path), "labels"), frames, class_count(model), path)


def _output_file(text: str, inputs: list[str]) -> Path:
    from .builddir import check_output_file

    return check_output_file(Path(text), flag="--out", suffix=".npy", inputs=[Path(i) for i in inputs])


def cmd_sim(args) -> int:
    from .builddir import write_file
    from .flow import BuildDir
    from .golden.reference import check_inputs
    from .readers import read_npy

    given = [args.inputs] + ([args.labels] if args.labels else [])
    out = _output_file(args.out, given) if args.out else None
    build_dir = BuildDir.open(Path(args.outdir))
    x = read_npy(Path(args.inputs), "inputs")
    if x.ndim == 0 or x.size == 0:
        raise HdlgenError(f"{args.inputs}: holds no frames (shape {x.shape}); give at least one input row")
    x = check_inputs(build_dir.model.input, x, f"{args.inputs}: inputs")
    labels = None if args.labels is None else _labels(args.labels, len(x), build_dir.model)
    result = _simulate(build_dir, x, args)
    if out is not None:
        buffer = io.BytesIO()
        np.save(buffer, result.outputs)
        write_file(out, buffer.getvalue())
        print(f"wrote {out} ({' x '.join(map(str, result.outputs.shape))}, model units)")
    _print_sim(result, labels)
    mismatched = int(np.sum(np.any(result.hw_words != result.golden_words, axis=1)))
    if mismatched:
        first = int(np.argmax(np.any(result.hw_words != result.golden_words, axis=1)))
        print(f"MISMATCH: {mismatched} frames differ from the golden model; first is frame {first}: "
              f"RTL {result.hw_words[first].tolist()} golden {result.golden_words[first].tolist()}", file=sys.stderr)
        return 1
    return 0


def cmd_synth(args) -> int:
    from .backends.synth import check_primitives, format_table, synthesize
    from .builddir import write_file
    from .flow import BuildDir

    build_dir = BuildDir.open(Path(args.outdir))
    results, failures = [], []
    built_for = build_dir.report["target"]
    for target in args.target or [built_for]:
        workdir = build_dir.record("synth") / target
        try:
            check_primitives(build_dir.verilog, target)
        except HdlgenError as e:
            failures.append(f"{target}: {e}")
            continue
        if target != built_for:
            print(f"note: this build was made for {built_for}; its products and adder trees were chosen for that "
                  f"target, not {target} (rebuild with --target {target} to compare like with like)",
                  file=sys.stderr, flush=True)
        if not args.quiet:
            print(f"synthesizing for {target} ...", file=sys.stderr, flush=True)
        try:
            result = synthesize(build_dir.verilog, build_dir.report["top"], target, workdir,
                                clock_mhz=args.clock_mhz, stream_bits=build_dir.stream_bits)
        except HdlgenError as e:
            failures.append(f"{target}: {e}")
            continue
        finally:
            if workdir.is_dir():
                build_dir.seal(workdir)
        write_file(build_dir.record(f"synth-{target}.json"), (json.dumps(result.to_json(), indent=2) + "\n").encode())
        results.append(result)
    if results:
        print(format_table(results))
        for result in results:
            print(f"details in {build_dir.path / f'synth-{result.target}.json'} and {build_dir.path / 'synth' / result.target}/")
    if failures:
        raise HdlgenError("; ".join(failures))
    return 0


def cmd_quantize(args) -> int:
    from .transforms.quantize import DEFAULT_PERCENTILE, quantize_model

    model, out, calibration = Path(args.model), Path(args.output), Path(args.calibration)

    def progress(step):
        if not args.quiet:
            print(f"{step} ...", file=sys.stderr, flush=True)

    ranges = quantize_model(model, calibration, out, method=args.method, activations=args.activations,
                            percentile=args.percentile, progress=progress)
    method = f"percentile {args.percentile or DEFAULT_PERCENTILE:g}" if args.method == "percentile" else args.method
    width = max([len(r.tensor) for r in ranges] + [6]) + 2
    print(f"{'tensor':<{width}}{'range (' + method + ')':<34}{'scale':<14}zero point")
    for r in ranges:
        print(f"{r.tensor:<{width}}{f'[{r.lo:.6g}, {r.hi:.6g}]':<34}{r.scale:<14.6g}{r.zero_point} ({r.dtype})")
    print(f"wrote {out} (QDQ: int8 weights per channel, {args.activations} activations; build it with hdlgen build)")
    return 0


def cmd_explore(args) -> int:
    from .explore import CSV_NAME, PNG_NAME, explore_points, parse_synth, synthesize_point, write_plot, write_table
    from .transforms.device_fit import lut_name
    from .frontend import load_model
    from .size_guard import SizeGuard
    from .targets import get_target
    from .transforms import streamline

    from .builddir import check_output_dir, write_build

    out = Path(args.outdir or f"explore-{Path(args.model).stem}")
    check_output_dir(out, [Path(args.model)], "explore")
    model = load_model(Path(args.model), args.input_type)
    SizeGuard().check_model(model)
    lowered = streamline(model)
    points = explore_points(lowered, args.target, args.clock_mhz, args.max_lanes)
    chosen = parse_synth(args.synth, points)
    for k, point in enumerate(chosen):
        if not args.quiet:
            print(f"[{k + 1}/{len(chosen)}] synthesizing point {point.index} ({point.fps:,.0f} frames/s) with Yosys ...",
                  file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="hdlgen-explore-") as tmp:
            point.measured = synthesize_point(lowered, point, args.target, Path(tmp))
    target = get_target(args.target)
    device = dict(target.resources) if target.resources else None

    def write(staging: Path) -> None:
        write_table(points, staging / CSV_NAME)
        write_plot(points, staging / PNG_NAME, device=device, sites=lut_name(target),
                   title=f"{Path(args.model).name} on {args.target} at {args.clock_mhz:g} MHz "
                         f"(estimates: transforms/resources.py)")

    command = ["hdlgen", "explore", str(Path(args.model).absolute()), "--target", args.target, "-o", str(out),
               "--clock-mhz", repr(args.clock_mhz)] + (["--synth", args.synth] if args.synth else [])
    write_build(out, write, command=command, inputs=[Path(args.model)], kind="explore")
    synthesized = any(p.measured for p in points)
    cells = target.family == "ice40"
    head = (f"{'point':>5} {'frames/s':>12} {'cycles':>9} {'LUT':>8} {'FF':>7}" + (f" {'cells':>7}" if cells else "")
            + f" {'BRAM':>6} {'DSP':>5}  fits  pareto")
    print(head + ("  Yosys LUT/FF/BRAM/DSP" if synthesized else ""))
    for p in points:
        fits = "-" if p.fits is None else ("yes" if p.fits else "no")
        line = (f"{p.index:>5} {p.fps:>12,.1f} {p.cycles:>9,} {p.lut:>8,} {p.ff:>7,}" + (f" {p.cells:>7,}" if cells else "")
                + f" {p.bram:>6g} {p.dsp:>5}  {fits:<4}  {'*' if p.pareto else ' '}")
        if p.measured:
            m = p.measured
            line += f"       {m['lut']:,}/{m['ff']:,}/{m['bram']:g}/{m['dsp']}"
        print(line)
    print(f"wrote {out / CSV_NAME} and {out / PNG_NAME} ({len(points)} foldings, {sum(p.pareto for p in points)} Pareto)")
    return 0


def cmd_inspect(args) -> int:
    from .frontend import load_model
    from .inspect import describe, describe_graph

    path = Path(args.model)
    try:
        model = load_model(path, args.input_type)
    except HdlgenError:
        if path.suffix.lower() == ".onnx" and path.is_file():
            print("\n".join(describe_graph(path)))       # the whole graph, then why it cannot be imported
        raise
    print("\n".join(describe(model)))
    return 0


def cmd_boards(args) -> int:
    from .backends.bitstream import PLL_RANGE_MHZ, family_of
    from .boards import boards

    rows = [("board", "target", "clock (--clock-mhz)", "UART", "flow", "description")]
    for name, board in sorted(boards().items()):
        uart = f"{board.baud} baud" + (" (header pins)" if "connector" in board.uart else "")
        reach = PLL_RANGE_MHZ.get(family_of(board))
        reach = f"{reach[0]:g}-{reach[1]:g} MHz" if reach and board.flow == "yowasp" else None
        clock = f"{board.clock_mhz:g} MHz from the PLL ({reach})" if board.clock_mhz else \
            f"{board.oscillator_mhz:g} MHz oscillator" + (f"; PLL {reach}" if reach else "")
        rows.append((name, board.target, clock, uart, "bitstream" if board.flow == "yowasp" else "files for Vivado",
                     board.description))
    widths = [max(len(row[k]) for row in rows) for k in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    return 0


def _print_bitstream(result) -> None:
    if result.bitstream is None:
        print(f"wrote the {result.board} shell's Verilog, constraints and vendor script to {result.folder} "
              f"(no open bitstream flow for this family on PyPI): with the vendor's tools on PATH, run "
              f"build_hdlgen_board.sh there")
        return
    print(f"wrote {result.bitstream}")
    timing = "met" if result.timing_met else "NOT met"
    fmax = f"{result.fmax_mhz:.1f}" if result.fmax_mhz else "n/a"
    cap = result.capacity
    print(f"{result.board}: {result.lut:,}/{cap['lut']:,} LUT, {result.ff:,} FF, {result.bram:g}/{cap['bram']} BRAM, "
          f"{result.dsp}/{cap['dsp']} DSP; Fmax {fmax} MHz at a {result.clock_mhz:g} MHz clock"
          f"{' from a PLL' if result.pll else ''} (timing {timing}); UART {result.baud} baud")


def cmd_bitstream(args) -> int:
    from .api import open_design

    result = open_design(args.outdir).bitstream(args.board, clock_mhz=args.clock_mhz, baud=args.baud,
                                                allow_timing_fail=args.allow_timing_fail, progress=not args.quiet)
    _print_bitstream(result)
    return 0


def _print_run(result, labels, build_dir) -> None:
    from .flow import accuracy

    frames = len(result.hw_words)
    same = np.all(result.hw_words == result.golden_words, axis=1)
    where = "simulated board" if result.port == "sim" else f"board on {result.port}"
    print(f"{where} == golden model on {int(same.sum())}/{frames} frames")
    if labels is not None:
        print(f"accuracy: board {accuracy(result.outputs, labels):.4f}, golden model "
              f"{accuracy(result.golden_outputs, labels):.4f}")
    stats = result.stats
    reasons = ", ".join(f"{n} {why}" for why, n in stats.reasons.items())
    print(f"{stats.frames_per_second:,.1f} frames/s over the link ({stats.frames} frames in {stats.seconds:.2f} s); "
          f"{stats.retries} retries{f' ({reasons})' if reasons else ''}")
    from .host.protocol import link_frames_per_second, reply_length, request_length
    from .shell.core import LinkFormat

    report = build_dir.report
    link = LinkFormat.from_report(report)
    baud = result.baud or 115200
    network = f"the network alone: {report['frames_per_second_at_clock']:,.0f} frames/s at {report['clock_mhz_for_fps']:g} MHz"
    if result.port == "sim":
        print(f"(simulated time: the UART runs at 8 clock cycles a bit. On a board at {baud} baud the link carries "
              f"{request_length(link)} + {reply_length(link)} bytes a frame, at most "
              f"{link_frames_per_second(link, baud):,.0f} frames/s; {network})")
    else:
        print(f"(the UART at {baud} baud carries at most {link_frames_per_second(link, baud):,.0f} frames/s; {network})")


def cmd_run(args) -> int:
    from .api import open_design
    from .builddir import write_file
    from .golden.reference import check_inputs
    from .readers import read_npy

    given = [args.inputs] + ([args.labels] if args.labels else [])
    out = _output_file(args.out, given) if args.out else None
    design = open_design(args.outdir)
    x = read_npy(Path(args.inputs), "inputs")
    if x.ndim == 0 or x.size == 0:
        raise HdlgenError(f"{args.inputs}: holds no frames (shape {x.shape}); give at least one input row")
    x = check_inputs(design._build.model.input, x, f"{args.inputs}: inputs")
    labels = None if args.labels is None else _labels(args.labels, len(x), design._build.model)
    result = design.run_on_board(x, port=args.port, board=args.board, baud=args.baud, timeout=args.timeout,
                                 retries=args.retries, progress=not args.quiet)
    if out is not None:
        buffer = io.BytesIO()
        np.save(buffer, result.outputs)
        write_file(out, buffer.getvalue())
        print(f"wrote {out} ({' x '.join(map(str, result.outputs.shape))}, model units)")
    _print_run(result, labels, design)
    return 0 if np.array_equal(result.hw_words, result.golden_words) else 1


def cmd_demo(args) -> int:
    if args.board is not None:
        return _board_demo(args)
    if args.clock_mhz is not None:
        raise HdlgenError("demo --clock-mhz sets a board's clock; give it with --board")
    from .flow import BuildDir, Progress, build

    outdir = Path(args.outdir)
    report = build(DEMO_MODEL, outdir, progress=Progress(4, enabled=not args.quiet))
    _print_build(report, outdir)
    x = np.load(DEMO_MODEL.parent / "test_x.npy")
    labels = np.load(DEMO_MODEL.parent / "test_y.npy")
    build_dir = BuildDir.open(outdir)
    result = _simulate(build_dir, x, args)
    _print_sim(result, labels)
    return 0 if np.array_equal(result.hw_words, result.golden_words) else 1


def _board_demo(args) -> int:
    """The board's demo model into a bitstream, after its test split ran through the simulated board."""
    from .api import build
    from .boards import get_board
    from .paths import EXAMPLES

    from .backends.bitstream import check_clock

    board = get_board(args.board)
    check_clock(board.name, args.clock_mhz)       # before minutes of building and simulating
    demo = board.demo
    model = EXAMPLES / demo["model"]
    outdir = Path(args.outdir if args.outdir != DEMO_DIR else f"build/demo-{board.name}")
    clock = args.clock_mhz or board.clock_mhz or board.oscillator_mhz
    design = build(model, outdir, target=board.target, output="class", clock_mhz=clock,
                   target_fps=demo.get("fps"), progress=not args.quiet)
    print(design.report_text())
    x, labels = np.load(model.parent / "test_x.npy"), np.load(model.parent / "test_y.npy")
    result = design.run_on_board(x, port="sim", progress=not args.quiet)
    _print_run(result, labels, design)
    if not np.array_equal(result.hw_words, result.golden_words):
        return 1
    _print_bitstream(design.bitstream(board.name, clock_mhz=args.clock_mhz, progress=not args.quiet))
    return 0


def parser() -> argparse.ArgumentParser:
    from .boards import board_names
    from .size_guard import SizeGuard
    from .targets import DEFAULT_TARGET, target_names
    from . import options as O
    from .flow import BN_MODES, OUTPUTS
    from .transforms.requant import MODES as REQUANT_MODES

    from . import __version__

    p = _Parser(prog="hdlgen", description="Quantized neural networks to verified streaming FPGA hardware.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr (results still print)")
    p.add_argument("--version", action="version", version=f"hdlgen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="compile a model description into Verilog, a report and the lowered model")
    b.add_argument("model", **_given("input-file"), help="QONNX model (.onnx) or native model description (.json with its .npz)")
    b.add_argument("-o", "--outdir", **_given("output-dir"), required=True, help="build directory to write")
    b.add_argument("--fold", **_given("fold"), default="auto", help="'auto' (64 lanes on the heaviest layer, folded further where that does not fit the target's device), "
                        "'fit' (the fastest folding that fits the device), or a JSON file {layer: {pe: N, simd: N}}")
    b.add_argument("--input-type", **_given("datatype"), metavar="T", help=INPUT_TYPE_HELP)
    b.add_argument("--target-fps", **_option(O.FRAMES_PER_SECOND), help="frames per second to fold for (auto folding)")
    b.add_argument("--clock-mhz", **_option(O.CLOCK_MHZ), default=100.0, help="clock the frame rate refers to (default 100)")
    b.add_argument("--requant", **_option(O.Choice(REQUANT_MODES)), default="auto",
                   help="unit after each accumulator: auto (a shift where the rescale is a power of two, else "
                        "the exact thresholds), thresholds, or fixed (gemmlowp's fixed-point multiplier for ONNX QDQ "
                        "layers; may differ from onnxruntime by one step, counted in report.json)")
    b.add_argument("--bn", **_option(O.Choice(BN_MODES)), default="exact",
                   help="batch norm as trained (exact, the default), or shift-based: multipliers rounded to powers "
                        "of two, as the BNN paper's Alg. 3")
    b.add_argument("--output", **_option(O.Choice(OUTPUTS)), default="scores",
                   help="what the hardware emits a frame: every output (scores, the default), or the class index, "
                        "an argmax in hardware whose comparisons order exactly as the model's outputs (class)")
    b.add_argument("--check-inputs", **_given("input-file"), metavar="X.npy", help="with --bn shift: inputs to measure the accuracy change on")
    b.add_argument("--check-labels", **_given("input-file"), metavar="y.npy", help="with --bn shift: their integer labels")
    b.add_argument("--target", **_option(O.Choice(target_names())), default=DEFAULT_TARGET,
                   help=f"FPGA family to generate for: its LUT size and multiplier primitive (default {DEFAULT_TARGET})")
    guard = SizeGuard()
    b.add_argument("--max-weight-bits", **_option(O.SIZE_LIMIT), default=guard.max_weight_bits,
                   help=f"size guard: refuse models with more weight bits (default {guard.max_weight_bits:,})")
    b.add_argument("--max-lanes", **_option(O.SIZE_LIMIT), default=guard.max_lanes,
                   help=f"size guard: refuse foldings with more parallel lanes, PE x SIMD summed (default {guard.max_lanes:,})")
    b.set_defaults(run=cmd_build)

    s = sub.add_parser("sim", help="run the generated RTL on Verilator for every input")
    s.add_argument("outdir", **_given("build-dir"), help="a build directory")
    s.add_argument("--inputs", **_given("input-file"), required=True, help=".npy of inputs in the model's units, batch first")
    s.add_argument("--labels", **_given("input-file"), help=".npy of integer labels, to print accuracy")
    s.add_argument("--out", **_given("output-file"), help=".npy to write the outputs to, in the model's units")
    s.add_argument("--idle", **_option(O.STALL_SHARE), default=0.0,
                   help="share of cycles (0 to 0.95) in which the input withholds its next beat (default 0)")
    s.add_argument("--backpressure", **_option(O.STALL_SHARE), default=0.0,
                   help="share of cycles (0 to 0.95) in which the output is not ready (default 0)")
    s.add_argument("--seed", **_option(O.SEED), default=0, help="seed of the --idle and --backpressure patterns (default 0)")
    s.set_defaults(run=cmd_sim)

    y = sub.add_parser("synth", help="synthesize with Yosys (and nextpnr) and report LUT, FF, BRAM, DSP, Fmax")
    y.add_argument("outdir", **_given("build-dir"), help="a build directory")
    y.add_argument("--target", action="append", **_option(O.Choice(target_names())),
                   help="device to synthesize for (repeat for several; default: the build's target)")
    y.add_argument("--clock-mhz", **_option(O.CLOCK_MHZ), default=100.0, help="timing target for nextpnr (default 100)")
    y.set_defaults(run=cmd_synth)

    from .transforms.quantize import ACTIVATION_TYPES, METHODS

    q = sub.add_parser("quantize", help="quantize a float ONNX model to INT8 (QDQ) with onnxruntime's calibration")
    q.add_argument("model", **_given("input-file"), help="float ONNX model (.onnx)")
    q.add_argument("--calibration", **_given("input-file"), required=True, metavar="X.npy",
                   help="calibration samples in the model's input layout, batch first")
    q.add_argument("--method", **_option(O.Choice(METHODS)), default="minmax",
                   help="range calibration: minmax, percentile (of |x|) or entropy (TensorRT's KL); default minmax")
    q.add_argument("--percentile", **_option(O.PERCENTILE),
                   help="percentile for --method percentile (default 99.999)")
    q.add_argument("--activations", **_option(O.Choice(ACTIVATION_TYPES)), default="uint8",
                   help="activation type, with a zero point (default uint8)")
    q.add_argument("-o", "--output", **_given("output-file"), required=True, help="QDQ model to write (.onnx)")
    q.set_defaults(run=cmd_quantize)

    e = sub.add_parser("explore", help="sweep a model's foldings: estimated LUTs, block RAMs and DSPs against "
                                       "frames/s, as a table (CSV) and a plot (PNG)")
    e.add_argument("model", **_given("input-file"), help="QONNX model (.onnx) or native model description (.json with its .npz)")
    e.add_argument("--target", **_option(O.Choice(target_names())), default=DEFAULT_TARGET, help=f"build target (default {DEFAULT_TARGET})")
    e.add_argument("-o", "--outdir", **_given("output-dir"), help="folder for explore.csv and explore.png (default explore-MODEL)")
    e.add_argument("--clock-mhz", **_option(O.CLOCK_MHZ), default=100.0, help="clock the frame rates refer to (default 100)")
    e.add_argument("--synth", **_given("points"), metavar="POINTS", help="synthesize these points with Yosys to check the estimate: "
                                                     "'pareto' or numbers such as 0,3,7")
    e.add_argument("--input-type", **_given("datatype"), metavar="T", help=INPUT_TYPE_HELP)
    e.add_argument("--max-lanes", **_option(O.SIZE_LIMIT), default=guard.max_lanes,
                   help=f"stop the sweep at foldings with more parallel lanes (default {guard.max_lanes:,})")
    e.set_defaults(run=cmd_explore)

    i = sub.add_parser("inspect", help="print a model's imported and lowered layers, quant types and shapes")
    i.add_argument("model", **_given("input-file"), help="QONNX model (.onnx) or native model description (.json)")
    i.add_argument("--input-type", **_given("datatype"), metavar="T", help=INPUT_TYPE_HELP)
    i.set_defaults(run=cmd_inspect)

    d = sub.add_parser("demo", help="build the bundled digits model, simulate its test split, compare with the golden model")
    d.add_argument("-o", "--outdir", **_given("output-dir"), default=DEMO_DIR, help=f"build directory (default {DEMO_DIR}, or build/demo-BOARD)")
    d.add_argument("--board", **_option(O.Choice(board_names())),
                   help="build the board's demo model for it with class output, run the test split through the "
                        "simulated board, and make the bitstream")
    d.add_argument("--clock-mhz", **_option(O.CLOCK_MHZ),
                   help="with --board: the shell's clock, from the board's PLL (default: the board's, see hdlgen boards)")
    d.set_defaults(run=cmd_demo)

    bl = sub.add_parser("boards", help="list the boards 'bitstream' and 'demo --board' build for")
    bl.set_defaults(run=cmd_boards)

    bs = sub.add_parser("bitstream", help="wrap a build in its board shell (UART link) and make the bitstream")
    bs.add_argument("outdir", **_given("build-dir"), help="a build directory, built for the board's target")
    bs.add_argument("--board", required=True, **_option(O.Choice(board_names())), help="the board (hdlgen boards lists them)")
    bs.add_argument("--clock-mhz", **_option(O.CLOCK_MHZ), help="the shell's clock; other than the board's oscillator, a PLL "
                                                       "makes it (default: the board's, see hdlgen boards)")
    bs.add_argument("--baud", **_option(O.BAUD), help="UART baud rate (default: the board's, see hdlgen boards)")
    bs.add_argument("--allow-timing-fail", action="store_true",
                    help="keep the bitstream when the placed design is slower than the clock")
    bs.set_defaults(run=cmd_bitstream)

    r = sub.add_parser("run", help="send inputs to a board (or the simulated board) and compare with the golden model")
    r.add_argument("outdir", **_given("build-dir"), help="a build directory")
    r.add_argument("--port", **_given("port"), required=True, help="serial port of the board (/dev/ttyUSB0), or 'sim' for the board shell "
                                                 "on Verilator")
    r.add_argument("--inputs", **_given("input-file"), required=True, help=".npy of inputs in the model's units, batch first")
    r.add_argument("--labels", **_given("input-file"), help=".npy of integer labels, to print accuracy")
    r.add_argument("--out", **_given("output-file"), help=".npy to write the outputs to, in the model's units")
    r.add_argument("--board", **_option(O.Choice(board_names())), help="the board whose bitstream runs (default: the only one built in OUT)")
    r.add_argument("--baud", **_option(O.BAUD), help="baud rate (default: the bitstream's)")
    r.add_argument("--timeout", **_option(O.TIMEOUT_S), help="seconds to wait for a reply before asking again")
    r.add_argument("--retries", **_option(O.RETRIES), default=8, help="requests sent again before giving up (default 8)")
    r.set_defaults(run=cmd_run)
    return p


def _error(message: str) -> None:
    """The one line of a user mistake: line breaks from tool output or odd file names are folded."""
    print(f"hdlgen: error: {' | '.join(line.strip() for line in message.splitlines() if line.strip())}", file=sys.stderr)


def _terminate(signum, _frame):
    raise KeyboardInterrupt(signum)


def main(argv: list[str] | None = None) -> int:
    """Run one command; user mistakes and interrupts end in one line on stderr, never a traceback."""
    from amaranth.hdl import UnusedElaboratable

    # Components left unelaborated when a step is cut short are no news to the user.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = (signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _terminate)) if on_main_thread else None
    try:
        args = parser().parse_args(argv)
        status = args.run(args)
        # The work is done and in place: an interrupt from here on would only misreport it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stdout.flush()            # a closed pipe shows here, not after main has returned
        return status
    except HdlgenError as e:
        _error(str(e))
        return 2
    except BrokenPipeError:
        # the reader of our output went away (hdlgen ... | head): not an error of the user's
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _error(f"{where}{e.strerror or e}")
        return 2
    except KeyboardInterrupt as e:
        terminated = bool(e.args) and e.args[0] == signal.SIGTERM
        print(f"hdlgen: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])


if __name__ == "__main__":
    sys.exit(main())
