"""Parameter checks shared by the components."""

from __future__ import annotations

from contextlib import contextmanager


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


def channels_per_beat(stage, count: int) -> None:
    """An image stage takes ``count`` channels of one pixel a beat: ``count`` must divide its channels."""
    positive_int("count", count)
    if stage.in_shape[2] % count:
        raise ValueError(f"stage {stage.name!r}: {count} values per beat do not divide {stage.in_shape[2]} channels")
