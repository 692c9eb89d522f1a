"""Parameter checks and small helpers shared by the components."""

from __future__ import annotations

from contextlib import contextmanager

from amaranth import Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


@contextmanager
def validating(component):
    """Run a constructor's checks; a component whose constructor fails is not an unused design.

    Amaranth warns about elaboratables that are created and never elaborated; without this, every
    rejected parameter would add that warning to the real error.
    """
    try:
        yield
    except Exception:
        component._MustUse__used = True
        raise


def positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def counter(n: int) -> range:
    """Shape of a counter over ``n`` states; never zero bits wide (a zero-width wire is not valid Verilog)."""
    return range(max(n, 2))


class ImageStageCore(wiring.Component):
    """A core streaming an (H, W, C) image ``count`` channels of one pixel a beat, in and out.

    Output values have the input's code width unless ``out_shape`` says otherwise.
    """

    def __init__(self, *, stage, count: int, out_shape=None):
        with validating(self):
            positive_int("count", count)
            if stage.in_shape[2] % count:
                raise ValueError(f"stage {stage.name!r}: {count} values per beat do not divide "
                                 f"{stage.in_shape[2]} channels")
        self._stage, self._count = stage, count
        in_layout = data.ArrayLayout(stage.in_type.bits, count)
        out_layout = in_layout if out_shape is None else data.ArrayLayout(out_shape, count)
        super().__init__({"i": In(stream.Signature(in_layout)), "o": Out(stream.Signature(out_layout))})


def delayed(m, value, cycles: int, name: str, *, reset: bool = False):
    """``value`` through ``cycles`` datapath registers (no reset, unless ``reset``: a control bit
    such as a valid, cleared by reset) in ``m``'s sync domain."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k}", reset_less=not reset)
        m.d.sync += reg.eq(value)
        value = reg
    return value
