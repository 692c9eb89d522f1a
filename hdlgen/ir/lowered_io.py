"""Reading and writing a lowered model with its folding (``lowered.json`` + ``lowered.npz``).

``hdlgen build`` writes it next to the Verilog; ``hdlgen sim`` reads it to quantize inputs and to
turn the hardware's output words back into the model's units.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import HdlgenError
from .lowered import (ClassOutput, Folding, GlobalPoolStage, LoweredModel, MatrixVectorLayer, OutputStage, PadStage, PoolStage,
                      RequantUnit,
                      WindowMaxStage, WindowStage)
from .layer_io import decode_layer, encode_layer
from .model import HostOp, InputQuantizer
from ..readers import read_json, read_npz
from .quant import QuantType

FORMAT = "hdlgen-lowered"


def input_entry(model_input: InputQuantizer) -> dict:
    """The input quantizer as the native description writes it."""
    entry = {"features": model_input.features, "quant": model_input.quant.to_json(), "scale": model_input.scale,
             "rounding": model_input.rounding}
    if len(model_input.shape) > 1:
        entry["shape"] = list(model_input.shape)
    if model_input.given is not None:
        entry["given"], entry["given_scale"] = model_input.given.to_json(), model_input.given_scale
    if model_input.preprocess:
        entry["preprocess"] = [encode_layer(layer, {}) for layer in model_input.preprocess]
    return entry


HOST_SCHEMA = {"type": ["object", "null"], "required": ["op", "attributes", "opset"], "additionalProperties": False,
               "properties": {"op": {"enum": list(HostOp.OPS)}, "opset": {"type": "integer", "minimum": 1},
                              "attributes": {"type": "object", "additionalProperties": {"type": "integer"}}}}


def host_entry(host: HostOp | None) -> dict | None:
    """A final host op as JSON (see ``HOST_SCHEMA``)."""
    return None if host is None else {"op": host.op, "attributes": dict(host.attributes), "opset": host.opset}


def host_op(entry: dict | None) -> HostOp | None:
    return None if entry is None else HostOp(entry["op"], tuple(entry["attributes"].items()), entry["opset"])


def input_quantizer(entry: dict) -> InputQuantizer:
    """The input quantizer an entry of ``input_entry``'s form describes."""
    given = entry.get("given")

    def fail(where, message):
        raise HdlgenError(f"input: {where}: {message}")

    preprocess = tuple(decode_layer(layer, {}, f"preprocess[{k}]", fail) for k, layer in enumerate(entry.get("preprocess", [])))
    return InputQuantizer(entry["features"], QuantType.from_json(entry["quant"]), entry.get("scale", 1.0),
                          rounding=entry.get("rounding", "ROUND"), shape=entry.get("shape"),
                          given=None if given is None else QuantType.from_json(given),
                          given_scale=entry.get("given_scale", 1.0), preprocess=preprocess)


STAGES = {"pad": PadStage, "window": WindowStage, "pool": PoolStage, "window_max": WindowMaxStage,
          "global_pool": GlobalPoolStage}


def _stage_entry(stage, tensors: dict) -> dict:
    entry = {"kind": next(k for k, cls in STAGES.items() if isinstance(stage, cls))}
    for f in dataclasses.fields(stage):
        value = getattr(stage, f.name)
        if isinstance(value, np.ndarray):
            tensors[f"{stage.name}.{f.name}"] = value
            value = f"{stage.name}.{f.name}"
        entry[f.name] = value.to_json() if isinstance(value, QuantType) else list(value) if isinstance(value, tuple) else value
    return entry


def _stage(entry: dict, tensors: dict):
    cls = STAGES[entry["kind"]]
    args = {}
    for f in dataclasses.fields(cls):
        value = entry[f.name]
        if f.name == "thresholds":
            value = tensors[value]
        args[f.name] = QuantType.from_json(value) if f.name.endswith("_type") else tuple(value) if isinstance(value, list) else value
    return cls(**args)


def _opt(value, parse):
    return None if value is None else parse(value)


