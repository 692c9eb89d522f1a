"""Choosing how each layer is folded in time (PE output rows, SIMD inputs per cycle).

A layer with MH rows and MW inputs folded by (pe, simd) takes ``(MH/pe) * (MW/simd)`` cycles per
frame; the pipeline's frame interval is its slowest layer's. ``auto_folding`` gives every layer the
least parallelism that meets a common cycle budget, so layers are balanced and no hardware is
spent on a layer that would wait for a slower one anyway.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import HdlgenError
from ..ir.lowered import Folding, LoweredModel, MatrixVectorLayer

DEFAULT_LANES = 64    # multiply lanes of the heaviest layer when no frame rate is asked for (--target-fps asks)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_cycles(layer: MatrixVectorLayer, folding: Folding) -> int:
    return (layer.mh // folding.pe) * (layer.mw // folding.simd)


def cheapest_folding(layer: MatrixVectorLayer, budget: int) -> Folding:
    """The folding with fewest lanes (pe * simd) that takes at most ``budget`` cycles per frame.

    Ties go to the larger simd (wider adder trees share one accumulator and threshold unit).
    """
    best = None
    for simd in _divisors(layer.mw):
        for pe in _divisors(layer.mh):
            folding = Folding(pe=pe, simd=simd)
            if layer_cycles(layer, folding) <= budget:
                key = (pe * simd, -simd)
                if best is None or key < best[0]:
                    best = (key, folding)
                break
    return best[1] if best else Folding(pe=layer.mh, simd=layer.mw)


def auto_folding(model: LoweredModel, *, target_fps: float | None = None, clock_mhz: float = 100.0) -> dict[str, Folding]:
    """Balanced folding for ``target_fps`` frames/s at ``clock_mhz``, or for DEFAULT_LANES on the heaviest layer."""
    if target_fps is None:
        heaviest = max(layer.mh * layer.mw for layer in model.layers)
        budget = math.ceil(heaviest / DEFAULT_LANES)
    else:
        if not target_fps > 0:
            raise HdlgenError(f"--target-fps must be positive, not {target_fps!r}")
        budget = math.floor(clock_mhz * 1e6 / target_fps)
        if budget < 1:
            raise HdlgenError(f"{target_fps:g} frames/s at {clock_mhz:g} MHz leaves less than one cycle per frame; "
                              f"lower --target-fps")
    return {layer.name: cheapest_folding(layer, budget) for layer in model.layers}


def check_foldings(model: LoweredModel, foldings: dict[str, Folding]) -> None:
    unknown = set(foldings) - {layer.name for layer in model.layers}
    if unknown:
        raise HdlgenError(f"folding names unknown layer(s) {', '.join(sorted(unknown))}; "
                          f"the layers are {', '.join(l.name for l in model.layers)}")
    for layer in model.layers:
        if layer.name not in foldings:
            raise HdlgenError(f"folding gives no pe/simd for layer {layer.name!r}")
        layer.check_folding(foldings[layer.name])


def load_folding(path: Path, model: LoweredModel) -> dict[str, Folding]:
    """Read a folding file: ``{"layer_name": {"pe": 4, "simd": 16}, ...}`` with every layer named."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise HdlgenError(f"{path}: folding file not found") from None
    except json.JSONDecodeError as e:
        raise HdlgenError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(raw, dict):
        raise HdlgenError(f"{path}: a folding file is an object mapping layer names to {{\"pe\": N, \"simd\": N}}")
    foldings = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"pe", "simd"}:
            raise HdlgenError(f"{path}: layer {name!r} must map to {{\"pe\": N, \"simd\": N}}, not {entry!r}")
        try:
            foldings[name] = Folding(pe=entry["pe"], simd=entry["simd"])
        except HdlgenError as e:
            raise HdlgenError(f"{path}: layer {name!r}: {e}") from None
    try:
        check_foldings(model, foldings)
    except HdlgenError as e:
        raise HdlgenError(f"{path}: {e}") from None
    return foldings
