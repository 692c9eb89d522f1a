"""XNOR-popcount as a compressor tree on the carry chain, with the XNOR folded into the first level.

``AdderTree`` makes every term in logic first (an XNOR gate per bit, then pairs summed in LUTs)
and leaves the adders to Yosys. This tree instantiates the family's carry cells itself
(``cores.carry_cells``), so each LUT does as much as its inputs allow:

* **Level 1** reads the raw operands. One cell adds two terms ``xnor(x1, w1) + xnor(x2, w2)``
  straight from the four bits (a LUT4's worth), its carry being the lane's second bit; the cell
  above it injects a third term as the next lane's carry-in. So a lane of two cells sums three
  terms, and no LUT is spent on XNOR gates. On ECP5 the generate bit of a four-input cell is the
  table at ``C = D = 0``, which only an *inverted* chain can use here (``G = ~a = xor(x1, w1)`` is
  ``P(x1, w1, 0, 0)``): a full adder with every input and output inverted is still a full adder, so
  level 1 computes the complements of its sums and the next level reads them inverted for free.
* **Later levels** add pairs of values as lanes packed on one chain, as ``AdderTree`` does: each
  lane one bit wider than its operands, the top cell injecting the next lane's carry-in, a term
  kept back from level 1 (so the carry-in terms cost no cell of their own).
* Chains are at most ``max_chain`` cells. nextpnr adds a slice at each end of an ECP5 chain (a
  feed-in for the constant carry-in Yosys ties to the first cell, a feed-out for the last carry
  out), so long chains cost fewer LUTs and short ones ripple faster: 16 cells keep a 64 x 16
  array at 250 MHz on ECP5-85k speed 6 (``benchmarks/popcount.py``).
* A register closes every ``levels_per_stage`` levels. Terms kept back for later levels wait in
  registers (their two operand bits each), which is cheaper than a LUT to make the term.

With ``n`` level-1 lanes the tree takes ``4n - 1`` terms in about ``1.5`` cells per term; the
functions the cells need are checked against the family's constraints when the cells are encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .adder_tree import lane_levels
from .carry_cells import Cell, cell_library
from .params import positive_int, validating

__all__ = ["CarryTree", "carry_tree_levels"]


def _bits(value: int) -> int:
    return max(1, value.bit_length())


@dataclass(frozen=True)
class _Bit:
    """One operand bit: the true bit is ``fn(*signals)``; the signals are valid at ``stage``."""
    signals: tuple[Value, ...]
    fn: object
    stage: int


@dataclass(frozen=True)
class _Number:
    bits: tuple[_Bit, ...]
    top: int               # largest value


def _split(count: int) -> tuple[int, int]:
    """Level-1 lanes and the terms kept back as carry-ins of later lanes (``4n - 1`` terms fill
    ``n`` lanes of three and the ``n - 1`` later lanes' carry-ins)."""
    lanes = max(1, -(-(count + 1) // 4))
    kept = max(0, min(lanes - 1, count - 2 * lanes))
    return lanes, kept


def carry_tree_levels(count: int) -> int:
    """Chain levels of the tree for ``count`` terms (level 1 included)."""
    return 1 + lane_levels(*_split(count))


class CarryTree(wiring.Component):
    """``o[r] = popcount(~(x ^ w[r]))`` over ``count`` bit pairs for each of ``rows`` rows (the
    rows of a matrix-vector unit share ``x``), on the carry cells named by ``cells`` (``"ccu2c"``
    for ECP5, ``"carry4"`` for Xilinx 7-series). The rows' lanes of one level share chains, so a
    chain's fixed cost (nextpnr adds a slice at each end) is spread over as many lanes as fit.

    Free-running: the counts of the operands presented at cycle ``t`` appear on ``o`` at cycle
    ``t + latency``. Needs ``count >= 4`` (smaller sums are a LUT or two anyway). ``behavioural``
    builds the cells' tables as Amaranth logic instead of the vendor's primitives, for Amaranth's
    simulator; the primitives themselves are simulated on Verilator with Yosys's models.
    """

    def __init__(self, *, count: int, cells: str, rows: int = 1, levels_per_stage: int = 1, max_chain: int = 16,
                 behavioural: bool = False):
        with validating(self):
            positive_int("count", count)
            positive_int("rows", rows)
            positive_int("levels_per_stage", levels_per_stage)
            positive_int("max_chain", max_chain)
            if count < 4:
                raise ValueError(f"a carry tree needs at least 4 terms, not {count}")
            if max_chain < 4:
                raise ValueError(f"max_chain must be at least 4 cells, not {max_chain}")
            self._library = cell_library(cells)
        self._count, self._rows, self._levels_per_stage, self._max_chain = count, rows, levels_per_stage, max_chain
        self._behavioural = behavioural
        self.levels = carry_tree_levels(count)
        self.latency = sum(1 for level in range(1, self.levels + 1) if self._registered(level))
        super().__init__({"x": In(count), "w": In(data.ArrayLayout(count, rows)),
                          "o": Out(data.ArrayLayout(range(count + 1), rows))})

    def _registered(self, level: int) -> bool:
        return level % self._levels_per_stage == 0 or level == self.levels

    # -- elaboration -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        self._m, self._delayed = m, {}
        count, rows = self._count, self._rows
        lanes, kept = _split(count)
        xs = [self.x[k] for k in range(count)]
        pairs = [[_Bit((xs[k], self.w[r][k]), lambda x, w: 1 ^ x ^ w, 0) for k in range(count)] for r in range(rows)]
        spares = [row[count - kept:] for row in pairs]
        # level 1: lane j adds terms j and lanes + j, with term 2 * lanes + j as its carry-in; the
        # rows' lanes j sit side by side on the chain, so each x bit fans out to neighbouring cells
        operands = []
        for j in range(lanes):
            for r in range(rows):
                g = pairs[r][j:count - kept:lanes]
                operands.append((_Number((g[0],), 1), _Number(tuple(g[1:2]), len(g[1:2])), g[2] if len(g) > 2 else None))
        sums = self._level(1, 0, operands, inverted=True)
        values = [sums[r::rows] for r in range(rows)]
        level, stage = 1, 1 if self._registered(1) else 0
        # every row has the same shape, so the rows step through the levels together
        while len(values[0]) + len(spares[0]) > 1:
            if len(values[0]) < 2:
                values = [v + [_Number((s,), 1) for s in sp] for v, sp in zip(values, spares)]
                spares = [[] for _ in range(rows)]
                continue
            level += 1
            # lane-major again: lane k of every row side by side, where lanes 2k and 2k + 1 were
            operands = [(v[k], v[k + 1], sp.pop(0) if sp else None)
                        for k in range(0, len(values[0]) - 1, 2) for v, sp in zip(values, spares)]
            carried = [v[-1:] if len(v) % 2 else [] for v in values]
            sums = self._level(level, stage, operands, inverted=False)
            values = [sums[r::rows] + carried[r] for r in range(rows)]
            stage += 1 if self._registered(level) else 0
        for r in range(rows):
            bits = values[r][0].bits
            m.d.comb += self.o[r].eq(Cat(Value.cast(bit.fn(*self._at(bit, stage))) for bit in bits))
        return m

    def _at(self, bit: _Bit, stage: int) -> tuple[Value, ...]:
        """The bit's signals delayed to ``stage``."""
        out = []
        for signal in bit.signals:
            value = signal
            for s in range(bit.stage, stage):
                key = (id(signal), s + 1)
                if key not in self._delayed:
                    reg = Signal(name=f"wait{len(self._delayed)}", reset_less=True)
                    self._m.d.sync += reg.eq(value)
                    self._delayed[key] = reg
                value = self._delayed[key]
            out.append(value)
        return tuple(out)

    def _level(self, level: int, stage: int, operands, *, inverted: bool) -> list[_Number]:
        """One level: lanes ``a + b + carry_in`` on chains of at most ``max_chain`` cells; returns the
        lanes' sums (in the chain's polarity, registered if the level closes a stage)."""
        polarity = 1 if inverted else 0
        lanes = []
        for a, b, carry_in in operands:
            width = max(len(a.bits), len(b.bits)) + 1
            top = a.top + b.top + (carry_in is not None)
            lanes.append((a, b, carry_in, width, top))
        chains, current = [], []
        for lane in lanes:
            if current and 1 + sum(l[3] for l in current) + lane[3] > self._max_chain:
                chains.append(current)
                current = []
            current.append(lane)
        chains.append(current)
        registered = self._registered(level)
        out_stage = stage + (1 if registered else 0)
        results = []
        for c, chain in enumerate(chains):
            cells = [self._inject(chain[0][2], stage, polarity)]
            for k, (a, b, _, width, _) in enumerate(chain):
                for i in range(width - 1):
                    cells.append(self._add(a.bits[i] if i < len(a.bits) else None,
                                           b.bits[i] if i < len(b.bits) else None, stage, polarity))
                following = chain[k + 1][2] if k + 1 < len(chain) else None
                cells.append(self._inject(following, stage, polarity))
            sums = self._library.emit(self._m, cells, f"l{level}_{c}", behavioural=self._behavioural)
            offset = 1
            for k, (_, _, _, width, top) in enumerate(chain):
                bits = []
                for i in range(_bits(top)):
                    node = Signal(name=f"l{level}_{c}_{k}_{i}", reset_less=True)
                    (self._m.d.sync if registered else self._m.d.comb).__iadd__(node.eq(sums[offset + i]))
                    bits.append(_Bit((node,), (lambda s: 1 ^ s) if inverted else (lambda s: s), out_stage))
                results.append(_Number(tuple(bits), top))
                offset += width
        return results

    def _add(self, a: _Bit | None, b: _Bit | None, stage: int, polarity: int) -> Cell:
        """A cell adding bits ``a`` and ``b`` to the carry; its generate bit is ``a`` in the chain's polarity."""
        if a is None:
            a, b = b, None
        if a is None:
            return Cell((), lambda: 0, lambda: polarity)
        na = len(a.signals)
        inputs = self._at(a, stage) + (self._at(b, stage) if b is not None else ())
        fa, fb = a.fn, (b.fn if b is not None else None)

        def propagate(*bits):
            return fa(*bits[:na]) ^ (fb(*bits[na:]) if fb else 0)

        def generate(*bits):
            return fa(*bits[:na]) ^ polarity

        return Cell(inputs, propagate, generate)

    def _inject(self, term: _Bit | None, stage: int, polarity: int) -> Cell:
        """A cell that passes the carry into its sum and injects ``term`` as the next carry."""
        if term is None:
            return Cell((), lambda: 0, lambda: polarity)
        fn = term.fn
        return Cell(self._at(term, stage), lambda *bits: 0, lambda *bits: fn(*bits) ^ polarity)
