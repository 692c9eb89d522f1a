"""Calibrate and check the resource model (``hdlgen.transforms.resources``) against Yosys.

Builds the bundled example networks at several foldings each, synthesizes each build once with the
hierarchy kept (``backends.synth.synthesize_by_module``) and attributes Yosys's cells to the
pipeline's stages. With ``--fit`` it fits the LUT and flip-flop coefficients per family (non-negative least
squares on relative error) and writes ``boards/resource_model.json``; in every case it prints each
stage's estimate beside Yosys's count (the baseline) and the error.

    python benchmarks/resource_model.py [--targets ecp5-85k ice40-up5k xc7] [--fit] [--place] [--quick]

On iCE40 a logic cell holds a LUT and a flip-flop (and a carry): a flip-flop nextpnr cannot pack
with the LUT that drives it takes a cell of its own, and so may a carry chain's feed-in. ``--place`` packs every iCE40 design with nextpnr
(``--pack-only``: the logic cells placement starts from; the models in ``PACKED``) and prints the
estimated logic cells beside nextpnr's; with ``--fit`` it also fits the cells per LUT and per
flip-flop.

LUTs are counted as ``transforms.resources`` documents (distributed RAM included). Block RAMs and
DSPs are not fitted: the estimate tiles the memories the generators put in block RAM and counts
the multipliers; the script prints where Yosys disagrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from hdlgen.assemble import DataflowTop
from hdlgen.assemble.dataflow import frame_cycles
from hdlgen.backends.synth import synthesize, synthesize_by_module
from hdlgen.backends.verilog import emit
from hdlgen.errors import HdlgenError
from hdlgen.flow import folding_for_rate
from hdlgen.frontend import load_model
from hdlgen.paths import EXAMPLES
from hdlgen.targets import get_target
from hdlgen.transforms import auto_folding, streamline
from hdlgen.transforms import resources
from hdlgen.transforms.resources import MODEL_FILE, counts_by_stage, estimate, logic_cells, stage_features

MODELS = ["digits/model.json", "brevitas_digits/w1a1.onnx", "brevitas_digits/w2a2.onnx",
          "brevitas_digits/mlp_w3a3.onnx", "brevitas_digits/cnn_w1a1.onnx", "brevitas_digits/cnn_w2a2.onnx",
          "brevitas_digits/cnn_w4a4.onnx", "brevitas_digits/cnn_w8a8.onnx", "bnn_pynq/tfc_1w1a_ts.onnx",
          "bnn_pynq/tfc_2w2a_ts.onnx"]
QUICK = MODELS[:2] + ["brevitas_digits/cnn_w2a2.onnx"]
# --place: designs of about an iCE40UP5K's size (each synthesized flat once more, then packed)
PACKED = ["digits/model.json", "brevitas_digits/w2a2.onnx", "brevitas_digits/cnn_w1a1.onnx", "bnn_pynq/tfc_1w1a_ts.onnx"]

RATES = (0.25, 1.0, 4.0)        # frame rates asked for, relative to the default folding's
CLOCK_MHZ = 100.0
# Yosys's counts per design, keyed on the target and the Verilog (a rerun synthesizes only what changed)
CACHE = Path.home() / ".cache" / "hdlgen" / "resource_model"


def foldings_of(lowered, target):
    """The default folding and foldings for a quarter and four times its frame rate."""
    default = auto_folding(lowered, clock_mhz=CLOCK_MHZ, target=target)
    fps = CLOCK_MHZ * 1e6 / max(frame_cycles(lowered, default).values())
    seen, out = set(), []
    for rate in RATES:
        try:
            foldings = default if rate == 1.0 else folding_for_rate(lowered, fps * rate, CLOCK_MHZ, target)
        except HdlgenError:          # a rate no folding meets
            continue
        key = tuple(sorted((k, v.pe, v.simd, v.zero_skip) for k, v in foldings.items()))
        if key not in seen:
            seen.add(key)
            out.append((f"x{rate:g}", foldings))
    return out


def designs(target_name: str, models: list[str], workdir: Path):
    """(name, lowered model, foldings, top, its Verilog file) of every model at every folding."""
    workdir.mkdir(parents=True, exist_ok=True)
    for path in models:
        lowered = streamline(load_model(EXAMPLES / path))
        for tag, foldings in foldings_of(lowered, target_name):
            top = DataflowTop(model=lowered, foldings=foldings, target=target_name)
            verilog = workdir / f"{Path(path).stem}_{tag}.v"
            verilog.write_text(emit(top, "top"))
            yield f"{Path(path).stem} {tag}", lowered, foldings, top, verilog


def cached(kind: str, target_name: str, verilog: Path, count) -> dict:
    """``count()``, kept in ``CACHE`` under the target and the Verilog (a rerun counts only what changed)."""
    key = CACHE / f"{target_name}-{kind}{hashlib.sha256(verilog.read_bytes()).hexdigest()[:24]}.json"
    if key.exists():
        return json.loads(key.read_text())
    counts = count()
    CACHE.mkdir(parents=True, exist_ok=True)
    key.write_text(json.dumps(counts))
    return counts


def measure(target_name: str, models: list[str], workdir: Path) -> list[dict]:
    """One row per stage: its features, the estimate's block RAMs and DSPs, and Yosys's counts."""
    target = get_target(target_name)
    rows = []
    for design, lowered, foldings, top, verilog in designs(target_name, models, workdir):
        started = time.monotonic()
        counts = cached("", target_name, verilog,
                        lambda: synthesize_by_module(verilog, "top", target_name, verilog.with_suffix("")))
        stages = stage_features(lowered, foldings, target_name)
        measured = counts_by_stage(counts, [s[0] for s in stages], target.family)
        for name, kind, features, bram, dsp in stages:
            rows.append(dict(design=design, stage=name, kind=kind, features=features, est_bram=bram, est_dsp=dsp,
                             **{f"yosys_{k}": v for k, v in measured[name].items()}))
        print(f"  {target_name}: {design} synthesized in {time.monotonic() - started:.0f} s", file=sys.stderr,
              flush=True)
    return rows


def packed_cells(verilog: Path, target_name: str, work: Path, stream_bits: tuple[int, int]) -> dict:
    """Yosys's LUTs and flip-flops of a whole design in the IO shell ``hdlgen synth`` places it in,
    and the logic cells nextpnr packs them into (``--pack-only``: the cells placement starts from,
    counted in a second, also where the device is too small)."""
    result = synthesize(verilog, "top", target_name, work, stream_bits=stream_bits, pack_only=True)
    return dict(lut=result.lut_synth, ff=result.ff, cells=result.lut)


def measure_cells(target_name: str, models: list[str], workdir: Path) -> list[dict]:
    """iCE40: per design, the logic cells nextpnr packs it into against Yosys's LUTs and flip-flops."""
    rows = []
    for design, lowered, foldings, top, verilog in designs(target_name, models, workdir):
        bits = (len(top.i.payload.as_value()), len(top.o.payload.as_value()))
        counts = cached("shell-packed-", target_name, verilog,
                        lambda: packed_cells(verilog, target_name, verilog.with_name(verilog.stem + "_packed"), bits))
        est = estimate(lowered, foldings, target_name)
        rows.append(dict(design=design, est_lut=est.lut, est_ff=est.ff, est=est, **counts))
        print(f"  {target_name}: {design} packed", file=sys.stderr, flush=True)
    return rows


