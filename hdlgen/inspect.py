"""``hdlgen inspect``: a model's imported layers and, where hardware exists, its lowered layers."""

from __future__ import annotations

import numpy as np

from .errors import HdlgenError
from .ir.lowered import LoweredModel, MatrixVectorLayer
from .ir.model import (AvgPool2d, BatchNorm, Clip, Conv2d, Dense, Elementwise, Flatten, MaxPool2d, Model, MultiThreshold, Quantizer, Requantize,
                       Trunc)
from .transforms import streamline


def _number(value) -> str:
    value = np.asarray(value, dtype=np.float64)
    if value.size == 1 or np.all(value == value.flat[0]):
        return f"{float(value.flat[0]):.6g}"
    return f"{value.min():.4g} .. {value.max():.4g} (per channel)"


def _power_of_two(value) -> bool:
    value = np.abs(np.asarray(value, dtype=np.float64))
    return bool(np.all(value == 2.0 ** np.round(np.log2(value))))


def layer_details(layer) -> str:
    if isinstance(layer, (Dense, Conv2d)):
        shape = "x".join(map(str, layer.weight.shape))
        text = f"{layer.weight_quant} weights {shape}, weight scale {_number(layer.weight_scale)}"
        if isinstance(layer, Conv2d):
            text += f", stride {layer.stride}, padding {layer.padding}, dilation {layer.dilation}, groups {layer.groups}"
        return text + ("" if layer.bias is None else ", bias")
    if isinstance(layer, BatchNorm):
        return (f"eps {layer.eps:g}; gamma < 0 in {int(np.sum(layer.gamma < 0))} channels, "
                f"gamma = 0 in {int(np.sum(layer.gamma == 0))}")
    if isinstance(layer, Elementwise):
        return f"{layer.op} {_number(layer.operand)}"
    if isinstance(layer, Clip):
        return f"[{layer.lo:g}, {layer.hi:g}]"
    if isinstance(layer, Quantizer):
        return f"{layer.quant}, scale {layer.scale:.6g}, rounding {layer.rounding}"
    if isinstance(layer, MultiThreshold):
        return f"{layer.thresholds.shape[1]} thresholds per channel -> {layer.quant}, scale {layer.scale:.6g}"
    if isinstance(layer, Trunc):
        return f"from scale {layer.in_scale:.6g} to {layer.quant}, scale {layer.scale:.6g}, rounding {layer.rounding}"
    if isinstance(layer, Requantize):
        m = np.atleast_1d(layer.multiplier)
        return (f"onnxruntime's int32 rescale by {m.min():.6g}" + (f" .. {m.max():.6g}" if m.size > 1 else "")
                + f" -> {layer.quant}, scale {layer.scale:.6g}")
    if isinstance(layer, MaxPool2d):
        return f"kernel {layer.kernel}, stride {layer.stride}, padding {layer.padding}" + \
            (", ceil_mode" if layer.ceil_mode else "")
    if isinstance(layer, AvgPool2d):
        return f"kernel {layer.kernel}, stride {layer.stride}, padding {layer.padding}" + \
            (", padded taps counted" if layer.count_include_pad and any(layer.padding) else "")
    if isinstance(layer, Flatten):
        return "C, H, W order"
    return ""


FLOAT32_EXACT = 2 ** 24      # integers a float32 holds exactly


def exactness_notes(model: Model) -> list[str]:
    """Dense layers a float32 executor computes inexactly: scales that are not powers of two, or dot
    products whose partial sums can pass 2^24. hdlgen computes both exactly."""
    notes, scale, quant = [], model.input.scale, model.input.quant
    if model.arithmetic != "float32":
        return notes
    for layer, after in zip(model.layers, model.layers[1:] + (None,)):
        if isinstance(layer, (Dense, Conv2d)) and not isinstance(after, Requantize):   # integer sums in onnxruntime
            if not _power_of_two(scale * layer.weight_scale):
                notes.append(f"{layer.name}: input scale x weight scale is not a power of two, so a float32 executor "
                             f"rounds this layer's dot products; hdlgen computes them exactly (see docs/qonnx.md)")
            bound = max(abs(quant.lo), abs(quant.hi)) * int(np.abs(layer.weight).reshape(len(layer.weight), -1).sum(1).max())
            if bound > FLOAT32_EXACT:
                notes.append(f"{layer.name}: its dot products can reach {bound:,}, past 2^24, where a float32 executor "
                             f"rounds its partial sums; hdlgen computes them exactly (see docs/qonnx.md)")
        if hasattr(layer, "quant") and hasattr(layer, "scale"):
            scale, quant = layer.scale, layer.quant
    return notes


