"""Model readers: the native description (JSON + NPZ) and QONNX (``.onnx``)."""

from pathlib import Path

from ..errors import HdlgenError

from .native import load_model as load_native
from .native import save_model
from .qonnx import load_qonnx


def load_model(path, input_type: str | None = None):
    """Read a model: QONNX for a ``.onnx`` file, the native description otherwise.

    ``input_type`` (a QONNX DataType name) declares an ONNX model's input format (``--input-type``)."""
    if Path(path).suffix.lower() == ".onnx":
        return load_qonnx(path, input_type)
    if input_type is not None:
        raise HdlgenError(f"{path}: --input-type applies to ONNX models; a native description gives its input's "
                          f"quant in its 'input' entry")
    return load_native(path)


__all__ = ["load_model", "load_native", "load_qonnx", "save_model"]
