"""hdlgen: quantized neural networks to streaming FPGA hardware, verified bit-exactly."""

from .errors import HdlgenError

__all__ = ["HdlgenError", "build", "open_design", "Design"]
__version__ = "0.2.0"


def __getattr__(name):
    """The Python API (``hdlgen.api``), imported when first used so that ``import hdlgen`` stays light."""
    if name in ("build", "open_design", "Design"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'hdlgen' has no attribute {name!r}")
