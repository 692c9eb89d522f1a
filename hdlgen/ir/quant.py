"""Quantization types of weights and activations, and how hardware encodes them.

Every value travels through hardware as an unsigned *code*:

============  ==================  ======================  ===============
kind          values              code                    bits per value
============  ==================  ======================  ===============
BIPOLAR       {-1, +1}            1 = +1, 0 = -1          1
TERNARY       {-1, 0, +1}         value + 1               2
INT (k bits)  [-2^(k-1), 2^(k-1)-1] (narrow: lo + 1)  value - lo   k
UINT (k bits) [0, 2^k - 1]        value                   k
POW2 (k bits) 0, +-1, +-2, .. +-2^(k-2)  index among values  k
============  ==================  ======================  ===============

so ``value = code + lo`` for every kind but BIPOLAR, where ``value = 2 * code - 1``, and POW2.

An INT or UINT type may have a ``zero_point`` (ONNX QuantizeLinear's, for activations): its values
are the stored integers minus the zero point, ``uint8_zp128`` holds -128 .. 127, and the code is the
stored integer (plus 2^(k-1) for int). Hardware then handles the zero point exactly: ``value = code + lo`` with
``lo = -zero_point`` folds into each row's accumulator offset like any signed type's.

POW2 is a weight type only: a signed k-bit weight set whose non-zero values are powers of two (the
five levels {-2, -1, 0, 1, 2} are POW2 with 3 bits), multiplied by shifting. ``magnitude`` is the
largest absolute value a type holds, the bound of a weight whose sign hardware may flip.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["QuantKind", "QuantType", "BIPOLAR", "TERNARY", "MAX_BITS", "MAX_INPUT_BITS"]

MAX_BITS = 8            # weights and activations
MAX_INPUT_BITS = 16     # the model's input (the first layer's codes), e.g. hls4ml's ap_fixed<16,6>


class QuantKind(enum.Enum):
    BIPOLAR = "bipolar"
    TERNARY = "ternary"
    INT = "int"
    UINT = "uint"
    POW2 = "pow2"


@dataclass(frozen=True)
class QuantType:
    """A quantization type: the set of integer values a tensor may hold."""

    kind: QuantKind
    bits: int = 1
    narrow: bool = False
    zero_point: int = 0

    def __post_init__(self):
        if not isinstance(self.kind, QuantKind):
            raise TypeError(f"kind must be a QuantKind, not {self.kind!r}")
        fixed = {QuantKind.BIPOLAR: 1, QuantKind.TERNARY: 2}
        if self.kind in fixed and self.bits != fixed[self.kind]:
            raise ValueError(f"{self.kind.value} values take {fixed[self.kind]} bits, not {self.bits!r}")
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_INPUT_BITS:
            raise ValueError(f"bits must be an integer from 1 to {MAX_INPUT_BITS}, not {self.bits!r}")
        if self.narrow and self.kind is not QuantKind.INT:
            raise ValueError("narrow ranges apply only to signed int types")
        if self.kind is QuantKind.INT and self.bits < 2:
            raise ValueError("a 1-bit signed int is bipolar: use the bipolar type")
        if self.zero_point:
            if self.kind not in (QuantKind.INT, QuantKind.UINT) or self.narrow:
                raise ValueError("a zero point applies only to int and uint types")
            if not isinstance(self.zero_point, int) or isinstance(self.zero_point, bool):
                raise ValueError(f"a zero point is an integer, not {self.zero_point!r}")
            stored_lo = 0 if self.kind is QuantKind.UINT else -(1 << (self.bits - 1))
            if not stored_lo <= self.zero_point <= stored_lo + (1 << self.bits) - 1:
                raise ValueError(f"zero point {self.zero_point} is outside the {self.kind.value}{self.bits} range")
        if self.kind is QuantKind.POW2 and self.bits < 3:
            raise ValueError("a power-of-two set of fewer than 3 bits is ternary: use the ternary type")

    @classmethod
    def int(cls, bits: int, *, narrow: bool = False, zero_point: int = 0) -> QuantType:
        return cls(QuantKind.INT, bits, narrow, zero_point)

    @classmethod
    def uint(cls, bits: int, *, zero_point: int = 0) -> QuantType:
        return cls(QuantKind.UINT, bits, zero_point=zero_point)

    @classmethod
    def pow2(cls, bits: int) -> QuantType:
        return cls(QuantKind.POW2, bits)

    @property
    def is_pow2(self) -> bool:
        return self.kind is QuantKind.POW2

    @property
    def lo(self) -> int:
        """Smallest value."""
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return -1
        if self.kind is QuantKind.UINT:
            return -self.zero_point
        if self.kind is QuantKind.POW2:
            return -(1 << (self.bits - 2))
        return -(1 << (self.bits - 1)) + int(self.narrow) - self.zero_point

    @property
    def hi(self) -> int:
        """Largest value."""
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return 1
        if self.kind is QuantKind.UINT:
            return (1 << self.bits) - 1 - self.zero_point
        if self.kind is QuantKind.POW2:
            return 1 << (self.bits - 2)
        return (1 << (self.bits - 1)) - 1 - self.zero_point

    @property
    def magnitude(self) -> int:
        """Largest absolute value."""
        return max(-self.lo, self.hi)

    @property
    def levels(self) -> int:
        """How many distinct values the type holds."""
        return len(self.values()) if self.kind in (QuantKind.BIPOLAR, QuantKind.POW2) else self.hi - self.lo + 1

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
        if self.is_pow2:
            powers = 1 << np.arange(self.bits - 1, dtype=np.int64)
            return np.concatenate([-powers[::-1], [0], powers])
        return np.arange(self.lo, self.hi + 1, dtype=np.int64)

    def contains(self, values: np.ndarray) -> bool:
        values = np.asarray(values)
        if self.is_bipolar:
            return bool(np.all((values == -1) | (values == 1)))
        if self.is_pow2:
            return bool(np.all(np.isin(values, self.values())))
        return bool(np.all((values >= self.lo) & (values <= self.hi) & (values == np.round(values))))

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Values to unsigned codes."""
        values = np.asarray(values, dtype=np.int64)
        if self.is_bipolar:
            return (values > 0).astype(np.int64)
        if self.is_pow2:
            return np.searchsorted(self.values(), values).astype(np.int64)
        return values - self.lo

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Unsigned codes to values."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.is_bipolar:
            return 2 * codes - 1
        if self.is_pow2:
            return self.values()[codes]
        return codes + self.lo

    # -- the text form used by the native model description ------------------------------------------
    def to_json(self) -> str:
        if self.kind in (QuantKind.BIPOLAR, QuantKind.TERNARY):
            return self.kind.value
        if self.is_pow2:
            return f"pow2_{self.bits}"
        zero_point = f"_zp{self.zero_point}" if self.zero_point else ""
        return f"{'narrow_' if self.narrow else ''}{self.kind.value}{self.bits}{zero_point}"

    @classmethod
    def from_json(cls, text: str) -> QuantType:
        """Parse ``bipolar``, ``ternary``, ``uintK``, ``intK``, ``narrow_intK`` or ``pow2_K``; an int or
        uint type may end in ``_zpZ``, its zero point (``uint8_zp128``, ``int8_zp-3``)."""
        if not isinstance(text, str):
            raise ValueError(f"a quant type is a string such as 'bipolar', 'ternary', 'uint4' or 'int8', not {text!r}")
        if text in ("bipolar", "ternary"):
            return cls(QuantKind(text), 1 if text == "bipolar" else 2)
        narrow = text.startswith("narrow_")
        body = text[len("narrow_"):] if narrow else text
        zero_point = re.fullmatch(r"(u?int\d+)_zp(-?\d+)", body)
        if zero_point and not narrow:
            base = cls.from_json(zero_point.group(1))
            return cls(base.kind, base.bits, zero_point=int(zero_point.group(2)))
        for prefix, kind in (("uint", QuantKind.UINT), ("int", QuantKind.INT), ("pow2_", QuantKind.POW2)):
            if body.startswith(prefix) and body[len(prefix):].isdigit():
                return cls(kind, int(body[len(prefix):]), narrow)
        raise ValueError(f"unknown quant type {text!r}: use 'bipolar', 'ternary', 'uintK', 'intK', 'narrow_intK' (K = 1..{MAX_INPUT_BITS}; up to {MAX_BITS} but for the input), 'pow2_K' (K = 3..{MAX_BITS}), or an int or uint type with a zero point such as 'uint8_zp128'")

    def __str__(self) -> str:
        return self.to_json()


BIPOLAR = QuantType(QuantKind.BIPOLAR, 1)
TERNARY = QuantType(QuantKind.TERNARY, 2)
