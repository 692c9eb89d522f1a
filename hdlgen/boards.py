"""Boards (``boards/boards.json``): which amaranth-boards platform, build target, UART, baud rate,
shell clock and device resources a board has. Pin tables stay in amaranth-boards."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import cache

from .errors import HdlgenError
from .paths import BOARDS

__all__ = ["Board", "get_board", "board_names", "boards"]


@dataclass(frozen=True)
class Board:
    name: str
    platform: str                 # module:class in amaranth_boards
    target: str                   # the build target the network must be generated for
    flow: str                     # yowasp (bitstream) or export (files for a vendor tool)
    uart: dict
    baud: int
    clock_mhz: float | None       # the shell's clock; None: the board's oscillator
    resources: dict               # lut, ff, bram, dsp of the device
    description: str
    demo: dict                    # hdlgen demo --board: the example model and the frame rate to fold for

    def platform_class(self):
        module, _, name = self.platform.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:
            raise HdlgenError(f"board {self.name} needs amaranth-boards; install hdlgen with its dependencies: "
                              f"pip install -e .") from None

    @property
    def oscillator_mhz(self) -> float:
        platform = self.platform_class()()
        return platform.default_clk_frequency / 1e6


@cache
def boards() -> dict[str, Board]:
    raw = json.loads((BOARDS / "boards.json").read_text())
    return {name: Board(name, spec["platform"], spec["target"], spec["flow"], spec["uart"], int(spec["baud"]),
                        spec["clock_mhz"], spec["resources"], spec["description"],
                        spec.get("demo", {"model": "digits/model.json"}))
            for name, spec in raw.items() if not name.startswith("_")}


def board_names() -> list[str]:
    return sorted(boards())


def get_board(name: str) -> Board:
    if name not in boards():
        raise HdlgenError(f"unknown board {name!r}; the boards are {', '.join(board_names())} (hdlgen boards lists them)")
    return boards()[name]
