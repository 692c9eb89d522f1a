"""The class index of a frame: argmax over the last stage's output words, first index on ties.

Input: the last stage's stream, ``count`` words a beat, ``features / count`` beats a frame (feature
``beat * count + j`` in lane ``j``). Output: one beat a frame, the index of the first feature whose
key is largest (numpy's argmax). Keys (``ir.lowered.ClassOutput``) are the words with bits flipped
so that unsigned comparison orders them, or ranks read from a table per lane (block RAM, one read
a beat). Golden function: ``golden.classes.class_indices``.

Two register stages: the keys of a beat, then the running best. A tree of comparisons picks the
beat's best lane (the lower lane wins a tie); a later beat replaces the running best only when its
key is strictly larger.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.lowered import ClassOutput
from .params import counter, positive_int, validating

__all__ = ["ArgmaxUnit"]


class ArgmaxUnit(wiring.Component):
    latency = 2

    def __init__(self, *, classes: ClassOutput, count: int):
        with validating(self):
            positive_int("count", count)
            if classes.features % count:
                raise ValueError(f"count={count} does not divide the {classes.features} features")
        self._classes, self._count, self._beats = classes, count, classes.features // count
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(classes.word_bits, count))),
            "o": Out(stream.Signature(classes.index_bits)),
        })

    @staticmethod
    def cycles_per_frame(classes: ClassOutput, count: int) -> int:
        return classes.features // count

    def _keys(self, m: Module, take, beat) -> list:
        """The keys of the beat taken last time ``take`` was high (``beat`` of its frame), one per lane,
        from the first stage's registers or table reads."""
        classes, count, beats = self._classes, self._count, self._beats
        if classes.key == "rank":
            keys = []
            for j in range(count):
                rows = classes.table[j::count]                      # features j, j + count, ... in beat order
                m.submodules[f"ranks{j}"] = mem = memory.Memory(shape=classes.key_bits, depth=max(rows.size, 2),
                                                                init=[int(v) for v in rows.ravel()])
                read = mem.read_port(domain="sync")
                m.d.comb += [read.addr.eq(Cat(self.i.payload[j], beat) if beats > 1 else self.i.payload[j]),
                             read.en.eq(take)]
                keys.append(read.data)
            return keys
        flip = (1 << (classes.word_bits - 1) if classes.signed else 0) ^ \
               ((1 << classes.word_bits) - 1 if classes.invert else 0)
        words = Signal.like(self.i.payload)
        with m.If(take):
            m.d.sync += words.eq(self.i.payload)
        return [words[j] ^ Const(flip, classes.word_bits) for j in range(count)]

    def elaborate(self, platform):
        m = Module()
        count, beats, index_bits = self._count, self._beats, self._classes.index_bits
        a_valid, a_beat, beat = Signal(), Signal(counter(beats)), Signal(counter(beats))
        a_last = a_beat == beats - 1
        b_go = a_valid & ~(a_last & self.o.valid & ~self.o.ready)
        take = ~a_valid | b_go                                   # the first stage takes a beat
        m.d.comb += self.i.ready.eq(take)
        keys = self._keys(m, take, beat)
        with m.If(take):
            m.d.sync += [a_valid.eq(self.i.valid), a_beat.eq(beat)]
        with m.If(self.i.valid & take):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))

        # the beat's best lane: a tree of pairs, the lower lane kept on a tie
        nodes = [(key, Const(j, counter(count))) for j, key in enumerate(keys)]
        while len(nodes) > 1:
            paired = []
            for a, b in zip(nodes[::2], nodes[1::2]):
                right = b[0] > a[0]
                paired.append((Mux(right, b[0], a[0]), Mux(right, b[1], a[1])))
            nodes = paired + ([nodes[-1]] if len(nodes) % 2 else [])
        lane_key, lane = nodes[0]

        best_key, best_index = Signal(len(keys[0])), Signal(index_bits)
        replace = (a_beat == 0) | (lane_key > best_key)
        index = Mux(replace, a_beat * count + lane, best_index)
        with m.If(b_go):
            m.d.sync += [best_key.eq(Mux(replace, lane_key, best_key)), best_index.eq(index)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(b_go & a_last):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(index)]
        return m
