"""The steps behind the command line: build a model into a directory, simulate it, synthesize it.

A build directory holds the Verilog (one top module), ``report.json`` (per layer folding, cycles
and memory bits, pipeline cycles per frame, stream formats) and the lowered model with its folding.
``hdlgen.builddir`` says how it is written, replaced and opened: a failed or interrupted build never
leaves a half-written directory, and files hdlgen did not write are never deleted.
"""

from __future__ import annotations

import math
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assemble import DataflowTop
from .assemble.dataflow import fifo_bounds, frame_cycles, stream_plan
from .cores import SlidingWindow
from .backends.packing import pack_beats, unpack_beats
from .backends.verilog import emit, top_name
from .builddir import REPORT, BuildDir, check_output_dir, write_build
from .targets import DEFAULT_TARGET, get_target
from .cores.products import ProductKind, choose_product, packing
from .cores.requant import requant_memory_bits
from .cores.thresholds import SEARCH_FROM_BITS, threshold_entries
from .cores.sparse_mvu import nonzero_blocks, sparse_entries
from .cores.vvu import VectorVectorUnit, vector_unit_applies
from .cores.weights import weight_bits, word_width
from .errors import HdlgenError
from .frontend import load_model
from .inspect import exactness_notes
from .size_guard import SizeGuard
from .golden import quantize_input_codes, run_lowered, to_model_units
from .ir.lowered import Folding, LoweredModel, MatrixVectorLayer, WindowStage
from .ir.lowered_io import save_lowered
from .transforms import auto_folding, check_foldings, load_folding, streamline
from .transforms.device_fit import check_fits, fastest_fitting, over_limits
from .transforms.resources import Estimate, estimate, logic_cells
from .transforms.classes import with_class_output
from .progress import Progress, ProgressBar

FOLD_MODES = ("auto", "fit")      # --fold: the default folding, or the fastest that fits the device

OUTPUTS = ("scores", "class")          # what the output stream carries (build --output)
BN_MODES = ("exact", "shift")          # batch norm as trained, or shift-based (build --bn)


def fold_source(fold) -> str | Path | dict:
    """What ``--fold`` (or ``fold=``) names: ``auto``, ``fit``, a folding file, or a folding itself, as a
    dict or (on the command line) as a JSON object ``{"layer": {"pe": N, "simd": N}}``."""
    from .readers import parse_json

    if isinstance(fold, dict):
        bad = next((key for key in fold if not isinstance(key, str)), None)
        if bad is not None:
            raise HdlgenError(f"fold: the layer name {bad!r} is not a string; name each layer as in the report")
        from .transforms.folding import plain_json

        return plain_json(fold)
    if isinstance(fold, Path):
        return fold
    if isinstance(fold, str) and fold in FOLD_MODES:
        return fold
    if isinstance(fold, str) and fold.lstrip().startswith("{"):
        return parse_json(fold, "--fold", "folding")
    if isinstance(fold, str) and fold:
        return Path(fold)
    raise HdlgenError(f"fold: expected 'auto', 'fit', a folding file or a dict {{layer: {{'pe': N, 'simd': N}}}}, "
                      f"not {fold!r}")


def class_count(model: LoweredModel) -> int:
    """How many classes a label may name: the argmax's inputs, or the model's outputs."""
    return model.classes.features if model.classes is not None else model.out_features


