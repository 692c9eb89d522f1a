"""Folding that fits a device: the estimate (``transforms.resources``) against the target's resources.

A target that names a device (``boards/targets.json`` ``resources``) has LUTs, block RAMs and DSPs;
a folding *fits* when its estimate uses at most ``UTILISATION`` of each (LUTs are kept below 80 %
so that nextpnr can still route; block RAMs and DSPs may be used up). On iCE40 the LUT limit is
one of logic cells, which hold a LUT and a flip-flop each: the estimate counts the LUTs and the
flip-flops that take a cell of their own (``resources.logic_cells``).

``foldings_by_rate`` lists the balanced foldings (``auto_folding``) from the slowest (every layer
one lane) to the fastest, each budget of cycles per frame 1.25 times below the last. Every stage is
folded with them: a window, padding or pooling stage moves as many values a beat as the layer it
feeds or follows, so its cycles follow that layer's folding (``assemble.dataflow.frame_cycles``).
``fastest_fitting`` is the fastest of those that fits (on iCE40 checked by nextpnr's packing of
it); ``check_fits`` refuses a folding chosen for a frame rate that does not, naming the resource
and the best frame rate that fits.
"""

from __future__ import annotations

import math

from ..errors import HdlgenError
from ..ir.lowered import Folding, LoweredModel
from ..targets import Target, get_target
from .folding import auto_folding
from .resources import Estimate, estimate, logic_cells

__all__ = ["UTILISATION", "device_limits", "used", "lut_name", "over_limits", "foldings_by_rate", "fastest_fitting",
           "packed_use", "check_fits"]

UTILISATION = {"lut": 0.8, "bram": 1.0, "dsp": 1.0}
STEP = 1.25          # between the cycle budgets foldings_by_rate tries
NAMES = {"lut": "LUTs", "bram": "block RAMs", "dsp": "DSPs"}


def device_limits(target: Target | str) -> dict[str, float]:
    """What a folding may use of ``target``'s device; an error for a target without a device."""
    target = get_target(target)
    if target.resources is None:
        raise HdlgenError(f"target {target.name} names a family ({target.device}), not a device, so no folding can be "
                          f"fitted to it; give a folding file (--fold FILE), --target-fps, or a target with a device")
    return {k: v * UTILISATION[k] for k, v in target.resources}


def used(est: Estimate, target: Target | str) -> dict[str, float]:
    """What ``est`` takes of the device's resources: LUT sites (on iCE40 logic cells, which hold a
    LUT and a flip-flop: ``resources.logic_cells``), block RAMs and DSPs."""
    return {"lut": logic_cells(est, target), "bram": est.bram, "dsp": est.dsp}


def lut_name(target: Target | str) -> str:
    return "logic cells" if get_target(target).family == "ice40" else "LUTs"


def over_limits(est: Estimate, target: Target | str) -> list[str]:
    """The resources ``est`` uses beyond the device's limits, as text (empty when it fits)."""
    target = get_target(target)
    limits, have, use = device_limits(target), dict(target.resources), used(est, target)
    names = {**NAMES, "lut": lut_name(target)}
    return [f"{use[k]:,.0f} {names[k]} of {have[k]:,}" + (f" ({UTILISATION[k]:.0%} usable)" if UTILISATION[k] < 1 else "")
            for k in ("lut", "bram", "dsp") if use[k] > limits[k]]


def foldings_by_rate(model: LoweredModel, target: Target | str, clock_mhz: float,
                     max_lanes: int | None = None) -> list[tuple[int, dict[str, Folding]]]:
    """(cycles per frame of the whole pipeline, foldings), slowest first, each faster than the last
    (past the rate a window or padding stage allows, more lanes in the layers buy nothing); stops
    where the lanes (as the size guard counts them) would pass ``max_lanes``."""
    from ..assemble.dataflow import frame_cycles
    from ..size_guard import SizeGuard
    budget = max(layer.vectors * layer.mh * layer.mw for layer in model.mvus)
    out = []
    while budget >= 1:
        foldings = auto_folding(model, target=target, clock_mhz=clock_mhz, budget=budget)
        cycles = max(frame_cycles(model, foldings).values())
        if not out or cycles < out[-1][0]:
            if max_lanes is not None and SizeGuard.lanes(model, foldings) > max_lanes:
                break
            out.append((cycles, foldings))
        budget = min(budget - 1, math.floor(budget / STEP))
    if not out:
        raise HdlgenError(f"even the slowest folding (one lane a layer) has more parallel lanes than --max-lanes "
                          f"{max_lanes:,}; raise --max-lanes")
    return out


