"""One streaming top for a whole lowered model: stages joined by valid/ready streams.

Stream contract (see ``docs/streams.md``):

* ``i``: one beat carries ``k`` input codes of the first stage (code ``j`` in bits
  ``j * bits ..``); a frame is ``features / k`` beats, in stream order (images: raster order,
  channels innermost).
* ``o``: one beat carries the last stage's output words in ``data`` and a ``last`` bit that marks
  the final beat of a frame; with a class output (``LoweredModel.classes``), one beat a frame
  carries the class index.

Each stage takes a fixed number of values a beat: a matrix-vector unit ``simd`` in and ``pe`` out,
padding and sliding window the ``simd`` of the convolution they feed, max pooling what its
producer gives. Width converters join stages whose counts differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cores.products import ProductKind, choose_product, packing
from ..errors import HdlgenError
from ..targets import DEFAULT_TARGET, Target, get_target
from ..cores.requant import REQUANT_UNITS, requant_unit
from ..cores import (ArgmaxUnit, GlobalSum, MatrixVectorUnit, MaxPool, Padding, SlidingWindow, StreamFifo, WidthConverter,
                     WindowMax, threshold_latency, threshold_unit)
from ..cores.params import counter, validating
from ..ir.lowered import (Folding, GlobalPoolStage, LoweredModel, MatrixVectorLayer, PadStage, PoolStage, WindowMaxStage,
                          WindowStage)
from ..cores.sparse_mvu import SparseMatrixVectorUnit
from ..cores.vvu import VectorVectorUnit, vector_product, vector_unit_applies
from ..transforms.folding import check_foldings, layer_cycles

__all__ = ["DataflowTop", "CycleModel", "PlannedStage", "stream_plan", "frame_cycles", "fifo_bounds", "edge_fifos",
           "CLASS_STAGE"]

CLASS_STAGE = "class_argmax"        # the argmax after the last stage (``--output class``)


@dataclass(frozen=True)
class PlannedStage:
    stage: object
    in_count: int            # values per input beat
    out_count: int           # values per output beat
    in_beats: int            # beats per frame in and out
    out_beats: int
    out_bits: int            # bits per output value
    zero_skip: bool = False  # a matrix-vector layer that skips its all-zero weight blocks


def _out_bits(stage) -> int:
    if isinstance(stage, MatrixVectorLayer):
        if stage.requant is not None and stage.requant.kind == "scores":
            return stage.requant.width
        return stage.out_type.bits if stage.out_type is not None else stage.acc_max.bit_length()
    return stage.out_type.bits


def stream_plan(model: LoweredModel, foldings: dict[str, Folding]) -> list[PlannedStage]:
    """Values per beat and beats per frame of every stage."""
    stages, plan = model.layers, []
    for index, stage in enumerate(stages):
        if isinstance(stage, MatrixVectorLayer):
            fold = foldings[stage.name]
            in_count, out_count = fold.simd, fold.pe
            in_beats, out_beats = stage.vectors * stage.mw // fold.simd, stage.vectors * stage.mh // fold.pe
        else:
            # pooling takes what its producer gives, and so do the padding and window before a
            # window's maximum; padding and windows before a layer take its simd
            consumer = None if isinstance(stage, (PoolStage, GlobalPoolStage)) else \
                next(s for s in stages[index:] if isinstance(s, (MatrixVectorLayer, WindowMaxStage)))
            if consumer is None or isinstance(consumer, WindowMaxStage):
                count = plan[-1].out_count if plan else stage.in_shape[2]
            else:
                count = foldings[consumer.name].simd
            in_count = out_count = count
            in_beats = stage.in_shape[0] * stage.in_shape[1] * stage.in_shape[2] // count
            out_shape = stage.out_shape
            out_beats = out_shape[0] * out_shape[1] * out_shape[2] // count
        skip = isinstance(stage, MatrixVectorLayer) and foldings[stage.name].zero_skip
        plan.append(PlannedStage(stage, in_count, out_count, in_beats, out_beats, _out_bits(stage), skip))
    return plan


def stage_cycles(planned: PlannedStage) -> int:
    stage = planned.stage
    if isinstance(stage, MatrixVectorLayer):
        return layer_cycles(stage, Folding(pe=planned.out_count, simd=planned.in_count, zero_skip=planned.zero_skip))
    if isinstance(stage, WindowStage):
        return SlidingWindow.cycles_per_frame(stage, planned.in_count)
    return max(planned.in_beats, planned.out_beats)


def frame_cycles(model: LoweredModel, foldings: dict[str, Folding]) -> dict[str, int]:
    """Cycles per frame of every stage of the pipeline on its own (width converters between stages
    that regroup included); the slowest sets the frame interval."""
    plan, cycles, previous = stream_plan(model, foldings), {}, None
    for planned in plan:
        cycles[planned.stage.name] = stage_cycles(planned)
        if previous is not None and previous.out_count != planned.in_count:
            cycles[f"{planned.stage.name}_regroup"] = max(previous.out_beats, planned.in_beats)
        previous = planned
    if model.classes is not None:
        cycles[CLASS_STAGE] = ArgmaxUnit.cycles_per_frame(model.classes, plan[-1].out_count)
    return cycles


def fifo_bounds(model: LoweredModel, foldings: dict[str, Folding]) -> dict[str, int]:
    """The cycle model's FIFO depth (beats) in front of every padding stage with a producer, by the
    stage's name: 0 where none is needed.

    A padding stage takes no input while it makes a border (``Padding.pause_beats``); a producer
    with no slack in the pipeline's interval would lose those cycles for good. Its FIFO holds what
    the producer makes meanwhile, at the producer's beat period (cycles per frame over beats per
    frame), plus two for the FIFO's own registers. Every other stage takes its input at least as
    fast as its cycles per frame allow, with no pause longer than its producer's slack.
    """
    plan, cycles = stream_plan(model, foldings), frame_cycles(model, foldings)
    interval, bounds = max(cycles.values()), {}
    for previous, planned in zip(plan, plan[1:]):
        if not isinstance(planned.stage, PadStage):
            continue
        pause = Padding.pause_beats(planned.stage, planned.in_count)
        producer = cycles[previous.stage.name]
        bounds[planned.stage.name] = 0 if producer + pause <= interval else -(-pause * planned.in_beats // producer) + 2
    return bounds


def edge_fifos(model: LoweredModel, foldings: dict[str, Folding]) -> dict[str, int]:
    """The FIFO depth in front of each stage that has one, by the stage's name: the cycle model's
    (``fifo_bounds``), or a layer's ``fifo_depth`` for the padding stage before its window, which
    may not be smaller."""
    bounds, depths = fifo_bounds(model, foldings), {}
    for name, bound in bounds.items():
        if bound:
            depths[name] = bound
    stages = model.layers
    for index, layer in enumerate(stages):
        if not isinstance(layer, MatrixVectorLayer) or foldings[layer.name].fifo_depth is None:
            continue
        given = foldings[layer.name].fifo_depth
        pad = stages[index - 2] if index >= 2 and isinstance(stages[index - 1], WindowStage) else None
        if not isinstance(pad, PadStage) or pad.name not in bounds:
            raise HdlgenError(f"layer {layer.name!r}: fifo_depth sizes the FIFO in front of a layer's padding stage, "
                              f"and {layer.name!r} has none with a stage before it; drop fifo_depth")
        if given < bounds[pad.name]:
            raise HdlgenError(f"layer {layer.name!r}: fifo_depth {given} is below the {bounds[pad.name]} beats the cycle "
                              f"model needs in front of {pad.name!r} (its producer cannot wait out the padding's "
                              f"pause); give at least {bounds[pad.name]}, or leave fifo_depth out")
        if given < StreamFifo.MIN_DEPTH:
            raise HdlgenError(f"layer {layer.name!r}: fifo_depth {given} is below {StreamFifo.MIN_DEPTH}: a FIFO that "
                              f"shallow takes a beat only every other cycle; give at least {StreamFifo.MIN_DEPTH}")
        depths[pad.name] = given
    return depths


@dataclass(frozen=True)
class CycleModel:
    """Analytical timing of a pipeline in clock cycles."""

    layer_cycles: dict[str, int]       # cycles per frame each stage needs on its own
    initiation_interval: int           # cycles between frames in steady state (slowest stage)
    latency_bound: int                 # first input beat to last output beat of a lone frame, at most
    input_beats: int
    output_beats: int


class DataflowTop(wiring.Component):
    """The whole model as one streaming component; see the module docstring for the streams."""

    def __init__(self, *, model: LoweredModel, foldings: dict[str, Folding], target: Target | str = DEFAULT_TARGET,
                 levels_per_stage: int = 1):
        with validating(self):
            check_foldings(model, foldings, target.name if isinstance(target, Target) else target)
            target = get_target(target)
        self._model, self._foldings, self.target = model, foldings, target
        self._plan = stream_plan(model, foldings)
        self._cores = [self.core(p, target, levels_per_stage) for p in self._plan]
        first = self._plan[0]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(first.stage.in_type.bits, first.in_count))),
            "o": Out(self.output_signature(model, foldings)),
        })

    @property
    def plan(self) -> list[PlannedStage]:
        return list(self._plan)

    @property
    def fifos(self) -> dict[str, int]:
        """FIFO depths in front of stages, by stage name (``edge_fifos``)."""
        return edge_fifos(self._model, self._foldings)

    @staticmethod
    def core(planned: PlannedStage, target: Target, levels_per_stage: int = 1):
        """The core of one planned stage, as the pipeline makes it for ``target``."""
        stage = planned.stage
        if isinstance(stage, MatrixVectorLayer):
            pe = planned.out_count
            product = choose_product(stage.in_type, stage.weight_type, target, pe=pe).kind
            folding = Folding(pe=pe, simd=planned.in_count, zero_skip=planned.zero_skip)
            if vector_unit_applies(stage, folding):
                return VectorVectorUnit(layer=stage, folding=folding, tree_group=target.tree_group,
                                        levels_per_stage=levels_per_stage, product=vector_product(stage, target))
            if planned.zero_skip:
                return SparseMatrixVectorUnit(layer=stage, folding=Folding(pe=pe, simd=planned.in_count),
                                              tree_group=target.tree_group, levels_per_stage=levels_per_stage,
                                              product=product, carry_cells=target.carry_cells)
            return MatrixVectorUnit(layer=stage, folding=Folding(pe=pe, simd=planned.in_count),
                                    tree_group=target.tree_group, levels_per_stage=levels_per_stage, product=product,
                                    carry_cells=target.carry_cells,
                                    packing=packing(stage.in_type, stage.weight_type, target)
                                    if product is ProductKind.PACKED else None)
        if isinstance(stage, WindowStage):
            return SlidingWindow(stage=stage, count=planned.in_count, lut_ram=target.family != "ice40")
        cls = {PadStage: Padding, PoolStage: MaxPool, WindowMaxStage: WindowMax, GlobalPoolStage: GlobalSum}[type(stage)]
        return cls(stage=stage, count=planned.in_count)

    @staticmethod
    def output_word(model: LoweredModel, foldings: dict[str, Folding]):
        if model.classes is not None:
            return data.ArrayLayout(model.classes.index_bits, 1)
        last = stream_plan(model, foldings)[-1]
        return data.ArrayLayout(last.out_bits, last.out_count)

    @classmethod
    def output_signature(cls, model: LoweredModel, foldings: dict[str, Folding]) -> stream.Signature:
        return stream.Signature(data.StructLayout({"data": cls.output_word(model, foldings), "last": 1}))

    @staticmethod
    def _threshold_unit(planned: PlannedStage, core):
        stage = planned.stage
        if isinstance(stage, MatrixVectorLayer) and stage.requant is not None:
            return requant_unit(stage, planned.out_count, core.acc_max)
        if isinstance(stage, (MatrixVectorLayer, GlobalPoolStage)) and stage.thresholds is not None:
            return threshold_unit(thresholds=stage.thresholds, out_type=stage.out_type, pe=planned.out_count,
                                  acc_max=core.acc_max)
        return None

    def cycle_model(self) -> CycleModel:
        cycles, latency = frame_cycles(self._model, self._foldings), 0
        for planned, core in zip(self._plan, self._cores):
            stage = planned.stage
            # every beat of a frame, plus the pipeline, plus a few cycles for registers and FIFOs
            latency += cycles[stage.name] + 4 + (2 if stage.name in self.fifos else 0)
            if isinstance(stage, MatrixVectorLayer):
                latency += (stage.mw // planned.in_count if core.buffered else 0) + core.pipeline_latency
            if isinstance(stage, MatrixVectorLayer) and stage.requant is not None:
                latency += REQUANT_UNITS[stage.requant.kind].latency
            elif isinstance(stage, (MatrixVectorLayer, GlobalPoolStage)) and stage.thresholds is not None:
                latency += threshold_latency(stage.out_type)
        first, last = self._plan[0], self._plan[-1]
        output_beats = last.out_beats
        if self._model.classes is not None:
            latency += cycles[CLASS_STAGE] + ArgmaxUnit.latency + 2
            output_beats = 1
        return CycleModel(cycles, max(cycles.values()), latency, first.in_beats, output_beats)

    def elaborate(self, platform):
        m = Module()
        source = wiring.flipped(self.i)
        previous, fifos = None, self.fifos
        for planned, core in zip(self._plan, self._cores):
            stage = planned.stage
            if previous is not None and previous.out_count != planned.in_count:
                conv = WidthConverter(bits=stage.in_type.bits, in_count=previous.out_count, out_count=planned.in_count)
                m.submodules[f"{stage.name}_regroup"] = conv
                wiring.connect(m, source, conv.i)
                source = conv.o
            if stage.name in fifos:
                m.submodules[f"{stage.name}_fifo"] = queue = StreamFifo(layout=core.i.payload.shape(),
                                                                         depth=fifos[stage.name])
                wiring.connect(m, source, queue.i)
                source = queue.o
            kind = {MatrixVectorUnit: "mvu", SparseMatrixVectorUnit: "mvu", VectorVectorUnit: "mvu", Padding: "pad", SlidingWindow: "swg", MaxPool: "pool",
                    WindowMax: "pool", GlobalSum: "sum"}[type(core)]
            m.submodules[f"{stage.name}_{kind}" if not stage.name.endswith(kind) else stage.name] = core
            wiring.connect(m, source, core.i)
            source = core.o
            thr = self._threshold_unit(planned, core)
            if thr is not None:
                m.submodules[f"{stage.name}_thresholds"] = thr
                wiring.connect(m, source, thr.i)
                source = thr.o
            previous = planned

        beats = previous.out_beats
        if self._model.classes is not None:
            m.submodules[CLASS_STAGE] = argmax = ArgmaxUnit(classes=self._model.classes, count=previous.out_count)
            wiring.connect(m, source, argmax.i)
            source, beats = argmax.o, 1
        beat = Signal(counter(beats))
        m.d.comb += [
            self.o.valid.eq(source.valid),
            self.o.payload.data.eq(source.payload),
            self.o.payload.last.eq(beat == beats - 1),
            source.ready.eq(self.o.ready),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
        return m
