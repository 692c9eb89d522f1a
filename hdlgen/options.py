"""Option values, checked one way for the command line and the Python API.

Each option of a number, a whole number or a word is declared once here, with its range or its
choices. The command line parses its text with :meth:`Option.parse`; the Python API checks the value
it was handed with :meth:`Option.check`. Both raise the same explanation of what is wrong, after the
option's name as each side spells it (``--clock-mhz`` or ``clock_mhz``), so

    hdlgen: error: build: argument --clock-mhz: must be a number above 0.001 and at most 2000, not 0
    HdlgenError: clock_mhz: must be a number above 0.001 and at most 2000, not 0

Nothing is coerced: ``True`` is not a number, ``"100"`` is not a number, ``2.5`` is not a whole
number, and values outside the range are refused, never clamped.
"""

from __future__ import annotations

import argparse
import math
import numbers
from dataclasses import dataclass

from .errors import HdlgenError

__all__ = ["Number", "Whole", "Choice", "Text", "Flag", "check", "argparse_type"]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _figure(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) and abs(x) >= 10_000 else f"{x:g}"


@dataclass(frozen=True)
class Number:
    """A finite real number above ``lo`` (or from ``lo``, when ``lo_included``) and at most ``hi``."""

    lo: float
    hi: float
    lo_included: bool = False

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, not {text!r}") from None
        return self._ranged(value, text)

    def check(self, value) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"expected a number, not {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:                 # an integer beyond any float
            number = math.inf
        return self._ranged(number, _shown(value))

    def _ranged(self, value: float, shown: str) -> float:
        inside = (self.lo <= value if self.lo_included else self.lo < value) and value <= self.hi
        if not math.isfinite(value) or not inside:
            where = f"from {_figure(self.lo)} to" if self.lo_included else f"above {_figure(self.lo)} and at most"
            raise ValueError(f"must be a number {where} {_figure(self.hi)}, not {shown}")
        return value


@dataclass(frozen=True)
class Whole:
    """A whole number from ``lo`` to ``hi``."""

    lo: int
    hi: int

    def parse(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, not {text!r}") from None
        return self._ranged(value, text)

    def check(self, value) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"expected a whole number, not {_shown(value)}")
        return self._ranged(int(value), _shown(value))

    def _ranged(self, value: int, shown: str) -> int:
        if not self.lo <= value <= self.hi:
            raise ValueError(f"must be a whole number from {_figure(self.lo)} to {_figure(self.hi)}, not {shown}")
        return value


@dataclass(frozen=True)
class Choice:
    """One of a few words."""

    choices: tuple[str, ...]

    def parse(self, text: str) -> str:
        return self.check(text)

    def check(self, value) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, not {_shown(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A non-empty string taken as given (a QONNX DataType name, a serial port)."""

    def parse(self, text: str) -> str:
        return self.check(text)

    def check(self, value) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a non-empty string, not {_shown(value)}")
        return value


@dataclass(frozen=True)
class Flag:
    """True or False (on the command line, present or not)."""

    def check(self, value) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected True or False, not {_shown(value)}")
        return value


def check(name: str, kind, value, *, optional: bool = False):
    """``value`` checked against ``kind`` for the API argument ``name``; ``None`` passes if ``optional``."""
    if optional and value is None:
        return None
    try:
        return kind.check(value)
    except ValueError as e:
        raise HdlgenError(f"{name}: {e}") from None


def argparse_type(kind):
    """``kind`` as an argparse ``type``: its message becomes argparse's ``argument --flag: ...``."""
    def parse(text: str):
        try:
            return kind.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.kind = kind               # the robustness suite generates each option's range edges from it
    parse.__name__ = type(kind).__name__.lower()
    return parse


# -- the options hdlgen takes, each declared once ----------------------------------------------------

CLOCK_MHZ = Number(0.001, 2000.0)              # a clock in MHz: the frame rate's, nextpnr's target, the shell's
FRAMES_PER_SECOND = Number(1e-6, 1e15)
STALL_SHARE = Number(0.0, 0.95, lo_included=True)   # the share of cycles a stream stalls in (sim --idle)
SEED = Whole(0, 2 ** 64 - 1)                   # the harness's stall generator takes a 64-bit seed
BAUD = Whole(300, 12_000_000)                  # what USB-serial bridges run (an FT2232H reaches 12 Mbaud)
TIMEOUT_S = Number(0.001, 3600.0)
RETRIES = Whole(1, 1000)
PERCENTILE = Number(50.0, 100.0)
SIZE_LIMIT = Whole(1, 2 ** 53)                 # the size guard's limits
