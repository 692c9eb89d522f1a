"""Build targets: the FPGA family a design is generated for (``boards/targets.json``).

A target decides what the generators may assume about the fabric: the LUT size (which shapes the
adder trees) and the multiplier primitive that products too wide for LUTs go to. ``synth`` runs the
same target's Yosys flow (and nextpnr where there is one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from .errors import HdlgenError
from .paths import BOARDS

__all__ = ["Target", "DEFAULT_TARGET", "get_target", "target_names", "synthesis_spec"]

DEFAULT_TARGET = "ecp5-85k"
# LUT size -> terms an adder tree sums in plain logic at its first level
TREE_GROUP = {4: 2, 6: 3}
# signed operand widths of one multiplier: DSP48E2's 27 x 18 (UG579), DSP48E1's 25 x 18 (UG479),
# ECP5's MULT18X18D, iCE40's SB_MAC16 (16 x 16)
MULTIPLIER_PORTS = {"DSP48E2": (27, 18), "DSP48E1": (25, 18), "MULT18X18D": (18, 18), "SB_MAC16": (16, 16)}


@dataclass(frozen=True)
class Target:
    name: str
    family: str           # ecp5, ice40 or xilinx
    device: str
    lut_inputs: int
    multiplier: str       # MULT18X18D, SB_MAC16, DSP48E1 or DSP48E2
    lut_product_bits: int  # the widest operands a product table in LUTs is used for
    carry_cells: str | None = None  # the carry-chain cells of XNOR-popcount trees (cores.carry_cells)
    resources: tuple[tuple[str, int], ...] | None = None  # the device's lut, bram, dsp (None: a family, no device)

    @property
    def multiplier_ports(self) -> tuple[int, int]:
        """Signed operand widths of one multiplier primitive (the wider one first)."""
        return MULTIPLIER_PORTS[self.multiplier]

    @property
    def tree_group(self) -> int:
        return TREE_GROUP[self.lut_inputs]


@cache
def _specs() -> dict[str, dict]:
    raw = json.loads((BOARDS / "targets.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def target_names() -> list[str]:
    return sorted(_specs())


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    specs = _specs()
    if name not in specs:
        raise HdlgenError(f"unknown target {name!r}; choose one of {', '.join(target_names())}")
    spec = specs[name]
    return Target(name, spec["family"], spec["device"], spec["lut_inputs"], spec["multiplier"], spec["lut_product_bits"],
                  spec.get("carry_cells"), tuple(spec["resources"].items()) if spec.get("resources") else None)


def synthesis_spec(name: str) -> dict:
    """The target's Yosys and nextpnr settings."""
    return _specs()[get_target(name).name]
