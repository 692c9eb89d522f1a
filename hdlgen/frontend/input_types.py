"""Declared input formats: QONNX DataType names (a ``finn_datatype`` annotation or ``--input-type``).

A QONNX model whose input no quantizer covers says what its input holds with an annotation (FINN's
models: ``BIPOLAR``, ``BINARY``, ``INTk``, ``UINTk``), or the user says it (a QKeras conversion,
which hls4ml gives a fixed-point input: ``--input-type FIXED<16,6>``). Elementwise preprocessing
between that input and the first layer, such as ``(x + 1) / 2`` on a bipolar input, is absorbed:
it maps the declared values onto another integer grid, which becomes the hardware's input format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import HdlgenError
from ..ir.evaluate import apply_elementwise
from ..ir.model import Elementwise, InputQuantizer
from ..ir.quant import BIPOLAR, MAX_BITS, MAX_INPUT_BITS, QuantType

__all__ = ["DeclaredInput", "declared_input", "absorb_preprocessing"]

EXAMPLES = "INT8, UINT8, BIPOLAR, BINARY or FIXED<8,3>"


@dataclass(frozen=True)
class DeclaredInput:
    """What the model's input holds: ``quant`` values times ``scale``; inputs are rounded by ``rounding``."""

    name: str            # the QONNX DataType name, as declared
    quant: QuantType
    scale: float
    rounding: str


def declared_input(name: str, where: str) -> DeclaredInput | None:
    """The input format a QONNX DataType name declares; None for FLOAT32 (no format declared)."""
    from qonnx.core.datatype import DataType

    fixed = re.fullmatch(r"FIXED<(-?\d+),(-?\d+)>", name.replace(" ", "")) if isinstance(name, str) else None
    if fixed and not int(fixed.group(2)) < int(fixed.group(1)):
        total, integer = int(fixed.group(1)), int(fixed.group(2))
        raise HdlgenError(f"{where}: {name} has {integer} integer bits of {total}; a QONNX FIXED<W,I> type needs "
                          f"I < W (I counts the sign bit, W - I are fraction bits): use FIXED<{max(total, 2)},"
                          f"{max(total, 2) - 1}>, or INT{max(total, 2)} for whole numbers")
    try:
        dtype = DataType[name]
    except (KeyError, ValueError, TypeError, AttributeError, AssertionError):
        raise HdlgenError(f"{where}: {name!r} is not a QONNX DataType name; use one such as {EXAMPLES}") from None
    canonical = dtype.get_canonical_name()
    if canonical == "FLOAT32" and where == "--input-type":
        raise HdlgenError(f"--input-type {name} declares a float input, and the hardware takes integers: declare the "
                          f"grid the input's values lie on, such as {EXAMPLES}, or put a quantizer at the model's "
                          f"input")
    if canonical == "FLOAT32":
        return None
    if canonical == "BIPOLAR":
        return DeclaredInput(canonical, BIPOLAR, 1.0, "ROUND")
    if canonical == "TERNARY":
        return DeclaredInput(canonical, QuantType.int(2, narrow=True), 1.0, "ROUND")
    if not dtype.is_integer() and not dtype.is_fixed_point():
        raise HdlgenError(f"{where}: {canonical} is not an integer or fixed-point type; use one such as {EXAMPLES}")
    bits = dtype.bitwidth()
    if bits > MAX_INPUT_BITS:
        raise HdlgenError(f"{where}: {canonical} has {bits} bits; hdlgen takes inputs of at most {MAX_INPUT_BITS} bits")
    signed = dtype.signed()
    if bits < 1 or (signed and bits < 2):
        # a signed 1-bit integer holds {-1, 0}: no hardware input type; BIPOLAR is {-1, +1}
        raise HdlgenError(f"{where}: {canonical} is not supported as an input; use BIPOLAR, BINARY, INTk (k >= 2) or UINTk")
    quant = QuantType.int(bits) if signed else QuantType.uint(bits)
    if dtype.is_fixed_point():
        # hls4ml's default ap_fixed quantization truncates toward minus infinity (AP_TRN)
        return DeclaredInput(canonical, quant, float(dtype.scale_factor()), "FLOOR")
    return DeclaredInput(canonical, quant, 1.0, "ROUND")


def _grid(n: int, lo: int) -> QuantType | None:
    """The quant type whose values are the n integers from lo, if there is one."""
    for quant in [QuantType.uint(b) for b in range(1, MAX_BITS + 1)] + \
                 [QuantType.int(b, narrow=narrow) for b in range(2, MAX_BITS + 1) for narrow in (False, True)]:
        if quant.lo == lo and quant.levels == n:
            return quant
    return None


def absorb_preprocessing(declared: DeclaredInput, preprocess: list[Elementwise], *, features: int,
                         shape: tuple[int, ...], dtype=np.float32) -> InputQuantizer:
    """The input quantizer for a declared input followed by scalar elementwise ops.

    The ops are evaluated on every declared value in the model's arithmetic; they must give
    ``(lo + i) * step`` for the i-th value, exactly, with a positive step, so that codes carry over.
    """
    quant, scale = declared.quant, declared.scale
    if not preprocess:
        return InputQuantizer(features, quant, scale, rounding=declared.rounding, shape=shape)
    y = (quant.values() * np.float64(scale)).astype(dtype)
    for layer in preprocess:
        y = apply_elementwise(layer, y)
    y = y.astype(np.float64)
    names = ", ".join(layer.name for layer in preprocess)
    if len(y) == 2 and y[0] == -y[1] and y[1] > 0:
        target, step = BIPOLAR, y[1]
    else:
        step = y[1] - y[0]
        lo = y[0] / step if step > 0 else np.nan
        target = _grid(len(y), int(lo)) if np.isfinite(lo) and lo == int(lo) else None
        if target is not None and not np.array_equal(y, (target.values() * step)):
            target = None
    if target is None:
        shown = ", ".join(f"{v:g}" for v in y[:4]) + (", ..." if len(y) > 4 else "")
        raise HdlgenError(f"preprocessing {names} maps the {declared.name} input onto {shown}, which is no integer "
                          f"grid with a positive step; hdlgen absorbs only increasing affine maps onto one")
    return InputQuantizer(features, target, float(step), rounding=declared.rounding, shape=shape,
                          given=quant, given_scale=scale)
