"""The native model description: JSON for structure and quantization, NPZ for tensors.

See ``docs/model-format.md`` for the format. Tensors are named in the JSON and stored in the NPZ
(``"weight": "fc1.weight"``); scalars may be written inline. Loading validates everything and
reports the file, the layer and what to change.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from ..ir.layer_io import decode_layer, encode_layer
from ..ir.lowered_io import HOST_SCHEMA, host_entry, host_op, input_entry, input_quantizer
from ..ir.model import ARITHMETIC, Model
from ..readers import read_json, read_npz, validate

FORMAT = "hdlgen-model"
VERSION = 1
MAX_FEATURES = 1 << 24


SCHEMA = {
    "type": "object",
    "required": ["format", "version", "input", "layers"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "tensors": {"type": "string", "pattern": r"^(?!\.\.?$)[^/\\]+$",
                    "description": "must be the name of an NPZ file in the model's folder"},
        "arithmetic": {"enum": list(ARITHMETIC)},
        "host": HOST_SCHEMA,
        "input": {
            "type": "object",
            "required": ["features", "quant"],
            "additionalProperties": False,
            "properties": {"features": {"type": "integer", "minimum": 1, "maximum": MAX_FEATURES},
                           "quant": {"type": "string"}, "scale": {"type": "number"}, "rounding": {"type": "string"},
                           "given": {"type": "string"}, "given_scale": {"type": "number"},
                           "preprocess": {"type": "array", "items": {"type": "object"}},
                           "shape": {"type": "array", "minItems": 1, "maxItems": 3,
                                     "items": {"type": "integer", "minimum": 1, "maximum": MAX_FEATURES}}},
        },
        "layers": {"type": "array", "minItems": 1, "items": {"type": "object"},
                   "description": "must be a non-empty list of layer objects"},
    },
}


def _read_json(path: Path) -> dict:
    doc = read_json(path, "model file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HdlgenError(f"{path}: not an hdlgen model description (expected \"format\": \"{FORMAT}\")")
    if type(doc.get("version")) is not int or doc["version"] != VERSION:
        raise HdlgenError(f"{path}: format version {doc.get('version')!r} is not supported (this hdlgen reads {VERSION})")
    validate(doc, SCHEMA, path)
    return doc


def _fail(path: Path):
    def fail(where: str, message: str):
        raise HdlgenError(f"{path}: {where}: {message}")
    return fail


def load_model(path: str | Path) -> Model:
    """Read a native model description (``.json``; its tensors in the ``.npz`` it names)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        raise HdlgenError(f"{path}: give the model's .json description; it names this NPZ file for its tensors")
    doc = _read_json(path)
    # the model's own checks name the layer of a non-finite value
    tensors = read_npz(path.parent / doc.get("tensors", path.with_suffix(".npz").name), "tensor", finite=False)
    fail = _fail(path)
    try:
        try:
            model_input = input_quantizer(doc["input"])
        except (ValueError, TypeError) as e:
            fail("input", str(e))
        return Model(str(doc.get("name", path.stem)), model_input,
                     tuple(decode_layer(e, tensors, f"layers[{i}]", fail) for i, e in enumerate(doc["layers"])),
                     arithmetic=doc.get("arithmetic", "float64"), host=host_op(doc.get("host")))
    except HdlgenError as e:
        message = str(e)
        raise HdlgenError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def save_model(model: Model, path: str | Path) -> None:
    """Write ``model`` as ``path`` (JSON) and the NPZ beside it; ``load_model`` reads back the same model."""
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    layers = [encode_layer(layer, tensors) for layer in model.layers]
    doc = {"format": FORMAT, "version": VERSION, "name": model.name, "tensors": path.with_suffix(".npz").name,
           "arithmetic": model.arithmetic, "input": input_entry(model.input), "layers": layers}
    if model.host is not None:
        doc["host"] = host_entry(model.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    np.savez(path.with_suffix(".npz"), **tensors)
