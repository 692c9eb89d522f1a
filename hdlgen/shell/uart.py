"""A UART, 8 data bits, no parity, one stop bit (8N1), at ``clock / divisor`` baud.

The receiver synchronizes its pin with two flip-flops, waits half a bit after the start bit's edge,
checks the start bit there, then samples each bit in its middle. A byte whose stop bit is low is a
framing error: it is dropped, and ``error`` pulses. Received bytes leave as one-cycle strobes on
``o.valid`` (a UART cannot wait, so ``o.ready`` is not consulted). The transmitter takes a byte when
idle and shifts out start bit, data (least significant bit first) and stop bit from a register.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..cores.params import positive_int, validating

__all__ = ["UartRx", "UartTx"]

MIN_DIVISOR = 4       # clock cycles per bit: the receiver samples in the middle of a bit


def _check_divisor(component, divisor: int) -> None:
    with validating(component):
        positive_int("divisor", divisor)
        if divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be at least {MIN_DIVISOR} clock cycles per bit, not {divisor}")


class UartRx(wiring.Component):
    def __init__(self, *, divisor: int):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)), "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(divisor))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += [self.o.valid.eq(0), self.error.eq(0)]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                        m.next = "data"
                    with m.Else():
                        m.next = "idle"              # a glitch, not a start bit
            with m.State("data"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                    m.next = "idle"
        return m


class UartTx(wiring.Component):
    def __init__(self, *, divisor: int):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        shift = Signal(10, init=(1 << 10) - 1)
        left = Signal(range(11))                    # bits still to send
        timer = Signal(range(divisor))
        m.d.comb += [self.i.ready.eq(left == 0), self.busy.eq(left != 0)]
        m.d.sync += self.tx.eq(shift[0])
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))), left.eq(10), timer.eq(divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), left.eq(left - 1), timer.eq(divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
