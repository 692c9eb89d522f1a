"""Pipelined sum of many small unsigned terms (a popcount when the terms are single bits).

Yosys maps a plain ``sum()`` of bits to a LUT network of about 5 LUT4 per input on ECP5, and maps
adders whose result has four bits or fewer to LUTs rather than to the carry chain. This tree is
built so that almost all of its arithmetic lands on carry chains, one LUT per adder bit:

* Level 0 adds small groups of terms in plain logic: with single-bit terms a group of two
  XNOR-ed bits is a function of four inputs, one LUT4 per output bit, so the logic that makes
  the terms costs nothing extra. Some single-bit terms are kept apart instead (see below).
* Every later level adds pairs of values as *lanes* packed side by side into one wide adder
  (wide enough to be mapped to the carry chain). Each lane is one bit wider than its operands
  need; in that top position both operands carry a spare single-bit term, which leaves the lane's
  own sum untouched and enters the next lane as its carry-in. So the spare terms are added for
  free, and the carry chain never crosses a lane boundary with real carries.
* A register closes every ``levels_per_stage`` levels. Yosys does not retime, so this is where
  the pipeline registers are. They have no reset: a datapath register needs none, and a reset
  would cost a gate per bit in simulation and a control fan-out in hardware.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import delayed, positive_int, validating

__all__ = ["AdderTree"]


def _bits(value: int) -> int:
    return max(1, value.bit_length())


def lane_levels(values: int, spares: int) -> int:
    """Levels of lanes that add ``values`` in pairs, each lane taking one of ``spares`` single-bit
    terms as its carry-in (and the spares left when values run out becoming values)."""
    levels = 0
    while values + spares > 1:
        if values < 2:
            values, spares = values + spares, 0
            continue
        lanes = values // 2
        spares -= min(spares, lanes)
        values -= lanes
        levels += 1
    return levels


class _Lane:
    def __init__(self, a, b):
        (self.a, self.ma), (self.b, self.mb) = a, b
        self.width = max(_bits(self.ma + self.mb + 1), _bits(self.ma) + 1, _bits(self.mb) + 1)
        self.top = self.ma + self.mb          # without the carried-in spare term
        self.carry_in = None


class AdderTree(wiring.Component):
    """Sum of ``count`` unsigned terms, each at most ``term_max``, as a pipelined tree.

    Parameters
    ----------
    count, term_max:
        How many terms and the largest value of one.
    group:
        Terms summed in plain logic at level 0 when terms are single bits (2 suits LUT4,
        3 suits LUT6).
    levels_per_stage:
        Adder levels between pipeline registers (1 for the highest clock).
    max_chain:
        Longest packed adder in bits; longer levels are split into several adders.

    Free-running: the sum of the terms presented at cycle ``t`` appears on ``o`` at cycle
    ``t + latency``. There is no handshake; the caller carries its valid bits alongside.
    """

    def __init__(self, *, count: int, term_max: int, group: int = 2, levels_per_stage: int = 1, max_chain: int = 32):
        with validating(self):
            for name, value in (("count", count), ("term_max", term_max), ("group", group),
                                ("levels_per_stage", levels_per_stage), ("max_chain", max_chain)):
                positive_int(name, value)
        self._count, self._term_max = count, term_max
        self._group, self._levels_per_stage, self._max_chain = group, levels_per_stage, max_chain
        self.out_max = count * term_max
        self.latency = self._plan()[1]
        super().__init__({
            "i": In(data.ArrayLayout(_bits(term_max), count)),
            "o": Out(unsigned(_bits(self.out_max))),
        })

    def _split(self) -> tuple[int, int]:
        """How many terms go into level-0 groups and how many are kept as spare single bits."""
        if self._term_max != 1 or self._group < 2 or self._count < 2 * self._group + 1:
            return self._count, 0
        # g groups leave g - 1 lanes in the tree, and each lane takes one spare bit.
        groups = -(-(self._count + 1) // (self._group + 1))
        spares = min(max(0, self._count - groups * self._group), groups - 1)
        return self._count - spares, spares

    def _plan(self) -> tuple[int, int]:
        grouped, spares = self._split()
        group = self._group if self._term_max == 1 else 1
        levels = lane_levels(-(-grouped // group), spares)
        stages = 1 + sum(1 for level in range(1, levels + 1)
                         if level % self._levels_per_stage == 0 or level == levels)
        return levels, stages

    def elaborate(self, platform):
        m = Module()
        grouped, spare_count = self._split()
        group = self._group if self._term_max == 1 else 1

        values, spares = [], []
        for start in range(0, grouped, group):
            terms = [self.i[k] for k in range(start, min(start + group, grouped))]
            top = len(terms) * self._term_max
            reg = Signal(_bits(top), name=f"g{start // group}", reset_less=True)
            m.d.sync += reg.eq(sum(terms[1:], terms[0]) if len(terms) > 1 else terms[0])
            values.append((reg, top))
        for k in range(grouped, self._count):
            reg = Signal(name=f"s{k - grouped}", reset_less=True)
            m.d.sync += reg.eq(self.i[k])
            spares.append(reg)

        level, (levels, _) = 0, self._plan()
        while len(values) + len(spares) > 1:
            if len(values) < 2:
                values, spares = values + [(s, 1) for s in spares], []
                continue
            level += 1
            registered = level % self._levels_per_stage == 0 or level == levels
            lanes = [_Lane(values[k], values[k + 1]) for k in range(0, len(values) - 1, 2)]
            carried = values[-1:] if len(values) % 2 else []
            for lane in lanes:
                if spares:
                    lane.carry_in, lane.top = spares.pop(), lane.top + 1
            values = [self._add_level(m, chunk, level, index, registered)
                      for index, chunk in enumerate(self._chunks(lanes))]
            values = [v for chunk in values for v in chunk]
            if registered:
                # whatever skips this level must pass the same register to stay aligned
                carried = [(delayed(m, v, 1, f"l{level}_carry"), top) for v, top in carried]
                spares = [delayed(m, s, 1, f"l{level}_spare{k}") for k, s in enumerate(spares)]
            values += carried
        m.d.comb += self.o.eq(values[0][0])
        return m

    def _chunks(self, lanes: list[_Lane]) -> list[list[_Lane]]:
        chunks, current, width = [], [], 1
        for lane in lanes:
            if current and width + lane.width > self._max_chain:
                chunks.append(current)
                current, width = [], 1
            current.append(lane)
            width += lane.width
        return chunks + [current] if current else chunks

    def _add_level(self, m: Module, lanes: list[_Lane], level: int, index: int, registered: bool):
        """One packed adder: a guard bit, then each lane's operands with the next lane's spare on top."""
        a_parts, b_parts = [], []
        first_spare = lanes[0].carry_in if lanes[0].carry_in is not None else Const(0, 1)
        a_parts.append(first_spare)
        b_parts.append(first_spare)
        for k, lane in enumerate(lanes):
            nxt = lanes[k + 1].carry_in if k + 1 < len(lanes) and lanes[k + 1].carry_in is not None else Const(0, 1)
            a_parts += [lane.a.as_unsigned()[:lane.width - 1] if len(lane.a) >= lane.width - 1
                        else Cat(lane.a, Const(0, lane.width - 1 - len(lane.a))), nxt]
            b_parts += [lane.b.as_unsigned()[:lane.width - 1] if len(lane.b) >= lane.width - 1
                        else Cat(lane.b, Const(0, lane.width - 1 - len(lane.b))), nxt]
        a, b = Cat(*a_parts), Cat(*b_parts)
        total = Signal(len(a), name=f"l{level}_{index}_sum")
        m.d.comb += total.eq(a + b)
        results, offset = [], 1
        for k, lane in enumerate(lanes):
            node = Signal(lane.width, name=f"l{level}_{index}_{k}", reset_less=True)
            domain = m.d.sync if registered else m.d.comb
            domain += node.eq(total[offset:offset + lane.width])
            results.append((node, lane.top))
            offset += lane.width
        return results