def fit_cells(rows: list[dict]) -> dict[str, float]:
    """Logic cells per estimated LUT and per estimated flip-flop: non-negative least squares of the
    relative error against nextpnr's cells (fitted on the estimates, so the LUT estimate's own bias
    on these designs is corrected too)."""
    a = np.array([[r["est_lut"], r["est_ff"]] for r in rows], dtype=float)
    y = np.array([r["cells"] for r in rows], dtype=float)
    coef, _ = nnls(a / y[:, None], np.ones_like(y))
    return {"lut": round(float(coef[0]), 4), "ff": round(float(coef[1]), 4)}


def report_cells(target_name: str, rows: list[dict]) -> dict:
    print(f"\n{target_name}: logic cells, estimated (cells per LUT x LUT + cells per FF x FF) vs nextpnr's packing")
    print(f"{'design':22} {'LUT est':>8} {'FF est':>7} {'cells est':>9}  {'Yosys LUT':>9} {'FF':>6} "
          f"{'nextpnr cells':>13} {'err':>6}")
    errors = []
    for r in rows:
        cells = logic_cells(r["est"], target_name)
        errors.append((cells - r["cells"]) / r["cells"])
        print(f"{r['design']:22} {r['est_lut']:8,} {r['est_ff']:7,} {cells:9,}  {r['lut']:9,} {r['ff']:6,} "
              f"{r['cells']:13,} {errors[-1]:+6.0%}")
    worst = max(errors, key=abs)
    print(f"\n{target_name}: designs' logic-cell error median {np.median(np.abs(errors)):.0%}, worst {worst:+.0%}")
    return dict(cells_median_error=float(np.median(np.abs(errors))), cells_worst_error=float(worst))


def fit(rows: list[dict], resource: str = "lut") -> dict[str, float]:
    keys = sorted({k for r in rows for k in r["features"]})
    a = np.array([[r["features"].get(k, 0.0) for k in keys] for r in rows])
    y = np.array([r[f"yosys_{resource}"] for r in rows], dtype=float)
    weight = 1.0 / np.maximum(y, 30.0)           # relative error, small stages not over-weighted
    coef, _ = nnls(a * weight[:, None], y * weight)
    return {k: round(float(c), 4) for k, c in zip(keys, coef)}


