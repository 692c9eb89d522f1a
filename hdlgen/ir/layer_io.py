"""Source-model layers as JSON entries with their tensors kept apart (for an NPZ file).

Shared by the native model description (``frontend.native``) and the lowered model's output stage
(``ir.lowered_io``). See ``docs/model-format.md`` for the entries.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .model import (AvgPool2d, BatchNorm, ShiftBatchNorm, Clip, Conv2d, Dense, Elementwise, Flatten, GlobalAvgPool, MaxPool2d, MultiThreshold, Quantizer,
                    Requantize, Trunc)
from ..readers import schema_problem
from .quant import QuantType

__all__ = ["OPS", "encode_layer", "decode_layer"]

OPS = {"dense": Dense, "conv2d": Conv2d, "batchnorm": BatchNorm, "shift_batchnorm": ShiftBatchNorm, "mul": Elementwise, "add": Elementwise,
       "sub": Elementwise, "div": Elementwise, "clip": Clip, "quantizer": Quantizer,
       "multithreshold": MultiThreshold, "trunc": Trunc, "requantize": Requantize, "maxpool2d": MaxPool2d, "avgpool2d": AvgPool2d, "flatten": Flatten,
       "global_avg_pool": GlobalAvgPool}
TENSOR_FIELDS = {"weight", "weight_scale", "bias", "gamma", "beta", "mean", "var", "operand", "thresholds", "multiplier",
                 "norm_shift", "gamma_shift", "sign"}
QUANT_FIELDS = {"weight_quant", "quant"}
BOUND_FIELDS = {"lo", "hi"}        # null in JSON stands for an infinite bound


_NUMBERS = {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}}
_TENSOR = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}, _NUMBERS],
           "description": "must name an array in the NPZ file, or be a number or a list of numbers"}


def _ints(count: int, minimum: int) -> dict:
    return {"type": "array", "minItems": count, "maxItems": count,
            "items": {"type": "integer", "minimum": minimum, "maximum": 1 << 16}}


#: What each field of a layer entry may hold (the dataclass says which fields an op has and needs).
FIELD_SCHEMAS = {
    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
             "description": "must be an identifier: ASCII letters, digits and underscores, not starting with a digit"},
    **{f: _TENSOR for f in TENSOR_FIELDS - {"bias"}},
    "bias": {"anyOf": [{"type": "null"}, *_TENSOR["anyOf"]], "description": _TENSOR["description"]},
    **{f: {"type": "string"} for f in QUANT_FIELDS | {"rounding"}},
    **{f: {"type": "number"} for f in ("eps", "scale", "in_scale")},
    **{f: {"type": ["number", "null"]} for f in BOUND_FIELDS},
    "stride": _ints(2, 1), "dilation": _ints(2, 1), "kernel": _ints(2, 1), "padding": _ints(4, 0),
    "groups": {"type": "integer", "minimum": 1, "maximum": 1 << 16},
    "pad_value": {"type": "integer", "minimum": -256, "maximum": 256},
    "count_include_pad": {"type": "boolean"},
    "ceil_mode": {"type": "boolean"},
}


def _schema(cls) -> dict:
    required, optional = _fields(cls)
    schema = {"type": "object", "properties": {f: FIELD_SCHEMAS[f] for f in required | optional}}
    if cls in (MaxPool2d, AvgPool2d):
        schema["properties"]["stride"] = {"anyOf": [{"type": "null"}, _ints(2, 1)],
                                          "description": "must be null or 2 positive integers"}
    return schema


def _op_of(layer) -> str:
    if isinstance(layer, Elementwise):
        return layer.op
    return next(op for op, cls in OPS.items() if cls is type(layer))


def _fields(cls) -> tuple[set[str], set[str]]:
    required, optional = set(), set()
    for f in dataclasses.fields(cls):
        if f.name == "op" and cls is Elementwise:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        (optional if has_default else required).add(f.name)
    return required, optional


def encode_layer(layer, tensors: dict[str, np.ndarray], prefix: str = "") -> dict:
    """A JSON entry for ``layer``; its arrays go into ``tensors`` under ``prefix + name.field``."""
    entry = {"op": _op_of(layer)}
    for f in dataclasses.fields(layer):
        if f.name == "op":
            continue
        value = getattr(layer, f.name)
        if value is None:
            continue
        if f.name in TENSOR_FIELDS:
            array = np.asarray(value)
            if array.ndim == 0 or (f.name == "weight_scale" and np.all(array == array.flat[0])):
                entry[f.name] = float(array.flat[0])
            else:
                key = f"{prefix}{layer.name}.{f.name}"
                tensors[key] = array.astype(np.int8) if f.name == "weight" else array
                entry[f.name] = key
        elif f.name in QUANT_FIELDS:
            entry[f.name] = value.to_json()
        elif f.name in BOUND_FIELDS:
            entry[f.name] = None if np.isinf(value) else value
        elif isinstance(value, tuple):
            entry[f.name] = list(value)
        else:
            entry[f.name] = value
    return entry


def decode_layer(entry, tensors: dict[str, np.ndarray], where: str, fail):
    """The layer an entry describes; ``fail(where, message)`` reports a mistake and does not return."""
    if not isinstance(entry, dict):
        fail(where, "each layer is an object with an 'op' field")
    op = entry.get("op")
    if not isinstance(op, str) or op not in OPS:
        fail(where, f"unknown op {op!r}; supported ops are {', '.join(OPS)}")
    if isinstance(entry.get("name"), str):
        where = f"layer {entry['name']!r} ({where})"
    cls = OPS[op]
    required, optional = _fields(cls)
    missing = required - set(entry)
    if missing:
        fail(where, f"missing field(s) {', '.join(sorted(missing))}")
    unknown = set(entry) - required - optional - {"op"}
    if unknown:
        fail(where, f"unknown field(s) {', '.join(sorted(unknown))} for op {op!r}")
    problem = schema_problem({k: v for k, v in entry.items() if k != "op"}, _schema(cls))
    if problem is not None:
        fail(where, problem)
    args = {"op": op} if cls is Elementwise else {}
    for field, value in entry.items():
        if field == "op":
            continue
        if field in TENSOR_FIELDS:
            args[field] = _tensor(tensors, where, field, value, fail)
        elif field in QUANT_FIELDS:
            try:
                args[field] = QuantType.from_json(value)
            except (ValueError, TypeError) as e:
                fail(where, str(e))
        elif field in BOUND_FIELDS:
            args[field] = (-np.inf if field == "lo" else np.inf) if value is None else value
        else:
            args[field] = value
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        fail(where, str(e))


def _tensor(tensors, where, field, ref, fail):
    if ref is None and field == "bias":
        return None
    if isinstance(ref, (int, float)) and not isinstance(ref, bool):
        return np.float64(ref)
    if isinstance(ref, list):
        try:
            return np.asarray(ref, dtype=np.float64)
        except ValueError:
            fail(where, f"field {field!r} must be a list of numbers")
    if not isinstance(ref, str):
        fail(where, f"field {field!r} must name a tensor in the NPZ file or be a number, not {ref!r}")
    if ref not in tensors:
        known = ", ".join(sorted(tensors)) or "none"
        fail(where, f"field {field!r} names tensor {ref!r}, which the NPZ file does not hold (it holds: {known})")
    return tensors[ref]
