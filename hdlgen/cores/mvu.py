"""Folded matrix-vector unit."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.lowered import Folding, MatrixVectorLayer
from .dot_array import DotProductArray
from ..golden.layers import row_correction
from .params import counter, delayed, validating
from .products import Packing, ProductKind
from .weights import weight_words, word_width

__all__ = ["FoldedUnit", "MatrixVectorUnit"]

# Memories at least this deep and this large are expected in block RAM (an ECP5 DP16KD holds 18 Kbit).
BLOCK_RAM_MIN_DEPTH = 128
BLOCK_RAM_MIN_BITS = 8192
# depth of one 18-kbit block RAM (ECP5 DP16KD, Xilinx RAMB18) for each width it can be configured to
BLOCK_RAM_DEPTHS = {1: 16384, 2: 8192, 4: 4096, 9: 2048, 18: 1024, 36: 512}


def bank_depth(width: int) -> int:
    """Words of one block RAM at this width (wider words take several RAMs side by side)."""
    return next(depth for bits, depth in BLOCK_RAM_DEPTHS.items() if bits >= min(width, 36))


def in_block_ram(depth: int, bits: int) -> bool:
    """Whether a memory of ``depth`` words of ``bits`` bits is expected in block RAM."""
    return depth >= BLOCK_RAM_MIN_DEPTH and depth * bits >= BLOCK_RAM_MIN_BITS


def weight_placement(words: int, width: int) -> tuple[bool, int]:
    """(in block RAM, banks) of ``words`` weight words of ``width`` bits: weights deeper than one block
    RAM are banked, each bank's output registered before the multiplexer that picks one, so no logic
    follows a block RAM's slow clock-to-output."""
    block_ram = in_block_ram(words, width)
    return block_ram, -(-words // bank_depth(width)) if block_ram else 1


def memory_latency(block_ram: bool, banks: int) -> int:
    """Issue -> address register (1) -> memory read (1) [-> output register (1) [-> bank mux register (1)]]."""
    return 2 + block_ram + (banks > 1)


def weight_memory(m: Module, words: list[int], width: int, addr, *, block_ram: bool, banks: int):
    """The weight word at ``addr`` (a registered address), ``1 + block_ram + (banks > 1)`` cycles
    after ``addr`` is set: a ROM in logic below the block-RAM size (its read needs no extra register;
    Yosys would otherwise pick block RAM for some), else block RAM whose output is registered once
    more before any logic, and where deeper than one block RAM, banks registered each, then picked."""
    shape, depth = unsigned(width), bank_depth(width)
    reads = []
    for b in range(banks):
        part = words[b * depth:(b + 1) * depth] if banks > 1 else words
        m.submodules[f"weights{b}" if banks > 1 else "weights"] = bank = memory.Memory(
            shape=shape, depth=max(len(part), 2), init=part, attrs=None if block_ram else {"ram_style": "logic"})
        reads.append(bank.read_port())
        m.d.comb += reads[-1].addr.eq(addr)
    if not block_ram:
        return reads[0].data
    # A block RAM's clock-to-output alone takes most of a period at 200 MHz (5.6 ns on ECP5, where
    # Yosys does not use the RAM's output register)
    outs = [delayed(m, read.data, 1, f"weights_q{b}") for b, read in enumerate(reads)]
    if banks == 1:
        return outs[0]
    bank = delayed(m, addr[(depth - 1).bit_length():], 2, "bank")
    picked = Signal(shape, reset_less=True)
    m.d.sync += picked.eq(Cat(*outs).word_select(bank, width))
    return picked


class FoldedUnit(wiring.Component):
    """What the dense and the zero-skipping matrix-vector units share: their streams, where their
    weights go and how long reading them takes, the output FIFO issue waits on (credits), the
    two-bank input buffer, and the accumulators. A subclass makes its :class:`DotProductArray` and
    calls ``_setup`` with its weight memory's size."""

    def _setup(self, layer: MatrixVectorLayer, folding: Folding, dots: DotProductArray, words: int, width: int):
        self._layer, self._folding, self._dots = layer, folding, dots
        self._nf, self._sf = layer.mh // folding.pe, layer.mw // folding.simd
        self.product, self.carry_tree = dots.product, dots.carry_tree
        self.acc_max = layer.acc_max
        # weights big enough for block RAM (by Yosys's usual choice) get an output register, and
        # are banked when deeper than one block RAM
        self._block_ram, self._banks = weight_placement(words, width)
        self._memory_latency = memory_latency(self._block_ram, self._banks)
        # ... -> dot products -> accumulator (1) -> FIFO write (1) -> FIFO output (1)
        self.pipeline_latency = self._memory_latency + dots.latency + 3
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
        return stream.Signature(data.ArrayLayout(range(layer.acc_max + 1), folding.pe))

    @property
    def weight_banks(self) -> int:
        """Block RAMs deep the weights are split into (1 unless deeper than one block RAM)."""
        return self._banks

    @property
    def block_ram(self) -> bool:
        """Whether the weights are expected in block RAM, and so get an output register."""
        return self._block_ram

    def _output_fifo(self, m: Module):
        """The output FIFO, its credit count, and whether there is room for one more beat in flight."""
        acc_shape = data.ArrayLayout(range(self.acc_max + 1), self._folding.pe)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(width=acc_shape.size, depth=self._fifo_depth)
        outstanding = Signal(range(self._fifo_depth + 1))
        room = Signal()
        m.d.comb += [
            room.eq(outstanding < self._fifo_depth),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]
        return out_fifo, outstanding, room

    def _count_credits(self, m: Module, outstanding, issued_last) -> None:
        """A credit is taken when the last word of an output beat is issued, given back when a beat leaves."""
        m.d.sync += outstanding.eq(outstanding + issued_last - (self.o.valid & self.o.ready))

    def _input_buffer(self, m: Module, issue, room, column, read_done):
        """Inputs into two banks of ``SF`` words: one vector is taken in while the other is read.
        ``issue`` is driven: high while the bank being read is full and the FIFO has room;
        ``column`` picks the word read, and ``read_done`` (with ``issue``) frees the bank. Returns
        the word read, two cycles after ``column`` is set (its address is registered)."""
        sf_count = self._sf
        word_layout = data.ArrayLayout(self._layer.in_type.bits, self._folding.simd)
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
        ]
        # Memory addresses are registered before they reach a memory, so that the counters' logic
        # and a memory's read logic (a ROM in LUTs when small) never share one clock period.
        read_addr = Signal(range(2 * sf_count), reset_less=True)
        m.d.sync += read_addr.eq(r_bank * sf_count + column)
        m.d.comb += buf_r.addr.eq(read_addr)
        set_full, clear_full = Signal(2), Signal(2)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += w_count.eq(Mux(w_count == sf_count - 1, 0, w_count + 1))
            with m.If(w_count == sf_count - 1):
                m.d.comb += set_full.eq(1 << w_bank)
                m.d.sync += w_bank.eq(~w_bank)
        with m.If(issue & read_done):
            m.d.comb += clear_full.eq(1 << r_bank)
            m.d.sync += r_bank.eq(~r_bank)
        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return buf_r.data

    def _datapath(self, m: Module, address, words: list[int], width: int, word, issue, first, last):
        """Weights ``words`` read at ``address`` (registered first), and the input ``word`` beside
        them (two cycles after issue), into the dot products; ``issue``, ``first`` and ``last``
        delayed to where the accumulators take the dot products. Returns those three."""
        weight_addr = Signal.like(address, reset_less=True)
        m.d.sync += weight_addr.eq(address)
        weights_out = weight_memory(m, words, width, weight_addr, block_ram=self._block_ram, banks=self._banks)
        word_out = delayed(m, word, self._memory_latency - 2, "word")
        m.submodules.dots = dots = self._dots
        m.d.comb += [dots.x.eq(word_out), dots.w.as_value().eq(weights_out)]
        steps = self._memory_latency + dots.latency
        return (delayed(m, issue, steps, "valid", reset=True), delayed(m, first, steps, "first"),
                delayed(m, last, steps, "last"))

    def _push(self, m: Module, valid, last, out_fifo) -> None:
        """The accumulators go into the FIFO the cycle after a row group's last word was added."""
        push = Signal()
        m.d.sync += push.eq(valid & last)
        m.d.comb += out_fifo.w_en.eq(push)

    def _accumulate(self, m: Module, valid, first, out_fifo) -> None:
        """Each row's accumulator starts from a row group's first word's dot product and adds the rest."""
        acc = Signal(data.ArrayLayout(range(self.acc_max + 1), self._folding.pe), reset_less=True)
        with m.If(valid):
            for p in range(self._folding.pe):
                m.d.sync += acc[p].eq(Mux(first, 0, acc[p]) + self._dots.o[p])
        m.d.comb += out_fifo.w_data.eq(acc)