def report(target_name: str, rows: list[dict], coef: dict[str, dict[str, float]]) -> dict:
    print(f"\n{target_name}: estimate vs Yosys per stage (LUT, flip-flop, block RAM, DSP)")
    print(f"{'design':22} {'stage':24} {'kind':8} {'LUT est':>8} {'Yosys':>7} {'err':>6}  {'FF est':>7} {'Yosys':>6}  "
          f"{'BRAM est':>8} {'Yosys':>6}  {'DSP est':>7} {'Yosys':>6}")
    errors, bram_off, dsp_off = [], 0, 0
    designs: dict[str, np.ndarray] = {}
    for r in rows:
        est = {k: sum(coef[k].get(f, 0.0) * v for f, v in r["features"].items()) for k in ("lut", "ff")}
        err = (est["lut"] - r["yosys_lut"]) / max(r["yosys_lut"], 1)
        if r["kind"] == "mvu":
            errors.append(abs(err))
        bram_off += r["est_bram"] != r["yosys_bram"]
        dsp_off += r["est_dsp"] != r["yosys_dsp"]
        designs.setdefault(r["design"], np.zeros(6))[:] += (est["lut"], r["yosys_lut"], est["ff"], r["yosys_ff"],
                                                            r["est_bram"], r["yosys_bram"])
        print(f"{r['design']:22} {r['stage']:24} {r['kind']:8} {est['lut']:8.0f} {r['yosys_lut']:7d} {err:+6.0%}  "
              f"{est['ff']:7.0f} {r['yosys_ff']:6d}  {r['est_bram']:8g} {r['yosys_bram']:6g}  {r['est_dsp']:7d} "
              f"{r['yosys_dsp']:6d}")
    print(f"\n{'design':22} {'LUT est':>8} {'Yosys':>7} {'err':>6}  {'FF est':>7} {'Yosys':>6} {'err':>6}  "
          f"{'BRAM est':>8} {'Yosys':>6}")
    totals, ff_totals = [], []
    for name, (e, y, ef, yf, eb, yb) in designs.items():
        totals.append(abs(e - y) / max(y, 1))
        ff_totals.append(abs(ef - yf) / max(yf, 1))
        print(f"{name:22} {e:8.0f} {y:7.0f} {(e - y) / max(y, 1):+6.0%}  {ef:7.0f} {yf:6.0f} {(ef - yf) / max(yf, 1):+6.0%}  "
              f"{eb:8g} {yb:6g}")
    summary = dict(stages=len(rows), mvu_median_error=float(np.median(errors)), mvu_max_error=float(max(errors)),
                   design_max_error=float(max(totals)), design_ff_max_error=float(max(ff_totals)),
                   bram_mismatches=bram_off, dsp_mismatches=dsp_off)
    print(f"\n{target_name}: matrix-vector layers' LUT error median {summary['mvu_median_error']:.0%}, "
          f"worst {summary['mvu_max_error']:.0%}; whole designs worst {summary['design_max_error']:.0%} (LUT), "
          f"{summary['design_ff_max_error']:.0%} (flip-flops); stages whose block RAMs differ {bram_off}/{len(rows)}, "
          f"DSPs {dsp_off}/{len(rows)}")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5-85k", "ice40-up5k", "xc7"])
    ap.add_argument("--fit", action="store_true", help=f"fit the coefficients and write {MODEL_FILE.name}")
    ap.add_argument("--place", action="store_true",
                    help="iCE40: also pack every design with nextpnr and check (with --fit: fit) the logic cells")
    ap.add_argument("--quick", action="store_true", help="three models only")
    args = ap.parse_args()
    table = json.loads(MODEL_FILE.read_text()) if MODEL_FILE.exists() else {"families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for target_name in args.targets:
            family = get_target(target_name).family
            models = QUICK if args.quick else MODELS
            rows = measure(target_name, models, Path(tmp) / target_name)
            if args.fit:
                kept = table["families"].get(family, {}).get("logic_cells")
                table["families"][family] = {"calibrated_on": target_name, "lut": fit(rows, "lut"),
                                             "ff": fit(rows, "ff"), **({"logic_cells": kept} if kept else {})}
            if "ff" not in table["families"].get(family, {}):
                print(f"{MODEL_FILE} has no coefficients for {family}; run with --fit", file=sys.stderr)
                continue
            summary = report(target_name, rows, table["families"][family])
            if args.fit:
                _write(table)           # the estimates --place makes below use the coefficients just fitted
            if args.place and family == "ice40":
                cell_rows = measure_cells(target_name, PACKED, Path(tmp) / target_name)
                if args.fit:
                    table["families"][family]["logic_cells"] = fit_cells(cell_rows)
                    _write(table)
                summary.update(report_cells(target_name, cell_rows))
            elif args.place:
                print(f"--place: {target_name} counts its flip-flops apart from its LUTs; nothing to check",
                      file=sys.stderr)
            if args.fit:
                table["families"][family]["fit"] = {k: round(v, 3) if isinstance(v, float) else v
                                                    for k, v in summary.items()}
                _write(table)
                print(f"wrote {MODEL_FILE} ({family})")
    return 0


def _write(table: dict) -> None:
    table["_comment"] = ("LUT and flip-flop coefficients of hdlgen/transforms/resources.py per family (and on iCE40 the "
                         "logic cells per LUT and per flip-flop), fitted by benchmarks/resource_model.py --fit "
                         "against Yosys's per-module counts (and nextpnr's logic cells, --place)")
    MODEL_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    resources._coefficients.cache_clear()


if __name__ == "__main__":
    sys.exit(main())
