"""Folded matrix-vector unit for bipolar or ternary weights."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.lowered import Folding, MatrixVectorLayer
from .adder_tree import AdderTree
from .params import counter, validating
from .weights import weight_bits, weight_words

__all__ = ["MatrixVectorUnit"]


class MatrixVectorUnit(wiring.Component):
    """Accumulators ``P`` (see ``ir.lowered``) of one lowered layer, folded by ``pe`` and ``simd``.

    A frame is ``SF = MW / simd`` input beats of ``simd`` codes, and ``NF = MH / pe`` output beats
    of ``pe`` accumulators (rows ``nf * pe + p``). Each cycle the unit multiplies one input word by
    ``pe x simd`` weights read from on-chip memory (inferred as block or LUT RAM by its size) and
    sums each row through a pipelined :class:`AdderTree`; rows accumulate over the ``SF`` words.

    When ``NF > 1`` the input vector is reused ``NF`` times, so inputs go into a two-bank buffer:
    one frame is taken in while the previous one is processed. The unit then starts a frame once
    all of it has arrived and needs ``NF * SF`` cycles per frame. With ``NF == 1`` inputs stream
    straight through, one beat a cycle.

    Backpressure: results go into an output FIFO, and a word is only issued while the FIFO has room
    for everything in flight, so the pipeline itself never stalls and ``o.ready`` fans out to no
    datapath register. Nothing is lost or reordered under any pattern of ``i.valid``/``o.ready``.
    """

    def __init__(self, *, layer: MatrixVectorLayer, folding: Folding, tree_group: int = 2, levels_per_stage: int = 1):
        with validating(self):
            layer.check_folding(folding)
        self._layer, self._folding = layer, folding
        self._nf, self._sf = layer.mh // folding.pe, layer.mw // folding.simd
        term_max = 1 if layer.in_type.is_bipolar else layer.in_code_max
        self._trees = [AdderTree(count=folding.simd, term_max=term_max, group=tree_group,
                                 levels_per_stage=levels_per_stage) for _ in range(folding.pe)]
        self.acc_max = layer.mw * term_max
        # issue -> memory read (1) -> tree -> accumulator (1) -> FIFO write (1) -> FIFO output (1)
        self.pipeline_latency = 1 + self._trees[0].latency + 3
        self._fifo_depth = self.pipeline_latency + 2
        super().__init__({
            "i": In(self.input_signature(layer, folding)),
            "o": Out(self.output_signature(layer, folding)),
        })

    @staticmethod
    def input_signature(layer: MatrixVectorLayer, folding: Folding) -> stream.Signature:
        return stream.Signature(data.ArrayLayout(layer.in_type.bits, folding.simd))

    @staticmethod
    def output_signature(layer: MatrixVectorLayer, folding: Folding) -> stream.Signature:
        term_max = 1 if layer.in_type.is_bipolar else layer.in_code_max
        return stream.Signature(data.ArrayLayout(range(layer.mw * term_max + 1), folding.pe))

    # -- analytical cycle model ------------------------------------------------------------------------
    @staticmethod
    def cycles_per_frame(layer: MatrixVectorLayer, folding: Folding) -> int:
        """Initiation interval: cycles between frames when inputs and outputs never wait."""
        return (layer.mh // folding.pe) * (layer.mw // folding.simd)

    @property
    def buffered(self) -> bool:
        return self._nf > 1

    def elaborate(self, platform):
        m = Module()
        layer, pe, simd = self._layer, self._folding.pe, self._folding.simd
        nf_count, sf_count = self._nf, self._sf
        in_bits, wbits = layer.in_type.bits, weight_bits(layer)
        word_layout = data.ArrayLayout(in_bits, simd)

        # -- weights ---------------------------------------------------------------------------------
        words = weight_words(layer, self._folding)
        m.submodules.weights = weights = memory.Memory(
            shape=unsigned(pe * simd * wbits), depth=max(len(words), 2), init=words)
        w_read = weights.read_port()

        # -- output FIFO and credits -----------------------------------------------------------------
        acc_shape = data.ArrayLayout(range(self.acc_max + 1), pe)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(width=acc_shape.size, depth=self._fifo_depth)
        outstanding = Signal(range(self._fifo_depth + 1))
        room = Signal()
        m.d.comb += [
            room.eq(outstanding < self._fifo_depth),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]

        # -- issue: which input word and which weights this cycle ------------------------------------
        sf = Signal(counter(sf_count))
        nf = Signal(counter(nf_count))
        waddr = Signal(counter(nf_count * sf_count))
        issue = Signal()
        word = Signal(word_layout)              # the input word, one cycle after issue

        if self.buffered:
            m.submodules.inbuf = inbuf = memory.Memory(shape=word_layout, depth=2 * sf_count, init=[])
            buf_w, buf_r = inbuf.write_port(), inbuf.read_port()
            full = Signal(2)
            w_bank, w_count, r_bank = Signal(), Signal(counter(sf_count)), Signal()
            m.d.comb += [
                self.i.ready.eq(~full.bit_select(w_bank, 1)),
                buf_w.addr.eq(w_bank * sf_count + w_count),
                buf_w.data.eq(self.i.payload),
                buf_w.en.eq(self.i.valid & self.i.ready),
                issue.eq(full.bit_select(r_bank, 1) & room),
                buf_r.addr.eq(r_bank * sf_count + sf),
                word.eq(buf_r.data),
            ]
            set_full = Signal(2)
            clear_full = Signal(2)
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += w_count.eq(Mux(w_count == sf_count - 1, 0, w_count + 1))
                with m.If(w_count == sf_count - 1):
                    m.d.comb += set_full.eq(1 << w_bank)
                    m.d.sync += w_bank.eq(~w_bank)
            with m.If(issue & (nf == nf_count - 1) & (sf == sf_count - 1)):
                m.d.comb += clear_full.eq(1 << r_bank)
                m.d.sync += r_bank.eq(~r_bank)
            m.d.sync += full.eq((full | set_full) & ~clear_full)
        else:
            m.d.comb += [
                issue.eq(self.i.valid & room),
                self.i.ready.eq(room),
            ]
            m.d.sync += word.eq(self.i.payload)

        with m.If(issue):
            m.d.sync += [
                sf.eq(Mux(sf == sf_count - 1, 0, sf + 1)),
                waddr.eq(Mux(waddr == nf_count * sf_count - 1, 0, waddr + 1)),
            ]
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))
        m.d.comb += w_read.addr.eq(waddr)

        # -- stage 1: terms into the trees -----------------------------------------------------------
        valid1, first1, last1 = Signal(), Signal(), Signal()
        m.d.sync += [valid1.eq(issue), first1.eq(sf == 0), last1.eq(sf == sf_count - 1)]
        for p, tree in enumerate(self._trees):
            m.submodules[f"tree{p}"] = tree
            for s in range(simd):
                w = w_read.data.word_select(p * simd + s, wbits)
                m.d.comb += tree.i[s].eq(self._term(word[s], w))

        # -- valid, first and last travel alongside the trees ----------------------------------------
        valid, first, last = valid1, first1, last1
        for k in range(self._trees[0].latency):
            v, f, l = Signal(name=f"valid_d{k}"), Signal(name=f"first_d{k}"), Signal(name=f"last_d{k}")
            m.d.sync += [v.eq(valid), f.eq(first), l.eq(last)]
            valid, first, last = v, f, l

        # -- accumulate over SF words, then write the FIFO -------------------------------------------
        acc = Signal(acc_shape)
        push = Signal()
        with m.If(valid):
            for p, tree in enumerate(self._trees):
                m.d.sync += acc[p].eq(Mux(first, 0, acc[p]) + tree.o)
        m.d.sync += push.eq(valid & last)
        m.d.comb += [out_fifo.w_data.eq(acc), out_fifo.w_en.eq(push)]

        popped = self.o.valid & self.o.ready
        pushed_issue = issue & (sf == sf_count - 1)
        m.d.sync += outstanding.eq(outstanding + pushed_issue - popped)
        return m

    def _term(self, x, w):
        """One product as an unsigned term: see ``ir.lowered`` for what ``P`` sums."""
        layer = self._layer
        if layer.in_type.is_bipolar:
            if layer.weight_type.is_bipolar:
                return ~(x ^ w[0])
            return w[0] & ~(x ^ w[1])
        bits = layer.in_type.bits
        flipped = x ^ Mux(w[-1], 0, (1 << bits) - 1)
        if layer.weight_type.is_bipolar:
            return flipped
        return Mux(w[0], flipped, 0)