def check_labels(labels, frames: int, classes: int | None, where: str) -> np.ndarray:
    """``labels`` as one integer class index per frame, each from 0 to ``classes - 1`` (once known)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != frames or not np.issubdtype(labels.dtype, np.integer):
        raise HdlgenError(f"{where}: labels must be {frames} integers, one per input row (got shape {labels.shape}, "
                          f"{labels.dtype})")
    if classes is None:
        return labels
    outside = np.flatnonzero((labels < 0) | (labels >= classes))
    if len(outside):
        k = int(outside[0])
        raise HdlgenError(f"{where}: label {int(labels[k])} at row {k} is not a class of the model, which has {classes} "
                          f"classes (labels 0 to {classes - 1}); {len(outside)} label(s) are out of range")
    return labels


def check_build_options(*, target, clock_mhz, target_fps, requant, bn, bn_check, output, input_type=None):
    """The build's options, checked as the command line checks them (``hdlgen.options``)."""
    from . import options as O
    from .targets import target_names
    from .transforms.requant import MODES

    target = O.check("target", O.Choice(target_names()), target)
    clock_mhz = O.check("clock_mhz", O.CLOCK_MHZ, clock_mhz)
    target_fps = O.check("target_fps", O.FRAMES_PER_SECOND, target_fps, optional=True)
    O.check("requant", O.Choice(MODES), requant)
    O.check("bn", O.Choice(BN_MODES), bn)
    O.check("output", O.Choice(OUTPUTS), output)
    O.check("input_type", O.Text(), input_type, optional=True)
    if bn_check is not None:
        if bn != "shift":
            raise HdlgenError("bn_check (--check-inputs, --check-labels) measures what bn='shift' (--bn shift) "
                              "changes; add it")
        if not isinstance(bn_check, tuple) or len(bn_check) != 2:
            raise HdlgenError(f"bn_check: expected (inputs, labels), two arrays, not {type(bn_check).__name__}")
    return target, clock_mhz, target_fps

def layer_report(model: LoweredModel, foldings: dict[str, Folding], top: DataflowTop) -> dict:
    target = top.target
    cycles = top.cycle_model()
    layers, stages = [], []
    for planned in stream_plan(model, foldings):
        stage = planned.stage
        if isinstance(stage, MatrixVectorLayer):
            fold = foldings[stage.name]
            vector = vector_unit_applies(stage, fold)
            plan = choose_product(stage.in_type, stage.weight_type, target, pe=1 if vector else fold.pe)
            pack = packing(stage.in_type, stage.weight_type, target) if plan.kind is ProductKind.PACKED else None
            words, width = stage.mh // fold.pe * (stage.mw // fold.simd), word_width(stage, fold, pack)
            blocks = nonzero_blocks(stage, fold) if not stage.weight_type.is_bipolar else None
            if vector:
                words, width = stage.mw // fold.simd, fold.pe * weight_bits(stage)
            elif fold.zero_skip:
                words = sparse_entries(stage, fold)
            acc_max = VectorVectorUnit.row_acc_max(stage) if vector else stage.acc_max
            thr_bits = requant_memory_bits(stage) if stage.requant is not None else 0 if stage.thresholds is None else \
                stage.mh * threshold_entries(stage.out_type) * (acc_max + 1).bit_length()
            layers.append({
                "name": stage.name, "kind": "convolution" if stage.spatial else "matrix_vector",
                "mw": stage.mw, "mh": stage.mh, "vectors": stage.vectors,
                "in_type": str(stage.in_type), "weight_type": str(stage.weight_type),
                "out_type": None if stage.out_type is None else str(stage.out_type),
                "product": plan.kind.value, "product_reason": plan.reason,
                "pe": fold.pe, "simd": fold.simd, "cycles_per_frame": cycles.layer_cycles[stage.name],
                "weight_memory_bits": words * width,
                "weight_memory_shape": [words, width],
                "zero_skip": fold.zero_skip,
                "unit": "vector-vector" if vector else "zero-skipping" if fold.zero_skip else "matrix-vector",
                "blocks": stage.mh // fold.pe * (stage.mw // fold.simd),    # pe x simd blocks of weights
                "zero_blocks": None if blocks is None else int(blocks.size - blocks.sum()),
                "threshold_memory_bits": thr_bits,
                "threshold_unit": stage.requant.kind if stage.requant is not None else None if stage.out_type is None else
                "search" if stage.out_type.bits >= SEARCH_FROM_BITS else "parallel",
                "requant_differing": None if stage.requant is None else stage.requant.differing,
            })
        else:
            entry = {"name": stage.name, "kind": type(stage).__name__.replace("Stage", "").lower(),
                     "in_shape": list(stage.in_shape), "out_shape": list(stage.out_shape),
                     "values_per_beat": planned.in_count, "cycles_per_frame": cycles.layer_cycles[stage.name]}
            if isinstance(stage, WindowStage):
                entry["buffer_rows"] = SlidingWindow.rows(stage)
                entry["buffer_memory_bits"] = SlidingWindow.memory_bits(stage)
            stages.append(entry)
    plan = stream_plan(model, foldings)
    fifos, bounds = [], fifo_bounds(model, foldings)
    for previous, planned in zip(plan, plan[1:]):
        depth = top.fifos.get(planned.stage.name)
        if depth is not None:
            width = planned.in_count * planned.stage.in_type.bits
            fifos.append({"from": previous.stage.name, "into": planned.stage.name, "depth": depth,
                          "cycle_model_depth": bounds[planned.stage.name], "width": width,
                          "memory_bits": depth * width})
    first, last = plan[0], plan[-1]
    output = {"features": model.out_features, "shape": list(model.out_shape),
              "values_per_beat": last.out_count, "bits_per_value": last.out_bits,
              "beats_per_frame": cycles.output_beats, "last_bit": last.out_count * last.out_bits,
              "words": _output_words(last.stage), "classes": None}
    if model.classes is not None:
        classes = model.classes
        output.update(features=1, shape=[1], values_per_beat=1, bits_per_value=classes.index_bits,
                      last_bit=classes.index_bits, words=f"class index: argmax of {classes.features} outputs",
                      classes={"of": output["words"], "features": classes.features, "key": classes.key,
                               "key_bits": classes.key_bits, "table_bits": classes.table_bits})
    return {
        "top": top_name(model),
        "layers": layers,
        "stages": stages,
        "pipeline": {"initiation_interval_cycles": cycles.initiation_interval,
                     "latency_bound_cycles": cycles.latency_bound,
                     "bottleneck": max(cycles.layer_cycles, key=cycles.layer_cycles.get),
                     "fifos": fifos},
        "input": {"features": int(np.prod(model.in_shape)), "shape": list(model.in_shape),
                  "values_per_beat": first.in_count, "bits_per_value": first.stage.in_type.bits,
                  "beats_per_frame": cycles.input_beats, "code": str(first.stage.in_type)},
        "output": output,
    }


