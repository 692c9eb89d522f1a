"""Choosing how each layer is folded in time (PE output rows, SIMD inputs per cycle).

A layer with MH rows and MW inputs folded by (pe, simd) takes ``V * (MH/pe) * (MW/simd)`` cycles per
frame (V = 1 for a dense layer, the output pixels for a convolution), or fewer where it skips its
all-zero blocks of weights (``transforms.zero_skip``); the pipeline's frame interval is its slowest
layer's. ``auto_folding`` gives every layer the least parallelism that meets a common cycle budget
(skipping zeros only where the dense folding would miss it), so layers are balanced and no hardware is
spent on a layer that would wait for a slower one anyway. Where the target packs several rows'
products into one multiplier (``cores.products``), the fewest multipliers come first, and among
foldings with as many, those whose PE fills every multiplier's lanes.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..cores.products import ProductKind, choose_product, packing
from ..cores.vvu import vector_unit_applies
from ..errors import HdlgenError
from ..readers import read_json
from ..ir.lowered import Folding, LoweredModel, MatrixVectorLayer, WindowStage
from ..targets import DEFAULT_TARGET

DEFAULT_LANES = 64    # multiply lanes of the heaviest layer when no frame rate is asked for (--target-fps asks)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_cycles(layer: MatrixVectorLayer, folding: Folding) -> int:
    from .zero_skip import layer_cycles as cycles
    return cycles(layer, folding)


def simd_unit(model: LoweredModel, layer: MatrixVectorLayer) -> int:
    """What a layer's simd must divide: its inputs, or for a convolution its input channels (a beat
    carries channels of one window position)."""
    index = model.layers.index(layer)
    before = model.layers[index - 1] if index else None
    return before.in_shape[2] if isinstance(before, WindowStage) else layer.mw


def cheapest_folding(layer: MatrixVectorLayer, budget: int, simd_divides: int | None = None,
                     packed_lanes: int = 1, target: str | None = None) -> Folding:
    """The folding with fewest lanes (pe * simd) that takes at most ``budget`` cycles per frame.

    Ties go to the larger simd (wider adder trees share one accumulator and threshold unit). With
    ``packed_lanes`` > 1 rows share multipliers that many to one: the fewest multipliers
    (``ceil(pe / lanes) * simd``) come first, then the fewest lanes left empty. With a ``target``,
    a folding skips zero blocks where that pays (``transforms.zero_skip``), and is counted so.
    """
    from .zero_skip import pays
    best = None
    for simd in _divisors(simd_divides or layer.mw):
        for pe in _divisors(layer.mh):
            dense, skipping = Folding(pe=pe, simd=simd), Folding(pe=pe, simd=simd, zero_skip=True)
            vector = target is not None and vector_unit_applies(layer, skipping)
            # dense where dense meets the budget; else skipping zero blocks, where that pays; and a
            # depthwise layer's vector-vector unit (cores.vvu), which makes pe products a cycle
            candidates = [dense]
            if vector or (layer_cycles(layer, dense) > budget and target is not None and pays(layer, dense, target)):
                candidates.append(skipping)
            for folding in candidates:
                if layer_cycles(layer, folding) > budget:
                    continue
                if folding.zero_skip and vector:
                    key = (pe, 0, pe, -simd)
                elif packed_lanes == 1:
                    key = (pe * simd, 0, pe * simd, -simd)
                else:
                    groups = -(-pe // packed_lanes)
                    key = (groups * simd, groups * packed_lanes - pe, pe * simd, -simd)
                if best is None or key < best[0]:
                    best = (key, folding)
    return best[1] if best else Folding(pe=layer.mh, simd=simd_divides or layer.mw)


def auto_folding(model: LoweredModel, *, target_fps: float | None = None, clock_mhz: float = 100.0,
                 target: str = DEFAULT_TARGET, budget: int | None = None) -> dict[str, Folding]:
    """Balanced folding for ``target_fps`` frames/s at ``clock_mhz`` (or for ``budget`` cycles per
    frame), else for DEFAULT_LANES on the heaviest layer, counting multipliers as ``target`` packs them."""
    if budget is None and target_fps is None:
        heaviest = max(layer.vectors * layer.mh * layer.mw for layer in model.mvus)
        budget = math.ceil(heaviest / DEFAULT_LANES)
    elif budget is None:
        if not target_fps > 0:
            raise HdlgenError(f"--target-fps must be positive, not {target_fps!r}")
        budget = math.floor(clock_mhz * 1e6 / target_fps)
        if budget < 1:
            raise HdlgenError(f"{target_fps:g} frames/s at {clock_mhz:g} MHz leaves less than one cycle per frame; "
                              f"lower --target-fps")
    return {layer.name: cheapest_folding(layer, budget, simd_unit(model, layer), _packed_lanes(layer, target), target)
            for layer in model.mvus}


def _packed_lanes(layer: MatrixVectorLayer, target: str) -> int:
    if choose_product(layer.in_type, layer.weight_type, target).kind is not ProductKind.PACKED:
        return 1
    return packing(layer.in_type, layer.weight_type, target).lanes


def check_foldings(model: LoweredModel, foldings: dict[str, Folding], target: str = DEFAULT_TARGET) -> None:
    unknown = set(foldings) - {layer.name for layer in model.mvus}
    if unknown:
        raise HdlgenError(f"folding names unknown layer(s) {', '.join(sorted(unknown))}; "
                          f"the layers are {', '.join(l.name for l in model.mvus)}")
    for layer in model.mvus:
        if layer.name not in foldings:
            raise HdlgenError(f"folding gives no pe/simd for layer {layer.name!r}")
        layer.check_folding(foldings[layer.name])
        if foldings[layer.name].zero_skip:
            from .zero_skip import can_skip_zeros
            if not can_skip_zeros(layer, foldings[layer.name], target):
                raise HdlgenError(f"layer {layer.name!r}: zero_skip needs weights that can be zero and products not "
                                  f"packed into multipliers ({layer.weight_type} weights on {target}); drop zero_skip")
        channels = simd_unit(model, layer)
        if channels % foldings[layer.name].simd:
            raise HdlgenError(f"layer {layer.name!r}: simd={foldings[layer.name].simd} does not divide its {channels} "
                              f"input channels (a convolution's beat holds channels of one window position); "
                              f"choose a divisor of {channels}")


FOLDING_SCHEMA = {
    "type": "object",
    "description": "must map layer names to {\"pe\": N, \"simd\": N}",
    "additionalProperties": {
        "type": "object", "required": ["pe", "simd"], "additionalProperties": False,
        "description": "must map to {\"pe\": N, \"simd\": N} with positive integers (and optionally \"zero_skip\": "
                       "true, \"fifo_depth\": N)",
        "properties": {"pe": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                       "simd": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                       "zero_skip": {"type": "boolean"},
                       "fifo_depth": {"type": "integer", "minimum": 1, "maximum": 1 << 20}},
    },
}


def plain_json(doc):
    """``doc`` with numpy's integers and booleans as Python's (a folding written in a numpy program)."""
    import numpy as np

    if isinstance(doc, dict):
        return {key: plain_json(value) for key, value in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [plain_json(value) for value in doc]
    if isinstance(doc, np.bool_):
        return bool(doc)
    if isinstance(doc, np.integer):
        return int(doc)
    return doc


def load_folding(source: Path | dict, model: LoweredModel, target: str = DEFAULT_TARGET,
                 where: str = "fold") -> dict[str, Folding]:
    """Read a folding file, or take a folding given as a dict: ``{"layer_name": {"pe": 4, "simd": 16}, ...}``
    with every layer named (``"zero_skip": true`` asks a layer to skip its all-zero blocks of weights,
    ``"fifo_depth": N`` sets the FIFO in front of its padding stage, at least the cycle model's).
    ``where`` names a folding given as a dict in messages (``fold``, or ``--fold`` for one on the
    command line)."""
    from ..readers import validate

    if isinstance(source, dict):
        raw = plain_json(source)
        validate(raw, FOLDING_SCHEMA, where)
    else:
        where = Path(source)
        raw = read_json(where, "folding file", FOLDING_SCHEMA)
    foldings = {}
    for name, entry in raw.items():
        try:
            foldings[name] = Folding(pe=entry["pe"], simd=entry["simd"], zero_skip=entry.get("zero_skip", False),
                                     fifo_depth=entry.get("fifo_depth"))
        except HdlgenError as e:
            raise HdlgenError(f"{where}: layer {name!r}: {e}") from None
    try:
        check_foldings(model, foldings, target)
        from ..assemble.dataflow import edge_fifos
        edge_fifos(model, foldings)              # a fifo_depth below the cycle model's is refused here
    except HdlgenError as e:
        raise HdlgenError(f"{where}: {e}") from None
    return foldings
