"""Requantization units: accumulators to activation codes without a threshold table.

Both take the stream a :class:`MatrixVectorUnit` emits (``pe`` unsigned accumulators ``P`` a beat,
rows ``nf * pe + p`` in turn) and give one code per row, like the threshold units, with per-row
constants in a small memory read asynchronously. Golden functions: ``golden/requant.py``.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import counter, positive_int, validating

__all__ = ["ShiftRequant", "FixedPointRequant", "ScoresUnit", "REQUANT_UNITS", "requant_unit", "requant_memory_bits"]


def _row_constants(name: str, values, rows: int, pe: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.shape != (rows,) or rows % pe:
        raise ValueError(f"{name} must hold one integer per row ({rows} rows, a multiple of pe={pe})")
    return values


def _signed_width(values) -> int:
    top = max(int(np.max(np.abs(values))), 1)
    return top.bit_length() + 1


class _RowUnit(wiring.Component):
    """Shared shape: ``pe`` accumulators in, ``pe`` codes out, a row-group counter, a stall rule
    ``i.ready = o.ready | ~o.valid`` and ``latency`` register stages."""

    def __init__(self, *, rows: int, pe: int, acc_max: int, out_bits: int):
        positive_int("pe", pe)
        self._pe, self._acc_max, self._nf = pe, acc_max, rows // pe
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(range(acc_max + 1), pe))),
            "o": Out(stream.Signature(data.ArrayLayout(out_bits, pe))),
        })

    def _table(self, m: Module, name: str, columns: dict[str, np.ndarray], group):
        """One memory of per-row constants, addressed by the row group; its fields as signals."""
        pe, nf = self._pe, self._nf
        fields = {key: data.ArrayLayout(signed(_signed_width(v)), pe) for key, v in columns.items()}
        layout = data.StructLayout(fields)
        init = [{key: [int(v) for v in values.reshape(nf, pe)[g]] for key, values in columns.items()} for g in range(nf)]
        m.submodules[name] = mem = memory.Memory(shape=layout, depth=max(nf, 2), init=init)
        read = mem.read_port(domain="comb")
        m.d.comb += read.addr.eq(group)
        return read.data


class ShiftRequant(_RowUnit):
    """``q = (P + offset[row]) >> shift[row]``; with ``half_even``, minus 1 where the shifted-out
    bits are all zero and ``q`` is odd (the offset holds the half: those are the ties); clamped to
    ``0 .. levels - 1``. An adder, a shifter and a comparison per row, no multiplier and no table:
    the unit for power-of-two rescaling. One register stage."""

    latency = 1

    def __init__(self, *, offset, shift, half_even: bool, levels: int, pe: int, acc_max: int):
        with validating(self):
            rows = np.asarray(offset).size
            self._offset = _row_constants("offset", offset, rows, pe)
            self._shift = _row_constants("shift", shift, rows, pe)
            if np.any(self._shift < 0):
                raise ValueError("shifts must not be negative")
            positive_int("levels", levels)
        self._half_even, self._levels = bool(half_even), levels
        super().__init__(rows=rows, pe=pe, acc_max=acc_max, out_bits=max(1, (levels - 1).bit_length()))

    def elaborate(self, platform):
        m = Module()
        pe, nf = self._pe, self._nf
        group = Signal(counter(nf))
        consts = self._table(m, "constants", {"offset": self._offset, "shift": self._shift}, group)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(take):
            m.d.sync += group.eq(Mux(group == nf - 1, 0, group + 1))
        width = max((self._acc_max + 1).bit_length(), _signed_width(self._offset)) + 2
        top = self._levels - 1
        for p in range(pe):
            v = Signal(signed(width), name=f"v{p}")
            n = consts.shift[p].as_unsigned()
            q = Signal(signed(width), name=f"q{p}")
            m.d.comb += [v.eq(self.i.payload[p] + consts.offset[p]), q.eq(v >> n)]
            if self._half_even:
                low = Signal(width, name=f"low{p}")
                m.d.comb += low.eq(v.as_unsigned() & ((1 << n) - 1)[:width])
                tie = (n != 0) & (low == 0) & q[0]
                rounded = Signal(signed(width), name=f"rounded{p}")
                m.d.comb += rounded.eq(Mux(tie, q - 1, q))
            else:
                rounded = q
            with m.If(take):
                m.d.sync += self.o.payload[p].eq(Mux(rounded < 0, 0, Mux(rounded > top, top, rounded)))
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m


class FixedPointRequant(_RowUnit):
    """gemmlowp's integer requantization per row: ``x = gain * P + offset[row]`` (the int32 sum of
    the source model), ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m0[row]),
    shift[row])``, clamped to the output values ``lo .. hi``; the code is the value less ``lo``.

    Three register stages: the sum, the 32 x 31-bit product (a multiplier primitive's output
    register), then rounding, shift and clamp."""

    latency = 3

    def __init__(self, *, gain: int, offset, m0, shift, lo: int, hi: int, pe: int, acc_max: int):
        with validating(self):
            rows = np.asarray(offset).size
            self._offset = _row_constants("offset", offset, rows, pe)
            self._m0 = _row_constants("m0", m0, rows, pe)
            self._shift = _row_constants("shift", shift, rows, pe)
            if np.any(self._m0 < (1 << 30)) or np.any(self._m0 >= (1 << 31)) or np.any(self._shift < 0) \
                    or np.any(self._shift > 62):
                raise ValueError("m0 must lie in [2^30, 2^31) and shifts in 0 .. 62")
            if gain not in (1, 2) or lo >= hi:
                raise ValueError("gain is 1 or 2, and lo < hi")
        self._gain, self._lo, self._hi = gain, lo, hi
        super().__init__(rows=rows, pe=pe, acc_max=acc_max, out_bits=max(1, (hi - lo).bit_length()))

    def elaborate(self, platform):
        m = Module()
        pe, nf = self._pe, self._nf
        advance = Signal()
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid), self.i.ready.eq(advance)]
        group = Signal(counter(nf))
        with m.If(self.i.valid & advance):
            m.d.sync += group.eq(Mux(group == nf - 1, 0, group + 1))
        consts = self._table(m, "constants", {"offset": self._offset, "m0": self._m0, "shift": self._shift},
                             group)
        x_width = _signed_width([self._gain * self._acc_max + max(int(self._offset.max()), 0),
                                 min(int(self._offset.min()), 0)])
        valid = [Signal(name=f"valid{s}") for s in range(3)]
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), valid[1].eq(valid[0]), valid[2].eq(valid[1])]
        m.d.comb += self.o.valid.eq(valid[2])
        for p in range(pe):
            x = Signal(signed(x_width), name=f"x{p}", reset_less=True)
            m0 = Signal(32, name=f"m0_{p}", reset_less=True)
            shift1 = Signal(6, name=f"shift1_{p}", reset_less=True)
            product = Signal(signed(x_width + 32), name=f"product{p}", reset_less=True)
            shift2 = Signal(6, name=f"shift2_{p}", reset_less=True)
            with m.If(advance):
                m.d.sync += [x.eq(self.i.payload[p] * self._gain + consts.offset[p]),
                             m0.eq(consts.m0[p].as_unsigned()), shift1.eq(consts.shift[p].as_unsigned()),
                             product.eq(x * m0), shift2.eq(shift1)]
            # SaturatingRoundingDoublingHighMul: (ab + nudge) / 2^31, truncated toward zero
            nudged = Signal(signed(x_width + 33), name=f"nudged{p}")
            m.d.comb += nudged.eq(product + Mux(product >= 0, 1 << 30, 1 - (1 << 30)))
            high = Signal(signed(x_width + 2), name=f"high{p}")
            magnitude = Signal(x_width + 33, name=f"magnitude{p}")
            m.d.comb += magnitude.eq(Mux(nudged < 0, -nudged, nudged))
            m.d.comb += high.eq(Mux(nudged < 0, -(magnitude >> 31), magnitude >> 31))
            # RoundingDivideByPOT: ties away from zero
            mask = Signal(x_width + 2, name=f"mask{p}")
            m.d.comb += mask.eq((1 << shift2) - 1)
            remainder = Signal(x_width + 2, name=f"remainder{p}")
            m.d.comb += remainder.eq(high.as_unsigned() & mask)
            threshold = (mask >> 1) + (high < 0)
            q = Signal(signed(x_width + 3), name=f"q{p}")
            m.d.comb += q.eq((high >> shift2) + (remainder > threshold))
            with m.If(advance):
                m.d.sync += self.o.payload[p].eq(Mux(q < self._lo, 0, Mux(q > self._hi, self._hi - self._lo,
                                                                          q - self._lo)))
        return m


class ScoresUnit(_RowUnit):
    """A model's outputs in fixed point from its last layer's accumulators:
    ``Y = sign[row] * (P << shift[row]) + offset[row]``, a ``width``-bit two's complement integer
    (its value is ``Y * 2^-fraction`` in the model's units). A shift, a negation and an add per
    row: shift-based batch norm (BNN paper, Alg. 3) with the mean subtraction and both AP2 shifts
    composed exactly. One register stage."""

    latency = 1

    def __init__(self, *, offset, shift, sign, width: int, pe: int, acc_max: int):
        with validating(self):
            rows = np.asarray(offset).size
            self._offset = _row_constants("offset", offset, rows, pe)
            self._shift = _row_constants("shift", shift, rows, pe)
            self._sign = _row_constants("sign", sign, rows, pe)
            if np.any(self._shift < 0) or not np.all(np.isin(self._sign, (-1, 0, 1))):
                raise ValueError("shifts must not be negative and signs are -1, 0 or +1")
            positive_int("width", width)
        self._width = width
        super().__init__(rows=rows, pe=pe, acc_max=acc_max, out_bits=width)

    def elaborate(self, platform):
        m = Module()
        pe, nf = self._pe, self._nf
        group = Signal(counter(nf))
        consts = self._table(m, "constants", {"offset": self._offset, "shift": self._shift, "sign": self._sign}, group)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(take):
            m.d.sync += group.eq(Mux(group == nf - 1, 0, group + 1))
        for p in range(pe):
            shifted = Signal(signed(self._width + 1), name=f"shifted{p}")
            m.d.comb += shifted.eq(self.i.payload[p] << consts.shift[p].as_unsigned())
            signed_term = Mux(consts.sign[p] < 0, -shifted, Mux(consts.sign[p] == 0, 0, shifted))
            with m.If(take):
                m.d.sync += self.o.payload[p].eq(signed_term + consts.offset[p])
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m


REQUANT_UNITS = {"shift": ShiftRequant, "fixed": FixedPointRequant, "scores": ScoresUnit}


def requant_unit(layer, pe: int, acc_max: int):
    """The core for a lowered layer's requantization unit (``layer.requant``)."""
    unit = layer.requant
    if unit.kind == "scores":
        return ScoresUnit(offset=unit.offset, shift=unit.shift, sign=unit.sign, width=unit.width, pe=pe, acc_max=acc_max)
    if unit.kind == "shift":
        return ShiftRequant(offset=unit.offset, shift=unit.shift, half_even=unit.half_even,
                            levels=layer.out_type.levels, pe=pe, acc_max=acc_max)
    return FixedPointRequant(gain=layer.acc_gain, offset=unit.offset, m0=unit.m0, shift=unit.shift, lo=unit.lo,
                             hi=unit.hi, pe=pe, acc_max=acc_max)


def requant_memory_bits(layer) -> int:
    """Bits of per-row constants a layer's requantization unit holds (its memory, as the cores size it)."""
    unit = layer.requant
    fields = {"shift": (unit.offset, unit.shift), "fixed": (unit.offset, unit.m0, unit.shift),
              "scores": (unit.offset, unit.shift, unit.sign)}[unit.kind]
    return layer.mh * sum(_signed_width(values) for values in fields)
