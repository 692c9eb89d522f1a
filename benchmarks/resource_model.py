"""Calibrate and check the resource model (``hdlgen.transforms.resources``) against Yosys.

Builds the bundled example networks at several foldings each, synthesizes each build once with the
hierarchy kept (``backends.synth.synthesize_by_module``) and attributes Yosys's cells to the
pipeline's stages. With ``--fit`` it fits the LUT coefficients per family (non-negative least
squares on relative error) and writes ``boards/resource_model.json``; in every case it prints each
stage's estimate beside Yosys's count (the baseline) and the error.

    python benchmarks/resource_model.py [--targets ecp5-85k ice40-up5k xc7] [--fit] [--quick]

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
from hdlgen.backends.synth import synthesize_by_module
from hdlgen.backends.verilog import emit
from hdlgen.errors import HdlgenError
from hdlgen.flow import folding_for_rate
from hdlgen.frontend import load_model
from hdlgen.paths import EXAMPLES
from hdlgen.targets import get_target
from hdlgen.transforms import auto_folding, streamline
from hdlgen.transforms.resources import MODEL_FILE, counts_by_stage, stage_features

MODELS = ["digits/model.json", "brevitas_digits/w1a1.onnx", "brevitas_digits/w2a2.onnx",
          "brevitas_digits/mlp_w3a3.onnx", "brevitas_digits/cnn_w1a1.onnx", "brevitas_digits/cnn_w2a2.onnx",
          "brevitas_digits/cnn_w4a4.onnx", "brevitas_digits/cnn_w8a8.onnx", "bnn_pynq/tfc_1w1a_ts.onnx",
          "bnn_pynq/tfc_2w2a_ts.onnx"]
QUICK = MODELS[:2] + ["brevitas_digits/cnn_w2a2.onnx"]
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


def measure(target_name: str, models: list[str], workdir: Path) -> list[dict]:
    """One row per stage: its features, the estimate's block RAMs and DSPs, and Yosys's counts."""
    target = get_target(target_name)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in models:
        lowered = streamline(load_model(EXAMPLES / path))
        for tag, foldings in foldings_of(lowered, target_name):
            top = DataflowTop(model=lowered, foldings=foldings, target=target_name)
            verilog = workdir / f"{Path(path).stem}_{tag}.v"
            verilog.write_text(emit(top, "top"))
            started = time.monotonic()
            key = CACHE / f"{target_name}-{hashlib.sha256(verilog.read_bytes()).hexdigest()[:24]}.json"
            if key.exists():
                counts = json.loads(key.read_text())
            else:
                counts = synthesize_by_module(verilog, "top", target_name, workdir / f"{Path(path).stem}_{tag}")
                CACHE.mkdir(parents=True, exist_ok=True)
                key.write_text(json.dumps(counts))
            stages = stage_features(lowered, foldings, target_name)
            measured = counts_by_stage(counts, [s[0] for s in stages], target.family)
            for name, kind, features, bram, dsp in stages:
                rows.append(dict(design=f"{Path(path).stem} {tag}", stage=name, kind=kind, features=features,
                                 est_bram=bram, est_dsp=dsp, **{f"yosys_{k}": v for k, v in measured[name].items()}))
            print(f"  {target_name}: {Path(path).stem} {tag} synthesized in {time.monotonic() - started:.0f} s",
                  file=sys.stderr, flush=True)
    return rows


def fit(rows: list[dict]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r["features"]})
    a = np.array([[r["features"].get(k, 0.0) for k in keys] for r in rows])
    y = np.array([r["yosys_lut"] for r in rows], dtype=float)
    weight = 1.0 / np.maximum(y, 30.0)           # relative error, small stages not over-weighted
    coef, _ = nnls(a * weight[:, None], y * weight)
    return {k: round(float(c), 4) for k, c in zip(keys, coef)}


def report(target_name: str, rows: list[dict], coef: dict[str, float]) -> dict:
    print(f"\n{target_name}: estimate vs Yosys per stage (LUT, block RAM, DSP)")
    print(f"{'design':22} {'stage':24} {'kind':8} {'LUT est':>8} {'Yosys':>7} {'err':>6}  {'BRAM est':>8} "
          f"{'Yosys':>6}  {'DSP est':>7} {'Yosys':>6}")
    errors, bram_off, dsp_off = [], 0, 0
    designs: dict[str, list] = {}
    for r in rows:
        est = sum(coef.get(k, 0.0) * v for k, v in r["features"].items())
        err = (est - r["yosys_lut"]) / max(r["yosys_lut"], 1)
        if r["kind"] == "mvu":
            errors.append(abs(err))
        bram_off += r["est_bram"] != r["yosys_bram"]
        dsp_off += r["est_dsp"] != r["yosys_dsp"]
        d = designs.setdefault(r["design"], [0, 0, 0, 0])
        d[0] += est
        d[1] += r["yosys_lut"]
        d[2] += r["est_bram"]
        d[3] += r["yosys_bram"]
        print(f"{r['design']:22} {r['stage']:24} {r['kind']:8} {est:8.0f} {r['yosys_lut']:7d} {err:+6.0%}  "
              f"{r['est_bram']:8g} {r['yosys_bram']:6g}  {r['est_dsp']:7d} {r['yosys_dsp']:6d}")
    print(f"\n{'design':22} {'LUT est':>8} {'Yosys':>7} {'err':>6}  {'BRAM est':>8} {'Yosys':>6}")
    totals = []
    for name, (e, y, eb, yb) in designs.items():
        totals.append(abs(e - y) / max(y, 1))
        print(f"{name:22} {e:8.0f} {y:7d} {(e - y) / max(y, 1):+6.0%}  {eb:8g} {yb:6g}")
    summary = dict(stages=len(rows), mvu_median_error=float(np.median(errors)), mvu_max_error=float(max(errors)),
                   design_max_error=float(max(totals)), bram_mismatches=bram_off, dsp_mismatches=dsp_off)
    print(f"\n{target_name}: matrix-vector layers' LUT error median {summary['mvu_median_error']:.0%}, "
          f"worst {summary['mvu_max_error']:.0%}; whole designs worst {summary['design_max_error']:.0%}; "
          f"stages whose block RAMs differ {bram_off}/{len(rows)}, DSPs {dsp_off}/{len(rows)}")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5-85k", "ice40-up5k", "xc7"])
    ap.add_argument("--fit", action="store_true", help=f"fit the coefficients and write {MODEL_FILE.name}")
    ap.add_argument("--quick", action="store_true", help="three models only")
    args = ap.parse_args()
    table = json.loads(MODEL_FILE.read_text()) if MODEL_FILE.exists() else {"families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for target_name in args.targets:
            family = get_target(target_name).family
            rows = measure(target_name, QUICK if args.quick else MODELS, Path(tmp) / target_name)
            if args.fit:
                table["families"][family] = {"calibrated_on": target_name, "lut": fit(rows)}
            if family not in table["families"]:
                print(f"{MODEL_FILE} has no coefficients for {family}; run with --fit", file=sys.stderr)
                continue
            summary = report(target_name, rows, table["families"][family]["lut"])
            if args.fit:
                table["families"][family]["fit"] = {k: round(v, 3) if isinstance(v, float) else v
                                                    for k, v in summary.items()}
                table["_comment"] = ("LUT coefficients of hdlgen/transforms/resources.py per family, fitted by "
                                     "benchmarks/resource_model.py --fit against Yosys's per-module counts")
                MODEL_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
                print(f"wrote {MODEL_FILE} ({family})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
