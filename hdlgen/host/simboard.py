"""The simulated board: the board shell's core on Verilator, its UART pins bridged to a
pseudo-terminal (``rtl_templates/uart_bridge.cpp``), so that ``hdlgen run --port sim`` drives it
with the same pyserial code as a real board."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import HdlgenError
from ..shell.core import CORE_NAME, LinkFormat, core_verilog

__all__ = ["SimulatedBoard", "SIM_DIVISOR", "FAULTS"]

SIM_DIVISOR = 8                  # clock cycles per UART bit in simulation
FAULTS = ("drop", "corrupt", "extra", "drop-reply", "corrupt-reply")


SETTLE_CYCLES = 2000             # cycles the clock runs on after the shell goes idle
SIM_CYCLES_PER_SECOND = 50_000   # a slow simulation's speed, for the host's reply timeout


def sim_timeout(link: LinkFormat) -> int:
    """The shell's request timeout in simulation: a few byte times."""
    return 40 * SIM_DIVISOR * 10


def sim_reply_timeout(build) -> float:
    """Seconds the host waits for a reply from the simulated board: a second, plus the cycles a
    request, the network's latency and the reply take at a slow simulation's speed."""
    from .protocol import reply_length, request_length

    link = LinkFormat.from_report(build.report)
    pipeline = build.report["pipeline"]
    cycles = (request_length(link) + reply_length(link)) * 10 * SIM_DIVISOR + pipeline["latency_bound_cycles"] + \
        pipeline["initiation_interval_cycles"]
    return 1.0 + cycles / SIM_CYCLES_PER_SECOND


class SimulatedBoard:
    """``with SimulatedBoard(build) as port_name:`` a pseudo-terminal with the simulated board behind it.

    ``faults`` maps ``drop``, ``corrupt`` or ``extra`` to byte indices of the host-to-board stream,
    and ``drop-reply`` or ``corrupt-reply`` to indices of the board-to-host stream (tests). The simulator is compiled once per build into ``OUT/board/sim``."""

    def __init__(self, build_dir, *, faults: dict[str, list[int]] | None = None, progress=None):
        self.build = build_dir
        self.link = LinkFormat.from_report(build_dir.report)
        self.faults = faults or {}
        for kind, indices in self.faults.items():
            if kind not in FAULTS:
                raise HdlgenError(f"fault {kind!r}: choose one of {', '.join(FAULTS)}")
            if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in indices):
                raise HdlgenError(f"fault {kind!r}: byte indices must be integers from 0, not {list(indices)}")
        self._progress = progress
        self._process = None
        self._slave = None

    def _binary(self) -> Path:
        from ..backends.harness import compile_simulation, simulation_digest

        core = core_verilog(self.build.report["top"], self.link, divisor=SIM_DIVISOR, timeout=sim_timeout(self.link))
        network = self.build.verilog.read_text()
        digest = simulation_digest({"network.v": network, "core.v": core}, "uart_bridge.cpp")
        folder = self.build.record("board") / "sim"
        binary = folder / digest / "Vsim"
        if binary.exists():
            return binary
        try:
            if self._progress is not None:
                with self._progress("building the simulated board (Verilator)"):
                    compile_simulation({"network.v": network, "core.v": core}, "uart_bridge.cpp", CORE_NAME, folder / digest)
            else:
                compile_simulation({"network.v": network, "core.v": core}, "uart_bridge.cpp", CORE_NAME, folder / digest)
        finally:
            if binary.exists():                 # in place: simulations of earlier Verilog can go
                for old in os.listdir(folder):
                    if old != digest and not old.startswith(f".{digest}."):   # nor another run's staging of it
                        shutil.rmtree(folder / old, ignore_errors=True)
            if folder.is_dir():
                self.build.seal(folder)
        return binary

    def __enter__(self) -> str:
        binary = self._binary()
        args = [str(binary), "", str(SIM_DIVISOR), str(SETTLE_CYCLES)]
        for kind, indices in self.faults.items():
            for index in indices:
                args += [f"--{kind}", str(int(index))]
        master, self._slave = os.openpty()
        try:
            args[1] = str(master)
            self._process = subprocess.Popen(args, pass_fds=[master], start_new_session=True,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except BaseException:
            os.close(self._slave)
            self._slave = None
            raise
        finally:
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
        """Raise the simulator's own error if it has stopped."""
        process = self._process
        if process is not None and process.poll() is not None:
            err = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise HdlgenError(f"the simulated board stopped (exit status {process.returncode})"
                              f"{': ' + err[:300] if err else ''}")
