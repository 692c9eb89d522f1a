"""Folded matrix-vector unit that skips all-zero blocks of weights ("skip on zero", as in Deep Compression)."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory

from ..errors import HdlgenError
from ..ir.lowered import Folding, MatrixVectorLayer
from .dot_array import DotProductArray
from .mvu import FoldedUnit
from .params import counter, validating
from .products import ProductKind, choose_product
from .weights import weight_words, word_width

__all__ = ["SparseEntry", "SparseMatrixVectorUnit", "nonzero_blocks", "sparse_entries", "sparse_schedule"]


class SparseEntry(NamedTuple):
    """One scheduled block: row group ``nf``, column group ``sf``, and whether it is the first or the
    last block of its row group."""

    nf: int
    sf: int
    first: bool
    last: bool


def nonzero_blocks(layer: MatrixVectorLayer, folding: Folding) -> np.ndarray:
    """(NF, SF) booleans: whether block ``(nf, sf)`` (rows ``nf * pe ..``, inputs ``sf * simd ..``)
    holds a non-zero weight."""
    layer.check_folding(folding)
    pe, simd = folding.pe, folding.simd
    blocks = layer.weights.reshape(layer.mh // pe, pe, layer.mw // simd, simd)
    return blocks.any(axis=(1, 3))


def sparse_schedule(layer: MatrixVectorLayer, folding: Folding) -> list[SparseEntry]:
    """The blocks a :class:`SparseMatrixVectorUnit` issues for one input vector, in order: row groups
    in turn, each its non-zero blocks by increasing ``sf``; an all-zero row group keeps its block
    ``sf = 0`` so that it still makes its output beat."""
    entries = []
    for nf, row in enumerate(nonzero_blocks(layer, folding)):
        columns = np.flatnonzero(row).tolist() or [0]
        entries += [SparseEntry(nf, sf, k == 0, k == len(columns) - 1) for k, sf in enumerate(columns)]
    return entries


def sparse_entries(layer: MatrixVectorLayer, folding: Folding) -> int:
    """Blocks issued per input vector: over the row groups, the number of non-zero blocks, at least 1."""
    return _entries(layer, folding.pe, folding.simd)


@lru_cache(maxsize=4096)
def _entries(layer: MatrixVectorLayer, pe: int, simd: int) -> int:
    # cached: a folding search asks for every layer at every folding it tries
    return int(np.maximum(nonzero_blocks(layer, Folding(pe=pe, simd=simd)).sum(axis=1), 1).sum())


class SparseMatrixVectorUnit(FoldedUnit):
    """Accumulators ``P`` (see ``ir.lowered``) of one lowered layer, folded by ``pe`` and ``simd``,
    spending no cycle on a block of weights that is all zero.

    Streams, frames and output order are those of :class:`MatrixVectorUnit`: ``SF = MW / simd``
    input beats per vector, ``NF = MH / pe`` output beats of ``pe`` accumulators (rows
    ``nf * pe + p``). A zero weight adds exactly 0 to ``P``, so a *block* of ``pe x simd`` weights
    (row group ``nf``, inputs ``sf * simd ..``) that is all zero can be left out of the sum.

    Schedule: the ``entries`` blocks of :func:`sparse_schedule`, the non-zero blocks of each row
    group by increasing ``sf`` and a zero block for a row group with none. Each entry's weights are
    stored in the dense unit's word format (``cores.weights``), in schedule order; its ``sf``, and
    whether it is the first or the last of its row group, in a small ROM in logic beside them. Weights
    go in block RAM from 128 entries and 8 Kbit, banked and registered as in the dense unit, else in
    a ROM in logic.

    Inputs always go into a two-bank buffer of ``SF`` words a bank. Once a vector has all arrived,
    the unit issues one entry a cycle: the input word at column ``sf`` of the buffer times the
    entry's weights, summed per row through a pipelined :class:`AdderTree`; a row group's first
    entry starts its accumulators and its last pushes them into the output FIFO. The next vector is
    taken in meanwhile, so a vector takes ``max(SF, entries)`` cycles, and a frame (``vectors``
    vectors) ``cycles_per_frame``. Latency from issue to the output FIFO's output is
    ``pipeline_latency`` cycles.

    Backpressure: as in the dense unit, an entry is only issued while the output FIFO has room for
    every beat in flight, so the pipeline never stalls and ``o.ready`` fans out to no datapath
    register; nothing is lost or reordered under any pattern of ``i.valid``/``o.ready``.

    ``product`` and ``carry_cells`` are the dense unit's (by default the default target's product).
    Bipolar weights have no zeros, and PACKED products add a bias for every term, zero weights
    included, so layers with either are refused; carry cells (made for XNOR terms of bipolar
    weights) therefore never apply, and are taken only so that a caller treats both units alike.
    """

    def __init__(self, *, layer: MatrixVectorLayer, folding: Folding, tree_group: int = 2, levels_per_stage: int = 1,
                 product: ProductKind | None = None, carry_cells: str | None = None):
        with validating(self):
            layer.check_folding(folding)
            if layer.weight_type.is_bipolar:
                raise HdlgenError(f"layer {layer.name!r}: bipolar weights have no zeros to skip; use a "
                                  f"MatrixVectorUnit")
            if product is None:
                product = choose_product(layer.in_type, layer.weight_type, pe=folding.pe).kind
            if product is ProductKind.PACKED:
                raise HdlgenError(f"layer {layer.name!r}: PACKED products add a bias for every term, so a "
                                  f"skipped block of zeros would change the sum; choose another product, "
                                  f"e.g. product=ProductKind.MULTIPLY")
            dots = DotProductArray(in_type=layer.in_type, weight_type=layer.weight_type, pe=folding.pe,
                                   simd=folding.simd, tree_group=tree_group, levels_per_stage=levels_per_stage,
                                   product=product, carry_cells=carry_cells)
        self._schedule = sparse_schedule(layer, folding)
        # the dense unit's weight placement, for the scheduled blocks
        self._setup(layer, folding, dots, len(self._schedule), word_width(layer, folding))

    # -- analytical cycle model ------------------------------------------------------------------------
    @staticmethod
    def cycles_per_frame(layer: MatrixVectorLayer, folding: Folding) -> int:
        """Initiation interval: cycles between frames when inputs and outputs never wait. Taking in
        a vector (``SF`` beats) overlaps issuing the previous one's entries, so the slower of the two
        sets the pace."""
        return layer.vectors * max(layer.mw // folding.simd, sparse_entries(layer, folding))

    @property
    def buffered(self) -> bool:
        """Inputs always go through the two-bank buffer."""
        return True

    @property
    def entries(self) -> int:
        """Blocks issued per input vector (see :func:`sparse_entries`)."""
        return len(self._schedule)

    def elaborate(self, platform):
        m = Module()
        schedule, entry_count = self._schedule, len(self._schedule)
        out_fifo, outstanding, room = self._output_fifo(m)

        # -- schedule: the entry to issue, its control read one entry ahead ----------------------------
        # The control of entry ``entry`` waits in a register, read from the ROM at ``ahead`` (the
        # entry after it) as it is issued: no memory read lies between a counter and the issue logic.
        control = data.StructLayout({"sf": counter(self._sf), "first": 1, "last": 1})
        controls = [{"sf": e.sf, "first": e.first, "last": e.last} for e in schedule]
        m.submodules.control = control_rom = memory.Memory(
            shape=control, depth=max(entry_count, 2), init=controls, attrs={"ram_style": "logic"})
        control_read = control_rom.read_port(domain="comb")
        entry = Signal(counter(entry_count))
        ahead = Signal(counter(entry_count), init=1 % entry_count)
        current = Signal(control, init=controls[0])
        issue = Signal()
        m.d.comb += control_read.addr.eq(ahead)
        with m.If(issue):
            m.d.sync += [
                entry.eq(ahead),
                ahead.eq(Mux(ahead == entry_count - 1, 0, ahead + 1)),
                current.eq(control_read.data),
            ]
        word = self._input_buffer(m, issue, room, current.sf, entry == entry_count - 1)

        # -- weights of the scheduled blocks and the input word into the dot products; valid, first and
        # last alongside
        dense = weight_words(self._layer, self._folding)
        valid, first, last = self._datapath(m, entry, [dense[e.nf * self._sf + e.sf] for e in schedule],
                                            word_width(self._layer, self._folding), word, issue,
                                            current.first, current.last)

        # -- accumulate over a row group's entries, then write the FIFO -------------------------------
        self._push(m, valid, last, out_fifo)
        self._accumulate(m, valid, first, out_fifo)
        self._count_credits(m, outstanding, issue & current.last)
        return m
