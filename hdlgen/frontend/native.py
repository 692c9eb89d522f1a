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
from ..ir.model import BatchNorm, Dense, InputQuantizer, Model, Quantizer
from ..ir.quant import QuantType

FORMAT = "hdlgen-model"
VERSION = 1
OPS = {"dense": Dense, "batchnorm": BatchNorm, "quantizer": Quantizer}
FIELDS = {
    "dense": ({"name", "weight", "weight_quant"}, {"weight_scale", "bias"}),
    "batchnorm": ({"name", "gamma", "beta", "mean", "var"}, {"eps"}),
    "quantizer": ({"name", "quant"}, {"scale"}),
}
TENSOR_FIELDS = {"weight", "weight_scale", "bias", "gamma", "beta", "mean", "var"}


class _Reader:
    def __init__(self, path: Path, tensors):
        self.path, self.tensors = path, tensors

    def fail(self, where: str, message: str):
        raise HdlgenError(f"{self.path}: {where}: {message}")

    def tensor(self, where: str, field: str, ref):
        if ref is None and field == "bias":
            return None
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            return np.float64(ref)
        if isinstance(ref, list):
            return np.asarray(ref, dtype=np.float64)
        if not isinstance(ref, str):
            self.fail(where, f"field {field!r} must name a tensor in the NPZ file or be a number, not {ref!r}")
        if ref not in self.tensors:
            known = ", ".join(sorted(self.tensors)) or "none"
            self.fail(where, f"field {field!r} names tensor {ref!r}, which the NPZ file does not hold (it holds: {known})")
        return self.tensors[ref]

    def quant(self, where: str, text):
        try:
            return QuantType.from_json(text)
        except (ValueError, TypeError) as e:
            self.fail(where, str(e))

    def layer(self, index: int, entry) -> object:
        where = f"layers[{index}]"
        if not isinstance(entry, dict):
            self.fail(where, "each layer is an object with an 'op' field")
        op = entry.get("op")
        if op not in OPS:
            self.fail(where, f"unknown op {op!r}; supported ops are {', '.join(OPS)}")
        if isinstance(entry.get("name"), str):
            where = f"layer {entry['name']!r} ({where})"
        required, optional = FIELDS[op]
        missing = required - set(entry)
        if missing:
            self.fail(where, f"missing field(s) {', '.join(sorted(missing))}")
        unknown = set(entry) - required - optional - {"op"}
        if unknown:
            self.fail(where, f"unknown field(s) {', '.join(sorted(unknown))} for op {op!r}")
        args = {}
        for field, value in entry.items():
            if field == "op":
                continue
            if field in TENSOR_FIELDS:
                args[field] = self.tensor(where, field, value)
            elif field in ("weight_quant", "quant"):
                args[field] = self.quant(where, value)
            else:
                args[field] = value
        try:
            return OPS[op](**args)
        except HdlgenError as e:
            raise HdlgenError(f"{self.path}: {e}") from None
        except (TypeError, ValueError) as e:
            self.fail(where, str(e))


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


def load_model(path: str | Path) -> Model:
    """Read a native model description (``.json``; its tensors in the ``.npz`` it names)."""
    path = Path(path)
    doc = _read_json(path)
    tensors_name = doc.get("tensors", path.with_suffix(".npz").name)
    reader = _Reader(path, _read_npz(path.parent / tensors_name))
    raw_input = doc.get("input")
    if not isinstance(raw_input, dict) or not {"features", "quant"} <= set(raw_input):
        raise HdlgenError(f"{path}: 'input' must be an object with 'features', 'quant' and optionally 'scale'")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise HdlgenError(f"{path}: 'layers' must be a non-empty list")
    try:
        model_input = InputQuantizer(raw_input["features"], reader.quant("input", raw_input["quant"]),
                                     raw_input.get("scale", 1.0))
        return Model(str(doc.get("name", path.stem)), model_input, tuple(reader.layer(i, e) for i, e in enumerate(layers)))
    except HdlgenError as e:
        message = str(e)
        raise HdlgenError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def _tensor_ref(tensors: dict, key: str, array) -> str | float | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.ndim == 0 or np.all(array == array.flat[0]) and key.endswith("weight_scale"):
        return float(array.flat[0])
    tensors[key] = array
    return key


def save_model(model: Model, path: str | Path) -> None:
    """Write ``model`` as ``path`` (JSON) and the NPZ beside it; ``load_model`` reads back the same model."""
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    layers = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            entry = {"op": "dense", "name": layer.name, "weight_quant": layer.weight_quant.to_json(),
                     "weight": _tensor_ref(tensors, f"{layer.name}.weight", layer.weight.astype(np.int8)),
                     "weight_scale": _tensor_ref(tensors, f"{layer.name}.weight_scale", layer.weight_scale)}
            if layer.bias is not None:
                entry["bias"] = _tensor_ref(tensors, f"{layer.name}.bias", layer.bias)
        elif isinstance(layer, BatchNorm):
            entry = {"op": "batchnorm", "name": layer.name, "eps": layer.eps}
            for field in ("gamma", "beta", "mean", "var"):
                entry[field] = _tensor_ref(tensors, f"{layer.name}.{field}", getattr(layer, field))
        else:
            entry = {"op": "quantizer", "name": layer.name, "quant": layer.quant.to_json(), "scale": layer.scale}
        layers.append(entry)
    doc = {"format": FORMAT, "version": VERSION, "name": model.name, "tensors": path.with_suffix(".npz").name,
           "input": {"features": model.input.features, "quant": model.input.quant.to_json(), "scale": model.input.scale},
           "layers": layers}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    np.savez(path.with_suffix(".npz"), **tensors)
