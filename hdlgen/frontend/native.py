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
from ..ir.lowered_io import input_entry
from ..ir.model import InputQuantizer, Model
from ..ir.quant import QuantType

FORMAT = "hdlgen-model"
VERSION = 1
INPUT_FIELDS = {"features", "quant", "scale", "rounding", "shape"}


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HdlgenError(f"{path}: model file not found") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise HdlgenError(f"{path}: not a JSON model description") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise HdlgenError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HdlgenError(f"{path}: not an hdlgen model description (expected \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise HdlgenError(f"{path}: format version {doc.get('version')!r} is not supported (this hdlgen reads {VERSION})")
    return doc


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise HdlgenError(f"{path}: tensor file not found (it is named by the model's \"tensors\" field)") from None
    except (ValueError, OSError) as e:
        raise HdlgenError(f"{path}: not a readable NPZ file ({e})") from None


def _fail(path: Path):
    def fail(where: str, message: str):
        raise HdlgenError(f"{path}: {where}: {message}")
    return fail


def load_model(path: str | Path) -> Model:
    """Read a native model description (``.json``; its tensors in the ``.npz`` it names)."""
    path = Path(path)
    doc = _read_json(path)
    tensors = _read_npz(path.parent / doc.get("tensors", path.with_suffix(".npz").name))
    fail = _fail(path)
    raw_input = doc.get("input")
    if not isinstance(raw_input, dict) or not {"features", "quant"} <= set(raw_input) or set(raw_input) - INPUT_FIELDS:
        raise HdlgenError(f"{path}: 'input' must be an object with 'features', 'quant' and optionally 'scale', "
                          f"'rounding', 'shape'")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise HdlgenError(f"{path}: 'layers' must be a non-empty list")
    try:
        try:
            quant = QuantType.from_json(raw_input["quant"])
        except (ValueError, TypeError) as e:
            fail("input", str(e))
        model_input = InputQuantizer(raw_input["features"], quant, raw_input.get("scale", 1.0),
                                     rounding=raw_input.get("rounding", "ROUND"), shape=raw_input.get("shape"))
        return Model(str(doc.get("name", path.stem)), model_input,
                     tuple(decode_layer(e, tensors, f"layers[{i}]", fail) for i, e in enumerate(layers)),
                     arithmetic=doc.get("arithmetic", "float64"))
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    np.savez(path.with_suffix(".npz"), **tensors)
