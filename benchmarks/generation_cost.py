"""What generating Verilog costs, in time and memory: the figures behind the size guard's defaults.

    python benchmarks/generation_cost.py

Each build runs as its own `hdlgen build` process (with the guard raised, so it runs) and is
measured for wall time and peak memory (the child's maximum resident set). The baseline, measured
in the same run, is the bundled digits model at its default folding.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hdlgen.cli import DEMO_MODEL
from hdlgen.frontend import save_model
from hdlgen.ir import BIPOLAR, Dense, InputQuantizer, Model, QuantType
from hdlgen.size_guard import SizeGuard


def measure(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident gigabytes of one `hdlgen build` in a fresh process."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c",
                           "import resource, sys; from hdlgen.cli import main; status = main(sys.argv[1:]); "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                           "sys.exit(status)", "-q", "build", *args], capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"build failed: {done.stderr.strip()}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 2 ** 20


def main() -> None:
    guard = SizeGuard()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = 10 ** 6
        weights = np.where(np.random.default_rng(0).random((10, n)) < 0.5, -1, 1).astype(np.int8)
        save_model(Model("wide", InputQuantizer(n, QuantType.uint(2), 0.1), [Dense("fc0", weights, BIPOLAR, 1.0)]),
                   tmp / "wide.json")
        rows = [("digits, default folding (baseline)", 8832, None, [str(DEMO_MODEL), "-o", str(tmp / "a")]),
                ("digits, fully unrolled", 8832, 8960, [str(DEMO_MODEL), "-o", str(tmp / "b"), "--target-fps", "1e8"]),
                ("one 10^6 x 10 bipolar layer", 10 ** 7, None,
                 [str(tmp / "wide.json"), "-o", str(tmp / "c"), "--max-weight-bits", str(10 ** 8)])]
        print(f"size guard defaults: {guard.max_weight_bits:,} weight bits, {guard.max_lanes:,} lanes")
        print(f"{'build':<38}{'weight bits':>12}{'lanes':>8}{'seconds':>9}{'peak GB':>9}")
        for name, bits, lanes, args in rows:
            seconds, gigabytes = measure(args)
            print(f"{name:<38}{bits:>12,}{lanes or '':>8}{seconds:>9.1f}{gigabytes:>9.2f}")


if __name__ == "__main__":
    main()
