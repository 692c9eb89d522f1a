"""Model readers: the native description (JSON + NPZ)."""

from .native import load_model, save_model

__all__ = ["load_model", "save_model"]
