"""Transforms from the source model to what hardware is built from."""

from .folding import auto_folding, load_folding, check_foldings
from .streamline import streamline

__all__ = ["streamline", "auto_folding", "load_folding", "check_foldings"]