def save_lowered(model: LoweredModel, foldings: dict[str, Folding], directory: Path) -> None:
    tensors: dict[str, np.ndarray] = {}
    layers = []
    for layer in model.layers:
        if not isinstance(layer, MatrixVectorLayer):
            layers.append(_stage_entry(layer, tensors))
            continue
        tensors[f"{layer.name}.weights"] = layer.weights.astype(np.int16)     # +-128 and more
        if layer.thresholds is not None:
            tensors[f"{layer.name}.thresholds"] = layer.thresholds
        fold = foldings[layer.name]
        entry = {"kind": "matrix_vector", "name": layer.name, "in_type": layer.in_type.to_json(),
                 "weight_type": layer.weight_type.to_json(), "out_type": _opt(layer.out_type, QuantType.to_json),
                 "spatial": list(layer.spatial), "pe": fold.pe, "simd": fold.simd, "zero_skip": fold.zero_skip,
                 "fifo_depth": fold.fifo_depth}
        unit = layer.requant
        if unit is not None:
            entry["requant"] = {"kind": unit.kind, "half_even": unit.half_even, "lo": unit.lo, "hi": unit.hi,
                                "differing": unit.differing, "fraction": unit.fraction, "width": unit.width}
            for key in ("offset", "shift", "m0", "sign"):
                if getattr(unit, key) is not None:
                    tensors[f"{layer.name}.requant.{key}"] = getattr(unit, key)
        layers.append(entry)
    out = model.output
    for key in ("multiplier", "bias"):
        if getattr(out, key) is not None:
            tensors[f"output.{key}"] = getattr(out, key)
    doc = {"format": FORMAT, "name": model.name, "arithmetic": model.arithmetic, "host": host_entry(model.host),
           "input": input_entry(model.input),
           "layers": layers,
           "output": {"quant": _opt(out.quant, QuantType.to_json), "scale": out.scale,
                      "tail": [encode_layer(layer, tensors, "output.") for layer in out.tail]}}
    classes = model.classes
    if classes is not None:
        doc["classes"] = {"features": classes.features, "word_bits": classes.word_bits, "key": classes.key,
                          "key_bits": classes.key_bits, "signed": classes.signed, "invert": classes.invert}
        if classes.table is not None:
            tensors["classes.table"] = classes.table
    (directory / "lowered.json").write_text(json.dumps(doc, indent=2) + "\n")
    np.savez(directory / "lowered.npz", **tensors)


def load_lowered(directory: Path) -> tuple[LoweredModel, dict[str, Folding]]:
    """The lowered model and folding in ``directory``; anything unreadable asks for a rebuild."""
    directory = Path(directory)
    json_file, npz_file = directory / "lowered.json", directory / "lowered.npz"
    if not json_file.is_file() or not npz_file.is_file():
        raise HdlgenError(f"{directory}: not a build directory (no lowered.json/lowered.npz); run 'hdlgen build' first")
    try:
        doc = read_json(json_file, "lowered model")
        tensors = read_npz(npz_file, "lowered tensors")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise HdlgenError(f"{json_file} is not a lowered hdlgen model")
        return _decode(doc, tensors, json_file)
    except HdlgenError as e:
        raise HdlgenError(f"{e}; run 'hdlgen build' again") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise HdlgenError(f"{json_file}: the lowered model is damaged ({type(e).__name__}: {e}); "
                          f"run 'hdlgen build' again") from None


def _decode(doc: dict, tensors: dict, json_file: Path) -> tuple[LoweredModel, dict[str, Folding]]:
    layers, foldings = [], {}
    for entry in doc["layers"]:
        name = entry["name"]
        if entry["kind"] != "matrix_vector":
            layers.append(_stage(entry, tensors))
            continue
        unit = entry.get("requant")
        if unit is not None:
            unit = RequantUnit(unit["kind"], tensors[f"{name}.requant.offset"], tensors[f"{name}.requant.shift"],
                               half_even=bool(unit["half_even"]), m0=tensors.get(f"{name}.requant.m0"),
                               lo=int(unit["lo"]), hi=int(unit["hi"]), differing=int(unit["differing"]),
                               sign=tensors.get(f"{name}.requant.sign"), fraction=int(unit["fraction"]),
                               width=int(unit["width"]))
        layers.append(MatrixVectorLayer(name, QuantType.from_json(entry["in_type"]), QuantType.from_json(entry["weight_type"]),
                                        tensors[f"{name}.weights"], tensors.get(f"{name}.thresholds"),
                                        _opt(entry["out_type"], QuantType.from_json), tuple(entry["spatial"]), unit))
        foldings[name] = Folding(pe=entry["pe"], simd=entry["simd"], zero_skip=entry.get("zero_skip", False),
                                 fifo_depth=entry.get("fifo_depth"))
    out = doc["output"]

    def fail(where, message):
        raise HdlgenError(f"{json_file}: {where}: {message}")

    tail = tuple(decode_layer(entry, tensors, f"output.tail[{i}]", fail) for i, entry in enumerate(out["tail"]))
    output = OutputStage(quant=_opt(out["quant"], QuantType.from_json), scale=out["scale"],
                         multiplier=tensors.get("output.multiplier"), bias=tensors.get("output.bias"), tail=tail)
    classes = doc.get("classes")
    if classes is not None:
        classes = ClassOutput(int(classes["features"]), int(classes["word_bits"]), classes["key"],
                              int(classes["key_bits"]), bool(classes["signed"]), bool(classes["invert"]),
                              tensors.get("classes.table"))
        shape = (classes.features, 1 << classes.word_bits)
        if classes.key not in ("direct", "rank") or (classes.key == "rank") != (classes.table is not None) or \
                (classes.table is not None and classes.table.shape != shape):
            fail("classes", f"a {classes.key!r} key with a table of shape "
                            f"{None if classes.table is None else classes.table.shape}, not {shape}")
    return LoweredModel(doc["name"], input_quantizer(doc["input"]), tuple(layers), output, doc["arithmetic"],
                        host_op(doc.get("host")), classes), foldings
