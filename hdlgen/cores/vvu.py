"""Vector-vector unit: a depthwise convolution's channels in parallel, one tap a cycle."""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory, stream

from ..errors import HdlgenError
from ..ir.lowered import Folding, MatrixVectorLayer
from .dot_array import DotProductArray
from .mvu import FoldedUnit
from .params import counter, delayed, validating
from ..targets import DEFAULT_TARGET, Target
from .products import ProductKind, choose_product
from .weights import encode_weights, weight_bits

__all__ = ["VectorVectorUnit", "vector_unit_applies", "vector_product"]


def vector_unit_applies(layer: MatrixVectorLayer, folding: Folding) -> bool:
    """Whether a layer folded so runs on a :class:`VectorVectorUnit`: a depthwise layer
    (``MatrixVectorLayer.depthwise``) skipping zeros with ``pe == simd``, with output codes
    (thresholds or a requantization unit: the unit's accumulators are narrower than the layer's
    ``acc_max``). It then takes the zero-skipping unit's cycles with ``pe`` products instead of
    ``pe * simd``, made the way ``vector_product`` says."""
    return (folding.zero_skip and folding.pe == folding.simd and layer.depthwise
            and (layer.out_type is not None or layer.requant is not None))


def vector_product(layer: MatrixVectorLayer, target: Target | str = DEFAULT_TARGET) -> ProductKind:
    """The target's cheapest product for the layer's operands among those that do not share an
    input among rows (no packing: each row has its own channel)."""
    return choose_product(layer.in_type, layer.weight_type, target, pe=1).kind