def shift_batchnorm_model(model, check):
    """``model`` with every batch norm shift-based (AP2), and a report: how many were converted and,
    given ``check`` (inputs, labels), the accuracy of the source model's arithmetic before and after."""
    from .golden.reference import check_inputs, run_reference
    from .ir.model import BatchNorm, Model, ShiftBatchNorm

    layers = tuple(ShiftBatchNorm.from_batchnorm(l) if isinstance(l, BatchNorm) else l for l in model.layers)
    converted = Model(model.name, model.input, layers, model.arithmetic, model.host)
    report = {"kind": "shift", "converted": sum(isinstance(l, BatchNorm) for l in model.layers)}
    if check is not None:
        x, labels = check
        x = check_inputs(model.input, x, "--check-inputs")
        labels = check_labels(labels, len(x), None, "--check-labels")      # their range: once lowered
        before, after = (accuracy(run_reference(m, x), labels) for m in (model, converted))
        report.update(frames=len(x), accuracy_before=before, accuracy_after=after)
    return converted, report


def _output_words(stage) -> str:
    """What the output stream carries: codes, accumulators, or the model's outputs in fixed point."""
    if isinstance(stage, MatrixVectorLayer) and stage.requant is not None and stage.requant.kind == "scores":
        return f"fixed point, signed, {stage.requant.fraction} fraction bits"
    return "accumulators" if isinstance(stage, MatrixVectorLayer) and stage.out_type is None else "codes"


def rebuild_command(model_path: Path, outdir: Path, *, fold: str | Path | dict, target_fps: float | None, clock_mhz: float,
                    target: str, guard: SizeGuard, input_type: str | None = None, requant: str = "auto",
                    bn: str = "exact", output: str = "scores") -> list[str]:
    """The command line that makes this build again (kept in the build's marker)."""
    command = ["hdlgen", "build", str(Path(model_path).absolute()), "-o", str(Path(outdir).absolute())]
    if input_type is not None:
        command += ["--input-type", input_type]
    if isinstance(fold, dict):
        command += ["--fold", json.dumps(fold, sort_keys=True)]
    elif fold not in FOLD_MODES:
        command += ["--fold", str(Path(fold).absolute())]
    elif fold != "auto":
        command += ["--fold", fold]
    if target_fps is not None:
        command += ["--target-fps", repr(target_fps)]
    if target != DEFAULT_TARGET:
        command += ["--target", target]
    if requant != "auto":
        command += ["--requant", requant]
    if bn != "exact":
        command += ["--bn", bn]
    if output != "scores":
        command += ["--output", output]
    defaults = SizeGuard()
    for flag, value, default in (("--clock-mhz", clock_mhz, 100.0),
                                 ("--max-weight-bits", guard.max_weight_bits, defaults.max_weight_bits),
                                 ("--max-lanes", guard.max_lanes, defaults.max_lanes)):
        if value != default:
            command += [flag, repr(value)]
    return command