def describe(model: Model) -> list[str]:
    shape = "x".join(map(str, model.input.shape))
    lines = [f"model {model.name} ({model.arithmetic} arithmetic)",
             f"input: {shape} values, {model.input.quant}, scale {model.input.scale:.6g}, rounding {model.input.rounding}"
             + (f"; on the host first {', then '.join(layer_details(l) for l in model.input.preprocess)}"
                if model.input.preprocess else "")
             + (f"; given as {model.input.given} times {model.input.given_scale:g}" if model.input.given else ""),
             "", "imported layers:"]
    width = max(len(layer.name) for layer in model.layers) + 2
    lines.append(f"  {'name':<{width}}{'op':<16}{'output shape':<16}details")
    for layer, out_shape in zip(model.layers, model.shapes()[1:]):
        op = type(layer).__name__.lower()
        lines.append(f"  {layer.name:<{width}}{op:<16}{'x'.join(map(str, out_shape)):<16}{layer_details(layer)}")
    if model.host is not None:
        lines.append(f"  then {model.host.op} ({', '.join(f'{k}={v}' for k, v in model.host.attributes) or 'defaults'}), "
                     f"run on the host: the hardware emits the logits")
    lines += ["", "lowered (hardware) layers:"]
    try:
        lowered = streamline(model)
    except HdlgenError as e:
        return lines + [f"  cannot lower: {e}"]
    lines += describe_lowered(lowered)
    lines += describe_pipeline(lowered)
    notes = exactness_notes(model)
    if notes:
        lines += ["", "notes:"] + [f"  {note}" for note in notes]
    return lines


def describe_graph(path) -> list[str]:
    """Every node of an ONNX file, for a model hdlgen cannot import: what is there, in order, named as
    after qonnx's cleanup (the names errors use), or as stored where the cleanup itself fails."""
    from .frontend.qonnx import read_graph, read_onnx

    try:
        proto, how = read_graph(path), "after qonnx's cleanup"
    except HdlgenError:
        try:
            proto, how = read_onnx(path), "as stored"
        except HdlgenError:                  # not readable as ONNX: nothing to list
            return []
    graph = proto.graph
    lines = [f"graph of {path}, {how} ({len(graph.node)} nodes; inputs {', '.join(i.name for i in graph.input)}):"]
    for k, node in enumerate(graph.node):
        domain = f" [{node.domain}]" if node.domain else ""
        lines.append(f"  {k:>3} {node.op_type}{domain} {node.name!r}: {', '.join(node.input)} -> {', '.join(node.output)}")
    return lines


def describe_pipeline(lowered: LoweredModel) -> list[str]:
    """The pipeline at the default folding: its interval, each layer's unit, and the FIFOs the cycle
    model puts between stages (``build`` chooses the same unless told otherwise)."""
    from .assemble.dataflow import edge_fifos, frame_cycles, stream_plan
    from .cores.vvu import vector_unit_applies
    from .transforms.folding import auto_folding

    foldings = auto_folding(lowered)
    cycles = frame_cycles(lowered, foldings)
    bottleneck = max(cycles, key=cycles.get)
    units = ", ".join(f"{name} {f.pe}x{f.simd}" + (" vector-vector" if vector_unit_applies(lowered.layer(name), f) else
                                                   " zero-skipping" if f.zero_skip else "")
                      for name, f in foldings.items())
    lines = ["", f"pipeline at the default folding (--fold auto, ecp5-85k): {cycles[bottleneck]:,} cycles a frame, "
                 f"bottleneck {bottleneck}", f"  pe x simd: {units}"]
    fifos, plan = edge_fifos(lowered, foldings), stream_plan(lowered, foldings)
    for previous, planned in zip(plan, plan[1:]):
        if planned.stage.name in fifos:
            lines.append(f"  FIFO {previous.stage.name} -> {planned.stage.name}: {fifos[planned.stage.name]} beats "
                         f"(the cycle model's depth)")
    if not fifos:
        lines.append("  no FIFOs between stages: no stage pauses longer than its producer's slack")
    return lines


def describe_lowered(lowered: LoweredModel) -> list[str]:
    width = max(len(layer.name) for layer in lowered.layers) + 2
    lines = [f"  {'name':<{width}}{'MW x MH':<22}{'input':<14}{'weights':<14}{'output':<14}thresholds"]
    for layer in lowered.layers:
        if not isinstance(layer, MatrixVectorLayer):
            kind = type(layer).__name__.replace("Stage", "").lower()
            lines.append(f"  {layer.name:<{width}}{kind} {'x'.join(map(str, layer.in_shape))} -> "
                         f"{'x'.join(map(str, layer.out_shape))} ({layer.in_type} -> {layer.out_type})")
            continue
        out = "accumulator" if layer.out_type is None else str(layer.out_type)
        thresholds = "-" if layer.thresholds is None else f"{layer.thresholds.shape[1]} per row"
        size = f"{layer.mw} x {layer.mh}" + (f" x {layer.vectors}px" if layer.spatial else "")
        lines.append(f"  {layer.name:<{width}}{size:<22}{str(layer.in_type):<14}"
                     f"{str(layer.weight_type):<14}{out:<14}{thresholds}")
    out = lowered.output
    if out.quant is not None:
        lines.append(f"  output: {out.quant} codes times {out.scale:.6g}")
    else:
        tail = ", ".join(type(layer).__name__.lower() for layer in out.tail) or "nothing more"
        lines.append(f"  output: accumulators times {_number(out.multiplier)}"
                     f"{'' if out.bias is None else ' plus bias'}, then {tail}")
    return lines