class VectorVectorUnit(FoldedUnit):
    """Accumulators ``P`` of a depthwise layer (``MatrixVectorLayer.depthwise``), ``pe`` channels at once.

    The sliding window streams each output pixel's ``taps * C`` codes in (tap, channel) order,
    ``pe`` channels a beat; beat ``tap * NF + nf`` (``NF = C / pe``) holds channels ``nf * pe ..``
    of one tap, and each channel's code meets its own weight: ``pe`` products a cycle, one term per
    row of the :class:`DotProductArray`. The weights of beat ``k`` are memory word ``k``, read in
    order. Each channel block's running sum waits in a small memory read asynchronously (LUT RAM)
    between its taps, and after its last tap goes into the output FIFO: ``NF`` beats of ``pe``
    accumulators, rows ``nf * pe + p``, as the matrix-vector units emit them.

    Frames take the zero-skipping unit's cycles at ``pe = simd``, ``taps * NF`` a vector, with no
    input buffer: beats are used as they come. Backpressure as in the matrix-vector unit: a beat is
    taken only while the output FIFO has room for everything in flight.
    """

    def __init__(self, *, layer: MatrixVectorLayer, folding: Folding, tree_group: int = 2, levels_per_stage: int = 1,
                 product: ProductKind | None = None):
        with validating(self):
            layer.check_folding(folding)
            if product is None:
                product = vector_product(layer)
            if product is ProductKind.PACKED:
                raise HdlgenError(f"layer {layer.name!r}: PACKED products share one input among rows; a "
                                  f"vector-vector unit's rows have inputs of their own")
            if not vector_unit_applies(layer, Folding(folding.pe, folding.simd, zero_skip=True)):
                raise HdlgenError(f"layer {layer.name!r}: a vector-vector unit needs a depthwise layer with output "
                                  f"codes, and pe = simd (pe={folding.pe}, simd={folding.simd})")
            dots = DotProductArray(in_type=layer.in_type, weight_type=layer.weight_type, pe=folding.pe, simd=1,
                                   tree_group=tree_group, levels_per_stage=levels_per_stage, product=product,
                                   row_inputs=True)
        self.taps = layer.mw // layer.mh
        words = self.taps * (layer.mh // folding.pe)
        self._setup(layer, folding, dots, words, folding.pe * weight_bits(layer))
        self.acc_max = self.row_acc_max(layer)

    @staticmethod
    def row_acc_max(layer: MatrixVectorLayer) -> int:
        """Worst-case accumulator of one channel: its taps, each at most ``term_max``."""
        return layer.mw // layer.mh * layer.term_max

    @classmethod
    def output_signature(cls, layer: MatrixVectorLayer, folding: Folding) -> stream.Signature:
        return stream.Signature(data.ArrayLayout(range(cls.row_acc_max(layer) + 1), folding.pe))

    @staticmethod
    def cycles_per_frame(layer: MatrixVectorLayer, folding: Folding) -> int:
        return layer.vectors * (layer.mw // layer.mh) * (layer.mh // folding.pe)

    @property
    def buffered(self) -> bool:
        """Beats are used as they arrive."""
        return False

    @staticmethod
    def weight_words(layer: MatrixVectorLayer, folding: Folding) -> list[int]:
        """Word ``tap * NF + nf`` holds the weights of channels ``nf * pe + p`` at that tap, ``p``
        at bit ``p * weight_bits``, in ``cores.weights``' encoding."""
        mh, pe, bits = layer.mh, folding.pe, weight_bits(layer)
        codes = encode_weights(layer).reshape(mh, layer.mw // mh, mh)
        rows = np.arange(mh)
        diagonal = codes[rows, :, rows].T.reshape(-1, pe)              # (taps * NF, pe)
        return [sum(int(c) << (p * bits) for p, c in enumerate(word)) for word in diagonal]

    def elaborate(self, platform):
        m = Module()
        layer, pe = self._layer, self._folding.pe
        blocks, taps = self._nf, self.taps
        out_fifo, outstanding, room = self._output_fifo(m)

        # -- issue: each beat as it comes, while the FIFO has room --------------------------------------
        issue = Signal()
        m.d.comb += [issue.eq(self.i.valid & room), self.i.ready.eq(room)]
        block, tap = Signal(counter(blocks)), Signal(counter(taps))
        address = Signal(counter(taps * blocks))
        with m.If(issue):
            m.d.sync += [block.eq(Mux(block == blocks - 1, 0, block + 1)),
                         address.eq(Mux(address == taps * blocks - 1, 0, address + 1))]
            with m.If(block == blocks - 1):
                m.d.sync += tap.eq(Mux(tap == taps - 1, 0, tap + 1))
        # the beat, two cycles after issue (as the weights' registered address takes), one code a row
        word_layout = data.ArrayLayout(data.ArrayLayout(layer.in_type.bits, 1), pe)
        word1, word = Signal(word_layout, reset_less=True), Signal(word_layout, reset_less=True)
        m.d.sync += [word1.as_value().eq(self.i.payload.as_value()), word.eq(word1)]
        valid, first, last = self._datapath(m, address, self.weight_words(layer, self._folding),
                                            pe * weight_bits(layer), word, issue, tap == 0, tap == taps - 1)
        current = delayed(m, block, self._memory_latency + self._dots.latency, "block")

        # -- each channel block's sum between its taps; after the last, into the FIFO ---------------------
        acc_layout = data.ArrayLayout(range(self.acc_max + 1), pe)
        m.submodules.sums = sums = memory.Memory(shape=acc_layout, depth=max(blocks, 2), init=[])
        read, write = sums.read_port(domain="comb"), sums.write_port()
        total = Signal(acc_layout)
        for p in range(pe):
            m.d.comb += total[p].eq(Mux(first, 0, read.data[p]) + self._dots.o[p])
        m.d.comb += [read.addr.eq(current), write.addr.eq(current), write.data.eq(total), write.en.eq(valid & ~last)]
        result = Signal(acc_layout, reset_less=True)
        with m.If(valid & last):
            m.d.sync += result.eq(total)
        self._push(m, valid, last, out_fifo)
        m.d.comb += out_fifo.w_data.eq(result)
        self._count_credits(m, outstanding, issue & (tap == taps - 1))
        return m
