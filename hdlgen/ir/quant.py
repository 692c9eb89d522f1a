"""Quantization types of weights and activations, and how hardware encodes them.

Every value travels through hardware as an unsigned *code*:

============  ==================  ======================  ===============
kind          values              code                    bits per value
============  ==================  ======================  ===============
BIPOLAR       {-1, +1}            1 = +1, 0 = -1          1
TERNARY       {-1, 0, +1}         value + 1               2
INT (k bits)  [-2^(k-1), 2^(k-1)-1] (narrow: lo + 1)  value - lo   k
UINT (k bits) [0, 2^k - 1]        value                   k
============  ==================  ======================  ===============

so ``value = code + lo`` for every kind but BIPOLAR, where ``value = 2 * code - 1``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = ["QuantKind", "QuantType", "BIPOLAR", "TERNARY"]

MAX_BITS = 8


class QuantKind(enum.Enum):
    BIPOLAR = "bipolar"
    TERNARY = "ternary"
    INT = "int"
    UINT = "uint"


@dataclass(frozen=True)
class QuantType:
    """A quantization type: the set of integer values a tensor may hold."""

    kind: QuantKind
    bits: int = 1
    narrow: bool = False

    def __post_init__(self):
        if not isinstance(self.kind, QuantKind):
            raise TypeError(f"kind must be a QuantKind, not {self.kind!r}")
        fixed = {QuantKind.BIPOLAR: 1, QuantKind.TERNARY: 2}
        if self.kind in fixed and self.bits != fixed[self.kind]:
            raise ValueError(f"{self.kind.value} values take {fixed[self.kind]} bits, not {self.bits!r}")
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"bits must be an integer from 1 to {MAX_BITS}, not {self.bits!r}")
        if self.narrow and self.kind is not QuantKind.INT:
            raise ValueError("narrow ranges apply only to signed int types")
        if self.kind is QuantKind.INT and self.bits < 2:
            raise ValueError("a 1-bit signed int is bipolar: use the bipolar type")

    @classmethod
    def int(cls, bits: int, *, narrow: bool = False) -> QuantType:
        return cls(QuantKind.INT, bits, narrow)

    @classmethod
    def uint(cls, bits: int) -> QuantType:
        return cls(QuantKind.UINT, bits)

    @property
    def lo(self) -> int:
        """Smallest value."""
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return -1
        if self.kind is QuantKind.UINT:
            return 0
        return -(1 << (self.bits - 1)) + int(self.narrow)

    @property
    def hi(self) -> int:
        """Largest value."""
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return 1
        if self.kind is QuantKind.UINT:
            return (1 << self.bits) - 1
        return (1 << (self.bits - 1)) - 1

    @property
    def levels(self) -> int:
        """How many distinct values the type holds."""
        return 2 if self.kind is QuantKind.BIPOLAR else self.hi - self.lo + 1

    @property
    def code_max(self) -> int:
        """Largest code (codes run from 0)."""
        return self.levels - 1

    @property
    def is_bipolar(self) -> bool:
        return self.kind is QuantKind.BIPOLAR

    def values(self) -> np.ndarray:
        """All values of the type, ascending."""
        if self.is_bipolar:
            return np.array([-1, 1], dtype=np.int64)
        return np.arange(self.lo, self.hi + 1, dtype=np.int64)

    def contains(self, values: np.ndarray) -> bool:
        values = np.asarray(values)
        if self.is_bipolar:
            return bool(np.all((values == -1) | (values == 1)))
        return bool(np.all((values >= self.lo) & (values <= self.hi) & (values == np.round(values))))

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Values to unsigned codes."""
        values = np.asarray(values, dtype=np.int64)
        if self.is_bipolar:
            return (values > 0).astype(np.int64)
        return values - self.lo

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Unsigned codes to values."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.is_bipolar:
            return 2 * codes - 1
        return codes + self.lo

    # -- the text form used by the native model description ------------------------------------------
    def to_json(self) -> str:
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return self.kind.value
        return f"{'narrow_' if self.narrow else ''}{self.kind.value}{self.bits}"

    @classmethod
    def from_json(cls, text: str) -> QuantType:
        """Parse ``bipolar``, ``ternary``, ``uintK``, ``intK`` or ``narrow_intK``."""
        if not isinstance(text, str):
            raise ValueError(f"a quant type is a string such as 'bipolar', 'ternary', 'uint4' or 'int8', not {text!r}")
        if text in ("bipolar", "ternary"):
            return cls(QuantKind(text), 1 if text == "bipolar" else 2)
        narrow = text.startswith("narrow_")
        body = text[len("narrow_"):] if narrow else text
        for prefix, kind in (("uint", QuantKind.UINT), ("int", QuantKind.INT)):
            if body.startswith(prefix) and body[len(prefix):].isdigit():
                return cls(kind, int(body[len(prefix):]), narrow)
        raise ValueError(f"unknown quant type {text!r}: use 'bipolar', 'ternary', 'uintK', 'intK' or 'narrow_intK' (K = 1..{MAX_BITS})")

    def __str__(self) -> str:
        return self.to_json()


BIPOLAR = QuantType(QuantKind.BIPOLAR, 1)
TERNARY = QuantType(QuantKind.TERNARY, 2)
