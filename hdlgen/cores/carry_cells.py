"""Carry-chain cells of each FPGA family, instantiated as the vendor's primitives.

A *cell* is one position of a carry chain: a LUT computes the propagate bit ``P`` of its inputs
and the chain computes ``S = P ^ carry_in`` and ``carry_out = carry_in if P else G``, where ``G``
(the generate bit) matters only when ``P`` is 0. Every family has this cell; they differ in what
``G`` may depend on:

* ECP5 ``CCU2C`` (two cells): ``P`` is a LUT4 of ``A, B, C, D``; ``G`` is the same LUT4's table
  at ``C = D = 0``, so it is a function of ``A`` and ``B`` only, and where all four inputs are
  live it equals ``P(A, B, 0, 0)``. With ``D`` tied to 1 the two are independent.
* Xilinx ``CARRY4`` (four cells) fed by ``LUT6_2``: ``O6`` is ``P`` and ``O5`` is ``G`` (the
  ``DI`` input), two independent functions of five inputs with ``I5`` tied to 1.

:func:`cell_library` gives the family's :class:`CellLibrary`; ``CarryTree`` describes each cell
by its inputs and two truth functions and leaves the encoding (the LUT ``INIT`` values, the ties
and the checks that ``G`` is realisable) to the library. Simulated with Yosys's own models
(``backends.vendor_models``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable

from amaranth import Cat, Const, Instance, Module, Mux, Signal, Value

__all__ = ["Cell", "CellLibrary", "cell_library", "LIBRARIES"]

Truth = Callable[..., int]


@dataclass(frozen=True)
class Cell:
    """One carry-chain position: ``inputs`` (one-bit values), ``propagate(*bits)`` and
    ``generate(*bits)`` (needed only where ``propagate`` is 0)."""

    inputs: tuple[Value, ...]
    propagate: Truth
    generate: Truth


def _cases(n: int):
    return product((0, 1), repeat=n)


def _pad(cells: list[Cell], group: int) -> list[Cell]:
    spare = Cell((), lambda: 0, lambda: 0)
    return cells + [spare] * (-len(cells) % group)


class CellLibrary:
    """How one family builds a chain of cells; ``emit`` returns the sum bits ``S``."""

    name: str
    primitives: tuple[str, ...]
    cells_per_primitive: int
    max_inputs: int

    def emit(self, m: Module, cells: list[Cell], name: str, *, behavioural: bool = False) -> list[Value]:
        """The chain's sum bits. ``behavioural`` builds the same tables as Amaranth logic (for
        Amaranth's simulator) instead of instantiating the primitives."""
        raise NotImplementedError


def _chain_logic(m: Module, cells: list[tuple[Value, Value]], name: str) -> list[Value]:
    """Sums of a chain of (propagate, generate) pairs, as logic: the cells' own semantics."""
    sums, carry = [], Const(0, 1)
    for k, (p, g) in enumerate(cells):
        s, c = Signal(name=f"{name}_s{k}"), Signal(name=f"{name}_c{k}")
        m.d.comb += [s.eq(p ^ carry), c.eq(Mux(p, carry, g))]
        sums.append(s)
        carry = c
    return sums