def fastest_fitting(model: LoweredModel, target: Target | str, clock_mhz: float,
                    max_lanes: int | None = None) -> dict[str, Folding]:
    """The fastest balanced folding whose estimate fits ``target``'s device (the cheaper one of two
    as fast); an error naming what does not fit when even the slowest does not. On iCE40, whose
    logic cells the estimate predicts least well, the choice is then checked by packing it
    (``packed_use``): a folding nextpnr packs into more than the limit gives way to the next slower."""
    target = get_target(target)
    limits = device_limits(target)
    candidates = foldings_by_rate(model, target, clock_mhz, max_lanes)
    fitting = []
    for cycles, foldings in candidates:
        est = estimate(model, foldings, target)
        if not over_limits(est, target):
            fitting.append(((cycles, used(est, target)["lut"]), foldings))
    if not fitting:
        def overshoot(est: Estimate) -> float:
            use = used(est, target)
            return max(use[k] / max(limits[k], 1e-9) for k in use)
        least = min((estimate(model, f, target) for _, f in candidates), key=overshoot)
        raise HdlgenError(f"no folding of the model fits {target.name} ({target.device}): the one that overshoots least "
                          f"needs {', '.join(over_limits(least, target))}; choose a larger target")
    fitting.sort(key=lambda c: c[0])
    if target.family != "ice40":
        return fitting[0][1]
    for _, foldings in fitting:
        if all(v <= limits[k] for k, v in packed_use(model, foldings, target).items()):
            return foldings
    raise HdlgenError(f"no folding of the model fits {target.name} ({target.device}) as nextpnr packs it, though the "
                      f"estimate's slowest does; choose a larger target")


def packed_use(model: LoweredModel, foldings: dict[str, Folding], target: Target) -> dict[str, float]:
    """What the design takes of the device as nextpnr packs it (Yosys, then ``nextpnr --pack-only``,
    in the IO shell ``hdlgen synth`` places it in): logic cells, block RAMs, DSPs. A minute or less
    for a design of an iCE40's size."""
    import tempfile
    from pathlib import Path

    from ..assemble import DataflowTop
    from ..backends.synth import synthesize
    from ..backends.verilog import emit

    top = DataflowTop(model=model, foldings=foldings, target=target)
    bits = (len(top.i.payload.as_value()), len(top.o.payload.as_value()))
    with tempfile.TemporaryDirectory(prefix="hdlgen-fit-") as tmp:
        verilog = Path(tmp) / "top.v"
        verilog.write_text(emit(top, "top"))
        result = synthesize(verilog, "top", target.name, Path(tmp) / "synth", pack_only=True, stream_bits=bits)
    return {"lut": result.lut, "bram": result.bram, "dsp": result.dsp}


def check_fits(model: LoweredModel, foldings: dict[str, Folding], target: Target | str, clock_mhz: float,
               asked: str, max_lanes: int | None = None, strict: bool = True) -> tuple[Estimate, str | None]:
    """The estimate of ``foldings``, and what does not fit ``target``'s device (None when it fits),
    with the fastest folding's frame rate that does. ``strict``: raise that as an error instead.
    ``asked`` names what chose the folding."""
    target = get_target(target)
    est = estimate(model, foldings, target)
    if target.resources is None:
        return est, None
    over = over_limits(est, target)
    if over:
        try:
            from ..assemble.dataflow import frame_cycles
            fitting = fastest_fitting(model, target, clock_mhz, max_lanes)
            fps = clock_mhz * 1e6 / max(frame_cycles(model, fitting).values())
            best = (f"; the fastest folding that fits makes {fps:,.0f} frames/s at {clock_mhz:g} MHz "
                    f"(--target-fps {math.floor(fps)}, or --fold fit)")
        except HdlgenError as e:
            best = f"; {e}"
        message = f"{asked} does not fit {target.name} ({target.device}): the estimate needs {', '.join(over)}{best}"
        if strict:
            raise HdlgenError(message)
        return est, message
    return est, None