def folding_for_rate(lowered: LoweredModel, target_fps: float, clock_mhz: float, target: str) -> dict[str, Folding]:
    """``auto_folding`` for ``target_fps``, checked on the whole pipeline: where a window or padding
    stage (whose rate follows the next layer's simd) is slower than the layers, the layers are
    folded for a higher rate until the pipeline meets it. Refuses a rate no folding meets, with the
    best frame rate there is."""
    budget = math.floor(clock_mhz * 1e6 / target_fps)
    asked = target_fps
    while True:
        foldings = auto_folding(lowered, target_fps=asked, clock_mhz=clock_mhz, target=target)
        if max(frame_cycles(lowered, foldings).values()) <= budget:
            return foldings
        if math.floor(clock_mhz * 1e6 / asked) <= 1:
            break
        asked = min(asked * 1.25, clock_mhz * 1e6)
    fastest = frame_cycles(lowered, foldings)
    stage = max(fastest, key=fastest.get)
    best = clock_mhz * 1e6 / fastest[stage]
    ask = f"ask for at most that (--target-fps {math.floor(best)}) or a faster --clock-mhz" if best >= 1 else \
        "ask for a faster --clock-mhz"
    raise HdlgenError(f"--target-fps {target_fps:,.0f} cannot be met at {clock_mhz:g} MHz: even fully unrolled, "
                      f"stage {stage!r} takes {fastest[stage]:,} cycles per frame, so the pipeline makes at most "
                      f"{best:,.0f} frames/s; {ask}")


def choose_folding(lowered: LoweredModel, fold: str | Path | dict, target_fps: float | None, clock_mhz: float, target: str,
                   guard: SizeGuard, given_as: str = "fold") -> dict[str, Folding]:
    """The folding ``--fold`` asks for: ``auto`` (the default lanes, or ``--target-fps`` with the least
    hardware; where the default does not fit the target's device, the fastest folding that does),
    ``fit`` (the fastest folding that fits the device) or a folding file."""
    if isinstance(fold, (Path, dict)):
        if target_fps is not None:
            raise HdlgenError("--target-fps chooses a folding; it cannot be combined with a folding given (a file or "
                              "a JSON object)")
        return load_folding(fold, lowered, target, where=given_as)
    if fold == "fit":
        if target_fps is not None:
            raise HdlgenError("--fold fit chooses the fastest folding that fits the device; it cannot be combined "
                              "with --target-fps (--fold auto --target-fps N folds for the rate with the least hardware)")
        return fastest_fitting(lowered, target, clock_mhz, guard.max_lanes)
    if fold == "auto" and target_fps is not None:
        return folding_for_rate(lowered, target_fps, clock_mhz, target)
    foldings = auto_folding(lowered, clock_mhz=clock_mhz, target=target)
    if get_target(target).resources is not None and over_limits(estimate(lowered, foldings, target), target):
        foldings = fastest_fitting(lowered, target, clock_mhz, guard.max_lanes)
    return foldings


def estimate_report(est: Estimate, target: str) -> dict:
    """The resource estimate as report.json keeps it (``transforms.resources``)."""
    resources = get_target(target).resources
    cells = {"logic_cells": logic_cells(est, target)} if get_target(target).family == "ice40" else {}
    return {"lut": est.lut, "ff": est.ff, **cells, "bram": est.bram, "dsp": est.dsp,
            "device": dict(resources) if resources else None,
            "stages": {s.name: {"kind": s.kind, "lut": round(s.lut), "ff": round(s.ff), "bram": s.bram, "dsp": s.dsp}
                       for s in est.stages}}


