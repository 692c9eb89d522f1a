"""Amaranth hardware generators."""

from .adder_tree import AdderTree
from .dot_array import DotProductArray
from .mvu import MatrixVectorUnit
from .thresholds import Thresholding
from .width_converter import WidthConverter

__all__ = ["AdderTree", "DotProductArray", "MatrixVectorUnit", "Thresholding", "WidthConverter"]
