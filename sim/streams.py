"""cocotb drivers for valid/ready streams with random idle cycles and backpressure.

``StreamBench`` owns the clock and reset and runs one loop per clock cycle: at the falling edge
it drives the source (``valid``/``payload``) and the sink (``ready``), then in the read-only phase
it sees which handshakes will happen at the next rising edge. So a transfer is recorded exactly
when ``valid & ready`` is high at a rising edge.
"""

from __future__ import annotations

import random

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


class StreamBench:
    def __init__(self, dut, *, inp: str = "i", out: str = "o", seed: int = 0, idle: float = 0.0,
                 backpressure: float = 0.0):
        self.dut = dut
        self.i_valid, self.i_ready, self.i_payload = (getattr(dut, f"{inp}__{n}") for n in ("valid", "ready", "payload"))
        self.o_valid, self.o_ready, self.o_payload = (getattr(dut, f"{out}__{n}") for n in ("valid", "ready", "payload"))
        self.rng = random.Random(seed)
        self.idle, self.backpressure = idle, backpressure
        self.cycle = 0

    async def reset(self):
        Clock(self.dut.clk, 10, unit="ns").start()
        self.dut.rst.value = 1
        self.i_valid.value = 0
        self.o_ready.value = 0
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def run(self, beats: list[int], expected_out: int, *, timeout: int) -> list[tuple[int, int]]:
        """Send ``beats``; collect ``expected_out`` output words as (cycle, word). Checks nothing is extra."""
        received, sent = [], 0
        offering = False
        while len(received) < expected_out:
            await FallingEdge(self.dut.clk)
            self.cycle += 1
            if self.cycle > timeout:
                raise AssertionError(f"timeout after {timeout} cycles: sent {sent}/{len(beats)} beats, "
                                     f"received {len(received)}/{expected_out}")
            if not offering and sent < len(beats) and self.rng.random() >= self.idle:
                offering = True
                self.i_payload.value = beats[sent]
            self.i_valid.value = int(offering)
            ready = self.rng.random() >= self.backpressure
            self.o_ready.value = int(ready)
            await ReadOnly()
            if offering and int(self.i_ready.value):
                sent += 1
                offering = False
            if ready and int(self.o_valid.value):
                received.append((self.cycle, int(self.o_payload.value)))
        # the sink stays open a while longer: nothing more may come out, and input beats that make
        # no output (rows a pooling stage drops) must still be taken
        for _ in range(64 + 2 * (len(beats) - sent)):
            await FallingEdge(self.dut.clk)
            self.i_valid.value = int(sent < len(beats))
            if sent < len(beats):
                self.i_payload.value = beats[sent]
            self.o_ready.value = 1
            await ReadOnly()
            if sent < len(beats) and int(self.i_ready.value):
                sent += 1
            if int(self.o_valid.value):
                raise AssertionError(f"an extra output word {int(self.o_payload.value):#x} after the expected {expected_out}")
        if sent != len(beats):
            raise AssertionError(f"only {sent} of {len(beats)} input beats were taken")
        return received
