"""Running the tools (Verilator and its make and compilers, Yosys, nextpnr) so that none outlives hdlgen.

Each tool runs in a process group of its own. If hdlgen stops while it runs (Ctrl-C, SIGTERM, any
exception), the whole group is stopped: the tool and everything it started, such as the ``make``
and ``g++`` under Verilator.
"""

from __future__ import annotations

import os
import signal
import subprocess

__all__ = ["run"]

GRACE_SECONDS = 2.0


def _stop_group(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        if sig is signal.SIGTERM:
            # the leader is gone; members that ignored SIGTERM (make waiting on a compiler) go now
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return


def run(cmd: list[str], *, capture_output: bool = False, text: bool = False, tick=None,
        **popen) -> subprocess.CompletedProcess:
    """``subprocess.run`` for a tool: its own process group, stopped whole if hdlgen is interrupted.
    ``tick()``, if given, is called every half second while the tool runs (progress)."""
    if capture_output:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process = subprocess.Popen(cmd, start_new_session=True, text=text, stdin=subprocess.DEVNULL, **popen)
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=None if tick is None else 0.5)
                break
            except subprocess.TimeoutExpired:
                tick()
    except BaseException:
        _stop_group(process)
        raise
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)
