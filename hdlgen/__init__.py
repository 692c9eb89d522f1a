"""hdlgen: quantized neural networks to streaming FPGA hardware, verified bit-exactly."""

from .errors import HdlgenError

__all__ = ["HdlgenError"]
__version__ = "0.2.0"
