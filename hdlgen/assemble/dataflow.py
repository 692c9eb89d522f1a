"""One streaming top for a whole lowered model: layers joined by valid/ready streams.

Stream contract (see ``docs/streams.md``):

* ``i``: one beat carries ``SIMD`` input codes of the first layer (code ``k`` in bits
  ``k * bits ..``); a frame is ``features / SIMD`` beats, in feature order.
* ``o``: one beat carries ``PE`` output words of the last layer in ``data`` and a ``last`` bit
  that marks the final beat of a frame; a frame is ``out_features / PE`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.lowered import Folding, LoweredModel
from ..transforms.folding import check_foldings
from ..cores import MatrixVectorUnit, Thresholding, WidthConverter
from ..cores.params import counter, validating

__all__ = ["DataflowTop", "CycleModel"]


@dataclass(frozen=True)
class CycleModel:
    """Analytical timing of a pipeline in clock cycles."""

    layer_cycles: dict[str, int]       # cycles per frame each layer needs on its own
    initiation_interval: int           # cycles between frames in steady state (slowest layer)
    latency_bound: int                 # first input beat to last output beat of a lone frame, at most
    input_beats: int
    output_beats: int


class DataflowTop(wiring.Component):
    """The whole model as one streaming component; see the module docstring for the streams."""

    def __init__(self, *, model: LoweredModel, foldings: dict[str, Folding], tree_group: int = 2,
                 levels_per_stage: int = 1):
        with validating(self):
            check_foldings(model, foldings)
        self._model, self._foldings = model, foldings
        self._mvus = [MatrixVectorUnit(layer=layer, folding=foldings[layer.name], tree_group=tree_group,
                                       levels_per_stage=levels_per_stage) for layer in model.layers]
        first = model.layers[0]
        super().__init__({
            "i": In(MatrixVectorUnit.input_signature(first, foldings[first.name])),
            "o": Out(self.output_signature(model, foldings)),
        })

    @staticmethod
    def output_word(model: LoweredModel, foldings: dict[str, Folding]):
        last = model.layers[-1]
        if last.out_type is not None:
            return Thresholding.output_signature(last, foldings[last.name]).members["payload"].shape
        return MatrixVectorUnit.output_signature(last, foldings[last.name]).members["payload"].shape

    @classmethod
    def output_signature(cls, model: LoweredModel, foldings: dict[str, Folding]) -> stream.Signature:
        return stream.Signature(data.StructLayout({"data": cls.output_word(model, foldings), "last": 1}))

    def cycle_model(self) -> CycleModel:
        model, foldings = self._model, self._foldings
        cycles = {l.name: MatrixVectorUnit.cycles_per_frame(l, foldings[l.name]) for l in model.layers}
        latency = 0
        for layer, mvu in zip(model.layers, self._mvus):
            fold = foldings[layer.name]
            fill = layer.mw // fold.simd if mvu.buffered else 0
            # every beat of a frame, plus the pipeline, plus a cycle for the threshold and converter stages
            latency += fill + cycles[layer.name] + mvu.pipeline_latency + 2 + layer.mh // fold.pe
        first, last = model.layers[0], model.layers[-1]
        return CycleModel(cycles, max(cycles.values()), latency,
                          first.mw // foldings[first.name].simd, last.mh // foldings[last.name].pe)

    def elaborate(self, platform):
        m = Module()
        source = wiring.flipped(self.i)
        previous = None
        for index, (layer, mvu) in enumerate(zip(self._model.layers, self._mvus)):
            fold = self._foldings[layer.name]
            if previous is not None and previous.pe != fold.simd:
                conv = WidthConverter(bits=layer.in_type.bits, in_count=previous.pe, out_count=fold.simd)
                m.submodules[f"{layer.name}_regroup"] = conv
                wiring.connect(m, source, conv.i)
                source = conv.o
            m.submodules[f"{layer.name}_mvu"] = mvu
            wiring.connect(m, source, mvu.i)
            source = mvu.o
            if layer.thresholds is not None:
                thr = Thresholding(layer=layer, folding=fold, acc_max=mvu.acc_max)
                m.submodules[f"{layer.name}_thresholds"] = thr
                wiring.connect(m, source, thr.i)
                source = thr.o
            previous = fold

        beats = self._model.layers[-1].mh // previous.pe
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
