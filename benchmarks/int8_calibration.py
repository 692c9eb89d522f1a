"""INT8 from a float CNN: test accuracy of the float model (onnxruntime), of the INT8 model
quantized by each calibration method (onnxruntime running the QDQ file), and of hdlgen's hardware
(the golden model; with --rtl, the RTL on Verilator too), frame by frame against onnxruntime.

    python benchmarks/int8_calibration.py [--rtl] [--calibration N] [--synth]

Models: the bundled float CNN (examples/float_digits/cnn.onnx, trained by its train.py), and the
same CNN with outliers: four calibration images scaled up 50x, as a stray sensor reading
would be, which stretch a min/max range and cost the ordinary images their resolution. There a
saturating calibration (percentile, entropy) keeps the resolution that minmax loses.

``--synth`` also synthesizes the minmax INT8 CNN for xcup (Yosys cell counts) and ecp5-85k (placed
by nextpnr, Fmax at a 100 MHz constraint), built with the exact threshold tables and, as the
comparison, with gemmlowp's fixed-point units (``--requant fixed``): what each requantization costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "float_digits"


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def hdlgen_outputs(path: Path, x: np.ndarray, rtl: bool, workdir: Path) -> np.ndarray:
    from hdlgen.flow import BuildDir, build, simulate
    from hdlgen.frontend import load_model
    from hdlgen.golden import predict
    from hdlgen.transforms import streamline

    if not rtl:
        return predict(streamline(load_model(path)), x)
    build(path, workdir)
    result = simulate(BuildDir.open(workdir), x)
    assert np.array_equal(result.hw_words, result.golden_words)
    return result.outputs


def synthesis_table(path: Path, workdir: Path) -> None:
    from hdlgen.backends.synth import format_table, synthesize
    from hdlgen.flow import BuildDir, build

    for target in ("xcup", "ecp5-85k"):
        results = []
        for requant in ("auto", "fixed"):
            out = workdir / f"synth-{target}-{requant}"
            build(path, out, target=target, requant=requant)
            build_dir = BuildDir.open(out)
            print(f"synthesizing the INT8 CNN for {target}, requantization {requant} ...", file=sys.stderr, flush=True)
            results.append(synthesize(build_dir.verilog, build_dir.report["top"], target, out / "synth",
                                      stream_bits=build_dir.stream_bits))
            units = sorted({layer["threshold_unit"] for layer in build_dir.report["layers"]})
            print(f"{target}, requantization {requant} (units: {', '.join(units)})")
        print(format_table(results))


def main() -> int:
    from hdlgen.transforms.quantize import METHODS, quantize_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtl", action="store_true", help="run the RTL on Verilator (about 30 s per model)")
    parser.add_argument("--calibration", type=int, default=256, help="calibration images (default 256)")
    parser.add_argument("--synth", action="store_true", help="synthesize the minmax INT8 CNN for xcup and ecp5-85k")
    args = parser.parse_args()

    x, labels = np.load(EXAMPLE / "test_x.npy"), np.load(EXAMPLE / "test_y.npy")
    clean = np.load(EXAMPLE / "calibration.npy")[:args.calibration]
    outliers = clean.copy()
    outliers[:4] *= 50.0                                  # four stray readings among the calibration images
    float_model = EXAMPLE / "cnn.onnx"
    float_accuracy = float(np.mean(onnxruntime_outputs(float_model, x).argmax(1) == labels))
    what = "RTL (Verilator)" if args.rtl else "golden model"
    print(f"float CNN (onnxruntime): test accuracy {float_accuracy:.4f} on {len(x)} images")
    print(f"{'calibration data':<22}{'method':<12}{'INT8 onnxruntime':>18}{'INT8 hdlgen ' + what:>30}"
          f"{'frames != onnxruntime':>24}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for data_name, data in (("clean", clean), ("with 4 outliers", outliers)):
            for method in METHODS:
                start = time.monotonic()
                path = work / f"{method}-{len(data)}-{data_name.split()[0]}.onnx"
                quantize_model(float_model, data, path, method=method)
                want = onnxruntime_outputs(path, x)
                got = hdlgen_outputs(path, x, args.rtl, work / f"build-{path.stem}")
                differing = int(np.sum(np.any(got != want, axis=1)))
                print(f"{data_name:<22}{method:<12}{np.mean(want.argmax(1) == labels):>18.4f}"
                      f"{np.mean(got.argmax(1) == labels):>30.4f}{differing:>24}{time.monotonic() - start:>9.1f}")
                if differing:
                    print(f"MISMATCH: hdlgen differs from onnxruntime on {differing} frames", file=sys.stderr)
                    return 1
        print(f"baseline: the float model, {float_accuracy:.4f}")
        if args.synth:
            synthesis_table(work / f"minmax-{len(clean)}-clean.onnx", work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