def build(model_path: Path, outdir: Path, *, fold: str | Path | dict = "auto", target_fps: float | None = None,
          clock_mhz: float = 100.0, target: str = DEFAULT_TARGET, progress: Progress | None = None,
          guard: SizeGuard = SizeGuard(), input_type: str | None = None, requant: str = "auto",
          bn: str = "exact", bn_check: tuple[np.ndarray, np.ndarray] | None = None, output: str = "scores") -> dict:
    """Build ``model_path`` into ``outdir`` for ``target`` (see ``hdlgen.targets``).

    ``requant`` chooses the unit after each layer's accumulator (``transforms.requant``). ``bn="shift"``
    rounds every batch norm's multipliers to powers of two (``ShiftBatchNorm.from_batchnorm``);
    ``bn_check`` (inputs, labels) then measures the accuracy before and after, on the golden models.
    ``guard`` stops a model or folding too large to generate before any Verilog is generated;
    ``input_type`` (a QONNX DataType name) declares an ONNX model's input format. ``output="class"``
    ends the pipeline in an argmax (``transforms.classes``): one class index a frame.
    """
    progress = progress or Progress(4, enabled=False)
    target, clock_mhz, target_fps = check_build_options(target=target, clock_mhz=clock_mhz, target_fps=target_fps,
                                                        requant=requant, bn=bn, bn_check=bn_check, output=output,
                                                        input_type=input_type)
    given_as = "--fold" if isinstance(fold, str) else "fold"         # how a folding given in full is named
    fold = fold_source(fold)
    outdir = Path(outdir)
    inputs = [model_path] + ([fold] if isinstance(fold, Path) else [])
    check_output_dir(outdir, inputs)
    with progress(f"reading {model_path}"):
        model = load_model(model_path, input_type)
        guard.check_model(model)
        bn_report = None
        if bn == "shift":
            model, bn_report = shift_batchnorm_model(model, bn_check)
    with progress("streamlining to integer thresholds"):
        lowered = streamline(model, requant)
        if output == "class":
            lowered = with_class_output(lowered)
        if bn_check is not None:
            check_labels(bn_check[1], len(bn_check[1]), class_count(lowered), "--check-labels")
        foldings = choose_folding(lowered, fold, target_fps, clock_mhz, target, guard, given_as)
        check_foldings(lowered, foldings, target)
        guard.check_folding(lowered, foldings)
        rate = "" if not target_fps else f"{target_fps:,.0f}" if target_fps >= 1 else f"{target_fps:g}"
        chosen = isinstance(fold, str)            # by hdlgen, not given as a folding
        asked = "the folding given" if isinstance(fold, dict) else f"the folding file {fold}" if not chosen else \
            "--fold fit" if fold == "fit" else f"--target-fps {rate}" if target_fps else "the default folding"
        # a folding file is yours: past the estimate it is built, with a warning in the report
        est, over = check_fits(lowered, foldings, target, clock_mhz, asked, guard.max_lanes, strict=chosen)
    with progress("generating Verilog"):
        top = DataflowTop(model=lowered, foldings=foldings, target=target)
        name = top_name(lowered)
        verilog = emit(top, name)
        report = layer_report(lowered, foldings, top)
        report["clock_mhz_for_fps"] = clock_mhz
        report["target"] = target
        report["lut_inputs"] = top.target.lut_inputs
        report["frames_per_second_at_clock"] = clock_mhz * 1e6 / report["pipeline"]["initiation_interval_cycles"]
        report["exactness_notes"] = exactness_notes(model)
        report["batchnorm"] = bn_report
        report["output"]["host_op"] = None if model.host is None else model.host.op
        report["estimate"] = estimate_report(est, target)
        report["estimate"]["over_device"] = over
    with progress(f"writing {outdir}"):
        def write(staging: Path) -> None:
            (staging / f"{name}.v").write_text(verilog)
            save_lowered(lowered, foldings, staging)
            (staging / REPORT).write_text(json.dumps(report, indent=2) + "\n")

        command = rebuild_command(model_path, outdir, fold=fold, target_fps=target_fps, clock_mhz=clock_mhz,
                                  target=target, guard=guard, input_type=input_type, requant=requant, bn=bn,
                                  output=output)
        write_build(outdir, write, command=command, inputs=inputs)
    return report


