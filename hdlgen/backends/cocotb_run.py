"""Running the stream testbench (``sim/tb_stream.py``) on Verilator through cocotb's runner.

One Verilator build per design; each ``run`` reuses it with other vectors, stall settings or seeds.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..paths import SIM
from .tools import verilator_env
from .vendor_models import simulation_models


@dataclass
class StreamResult:
    received: int
    frame_intervals: list[int]
    cycles: int


class CocotbDesign:
    """A Verilog design built once for cocotb on Verilator."""

    def __init__(self, verilog: str, toplevel: str, build_dir: Path):
        verilator_env()
        from cocotb_tools.runner import get_runner

        self.toplevel, self.build_dir = toplevel, Path(build_dir)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        source = self.build_dir / f"{toplevel}.v"
        source.write_text(verilog)
        sources = [source]
        models = simulation_models(verilog)
        if models:
            sources.append(self.build_dir / "vendor_models.v")
            sources[-1].write_text(models)
        if str(SIM) not in sys.path:
            sys.path.insert(0, str(SIM))
        self._runner = get_runner("verilator")
        self._runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=self.build_dir,
                           build_args=["-Wno-fatal", "-O3"], waves=bool(os.environ.get("HDLGEN_WAVES")),
                           log_file=self.build_dir / "build.log")

    def run(self, *, inputs: list[int], expected: list[int], beats_per_frame: int, seed: int,
            idle: float = 0.0, backpressure: float = 0.0, initiation_interval: int | None = None,
            frame_cycles: int | None = None, name: str = "run") -> StreamResult:
        """Stream ``inputs`` through and compare every output word with ``expected``.

        ``initiation_interval``: when given, the steady-state cycles between frames must equal it.
        ``frame_cycles``: cycles a frame may take, for the time limit (defaults to the interval).
        """
        from cocotb_tools.runner import get_results

        vectors = self.build_dir / f"{name}.json"
        measured = self.build_dir / f"{name}.measured.json"
        measured.unlink(missing_ok=True)
        slack = 1.0 / max(1e-3, (1 - idle) * (1 - backpressure))
        timeout = int(200 + 20 * slack * (len(inputs) + len(expected))
                      + (frame_cycles or initiation_interval or 0) * 2 * (len(expected) // max(1, beats_per_frame) + 2))
        vectors.write_text(json.dumps({
            "inputs": [hex(v) for v in inputs], "expected": [hex(v) for v in expected],
            "beats_per_frame": beats_per_frame, "seed": seed, "idle": idle, "backpressure": backpressure,
            "initiation_interval": initiation_interval, "timeout": timeout}))
        results_xml = self.build_dir / f"{name}.results.xml"
        try:
            self._runner.test(
                test_module="tb_stream", hdl_toplevel=self.toplevel, build_dir=self.build_dir, test_dir=self.build_dir,
                extra_env={"HDLGEN_VECTORS": str(vectors), "HDLGEN_MEASURED": str(measured)},
                results_xml=str(results_xml), log_file=self.build_dir / f"{name}.log", seed=seed)
        except SystemExit:
            pass        # the runner exits on a failed test; the results file and the log say why
        total, failed = get_results(results_xml) if results_xml.exists() else (0, 0)
        if total != 1 or failed:
            log = (self.build_dir / f"{name}.log").read_text(errors="replace")
            reasons = [line.strip() for line in log.splitlines() if "Error" in line or "expected" in line]
            raise AssertionError(f"{self.toplevel} ({name}, seed {seed}): " + ("; ".join(reasons[-3:]) or f"see {self.build_dir / name}.log"))
        measured_values = json.loads(measured.read_text())
        return StreamResult(len(expected), measured_values["frame_intervals"], measured_values["cycles"])
