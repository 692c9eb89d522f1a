"""The simulated board: the board shell's core on Verilator, its UART pins bridged to a
pseudo-terminal (``rtl_templates/uart_bridge.cpp``), so that ``hdlgen run --port sim`` drives it
with the same pyserial code as a real board."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import HdlgenError
from ..shell.core import CORE_NAME, LinkFormat, core_verilog
from ..shell.link import payload_bytes

__all__ = ["SimulatedBoard", "SIM_DIVISOR", "FAULTS"]

SIM_DIVISOR = 8                  # clock cycles per UART bit in simulation
FAULTS = ("drop", "corrupt", "extra", "drop-reply", "corrupt-reply")


def sim_timeout(link: LinkFormat) -> int:
    """The shell's request timeout in simulation: a few byte times."""
    return 40 * SIM_DIVISOR * 10


class SimulatedBoard:
    """``with SimulatedBoard(build) as port_name:`` a pseudo-terminal with the simulated board behind it.

    ``faults`` maps ``drop``, ``corrupt`` or ``extra`` to byte indices of the host-to-board stream,
    and ``drop-reply`` or ``corrupt-reply`` to indices of the board-to-host stream (tests). The simulator is compiled once per build into ``OUT/board/sim``."""

    def __init__(self, build_dir, *, faults: dict[str, list[int]] | None = None, progress=None):
        self.build = build_dir
        self.link = LinkFormat.from_report(build_dir.report)
        self.faults = faults or {}
        self._progress = progress
        self._process = None
        self._slave = None

    def _binary(self) -> Path:
        from ..backends.harness import compile_simulation

        core = core_verilog(self.build.report["top"], self.link, divisor=SIM_DIVISOR, timeout=sim_timeout(self.link))
        network = self.build.verilog.read_text()
        digest = hashlib.sha256((core + network).encode()).hexdigest()[:16]
        folder = self.build.record("board") / "sim"
        binary = folder / digest / "Vsim"
        if binary.exists():
            return binary
        shutil.rmtree(folder, ignore_errors=True)              # simulations of earlier Verilog
        try:
            if self._progress is not None:
                with self._progress("building the simulated board (Verilator)"):
                    compile_simulation({"network.v": network, "core.v": core}, "uart_bridge.cpp", CORE_NAME, folder / digest)
            else:
                compile_simulation({"network.v": network, "core.v": core}, "uart_bridge.cpp", CORE_NAME, folder / digest)
        finally:
            if folder.is_dir():
                self.build.seal(folder)
        return binary

    def __enter__(self) -> str:
        binary = self._binary()
        master, self._slave = os.openpty()
        args = [str(binary), str(master), str(SIM_DIVISOR), str(sim_timeout(self.link) * 2 + 2000)]
        for kind, indices in self.faults.items():
            if kind not in FAULTS:
                raise ValueError(f"fault {kind!r}: choose one of {', '.join(FAULTS)}")
            for index in indices:
                args += [f"--{kind}", str(int(index))]
        self._process = subprocess.Popen(args, pass_fds=[master], start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(master)
        return os.ttyname(self._slave)

    def __exit__(self, *exc) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr:
                process.stderr.close()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            err = self._process.stderr.read().decode(errors="replace").strip() if self._process.stderr else ""
            raise HdlgenError(f"the simulated board stopped (exit {self._process.returncode}): {err[:300]}")
