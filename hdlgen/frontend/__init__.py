"""Model readers: the native description (JSON + NPZ) and QONNX (``.onnx``)."""

from pathlib import Path

from ..errors import HdlgenError

from .native import load_model as load_native
from .native import save_model
from .qdq import is_qdq, load_qdq
from .qonnx import load_qonnx, read_onnx


def load_model(path, input_type: str | None = None):
    """Read a model: for a ``.onnx`` file ONNX QDQ (QuantizeLinear / DequantizeLinear, as onnxruntime's
    quantizer writes) or else QONNX; the native description otherwise.

    ``input_type`` (a QONNX DataType name) declares a QONNX model's input format (``--input-type``)."""
    if Path(path).suffix.lower() == ".onnx":
        proto = read_onnx(path)
        if is_qdq(proto):
            if input_type is not None:
                raise HdlgenError(f"{path}: --input-type applies to QONNX models; a QDQ model's first QuantizeLinear "
                                  f"gives its input's format")
            return load_qdq(path, proto)
        return load_qonnx(path, input_type, proto)
    if input_type is not None:
        raise HdlgenError(f"{path}: --input-type applies to ONNX models; a native description gives its input's "
                          f"quant in its 'input' entry")
    return load_native(path)


__all__ = ["load_model", "load_native", "load_qonnx", "load_qdq", "save_model"]
