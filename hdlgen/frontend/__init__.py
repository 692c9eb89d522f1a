"""Model readers: the native description (JSON + NPZ) and QONNX (``.onnx``)."""

from pathlib import Path

from .native import load_model as load_native
from .native import save_model
from .qonnx import load_qonnx


def load_model(path):
    """Read a model: QONNX for a ``.onnx`` file, the native description otherwise."""
    return load_qonnx(path) if Path(path).suffix.lower() == ".onnx" else load_native(path)


__all__ = ["load_model", "load_native", "load_qonnx", "save_model"]
