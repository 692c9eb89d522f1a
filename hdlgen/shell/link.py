"""The frame protocol over the UART, board side (``docs/board.md``; host side: ``hdlgen.host.protocol``).

Request (host to board): ``0xA5``, a sequence number, the frame's input beats (each beat's bits
little-endian in whole bytes), CRC-16/CCITT (polynomial 0x1021, initial value 0xFFFF, most
significant byte first) of the sequence number and payload.
Reply (board to host): ``0x5A``, the request's sequence number, the output beats the same way, and
their CRC.

The receiver keeps a whole frame in a buffer and streams it to the network only when its CRC is
right. A wrong CRC, a pause longer than ``timeout`` cycles inside a request, or a request arriving
while the buffer is still being streamed drops the request; bytes outside a request are skipped
until the next ``0xA5``. The host, hearing no reply, sends it again. So a lost, extra or corrupted
byte costs one retry and never locks the link.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cores.params import counter, positive_int, validating

__all__ = ["REQUEST_SYNC", "REPLY_SYNC", "CRC_INIT", "crc16_byte", "payload_bytes", "FrameReceiver", "FrameSender"]

REQUEST_SYNC, REPLY_SYNC = 0xA5, 0x5A
CRC_INIT, CRC_POLY = 0xFFFF, 0x1021


def payload_bytes(bits: int) -> int:
    """Bytes one beat of ``bits`` bits takes on the link."""
    return max(1, -(-bits // 8))


def _crc_step(crc: int, byte: int) -> int:
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def crc16_byte(crc, byte):
    """CRC-16/CCITT after one more byte (what ``binascii.crc_hqx`` computes), as logic: the step is
    linear over GF(2), so each bit of the result is the XOR of fixed bits of ``crc`` and ``byte``."""
    inputs = [crc[k] for k in range(16)] + [byte[k] for k in range(8)]
    responses = [_crc_step(1 << k, 0) for k in range(16)] + [_crc_step(0, 1 << k) for k in range(8)]
    bits = []
    for j in range(16):
        terms = [bit for bit, response in zip(inputs, responses) if response >> j & 1]
        value = terms[0]
        for term in terms[1:]:
            value = value ^ term
        bits.append(value)
    return Cat(*bits)


class FrameReceiver(wiring.Component):
    """Requests in (bytes, ``i``), checked frames out as network input beats (``o``); each accepted
    request's sequence number goes out on ``seq`` before its beats. ``busy`` is high inside a request
    and while its beats stream out."""

    def __init__(self, *, beat_bits: int, beats: int, timeout: int):
        with validating(self):
            for name, value in (("beat_bits", beat_bits), ("beats", beats), ("timeout", timeout)):
                positive_int(name, value)
        self._bits, self._beats, self._timeout = beat_bits, beats, timeout
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(beat_bits)),
                          "seq": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bits, beats = self._bits, self._beats
        per_beat = payload_bytes(bits)
        m.submodules.frame = frame = memory.Memory(shape=bits, depth=max(beats, 2), init=[])
        write, read = frame.write_port(), frame.read_port(domain="sync")
        byte, got = self.i.payload, self.i.valid
        m.d.comb += self.i.ready.eq(1)
        crc, received_hi = Signal(16), Signal(8)
        gathered = Signal(per_beat * 8)
        incoming = Cat(gathered[8:], byte)                  # the beat so far with this byte on top
        index, beat = Signal(counter(per_beat)), Signal(counter(beats))
        idle_for = Signal(range(self._timeout + 1))
        issued = Signal(range(beats + 1))
        m.d.comb += [write.addr.eq(beat), write.data.eq(incoming[:bits]), read.addr.eq(issued)]

        def drop():
            m.next = "idle"

        with m.FSM() as fsm:
            m.d.comb += self.busy.eq(~fsm.ongoing("idle"))
            with m.State("idle"):
                with m.If(got & (byte == REQUEST_SYNC)):
                    m.d.sync += [crc.eq(CRC_INIT), idle_for.eq(0)]
                    m.next = "seq"
            for state in ("seq", "payload", "crc_hi", "crc_lo"):
                with m.State(state):
                    with m.If(got):
                        m.d.sync += idle_for.eq(0)
                    with m.Elif(idle_for == self._timeout):
                        drop()
                    with m.Else():
                        m.d.sync += idle_for.eq(idle_for + 1)
                    if state == "seq":
                        with m.If(got):
                            m.d.sync += [self.seq.payload.eq(byte), crc.eq(crc16_byte(crc, byte)), index.eq(0),
                                         beat.eq(0)]
                            m.next = "payload"
                    elif state == "payload":
                        with m.If(got):
                            m.d.sync += [gathered.eq(incoming), crc.eq(crc16_byte(crc, byte)), index.eq(index + 1)]
                            with m.If(index == per_beat - 1):
                                m.d.comb += write.en.eq(1)
                                m.d.sync += [index.eq(0), beat.eq(beat + 1)]
                                with m.If(beat == beats - 1):
                                    m.next = "crc_hi"
                    elif state == "crc_hi":
                        with m.If(got):
                            m.d.sync += received_hi.eq(byte)
                            m.next = "crc_lo"
                    else:
                        with m.If(got):
                            with m.If(Cat(byte, received_hi) == crc):
                                m.next = "announce"
                            with m.Else():
                                drop()
            with m.State("announce"):                   # the sequence number first, then the beats
                m.d.comb += self.seq.valid.eq(1)
                with m.If(self.seq.ready):
                    m.d.sync += issued.eq(0)
                    m.next = "stream"
            with m.State("stream"):
                advance = ~self.o.valid | self.o.ready
                m.d.comb += read.en.eq(advance)
                with m.If(advance):
                    m.d.sync += self.o.valid.eq(issued != beats)
                    with m.If(issued != beats):
                        m.d.sync += issued.eq(issued + 1)
                    with m.Else():
                        m.next = "idle"
        m.d.comb += self.o.payload.eq(read.data)
        return m


class FrameSender(wiring.Component):
    """Network output beats in (``i``: ``data`` and ``last``), replies out as bytes (``o``), each
    headed by the next sequence number from ``seq``. ``busy`` is high while a reply goes out."""

    def __init__(self, *, beat_bits: int):
        with validating(self):
            positive_int("beat_bits", beat_bits)
        self._bits = beat_bits
        super().__init__({"i": In(stream.Signature(data.StructLayout({"data": beat_bits, "last": 1}))),
                          "seq": In(stream.Signature(8)), "o": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        per_beat = payload_bytes(self._bits)
        crc = Signal(16)
        shift = Signal(per_beat * 8)
        last = Signal()
        index = Signal(counter(per_beat))
        sent = self.o.valid & self.o.ready
        with m.FSM() as fsm:
            m.d.comb += self.busy.eq(~fsm.ongoing("idle"))
            with m.State("idle"):
                with m.If(self.i.valid & self.seq.valid):
                    m.next = "sync"
            with m.State("sync"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(REPLY_SYNC)]
                with m.If(sent):
                    m.d.sync += crc.eq(CRC_INIT)
                    m.next = "seq"
            with m.State("seq"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(self.seq.payload)]
                with m.If(sent):
                    m.d.comb += self.seq.ready.eq(1)
                    m.d.sync += crc.eq(crc16_byte(crc, self.seq.payload))
                    m.next = "load"
            with m.State("load"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [shift.eq(self.i.payload.data), last.eq(self.i.payload.last), index.eq(0)]
                    m.next = "bytes"
            with m.State("bytes"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(shift[:8])]
                with m.If(sent):
                    m.d.sync += [crc.eq(crc16_byte(crc, shift[:8])), shift.eq(shift >> 8), index.eq(index + 1)]
                    with m.If((index == per_beat - 1) & last):
                        m.next = "crc_hi"
                    with m.Elif(index == per_beat - 1):
                        m.next = "load"
            with m.State("crc_hi"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc[8:])]
                with m.If(sent):
                    m.next = "crc_lo"
            with m.State("crc_lo"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc[:8])]
                with m.If(sent):
                    m.next = "idle"
        return m
