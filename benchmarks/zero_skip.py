"""Zero-skip on a block-pruned network against the same network dense, measured here and now.

``examples/pruned_digits/mlp_pruned.onnx`` is the digits MLP with ternary weights, block-pruned
by magnitude (4 x 16 blocks, 85 % of the hidden layers' blocks) and retrained
(``examples/pruned_digits/train.py``). The script builds it at two foldings, each twice: with the
layers that pay skipping their all-zero weight blocks, and dense (the baseline). The foldings are
the one ``--fold auto`` chooses for ``--target-fps`` (it counts the skipped blocks, so it folds the
layers down to one lane) and the pruning's own blocks (PE 4, SIMD 16; the 10-row output layer
PE 2). For each build:
cycles per frame (the model, and measured on Verilator over the test split, every output compared
with the golden model), weight memory bits, and Yosys's LUT / FF / block RAM counts, placed by
nextpnr on ECP5. It also prints the dense-trained model's accuracy beside the pruned one's.

    python benchmarks/zero_skip.py [--target ecp5-85k] [--target-fps 20000] [--no-synth]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import hdlgen
from hdlgen.paths import EXAMPLES

HERE = EXAMPLES / "pruned_digits"
TEST = EXAMPLES / "brevitas_digits"
BLOCKS = {"Gemm_0": (4, 16), "Gemm_1": (4, 16), "Gemm_2": (2, 16)}


def build_pair(model: Path, target: str, fps: float | None, tmp: Path):
    """(zero-skipping, dense) builds at ``--fold auto`` for ``fps``, or at the pruning's blocks."""
    if fps is not None:
        skipping = hdlgen.build(model, tmp / "skip", target=target, target_fps=fps)
    else:
        probe = hdlgen.build(model, tmp / "probe", target=target, fold={k: {"pe": pe, "simd": simd}
                                                                          for k, (pe, simd) in BLOCKS.items()})
        fold = {layer["name"]: {"pe": layer["pe"], "simd": layer["simd"],
                                "zero_skip": layer["zero_blocks"] >= layer["blocks"] // 4}
                for layer in probe.report["layers"]}
        skipping = hdlgen.build(model, tmp / "skip", target=target, fold=fold)
    dense_fold = {layer["name"]: {"pe": layer["pe"], "simd": layer["simd"]} for layer in skipping.report["layers"]}
    dense = hdlgen.build(model, tmp / "dense", target=target, fold=dense_fold)
    return skipping, dense


def compare(skipping, dense, x, y, args) -> None:
    print(f"{'layer':10} {'MW x MH':>10} {'PE':>4} {'SIMD':>5} {'zero blocks':>12} {'skips':>6} "
          f"{'cycles':>8} {'dense cycles':>13} {'weight bits':>12} {'dense bits':>11}")
    for a, b in zip(skipping.report["layers"], dense.report["layers"]):
        zero = "-" if a["zero_blocks"] is None else f"{a['zero_blocks']}/{a['blocks']}"
        print(f"{a['name']:10} {a['mw']:>4} x {a['mh']:<4} {a['pe']:>4} {a['simd']:>5} {zero:>12} "
              f"{'yes' if a['zero_skip'] else 'no':>6} {a['cycles_per_frame']:>8} {b['cycles_per_frame']:>13} "
              f"{a['weight_memory_bits']:>12,} {b['weight_memory_bits']:>11,}")
    rows = []
    for name, design in (("zero-skip", skipping), ("dense (baseline)", dense)):
        sim = design.simulate(x)
        exact = bool(np.array_equal(sim.hw_words, sim.golden_words))
        accuracy = float(np.mean(np.argmax(sim.outputs, axis=1) == y))
        row = [name, design.report["pipeline"]["initiation_interval_cycles"], sim.interval, exact, accuracy]
        if not args.no_synth:
            r = design.synthesize(args.target)
            row += [r.lut, r.ff, r.bram, r.fmax_mhz]
        rows.append(row)
    print(f"{'build':18} {'cycles/frame':>12} {'measured':>9} {'bit-exact':>9} {'accuracy':>8}" +
          ("" if args.no_synth else f" {'LUT':>7} {'FF':>7} {'BRAM':>5} {'Fmax MHz':>8}"))
    for row in rows:
        line = f"{row[0]:18} {row[1]:>12,} {row[2]:>9.1f} {str(row[3]):>9} {row[4]:>8.4f}"
        if not args.no_synth:
            line += f" {row[5]:>7,} {row[6]:>7,} {row[7]:>5g} {row[8] or 0:>8.1f}"
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="ecp5-85k")
    ap.add_argument("--target-fps", type=float, default=20000.0)
    ap.add_argument("--no-synth", action="store_true")
    args = ap.parse_args()
    x, y = np.load(TEST / "test_x.npy"), np.load(TEST / "test_y.npy")
    with tempfile.TemporaryDirectory() as tmp:
        for title, fps in ((f"--fold auto --target-fps {args.target_fps:g}", args.target_fps),
                           ("the pruning's blocks (PE 4, SIMD 16)", None)):
            print(f"\n== {title}")
            skipping, dense = build_pair(HERE / "mlp_pruned.onnx", args.target, fps, Path(tmp) / str(fps))
            compare(skipping, dense, x, y, args)
        dense_model = hdlgen.build(HERE / "mlp_dense.onnx", Path(tmp) / "trained_dense", target=args.target,
                                   target_fps=args.target_fps)
        print(f"\ntrained without pruning (golden model): accuracy "
              f"{float(np.mean(np.argmax(dense_model.predict(x), axis=1) == y)):.4f}, "
              f"{dense_model.report['pipeline']['initiation_interval_cycles']:,} cycles per frame at its own auto folding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