@dataclass
class SimResult:
    outputs: np.ndarray            # the RTL's outputs in model units
    golden_outputs: np.ndarray     # the golden model's, in model units
    hw_words: np.ndarray           # what the hardware emitted, per feature
    golden_words: np.ndarray
    cycles: int
    interval: float | None
    interval_model: int
    first_frame_cycles: int
    withheld_cycles: int = 0      # cycles the input withheld a beat (idle), and the output refused one
    refused_cycles: int = 0


def simulate(build_dir: BuildDir, x: np.ndarray, *, progress: Progress | None = None, idle: float = 0.0,
             backpressure: float = 0.0, seed: int = 0) -> SimResult:
    """Run inputs (model units, batch first) through the generated RTL on the native Verilator harness,
    the input withholding its next beat in a share ``idle`` of the cycles and the output not ready
    in a share ``backpressure`` (random, from ``seed``)."""
    from . import options as O
    from .backends.harness import NativeHarness, simulation_digest

    idle = O.check("idle", O.STALL_SHARE, idle)
    backpressure = O.check("backpressure", O.STALL_SHARE, backpressure)
    seed = O.check("seed", O.SEED, seed)
    progress = progress or Progress(2, enabled=False)
    model, report = build_dir.model, build_dir.report
    if np.ndim(x) == 0 or len(x) == 0:
        raise HdlgenError(f"the inputs hold no frames (shape {np.shape(x)}); give at least one input row")
    codes = quantize_input_codes(model, x)
    in_bits, out_bits = build_dir.stream_bits
    digest = simulation_digest({"design.v": build_dir.verilog.read_text()}, "stream_harness.cpp")
    sim_root = build_dir.record("sim")
    sim_dir = sim_root / digest
    if NativeHarness.is_built(sim_dir):
        harness = NativeHarness(sim_dir, in_bits=in_bits, out_bits=out_bits)
    else:
        with progress("building the Verilator simulation"):
            try:
                harness = NativeHarness.build(build_dir.verilog, report["top"], sim_dir, in_bits=in_bits,
                                              out_bits=out_bits)
                for old in os.listdir(sim_root):       # simulations of earlier Verilog, once this one is in place
                    if old != digest and not old.startswith(f".{digest}."):   # nor another sim's staging of it
                        shutil.rmtree(sim_root / old, ignore_errors=True)
            finally:
                if sim_dir.is_dir():                # built, or failed with its log for the user
                    build_dir.seal(sim_dir, also=NativeHarness.RUN_FILES)
    i, o = report["input"], report["output"]
    with progress(f"simulating {len(codes)} frames"):
        beats_out = len(codes) * o["beats_per_frame"]
        ii = report["pipeline"]["initiation_interval_cycles"]
        bar = ProgressBar(len(codes), "frames", enabled=progress.enabled)
        slack = 1 / ((1 - min(idle, 0.99)) * (1 - min(backpressure, 0.99)))
        bound = report["pipeline"]["latency_bound_cycles"] * 4 + ii * 4 * len(codes) + 1000
        run = harness.run(pack_beats(codes, i["values_per_beat"], i["bits_per_value"]), beats_out,
                          max_cycles=int(bound * slack * 2), progress=bar.update if progress.enabled else None,
                          idle=idle, backpressure=backpressure, seed=seed)
        if bar.started:
            bar.update(run.frames)
            bar.close()
    hw = unpack_beats(run.words, o["values_per_beat"], o["bits_per_value"], o["features"])
    golden = run_lowered(model, codes)
    return SimResult(to_model_units(model, hw), to_model_units(model, golden), hw, golden, run.cycles,
                     run.interval_mean, ii, run.first_frame_end, run.withheld, run.refused)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """The share of frames whose class is the label: the largest output, or the index a final ArgMax gave."""
    outputs = np.asarray(outputs).reshape(len(labels), -1)
    classes = outputs[:, 0] if np.issubdtype(outputs.dtype, np.integer) else outputs.argmax(axis=1)
    return float(np.mean(classes == labels))


__all__ = ["build", "simulate", "BuildDir", "Progress", "accuracy"]
