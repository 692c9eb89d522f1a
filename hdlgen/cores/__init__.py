"""Amaranth hardware generators."""

from .adder_tree import AdderTree
from .mvu import MatrixVectorUnit
from .thresholds import Thresholding
from .width_converter import WidthConverter

__all__ = ["AdderTree", "MatrixVectorUnit", "Thresholding", "WidthConverter"]