class Ccu2c(CellLibrary):
    name, primitives, cells_per_primitive, max_inputs = "ccu2c", ("CCU2C",), 2, 4

    @staticmethod
    def init(cell: Cell) -> tuple[int, list[Value]]:
        """The LUT4 table and the four inputs (ties included) of one CCU2C half."""
        live = len(cell.inputs)
        if live > 4:
            raise ValueError(f"a CCU2C cell has four inputs, not {live}")
        table = 0
        if live == 4:
            for bits in _cases(4):
                p = cell.propagate(*bits) & 1
                index = bits[0] | bits[1] << 1 | bits[2] << 2 | bits[3] << 3
                table |= p << index
                # the generate bit is the table at C = D = 0, read with this A and B
                if not p and cell.generate(*bits) & 1 != cell.propagate(bits[0], bits[1], 0, 0) & 1:
                    raise ValueError("this CCU2C cell's generate bit is not its propagate bit at C = D = 0")
            return table, list(cell.inputs)
        # D tied to 1: propagate in the upper half, generate in the C = D = 0 nibble
        for bits in _cases(live):
            abc = tuple(bits) + (0,) * (3 - live)
            index = abc[0] | abc[1] << 1 | abc[2] << 2 | 1 << 3
            table |= (cell.propagate(*bits) & 1) << index
        nibble = {}
        for bits in _cases(live):
            if cell.propagate(*bits) & 1:
                continue
            key = tuple(bits[:2]) + (0,) * (2 - min(live, 2))
            g = cell.generate(*bits) & 1
            if nibble.setdefault(key, g) != g:
                raise ValueError("a CCU2C cell's generate bit may depend on A and B only")
        for (a, b), g in nibble.items():
            table |= g << (a | b << 1)
        inputs = list(cell.inputs) + [Const(0, 1)] * (3 - live) + [Const(1, 1)]
        return table, inputs

    def emit(self, m: Module, cells: list[Cell], name: str, *, behavioural: bool = False) -> list[Value]:
        cells = _pad(cells, 2)
        if behavioural:
            tables = [self.init(cell) for cell in cells]
            return _chain_logic(m, [(Const(t, 16).bit_select(Cat(*i), 1), Const(t, 16).bit_select(Cat(*i[:2]), 1))
                                    for t, i in tables], name)
        sums, carry = [], Const(0, 1)
        for k in range(0, len(cells), 2):
            (init0, in0), (init1, in1) = self.init(cells[k]), self.init(cells[k + 1])
            s0, s1, cout = Signal(name=f"{name}_s{k}"), Signal(name=f"{name}_s{k + 1}"), Signal(name=f"{name}_c{k + 1}")
            m.submodules[f"{name}_ccu{k // 2}"] = Instance(
                "CCU2C", p_INIT0=Const(init0, 16), p_INIT1=Const(init1, 16), p_INJECT1_0="NO", p_INJECT1_1="NO",
                i_CIN=carry, i_A0=in0[0], i_B0=in0[1], i_C0=in0[2], i_D0=in0[3],
                i_A1=in1[0], i_B1=in1[1], i_C1=in1[2], i_D1=in1[3], o_S0=s0, o_S1=s1, o_COUT=cout)
            sums += [s0, s1]
            carry = cout
        return sums


class Carry4(CellLibrary):
    name, primitives, cells_per_primitive, max_inputs = "carry4", ("CARRY4", "LUT6_2"), 4, 5

    @staticmethod
    def init(cell: Cell) -> int:
        """The LUT6_2 table: ``O6`` (propagate) in the upper half (``I5`` = 1), ``O5`` (generate) below."""
        live = len(cell.inputs)
        if live > 5:
            raise ValueError(f"a LUT6_2 with I5 tied to 1 has five inputs, not {live}")
        table = 0
        for index in range(32):
            bits = tuple((index >> k) & 1 for k in range(live))
            if index >> live:
                continue          # unused inputs are tied to 0
            p = cell.propagate(*bits) & 1
            table |= p << (32 + index)
            table |= (0 if p else cell.generate(*bits) & 1) << index
        return table

    def emit(self, m: Module, cells: list[Cell], name: str, *, behavioural: bool = False) -> list[Value]:
        cells = _pad(cells, 4)
        if behavioural:
            logic = []
            for cell in cells:
                table, inputs = Const(self.init(cell), 64), Cat(*cell.inputs, Const(0, 5 - len(cell.inputs)))
                logic.append((table.bit_select(Cat(inputs, Const(1, 1)), 1), table.bit_select(Cat(inputs, Const(0, 1)), 1)))
            return _chain_logic(m, logic, name)
        sums, carry = [], Const(0, 1)
        for k in range(0, len(cells), 4):
            s, di = Signal(4, name=f"{name}_p{k}"), Signal(4, name=f"{name}_g{k}")
            out, co = Signal(4, name=f"{name}_s{k}"), Signal(4, name=f"{name}_co{k}")
            for j, cell in enumerate(cells[k:k + 4]):
                if not cell.inputs:        # a constant cell needs no LUT
                    m.d.comb += [s[j].eq(cell.propagate() & 1), di[j].eq(cell.generate() & 1)]
                    continue
                inputs = list(cell.inputs) + [Const(0, 1)] * (5 - len(cell.inputs))
                m.submodules[f"{name}_lut{k + j}"] = Instance(
                    "LUT6_2", p_INIT=Const(self.init(cell), 64), i_I0=inputs[0], i_I1=inputs[1], i_I2=inputs[2],
                    i_I3=inputs[3], i_I4=inputs[4], i_I5=Const(1, 1), o_O6=s[j], o_O5=di[j])
            m.submodules[f"{name}_carry{k // 4}"] = Instance(
                "CARRY4", i_CI=carry, i_CYINIT=Const(0, 1), i_DI=di, i_S=s, o_O=out, o_CO=co)
            sums += [out[j] for j in range(4)]
            carry = co[3]
        return sums


LIBRARIES: dict[str, CellLibrary] = {library.name: library for library in (Ccu2c(), Carry4())}


def cell_library(name: str) -> CellLibrary:
    if name not in LIBRARIES:
        raise ValueError(f"unknown carry cells {name!r}; choose one of {', '.join(sorted(LIBRARIES))}")
    return LIBRARIES[name]