class MatrixVectorUnit(FoldedUnit):
    """Accumulators ``P`` (see ``ir.lowered``) of one lowered layer, folded by ``pe`` and ``simd``.

    A frame is ``SF = MW / simd`` input beats of ``simd`` codes, and ``NF = MH / pe`` output beats
    of ``pe`` accumulators (rows ``nf * pe + p``). Each cycle the unit multiplies one input word by
    ``pe x simd`` weights read from on-chip memory (block RAM from 128 words and 8 Kbit, else a ROM
    in logic) and sums each row through a pipelined :class:`AdderTree`; rows accumulate over the
    ``SF`` words.

    When ``NF > 1`` the input vector is reused ``NF`` times, so inputs go into a two-bank buffer:
    one frame is taken in while the previous one is processed. The unit then starts a frame once
    all of it has arrived and needs ``NF * SF`` cycles per frame. With ``NF == 1`` inputs stream
    straight through, one beat a cycle.

    Backpressure: results go into an output FIFO, and a word is only issued while the FIFO has room
    for everything in flight, so the pipeline itself never stalls and ``o.ready`` fans out to no
    datapath register. Nothing is lost or reordered under any pattern of ``i.valid``/``o.ready``.
    """

    def __init__(self, *, layer: MatrixVectorLayer, folding: Folding, tree_group: int = 2, levels_per_stage: int = 1,
                 product: ProductKind | None = None, packing: Packing | None = None, carry_cells: str | None = None):
        with validating(self):
            layer.check_folding(folding)
        dots = DotProductArray(in_type=layer.in_type, weight_type=layer.weight_type, pe=folding.pe,
                               simd=folding.simd, tree_group=tree_group, levels_per_stage=levels_per_stage,
                               product=product, packing=packing, carry_cells=carry_cells)
        self._packing = dots.packing
        nf, sf = layer.mh // folding.pe, layer.mw // folding.simd
        self._setup(layer, folding, dots, nf * sf, word_width(layer, folding, self._packing))

    # -- analytical cycle model ------------------------------------------------------------------------
    @staticmethod
    def cycles_per_frame(layer: MatrixVectorLayer, folding: Folding) -> int:
        """Initiation interval: cycles between frames when inputs and outputs never wait."""
        return layer.vectors * (layer.mh // folding.pe) * (layer.mw // folding.simd)

    @property
    def buffered(self) -> bool:
        """Whether inputs go through the two-bank buffer (the input vector is reused)."""
        return self._nf > 1

    def elaborate(self, platform):
        m = Module()
        layer, simd = self._layer, self._folding.simd
        nf_count, sf_count = self._nf, self._sf
        word_layout = data.ArrayLayout(layer.in_type.bits, simd)
        out_fifo, outstanding, room = self._output_fifo(m)

        # -- issue: which input word and which weights this cycle ------------------------------------
        sf = Signal(counter(sf_count))
        nf = Signal(counter(nf_count))
        waddr = Signal(counter(nf_count * sf_count))
        issue = Signal()
        # the input word, two cycles after issue (as a registered memory address takes)
        word = Signal(word_layout, reset_less=True)
        if self.buffered:
            m.d.comb += word.eq(self._input_buffer(m, issue, room, sf, (nf == nf_count - 1) & (sf == sf_count - 1)))
        else:
            m.d.comb += [
                issue.eq(self.i.valid & room),
                self.i.ready.eq(room),
            ]
            word1 = Signal(word_layout, reset_less=True)
            m.d.sync += [word1.eq(self.i.payload), word.eq(word1)]

        with m.If(issue):
            m.d.sync += [
                sf.eq(Mux(sf == sf_count - 1, 0, sf + 1)),
                waddr.eq(Mux(waddr == nf_count * sf_count - 1, 0, waddr + 1)),
            ]
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))
        # -- input word and weights into the dot products; valid, first and last alongside -----------
        valid, first, last = self._datapath(m, waddr, weight_words(layer, self._folding, self._packing),
                                            word_width(layer, self._folding, self._packing), word, issue,
                                            sf == 0, sf == sf_count - 1)

        # -- accumulate over SF words, then write the FIFO -------------------------------------------
        self._push(m, valid, last, out_fifo)
        if self._packing is None:
            self._accumulate(m, valid, first, out_fifo)
        else:
            self._corrected_accumulators(m, valid, first, last, out_fifo)
        self._count_credits(m, outstanding, issue & (sf == sf_count - 1))
        return m

    def _corrected_accumulators(self, m: Module, valid, first, last, out_fifo):
        """PACKED products sum biased signed terms: each row starts from its correction
        (``golden.row_correction``), read from a ROM by the row group being accumulated, so that
        the sum ends as ``P``. Partial sums may be negative; the final one never is."""
        layer, pe, packing = self._layer, self._folding.pe, self._packing
        correction = row_correction(layer, packing.code_bits, packing.bias).reshape(self._nf, pe)
        lo = min(0, int(correction.min()))
        hi = max(self.acc_max, int(correction.max()) + layer.mw * self._dots.term_max)
        row_shape = data.ArrayLayout(signed(max(lo.bit_length(), hi.bit_length()) + 1), pe)
        m.submodules.corrections = rom = memory.Memory(
            shape=row_shape, depth=max(self._nf, 2), init=[[int(c) for c in row] for row in correction],
            attrs={"ram_style": "logic"})
        read = rom.read_port(domain="comb")
        group = Signal(counter(self._nf))
        with m.If(valid & last):
            m.d.sync += group.eq(Mux(group == self._nf - 1, 0, group + 1))
        m.d.comb += read.addr.eq(group)
        acc = Signal(row_shape, reset_less=True)
        with m.If(valid):
            for p in range(pe):
                m.d.sync += acc[p].eq(Mux(first, read.data[p], acc[p]) + self._dots.o[p])
        bits = self.acc_max.bit_length()
        m.d.comb += out_fifo.w_data.eq(Cat(*(acc[p][:bits] for p in range(pe))))
